package storage_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmsync/crmsync/storage"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"ujet-metadata/call-103646.json", true},
		{"a/b/c/d.txt", true},
		{"folder with space/naïve file.txt", true},
		{"a..b.txt", true},
		{"a/b.", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat(strings.Repeat("a", 9)+"/", 102) + "aaa", true}, // 1023 bytes

		{"", false},
		{"/a", false},
		{"/", false},
		{"..", false},
		{"../a", false},
		{"a/..", false},
		{"a/../b", false},
		{".", false},
		{"./a", false},
		{"a/./b", false},
		{".hidden", false},
		{"a/.crmsync-x.tmp", false},
		{`a\b`, false},
		{`..\a`, false},
		{"a\x00", false},
		{"a\x01", false},
		{"a\nb", false},
		{"a\tb", false},
		{"a\x7f", false},
		{"a\u0085", false},
		{"a\u009f", false},
		{"\xff", false},
		{"a//b", false},
		{"a/", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat(strings.Repeat("a", 9)+"/", 102) + "aaaaa", false}, // 1025 bytes
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.name), func(t *testing.T) {
			err := storage.ValidName(tt.name)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, storage.ErrInvalidName)
			assert.NotErrorIs(t, err, storage.ErrNotExist)
		})
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"ujet-metadata/", true},
		{"ujet-metadata/call-1", true},
		{"ujet-media", true},
		{"a/b/", true},

		{"/", false},
		{"/a", false},
		{"..", false},
		{"../", false},
		{"a/../", false},
		{"./", false},
		{"a//", false},
		{`a\`, false},
		{"a\x00", false},
		{"a/.", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			err := storage.ValidPrefix(tt.prefix)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, storage.ErrInvalidName)
		})
	}
}

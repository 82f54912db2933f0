package httperr_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/crmsync/crmsync/internal/httperr"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    string
		want time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 120 * time.Second},
		{"zero seconds", "0", 0},
		{"seconds with spaces", " 30 ", 30 * time.Second},
		{"negative", "-3", 0},
		{"date in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date now", now.Format(http.TimeFormat), 0},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
		{"fraction", "1.5", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, httperr.RetryAfter(tt.h, now))
		})
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abc", 3, "abc"},
		{"ascii", "abcdef", 4, "abcd"},
		{"zero", "abc", 0, ""},
		{"on a boundary", "aé", 3, "aé"},
		{"inside two bytes", "aéb", 2, "a"},
		{"inside three bytes", "a€b", 3, "a"},
		{"inside four bytes", "a😀b", 4, "a"},
		{"after a sequence", "é€", 5, "é€"},
		{"all one sequence", "€", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := httperr.Cut(tt.s, tt.n)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
		})
	}
}

// The connectors' tests and logs match these messages, so they must not
// drift.
func TestStatusMessage(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		requestID string
		body      string
		want      string
	}{
		{"bare", 404, "", "", "crm: find_account: status 404 not found"},
		{"unknown status", 599, "", "", "crm: find_account: status 599"},
		{"body folded", 429, "", "  slow\n\tdown  ", "crm: find_account: status 429 too many requests: slow down"},
		{"request id", 500, "r-1", "oops", "crm: find_account: status 500 internal server error (request r-1): oops"},
		{"long body", 400, "", strings.Repeat("x", 300), "crm: find_account: status 400 bad request: " + strings.Repeat("x", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, httperr.StatusMessage("crm", "find_account", tt.status, tt.requestID, tt.body))
		})
	}
}

func TestTransportMessage(t *testing.T) {
	err := errors.New("connection refused")
	assert.Equal(t, "pega: oauth2_token: connection refused", httperr.TransportMessage("pega", "oauth2_token", false, err))
	assert.Equal(t, "pega: oauth2_token: timeout: connection refused", httperr.TransportMessage("pega", "oauth2_token", true, err))
}

func TestTemporary(t *testing.T) {
	for status, want := range map[int]bool{400: false, 404: false, 429: true, 500: true, 503: true} {
		assert.Equal(t, want, httperr.Temporary(status), status)
	}
}

func TestRedacted(t *testing.T) {
	err := httperr.Redacted("read [redacted]: EOF", io.ErrUnexpectedEOF)
	assert.Equal(t, "read [redacted]: EOF", err.Error())
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

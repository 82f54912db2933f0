package mail

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		session, kind, queue string
		want                 string
	}{
		{"all parts", "call-103646", "Voice Inbound", "Developers / James", "Session outcome: call-103646 (Voice Inbound, Developers / James)"},
		{"no queue", "chat-7", "Web", "", "Session outcome: chat-7 (Web)"},
		{"no type", "chat-7", "", "Orders", "Session outcome: chat-7 (Orders)"},
		{"session only", "chat-7", "", "", "Session outcome: chat-7"},
		{"line breaks", "call-1\r\nBcc: spy@evil.example", "Voice\nInbound", "Orders\r", "Session outcome: call-1 Bcc: spy@evil.example (Voice Inbound, Orders)"},
		{"other control characters", "call-1\x00\x1b[31m", "Voice\tInbound\x7f", "Ord\u0085ers", "Session outcome: call-1 [31m (Voice Inbound, Ord ers)"},
		{"only control characters", "\r\n", "\x00", "\t", "Session outcome"},
		{"invalid UTF-8", "call-1", "Voice", "Caf\xe9", "Session outcome: call-1 (Voice, Caf\uFFFD)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Subject(tc.session, tc.kind, tc.queue)
			assert.Equal(t, tc.want, got)
			assert.NoError(t, checkHeader("subject", got))
		})
	}
}

func TestMessageID(t *testing.T) {
	for _, id := range []string{"<call-103646.outcome@crmsync>", "call-103646.outcome@crmsync"} {
		got, err := messageID(id)
		require.NoError(t, err, id)
		assert.Equal(t, "call-103646.outcome@crmsync", got, "go-mail adds the brackets")
	}
	for _, id := range []string{"", "<>", "<@>", "<a@>", "<@b>", "<a@b@c>", "<a..b@c>", "<a@b>>", "<<a@b>", "<a\"b@c>", "<a@b c>", "<é@b>"} {
		_, err := messageID(id)
		assert.Error(t, err, id)
	}
}

func TestMetadataBody(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"compact is indented", `{"id":1,"tags":["a","b"]}`, "{\n  \"id\": 1,\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{"compact with a trailing newline is kept", "{\"id\":1}\n", "{\"id\":1}\n"},
		{"pretty is kept", "{\n\t\"id\": 1\n}", "{\n\t\"id\": 1\n}\n"},
		{"strings keep escaped newlines", `{"note":"a\nb"}`, "{\n  \"note\": \"a\\nb\"\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metadataBody([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, in := range []string{"", "  ", "{", `{"a":1}{"b":2}`, "not json"} {
		_, err := metadataBody([]byte(in))
		assert.Error(t, err, in)
	}
}

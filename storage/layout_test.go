package storage_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/storage"
)

var (
	call = crmsync.SessionKey{Kind: crmsync.KindCall, ID: "103646"}
	chat = crmsync.SessionKey{Kind: crmsync.KindChat, ID: "73522"}
)

func TestFileName(t *testing.T) {
	tests := []struct {
		file storage.File
		want string
	}{
		{storage.File{Kind: storage.CallRecordings, Session: call, Format: "mp3"}, "ujet-voice-recordings/call-103646.mp3"},
		{storage.File{Kind: storage.CallRecordings, Session: call, Format: "wav"}, "ujet-voice-recordings/call-103646.wav"},
		{storage.File{Kind: storage.Voicemails, Session: call, Format: "mp3"}, "ujet-voicemails/call-103646.mp3"},
		{storage.File{Kind: storage.Voicemails, Session: call, Format: "wav"}, "ujet-voicemails/call-103646.wav"},
		{storage.File{Kind: storage.ChatTranscripts, Session: chat}, "ujet-chat-transcripts/chat-73522.txt"},
		{storage.File{Kind: storage.ChatTranscripts, Session: chat, Format: "mp3"}, "ujet-chat-transcripts/chat-73522.txt"},
		{storage.File{Kind: storage.Photos, Session: call, MediaID: "9001"}, "ujet-media/call-103646-photo-9001.jpg"},
		{storage.File{Kind: storage.Photos, Session: chat, MediaID: "a_b-c"}, "ujet-media/chat-73522-photo-a_b-c.jpg"},
		{storage.File{Kind: storage.Videos, Session: call, MediaID: "v1"}, "ujet-media/call-103646-video-v1.mp4"},
		{storage.File{Kind: storage.Videos, Session: chat, MediaID: "V2"}, "ujet-media/chat-73522-video-V2.mp4"},
		{storage.File{Kind: storage.SessionMetadata, Session: call}, "ujet-metadata/call-103646.json"},
		{storage.File{Kind: storage.SessionMetadata, Session: chat, MediaID: "ignored"}, "ujet-metadata/chat-73522.json"},
		{storage.File{Kind: storage.SessionMetadata, Session: crmsync.SessionKey{Kind: crmsync.KindCall, ID: strings.Repeat("9", crmsync.MaxIDLength)}}, "ujet-metadata/call-" + strings.Repeat("9", crmsync.MaxIDLength) + ".json"},
	}
	covered := map[storage.FileKind]bool{}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			covered[tt.file.Kind] = true
			got, err := tt.file.Name()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.NoError(t, storage.ValidName(got), "a layout name must pass ValidName")
		})
	}
	for _, k := range storage.FileKinds {
		assert.True(t, covered[k], "kind %s has no test", k)
	}
}

func TestFileNameRejects(t *testing.T) {
	withID := func(id string) crmsync.SessionKey { return crmsync.SessionKey{Kind: crmsync.KindCall, ID: id} }
	tests := []struct {
		desc string
		file storage.File
		want string // in the error
	}{
		{"no session", storage.File{Kind: storage.SessionMetadata}, "session kind"},
		{"session kind sms", storage.File{Kind: storage.SessionMetadata, Session: crmsync.SessionKey{Kind: "sms", ID: "1"}}, "session kind"},
		{"session kind Call", storage.File{Kind: storage.SessionMetadata, Session: crmsync.SessionKey{Kind: "Call", ID: "1"}}, "session kind"},
		{"empty session id", storage.File{Kind: storage.SessionMetadata, Session: withID("")}, "session id"},
		{"session id ..", storage.File{Kind: storage.SessionMetadata, Session: withID("..")}, "session id"},
		{"session id with ..", storage.File{Kind: storage.SessionMetadata, Session: withID("1/../../etc")}, "session id"},
		{"session id with /", storage.File{Kind: storage.SessionMetadata, Session: withID("1/2")}, "session id"},
		{"session id absolute", storage.File{Kind: storage.SessionMetadata, Session: withID("/etc/passwd")}, "session id"},
		{"session id with backslash", storage.File{Kind: storage.SessionMetadata, Session: withID(`1\2`)}, "session id"},
		{"session id with NUL", storage.File{Kind: storage.SessionMetadata, Session: withID("1\x00")}, "session id"},
		{"session id with newline", storage.File{Kind: storage.SessionMetadata, Session: withID("1\n2")}, "session id"},
		{"session id with DEL", storage.File{Kind: storage.SessionMetadata, Session: withID("1\x7f")}, "session id"},
		{"session id with space", storage.File{Kind: storage.SessionMetadata, Session: withID("1 2")}, "session id"},
		{"session id with dot", storage.File{Kind: storage.SessionMetadata, Session: withID("1.json")}, "session id"},
		{"session id starting with -", storage.File{Kind: storage.SessionMetadata, Session: withID("-1")}, "session id"},
		{"session id too long", storage.File{Kind: storage.SessionMetadata, Session: withID(strings.Repeat("9", crmsync.MaxIDLength+1))}, "session id"},
		{"session id not ASCII", storage.File{Kind: storage.SessionMetadata, Session: withID("１２")}, "session id"},
		{"recording of a chat", storage.File{Kind: storage.CallRecordings, Session: chat, Format: "mp3"}, "belong to calls"},
		{"voicemail of a chat", storage.File{Kind: storage.Voicemails, Session: chat, Format: "wav"}, "belong to calls"},
		{"transcript of a call", storage.File{Kind: storage.ChatTranscripts, Session: call}, "belong to chats"},
		{"recording without format", storage.File{Kind: storage.CallRecordings, Session: call}, "format"},
		{"recording as ogg", storage.File{Kind: storage.CallRecordings, Session: call, Format: "ogg"}, "format"},
		{"recording as MP3", storage.File{Kind: storage.CallRecordings, Session: call, Format: "MP3"}, "format"},
		{"recording as .mp3", storage.File{Kind: storage.CallRecordings, Session: call, Format: ".mp3"}, "format"},
		{"recording format with path", storage.File{Kind: storage.CallRecordings, Session: call, Format: "mp3/../../x"}, "format"},
		{"voicemail format with NUL", storage.File{Kind: storage.Voicemails, Session: call, Format: "wav\x00"}, "format"},
		{"photo without id", storage.File{Kind: storage.Photos, Session: call}, "media id"},
		{"video without id", storage.File{Kind: storage.Videos, Session: chat}, "media id"},
		{"photo id ..", storage.File{Kind: storage.Photos, Session: call, MediaID: ".."}, "media id"},
		{"photo id with /", storage.File{Kind: storage.Photos, Session: call, MediaID: "a/b"}, "media id"},
		{"video id with NUL", storage.File{Kind: storage.Videos, Session: call, MediaID: "v\x00"}, "media id"},
		{"video id with control", storage.File{Kind: storage.Videos, Session: call, MediaID: "v\x1b[31m"}, "media id"},
		{"video id with backslash", storage.File{Kind: storage.Videos, Session: call, MediaID: `..\..\x`}, "media id"},
		{"no kind", storage.File{Session: call}, "unknown file kind"},
		{"unknown kind", storage.File{Kind: "faxes", Session: call}, "unknown file kind"},
		{"kind spelled as a folder", storage.File{Kind: storage.FileKind(storage.FolderMedia), Session: call}, "unknown file kind"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := tt.file.Name()
			require.Error(t, err)
			assert.Empty(t, got)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

package storage

import (
	"fmt"

	"github.com/crmsync/crmsync"
)

// The vendor's folders below the target's folder path.
const (
	FolderTranscripts = "ujet-chat-transcripts"
	FolderMedia       = "ujet-media"
	FolderMetadata    = "ujet-metadata"
	FolderRecordings  = "ujet-voice-recordings"
	FolderVoicemails  = "ujet-voicemails"
)

// FileKind is a kind of session file, as named in the config's lists of
// which files are stored and which go to the CRM.
type FileKind string

const (
	CallRecordings  FileKind = "call_recordings"
	Voicemails      FileKind = "voicemails"
	ChatTranscripts FileKind = "chat_transcripts"
	Photos          FileKind = "photos"
	Videos          FileKind = "videos"
	SessionMetadata FileKind = "session_metadata"
)

// FileKinds lists every kind.
var FileKinds = []FileKind{CallRecordings, Voicemails, ChatTranscripts, Photos, Videos, SessionMetadata}

// File names one session file.
type File struct {
	Kind    FileKind
	Session crmsync.SessionKey
	// Format is mp3 or wav for recordings and voicemails; ignored otherwise.
	Format string
	// MediaID is the photo or video id.
	MediaID string
}

// Name is the file's path below the target's root, in the vendor's layout:
//
//	ujet-voice-recordings/call-{id}.mp3 (or .wav)
//	ujet-voicemails/call-{id}.mp3 (or .wav)
//	ujet-chat-transcripts/chat-{id}.txt
//	ujet-media/{call|chat}-{id}-photo-{photo-id}.jpg
//	ujet-media/{call|chat}-{id}-video-{video-id}.mp4
//	ujet-metadata/{call|chat}-{id}.json
//
// Every id is checked, so no name can leave its folder.
func (f File) Name() (string, error) {
	if f.Session.Kind != crmsync.KindCall && f.Session.Kind != crmsync.KindChat {
		return "", fmt.Errorf("storage: session kind %q: want call or chat", f.Session.Kind)
	}
	if err := crmsync.ValidateID(f.Session.ID); err != nil {
		return "", fmt.Errorf("storage: session id: %w", err)
	}
	base := f.Session.String()
	switch f.Kind {
	case CallRecordings, Voicemails:
		if f.Session.Kind != crmsync.KindCall {
			return "", fmt.Errorf("storage: %s belong to calls, not chats", f.Kind)
		}
		if f.Format != "mp3" && f.Format != "wav" {
			return "", fmt.Errorf("storage: %s format %q: want mp3 or wav", f.Kind, f.Format)
		}
		folder := FolderRecordings
		if f.Kind == Voicemails {
			folder = FolderVoicemails
		}
		return folder + "/" + base + "." + f.Format, nil
	case ChatTranscripts:
		if f.Session.Kind != crmsync.KindChat {
			return "", fmt.Errorf("storage: chat transcripts belong to chats, not calls")
		}
		return FolderTranscripts + "/" + base + ".txt", nil
	case Photos, Videos:
		if err := crmsync.ValidateID(f.MediaID); err != nil {
			return "", fmt.Errorf("storage: media id: %w", err)
		}
		if f.Kind == Photos {
			return FolderMedia + "/" + base + "-photo-" + f.MediaID + ".jpg", nil
		}
		return FolderMedia + "/" + base + "-video-" + f.MediaID + ".mp4", nil
	case SessionMetadata:
		return FolderMetadata + "/" + base + ".json", nil
	}
	return "", fmt.Errorf("storage: unknown file kind %q", f.Kind)
}

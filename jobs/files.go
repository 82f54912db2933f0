package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/storage"
)

// FileRecord is a file received for a session, waiting in the spool until
// the session is closed out.
type FileRecord struct {
	Kind       storage.FileKind `json:"kind"`
	Format     string           `json:"format,omitempty"`   // mp3 or wav
	MediaID    string           `json:"media_id,omitempty"` // photos and videos
	Spool      string           `json:"spool"`              // name in the spool target
	Size       int64            `json:"size"`
	SHA256     string           `json:"sha256"`
	ReceivedAt time.Time        `json:"received_at"`
}

// File is the file's place in the vendor's layout.
func (f FileRecord) File(k crmsync.SessionKey) storage.File {
	return storage.File{Kind: f.Kind, Session: k, Format: f.Format, MediaID: f.MediaID}
}

const (
	filePrefix     = "file:"
	outPrefix      = "out:"
	fieldMetadata  = "metadata"
	fieldCloseout  = "closeout_enqueued"
	transcriptSeen = "transcript"
)

// AddFile records a received file. A file of the same kind and id sent
// again replaces the record only if it is the same file; a different one
// under the same name is refused, as storage would refuse it.
func (s *Store) AddFile(ctx context.Context, k crmsync.SessionKey, f FileRecord) error {
	name, err := f.File(k).Name()
	if err != nil {
		return crmsync.Errorf(crmsync.EINVALID, "kind", "%v", err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	key := s.sessionKey(k)
	field := filePrefix + name
	old, err := s.rdb.HGet(ctx, key, field).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("jobs: read %s: %w", k, err)
	}
	if old != "" {
		var prev FileRecord
		if json.Unmarshal([]byte(old), &prev) == nil && prev.SHA256 != f.SHA256 {
			return crmsync.Errorf(crmsync.ECONFLICT, "kind", "%s already has a different %s", k, name)
		}
		return nil
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSetNX(ctx, key, field, b)
	pipe.HSetNX(ctx, key, fieldCreated, fmt.Sprint(time.Now().UnixMilli()))
	pipe.Expire(ctx, key, s.TTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("jobs: save file of %s: %w", k, err)
	}
	return nil
}

// Files lists a session's received files by their names in the layout.
func (s *Store) Files(ctx context.Context, k crmsync.SessionKey) (map[string]FileRecord, error) {
	m, err := s.rdb.HGetAll(ctx, s.sessionKey(k)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read %s: %w", k, err)
	}
	out := map[string]FileRecord{}
	for f, v := range m {
		if name, ok := strings.CutPrefix(f, filePrefix); ok {
			var r FileRecord
			if json.Unmarshal([]byte(v), &r) == nil {
				out[name] = r
			}
		}
	}
	return out, nil
}

// Exported lists the files closed out so far, sorted by name.
func (s *Store) Exported(ctx context.Context, k crmsync.SessionKey) ([]FileEntry, error) {
	m, err := s.rdb.HGetAll(ctx, s.sessionKey(k)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read %s: %w", k, err)
	}
	return exportedFrom(m), nil
}

func exportedFrom(m map[string]string) []FileEntry {
	var out []FileEntry
	for f, v := range m {
		if strings.HasPrefix(f, outPrefix) {
			var e FileEntry
			if json.Unmarshal([]byte(v), &e) == nil {
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Transcript returns a chat's messages, oldest first, one line each.
// Messages are stored as their jobs run, and two jobs of one chat may run
// in either order, so the lines are put in the order of the time each
// starts with (RFC 3339 in UTC, which sorts as text); messages of the same
// second keep the order they were stored in.
func (s *Store) Transcript(ctx context.Context, k crmsync.SessionKey) ([]string, error) {
	lines, err := s.rdb.LRange(ctx, s.transcriptKey(k), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read transcript of %s: %w", k, err)
	}
	stamp := func(l string) string { t, _, _ := strings.Cut(l, " "); return t }
	sort.SliceStable(lines, func(i, j int) bool { return stamp(lines[i]) < stamp(lines[j]) })
	return lines, nil
}

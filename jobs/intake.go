package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/storage"
)

// TypeFetch fetches a session file given by URL into the spool.
const TypeFetch = "files:fetch"

// FileMeta says what a received file is.
type FileMeta struct {
	Kind    storage.FileKind `json:"kind"`
	Format  string           `json:"format,omitempty"`
	MediaID string           `json:"media_id,omitempty"`
}

// FetchPayload is a file to fetch.
type FetchPayload struct {
	Session string   `json:"session"`
	Meta    FileMeta `json:"meta"`
	URL     string   `json:"url"`
}

// Intake takes session files in: streamed into the spool (where every
// worker process can read them) before the request is answered, so a
// crash loses nothing, then recorded on the session.
type Intake struct {
	Store *Store
	Spool storage.Target
	// Enqueuer takes fetch tasks.
	Enqueuer *Enqueuer
	// MaxBytes caps one file. Zero means 2 GiB.
	MaxBytes int64
	// HTTP fetches files given by URL. Nil means a client with a 10
	// minute timeout.
	HTTP *http.Client
}

// ErrTooLarge means a file is over the limit.
var ErrTooLarge = errors.New("jobs: file over the size limit")

func (in *Intake) max() int64 {
	if in.MaxBytes > 0 {
		return in.MaxBytes
	}
	return 2 << 30
}

// Check validates meta for session k and returns the file's name in the
// layout.
func (in *Intake) Check(k crmsync.SessionKey, meta FileMeta) (string, error) {
	known := false
	for _, fk := range storage.FileKinds {
		known = known || fk == meta.Kind
	}
	if !known || meta.Kind == storage.SessionMetadata || meta.Kind == storage.ChatTranscripts {
		return "", crmsync.Errorf(crmsync.EINVALID, "kind", "want call_recordings, voicemails, photos or videos, got %q", meta.Kind)
	}
	name, err := storage.File{Kind: meta.Kind, Session: k, Format: meta.Format, MediaID: meta.MediaID}.Name()
	if err != nil {
		field := "format"
		if meta.Kind == storage.Photos || meta.Kind == storage.Videos {
			field = "media_id"
		}
		return "", crmsync.Errorf(crmsync.EINVALID, field, "%v", err)
	}
	return name, nil
}

// Receive streams r into the spool and records it on the session. size is
// the expected size, or -1.
func (in *Intake) Receive(ctx context.Context, k crmsync.SessionKey, meta FileMeta, r io.Reader, size int64) (FileRecord, error) {
	name, err := in.Check(k, meta)
	if err != nil {
		return FileRecord{}, err
	}
	if size > in.max() {
		return FileRecord{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, in.max())
	}
	lr := &limitReader{r: r, left: in.max()}
	obj, err := in.Spool.Put(ctx, k.String()+"/"+name, lr, storage.PutOptions{Size: size})
	if lr.over {
		return FileRecord{}, fmt.Errorf("%w: at most %d bytes", ErrTooLarge, in.max())
	}
	if errors.Is(err, storage.ErrExist) {
		return FileRecord{}, crmsync.Errorf(crmsync.ECONFLICT, "kind", "%s already has a different %s", k, name)
	}
	if err != nil {
		return FileRecord{}, fmt.Errorf("jobs: spool %s: %w", name, err)
	}
	rec := FileRecord{Kind: meta.Kind, Format: meta.Format, MediaID: meta.MediaID, Spool: obj.Name,
		Size: obj.Size, SHA256: obj.SHA256, ReceivedAt: time.Now().UTC()}
	if err := in.Store.AddFile(ctx, k, rec); err != nil {
		return FileRecord{}, err
	}
	return rec, nil
}

type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more than allowed proves the body is too large.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
			return 0, ErrTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// Fetch queues a file given by URL for a worker to fetch.
func (in *Intake) Fetch(ctx context.Context, k crmsync.SessionKey, meta FileMeta, rawURL string) (string, error) {
	name, err := in.Check(k, meta)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", crmsync.Errorf(crmsync.EINVALID, "url", "want an absolute http or https URL")
	}
	b, _ := json.Marshal(FetchPayload{Session: k.String(), Meta: meta, URL: rawURL})
	id := "fetch:" + k.String() + ":" + name
	_, err = in.Enqueuer.client.EnqueueContext(ctx, asynq.NewTask(TypeFetch, b, asynq.TaskID(id)),
		asynq.Queue(in.Enqueuer.queue), asynq.MaxRetry(20), asynq.Timeout(30*time.Minute), asynq.Retention(in.Enqueuer.retention))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return "", fmt.Errorf("jobs: enqueue fetch: %w", err)
	}
	return name, nil
}

// ProcessTask fetches one file into the spool.
func (in *Intake) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl FetchPayload
	k, err := decodeTask(t, &pl, &pl.Session)
	if err != nil {
		return err
	}
	hc := in.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pl.URL, nil)
	if err != nil {
		return fmt.Errorf("jobs: fetch: %v: %w", err, asynq.SkipRetry)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("jobs: fetch %s: %w", pl.Meta.Kind, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("jobs: fetch %s: status %d", pl.Meta.Kind, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("jobs: fetch %s: status %d: %w", pl.Meta.Kind, resp.StatusCode, asynq.SkipRetry)
	}
	_, err = in.Receive(ctx, k, pl.Meta, resp.Body, resp.ContentLength)
	if errors.Is(err, ErrTooLarge) || crmsync.ErrorCode(err) == crmsync.ECONFLICT || crmsync.ErrorCode(err) == crmsync.EINVALID {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	return err
}

package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/connectors/mail"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/templating"
)

// TypeCloseout closes a finished session out: files to storage and the
// CRM, the metadata file, the outcome email.
const TypeCloseout = "session:closeout"

// CloseoutPayload names the session.
type CloseoutPayload struct {
	Session string `json:"session"`
}

// NewCloseoutTask makes the one close-out task of a session.
func NewCloseoutTask(k crmsync.SessionKey) *asynq.Task {
	b, _ := json.Marshal(CloseoutPayload{Session: k.String()})
	return asynq.NewTask(TypeCloseout, b, asynq.TaskID("closeout:"+k.String()))
}

// Mailer sends the outcome email.
type Mailer interface {
	Send(ctx context.Context, o mail.Outcome) error
}

// Closer runs close-out tasks. Every step is recorded when done, so a
// retried task picks up where the last attempt stopped; every write is
// idempotent (storage refuses to overwrite and accepts the same bytes
// again), so a task run twice does no harm.
type Closer struct {
	Store *Store
	// Spool holds the files received for sessions.
	Spool storage.Target
	// Storage is the external storage; nil when off.
	Storage storage.Target
	// Stored lists the kinds of file that go to Storage.
	Stored map[storage.FileKind]bool
	// CRM receives the files its upload endpoint lists when AlsoCRM is set.
	CRM     *crm.Client
	AlsoCRM bool
	// Mail sends the outcome email; nil when off.
	Mail       Mailer
	MailGlobal mail.Settings
	MailQueues map[string]mail.Settings
	Policy     Policy
	Logger     *slog.Logger
	Now        func() time.Time
}

func (c *Closer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Closeout fields of the session hash.
const (
	fieldEmailSending = "email:sending"
	fieldEmailSent    = "email:sent"
	fieldCloseoutDone = "closeout:done"
)

// ProcessTask implements asynq.Handler.
func (c *Closer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	outcome := "done"
	defer observeJob(t.Type(), time.Now(), &outcome)
	var pl CloseoutPayload
	key, err := decodeTask(t, &pl, &pl.Session)
	if err != nil {
		outcome = "archived"
		return err
	}
	first := c.firstAttempt(ctx, key)
	err = c.closeout(ctx, key)
	retried, _ := asynq.GetRetryCount(ctx)
	entry := Entry{At: c.now().UTC(), Kind: "job", Event: "closeout", Attempt: retried + 1, Outcome: "done"}
	var ret error
	if err != nil {
		d, giveUp := c.decide(err, retried, first)
		if giveUp != nil {
			outcome, entry.Outcome, entry.Error = "archived", "archived", giveUp.Error()
			ret = fmt.Errorf("%v: %w", giveUp, asynq.SkipRetry)
			c.logger().Warn("close-out archived", "session", key.String(), "reason", entry.Error)
		} else {
			outcome, entry.Outcome, entry.Error = "retry", "retry in "+d.String(), err.Error()
			ret = &retryError{err: err, delay: d}
		}
	}
	if werr := c.Store.appendTimeline(context.WithoutCancel(ctx), key, entry); werr != nil {
		return errors.Join(ret, werr)
	}
	return ret
}

func (c *Closer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Closer) firstAttempt(ctx context.Context, k crmsync.SessionKey) time.Time {
	key := c.Store.sessionKey(k)
	now := c.now()
	c.Store.rdb.HSetNX(ctx, key, attemptPrefix+"closeout", now.UnixMilli())
	v, err := c.Store.rdb.HGet(ctx, key, attemptPrefix+"closeout").Result()
	if err != nil {
		return now
	}
	return msTime(v)
}

// decide applies the retry policy to a close-out failure: storage and
// mail failures that may clear are retried like the CRM's.
func (c *Closer) decide(err error, n int, first time.Time) (time.Duration, error) {
	if permanentStorage(err) || errors.Is(err, mail.ErrHeaderInjection) {
		return 0, fmt.Errorf("not retryable: %w", err)
	}
	var se storageError
	var me mailError
	if errors.As(err, &se) || (errors.As(err, &me) && mail.Retryable(me.err)) {
		d := c.Policy.Delay(n)
		if c.now().Add(d).After(first.Add(c.Policy.Window)) {
			return 0, fmt.Errorf("still failing %s after the first attempt: %w", c.Policy.Window, err)
		}
		return d, nil
	}
	if errors.As(err, &me) {
		return 0, fmt.Errorf("not retryable: %w", err)
	}
	return c.Policy.Decide(err, n, first, c.now())
}

// storageError marks a failure of the storage target or the spool.
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

type mailError struct{ err error }

func (e mailError) Error() string { return "outcome email: " + e.err.Error() }
func (e mailError) Unwrap() error { return e.err }

// permanentStorage is a storage failure that waiting will not fix: the
// config or the server's setup must change.
func permanentStorage(err error) bool {
	for _, e := range []error{storage.ErrExist, storage.ErrAuth, storage.ErrHostKey, storage.ErrPermission, storage.ErrNoRoot} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (c *Closer) closeout(ctx context.Context, k crmsync.SessionKey) error {
	h, err := c.Store.rdb.HGetAll(ctx, c.Store.sessionKey(k)).Result()
	if err != nil {
		return fmt.Errorf("jobs: read %s: %w", k, err)
	}
	if len(h) == 0 {
		return fmt.Errorf("jobs: no session %s: %w", k, asynq.SkipRetry)
	}
	if h[fieldCloseoutDone] != "" {
		return nil
	}
	view, err := c.Store.View(ctx, k)
	if err != nil {
		return err
	}
	v := view.Facts.values(k, c.phoneFormat())
	if view.CRM.AccountID != "" {
		v.Set(templating.AccountID, view.CRM.AccountID)
	}
	if view.CRM.RecordID != "" {
		v.Set(templating.RecordID, view.CRM.RecordID)
	}
	done := map[string]FileEntry{}
	for _, e := range exportedFrom(h) {
		done[e.Name] = e
	}

	// Received files, then the chat transcript.
	received, err := c.Store.Files(ctx, k)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(received))
	for n := range received {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		f := received[name]
		open := func() (io.ReadCloser, error) { return c.Spool.Open(ctx, f.Spool) }
		if err := c.deliver(ctx, k, &v, done, name, f.Kind, contentType(name), f.Size, open); err != nil {
			return err
		}
	}
	if k.Kind == crmsync.KindChat {
		lines, err := c.Store.Transcript(ctx, k)
		if err != nil {
			return err
		}
		if len(lines) > 0 {
			text := []byte(strings.Join(lines, "\n") + "\n")
			name, _ := storage.File{Kind: storage.ChatTranscripts, Session: k}.Name()
			open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(text)), nil }
			if err := c.deliver(ctx, k, &v, done, name, storage.ChatTranscripts, "text/plain; charset=utf-8", int64(len(text)), open); err != nil {
				return err
			}
		}
	}

	// The metadata file is rendered once and kept, so a retry sends the
	// very same bytes (storage accepts the same file again, never a
	// different one).
	meta := []byte(h[fieldMetadata])
	if len(meta) == 0 {
		var files []FileEntry
		for _, e := range done {
			files = append(files, e)
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		view.Files = files
		m := BuildMetadata(view, files, c.now())
		if meta, err = json.MarshalIndent(m, "", "  "); err != nil {
			return fmt.Errorf("jobs: metadata: %w", err)
		}
		if err := c.Store.rdb.HSetNX(ctx, c.Store.sessionKey(k), fieldMetadata, meta).Err(); err != nil {
			return fmt.Errorf("jobs: save metadata of %s: %w", k, err)
		}
		if stored, err := c.Store.rdb.HGet(ctx, c.Store.sessionKey(k), fieldMetadata).Bytes(); err == nil {
			meta = stored // another run got there first: use its bytes
		}
	}
	metaName, _ := storage.File{Kind: storage.SessionMetadata, Session: k}.Name()
	openMeta := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(meta)), nil }
	if err := c.deliver(ctx, k, &v, done, metaName, storage.SessionMetadata, "application/json", int64(len(meta)), openMeta); err != nil {
		return err
	}

	if err := c.email(ctx, k, view, meta); err != nil {
		return err
	}
	if err := c.Store.rdb.HSet(ctx, c.Store.sessionKey(k), fieldCloseoutDone, c.now().UTC().Format(time.RFC3339)).Err(); err != nil {
		return fmt.Errorf("jobs: note close-out of %s: %w", k, err)
	}
	// Everything is where it belongs: the spool copies can go. A failure
	// here only leaves a file behind, so it is logged, not retried.
	for _, name := range names {
		if err := c.Spool.Delete(ctx, received[name].Spool); err != nil && !errors.Is(err, storage.ErrNotExist) {
			c.logger().Warn("could not remove a spooled file", "session", k.String(), "file", name, "err", err)
		}
	}
	return nil
}

// deliver puts one file in storage and on the CRM record, as configured,
// recording each destination once it holds the file.
func (c *Closer) deliver(ctx context.Context, k crmsync.SessionKey, v *templating.Values, done map[string]FileEntry,
	name string, kind storage.FileKind, ctype string, size int64, open func() (io.ReadCloser, error)) error {
	e, ok := done[name]
	if !ok {
		e = FileEntry{Kind: string(kind), Name: name, Size: size}
	}
	changed := false
	if c.Storage != nil && c.Stored[kind] && e.StorageURL == "" {
		r, err := open()
		if err != nil {
			return storageError{fmt.Errorf("spool: open %s: %w", name, err)}
		}
		obj, err := c.Storage.Put(ctx, name, r, storage.PutOptions{Size: size, ContentType: ctype})
		_ = r.Close()
		if err != nil {
			return storageError{fmt.Errorf("storage: put %s: %w", name, err)}
		}
		e.StorageURL, e.Size, e.SHA256 = obj.URL, obj.Size, obj.SHA256
		changed = true
	}
	if c.AlsoCRM && c.CRM != nil && c.CRM.Uploads(string(kind)) && e.CRMURL == "" && v.Get(templating.RecordID, templating.Create) != "" {
		res, err := c.CRM.Upload(crm.WithIdempotencyKey(ctx, "crmsync:"+k.String()+":file:"+name), v,
			crm.File{Name: path.Base(name), ContentType: ctype, Kind: string(kind), Open: open, Size: size})
		if err != nil {
			return err
		}
		e.CRMURL = res.URL
		if e.CRMURL == "" {
			e.CRMURL = "crm:attachment:" + res.AttachmentID
		}
		changed = true
	}
	if !changed {
		return nil
	}
	done[name] = e
	b, _ := json.Marshal(e)
	if err := c.Store.rdb.HSet(ctx, c.Store.sessionKey(k), outPrefix+name, b).Err(); err != nil {
		return fmt.Errorf("jobs: save %s: %w", name, err)
	}
	return nil
}

// email sends the outcome once. The Message-ID is fixed per session and
// noted before the exchange; a crash between the server's acceptance and
// the note that it was sent means one resend with the same Message-ID.
func (c *Closer) email(ctx context.Context, k crmsync.SessionKey, view *View, meta []byte) error {
	if c.Mail == nil {
		return nil
	}
	f := view.Facts
	// Only sessions that were answered and ended are outcomes; one that
	// ended unanswered was abandoned.
	if f.StartedAt.IsZero() || f.EndedAt.IsZero() {
		return nil
	}
	var qs *mail.Settings
	if s, ok := c.MailQueues[f.QueueID]; ok && f.QueueID != "" {
		qs = &s
	}
	to, send := mail.Recipient(c.MailGlobal, qs)
	if !send {
		return nil
	}
	key := c.Store.sessionKey(k)
	if sent, _ := c.Store.rdb.HGet(ctx, key, fieldEmailSent).Result(); sent != "" {
		return nil
	}
	o := mail.Outcome{
		MessageID: "<" + k.String() + ".outcome@crmsync>",
		To:        to,
		Subject:   mail.Subject(k.String(), f.SessionType, firstNonEmpty(f.QueuePath, f.QueueName)),
		Metadata:  meta,
	}
	if k.Kind == crmsync.KindChat {
		if lines, err := c.Store.Transcript(ctx, k); err == nil && len(lines) > 0 {
			o.Transcript = []byte(strings.Join(lines, "\n") + "\n")
			o.TranscriptName = k.String() + ".txt"
		}
	}
	if err := c.Store.rdb.HSet(ctx, key, fieldEmailSending, o.MessageID).Err(); err != nil {
		return fmt.Errorf("jobs: note email of %s: %w", k, err)
	}
	if err := c.Mail.Send(ctx, o); err != nil {
		return mailError{err}
	}
	if err := c.Store.rdb.HSet(ctx, key, fieldEmailSent, c.now().UTC().Format(time.RFC3339)).Err(); err != nil {
		return fmt.Errorf("jobs: note email of %s sent: %w", k, err)
	}
	return nil
}

func (c *Closer) phoneFormat() templating.PhoneFormat {
	if c.CRM == nil {
		return ""
	}
	return c.CRM.PhoneFormat()
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".mp3":
		return "audio/mpeg"
	case ".wav":
		return "audio/wav"
	case ".jpg":
		return "image/jpeg"
	case ".mp4":
		return "video/mp4"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// appendTimeline adds entries to a session's timeline outside a job lock.
func (s *Store) appendTimeline(ctx context.Context, k crmsync.SessionKey, entries ...Entry) error {
	args := make([]any, 0, len(entries))
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		args = append(args, b)
	}
	pipe := s.rdb.Pipeline()
	pipe.RPush(ctx, s.timelineKey(k), args...)
	pipe.LTrim(ctx, s.timelineKey(k), -int64(s.TimelineMax), -1)
	pipe.Expire(ctx, s.timelineKey(k), s.TTL)
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("jobs: timeline of %s: %w", k, err)
	}
	return nil
}

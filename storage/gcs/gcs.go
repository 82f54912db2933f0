// Package gcs stores session files in a Google Cloud Storage bucket, below
// an optional folder path, in the vendor's folder layout.
//
// Every upload is conditional on the object not existing yet, so nothing is
// ever overwritten, and checksummed, so the server refuses bytes that were
// damaged on the way. The service account (or OAuth user) needs
// storage.objects.create, get, list, update and delete on the bucket: the
// Storage Object User role. Object Creator alone is not enough, since a
// re-run must read what is already stored to compare it.
package gcs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"mime"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	gcs "cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	crmstorage "github.com/crmsync/crmsync/storage"
)

// metaSHA256 is the custom metadata key holding an object's SHA-256 (hex).
const metaSHA256 = "sha256"

// maxObjectName is Cloud Storage's limit on object names, in bytes.
const maxObjectName = 1024

// probeSize is how much of a file of unknown size is read ahead to find
// out whether it fits in one request.
const probeSize = 256 << 10

// smallAttempts is how many times a file held in memory is sent before a
// transient error is returned. Chunked uploads are retried by the client
// library itself; single-request ones are not.
const smallAttempts = 3

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tokenURL is where an OAuth client's refresh token is exchanged for
// access tokens; tests point it elsewhere.
var tokenURL = google.Endpoint.TokenURL

// Target stores files in one bucket below a folder path. It is safe for
// concurrent use.
type Target struct {
	client     *gcs.Client
	bucket     *gcs.BucketHandle
	bucketName string
	root       string // folder path without slashes; "" is the bucket's root
	chunk      int
	// memMax is the largest file of known size sent in one request from
	// memory; larger ones are streamed in chunks. Tests lower it.
	memMax     int64
	ownsClient bool
	closeOnce  sync.Once
	closeErr   error
	log        *slog.Logger

	// sentCRC, when set, replaces the CRC32C declared to the server, so
	// tests can show a mismatch is refused.
	sentCRC func(uint32) uint32
	// computedCRC, when set, replaces the CRC32C computed while streaming,
	// so tests can show a stored object that does not match is removed.
	computedCRC func(uint32) uint32
}

var _ crmstorage.Target = (*Target)(nil)

// New validates cfg and connects to the bucket. It does not reach the
// bucket: the first call that does reports a missing bucket or a refused
// credential.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Target, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gcs: config: %w", err)
	}
	opts, auth, err := clientOptions(ctx, &cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("gcs: config: %w", err)
	}
	client, err := gcs.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: client (%s credentials): %w: %w", auth, crmstorage.ErrAuth, err)
	}
	t := NewWithClient(client, cfg)
	t.ownsClient = true
	t.log = logger
	logger.Info("gcs: using bucket", "bucket", cfg.Bucket, "folder_path", t.root, "credentials", auth, "endpoint", cfg.Endpoint)
	return t, nil
}

// NewWithClient uses a client made elsewhere, as tests do with an
// emulator's. cfg's credentials and endpoint are ignored; the client stays
// the caller's to close.
func NewWithClient(client *gcs.Client, cfg Config) *Target {
	return &Target{
		client:     client,
		bucket:     client.Bucket(cfg.Bucket),
		bucketName: cfg.Bucket,
		root:       cfg.root(),
		chunk:      cfg.chunk(),
		memMax:     int64(cfg.chunk()),
		log:        slog.New(slog.DiscardHandler),
	}
}

// clientOptions turns the configured credentials and endpoint into client
// options, and names the kind of credentials for the log.
func clientOptions(ctx context.Context, cfg *Config, logger *slog.Logger) ([]option.ClientOption, string, error) {
	var opts []option.ClientOption
	var endpoint string
	if cfg.Endpoint != "" {
		u, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, "", err
		}
		endpoint = u.String()
		// Emulators and private endpoints serve the JSON API; the XML one
		// the library reads through by default is Google's alone.
		opts = append(opts, option.WithEndpoint(endpoint), gcs.WithJSONReads())
	}
	kind := cfg.credentialsKind()
	switch {
	case os.Getenv("STORAGE_EMULATOR_HOST") != "":
		// The client library then talks to the emulator without
		// credentials, and refuses any that are given.
		if endpoint == "" {
			opts = append(opts, gcs.WithJSONReads())
		}
		if kind != "application_default" {
			logger.Warn("gcs: STORAGE_EMULATOR_HOST is set: the configured credentials are not used", "credentials", kind)
		}
		return opts, "none (STORAGE_EMULATOR_HOST)", nil
	case strings.HasPrefix(endpoint, "http://"):
		return append(opts, option.WithoutAuthentication()), "none (http endpoint)", nil
	case !cfg.CredentialsJSON.IsZero():
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(cfg.CredentialsJSON.Reveal())))
	case cfg.CredentialsFile != "":
		key, err := readServiceAccountFile(cfg.CredentialsFile)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, key))
	case cfg.ClientID != "":
		oc := &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{AuthURL: google.Endpoint.AuthURL, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		}
		// The token source outlives New's context: it refreshes for as
		// long as the target is used.
		ts := oc.TokenSource(context.WithoutCancel(ctx), &oauth2.Token{RefreshToken: cfg.RefreshToken.Reveal()})
		opts = append(opts, option.WithTokenSource(ts))
	}
	return opts, kind, nil
}

// Put stores r under name unless the same file is already there; see
// storage.Target.
//
// A file that fits in one chunk (known size up to the chunk size, or
// unknown size up to 256 KiB) is read into a buffer of its own size and
// sent in one request with its CRC32C and SHA-256 declared up front: the
// server refuses damaged bytes before creating anything, and a transient
// failure is retried from the buffer. A larger file is streamed in
// resumable chunks: the client library sends the CRC32C of the whole with
// the last chunk and the server checks it before finalizing; Put then
// compares the stored CRC32C with its own and records the SHA-256, known
// only at the end, as metadata.
func (t *Target) Put(ctx context.Context, name string, r io.Reader, opts crmstorage.PutOptions) (crmstorage.Object, error) {
	obj, err := t.put(ctx, name, r, opts)
	if err != nil {
		return crmstorage.Object{}, fmt.Errorf("gcs: put %q: %w", name, err)
	}
	return obj, nil
}

func (t *Target) put(ctx context.Context, name string, r io.Reader, opts crmstorage.PutOptions) (crmstorage.Object, error) {
	if err := crmstorage.ValidName(name); err != nil {
		return crmstorage.Object{}, err
	}
	key := t.key(name)
	if len(key) > maxObjectName {
		return crmstorage.Object{}, fmt.Errorf("object name longer than %d bytes", maxObjectName)
	}
	if err := ctx.Err(); err != nil {
		return crmstorage.Object{}, err
	}
	ct := opts.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	size := opts.Size
	if size < 0 {
		size = -1
	}
	if size > t.memMax {
		return t.putStream(ctx, name, key, r, size, ct)
	}
	limit := size
	if size < 0 {
		limit = min(t.memMax, probeSize)
	}
	head, whole, err := readHead(r, size, limit)
	if err != nil {
		return crmstorage.Object{}, err
	}
	if whole {
		return t.putSmall(ctx, name, key, head, ct)
	}
	return t.putStream(ctx, name, key, io.MultiReader(bytes.NewReader(head), r), size, ct)
}

// readHead reads a file of known size whole, checking the size, or up to
// limit+1 bytes of one of unknown size. whole reports whether data is the
// entire file.
func readHead(r io.Reader, size, limit int64) (data []byte, whole bool, err error) {
	if size >= 0 {
		buf := make([]byte, size+1)
		n, err := io.ReadFull(r, buf)
		switch {
		case err == nil:
			return nil, false, fmt.Errorf("%w: more than the %d bytes announced", crmstorage.ErrSize, size)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if int64(n) != size {
				return nil, false, fmt.Errorf("%w: read %d bytes, %d announced", crmstorage.ErrSize, n, size)
			}
			return buf[:n], true, nil
		default:
			return nil, false, fmt.Errorf("read: %w", err)
		}
	}
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("read: %w", err)
	}
	return b.Bytes(), n <= limit, nil
}

// putSmall sends data in one request, declaring its CRC32C and SHA-256.
func (t *Target) putSmall(ctx context.Context, name, key string, data []byte, contentType string) (crmstorage.Object, error) {
	sum := sha256.Sum256(data)
	sumHex := hex.EncodeToString(sum[:])
	crc := crc32.Checksum(data, castagnoli)
	sent := crc
	if t.sentCRC != nil {
		sent = t.sentCRC(crc)
	}
	for attempt := 1; ; attempt++ {
		attrs, err := t.upload(ctx, key, bytes.NewReader(data), uploadParams{
			chunk:       0, // one request, no second buffer: data is the buffer
			contentType: contentType,
			sha256:      sumHex,
			crc32c:      &sent,
		})
		switch {
		case err == nil:
			if attrs.Size != int64(len(data)) || attrs.CRC32C != crc {
				return crmstorage.Object{}, t.discard(ctx, attrs, int64(len(data)), crc)
			}
			return t.object(name, attrs, sumHex), nil
		case isStatus(err, 412):
			return t.existing(ctx, name, key, int64(len(data)), sumHex, crc)
		}
		err = uploadError(err)
		if attempt == smallAttempts || !Retryable(err) {
			return crmstorage.Object{}, err
		}
		if err := sleep(ctx, time.Duration(attempt*attempt)*200*time.Millisecond); err != nil {
			return crmstorage.Object{}, err
		}
	}
}

// putStream sends r in resumable chunks, hashing it on the way, then
// checks what was stored and records the SHA-256 as metadata.
func (t *Target) putStream(ctx context.Context, name, key string, r io.Reader, size int64, contentType string) (crmstorage.Object, error) {
	hr := &hashReader{r: r, sha: sha256.New(), max: size}
	attrs, err := t.upload(ctx, key, hr, uploadParams{
		chunk:       t.chunk,
		contentType: contentType,
		complete:    hr.complete,
	})
	if isStatus(err, 412) {
		// Something is stored already: read the rest to compare with it.
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return crmstorage.Object{}, err
		}
		if err := hr.complete(); err != nil {
			return crmstorage.Object{}, err
		}
		return t.existing(ctx, name, key, hr.n, hex.EncodeToString(hr.sha.Sum(nil)), hr.crc)
	}
	if err != nil {
		return crmstorage.Object{}, uploadError(err)
	}
	crc := hr.crc
	if t.computedCRC != nil {
		crc = t.computedCRC(crc)
	}
	if attrs.Size != hr.n || attrs.CRC32C != crc {
		return crmstorage.Object{}, t.discard(ctx, attrs, hr.n, crc)
	}
	sumHex := hex.EncodeToString(hr.sha.Sum(nil))
	// The object is complete and verified by now; the SHA-256 only spares
	// a re-run's comparison from falling back to CRC32C, so failing to
	// record it does not fail the Put.
	_, err = t.bucket.Object(key).
		If(gcs.Conditions{GenerationMatch: attrs.Generation, MetagenerationMatch: attrs.Metageneration}).
		Update(ctx, gcs.ObjectAttrsToUpdate{Metadata: map[string]string{metaSHA256: sumHex}})
	if err != nil {
		t.log.Warn("gcs: cannot record the SHA-256 of a stored file", "name", name, "err", err)
	}
	return t.object(name, attrs, sumHex), nil
}

// uploadParams describe one conditional upload.
type uploadParams struct {
	chunk       int
	contentType string
	sha256      string  // recorded as metadata when known up front
	crc32c      *uint32 // declared to the server when known up front
	// complete, when set, is called once the source is exhausted and may
	// refuse it (a size that differs from the one announced).
	complete func() error
}

// upload writes src to key if no object is there yet. Should src fail, or
// complete refuse it, the upload is torn down with that error instead of
// being closed: closing would finalize whatever part was sent.
func (t *Target) upload(ctx context.Context, key string, src io.Reader, p uploadParams) (*gcs.ObjectAttrs, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := t.bucket.Object(key).If(gcs.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ChunkSize = p.chunk
	w.ContentType = p.contentType
	if p.sha256 != "" {
		w.Metadata = map[string]string{metaSHA256: p.sha256}
	}
	if p.crc32c != nil {
		w.CRC32C = *p.crc32c
		w.SendCRC32C = true
	}
	rr := &readErr{r: src}
	var err error
	if br, ok := src.(*bytes.Reader); ok {
		_, err = br.WriteTo(w) // one Write, no copy buffer
	} else {
		_, err = io.Copy(w, rr)
	}
	var abort error
	switch {
	case rr.err != nil:
		abort = rr.err
	case err != nil:
		// The upload failed on its side; Close reports why.
	case p.complete != nil:
		abort = p.complete()
	}
	if abort == nil && ctx.Err() != nil {
		abort = ctx.Err()
	}
	if abort != nil {
		cancel()
		// Cancelling alone is what the library suggests, but its watcher
		// may end the request body only after Close has ended it with EOF,
		// finalizing a truncated object. CloseWithError ends it with the
		// error first, so nothing is finalized.
		w.CloseWithError(abort)
		_ = w.Close()
		return nil, abort
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return w.Attrs(), nil
}

// existing decides a Put whose object already exists: the same file is a
// success, a different one ErrExist. The SHA-256 recorded as metadata is
// compared when there is one, the CRC32C otherwise.
func (t *Target) existing(ctx context.Context, name, key string, size int64, sumHex string, crc uint32) (crmstorage.Object, error) {
	attrs, err := t.bucket.Object(key).Attrs(ctx)
	if errors.Is(err, gcs.ErrObjectNotExist) {
		return crmstorage.Object{}, errVanished
	}
	if err != nil {
		return crmstorage.Object{}, translate(err)
	}
	same := attrs.Size == size
	if stored := attrs.Metadata[metaSHA256]; stored != "" {
		same = same && strings.EqualFold(stored, sumHex)
	} else {
		same = same && attrs.CRC32C == crc
	}
	if !same {
		return crmstorage.Object{}, crmstorage.ErrExist
	}
	return t.object(name, attrs, sumHex), nil
}

// discard removes an object that does not hold what was sent, unless it
// was replaced meanwhile, and says what differed.
func (t *Target) discard(ctx context.Context, attrs *gcs.ObjectAttrs, size int64, crc uint32) error {
	var err error
	if attrs.Size != size {
		err = fmt.Errorf("%w: %d bytes stored, %d sent: %w", crmstorage.ErrSize, attrs.Size, size, errCorrupt)
	} else {
		err = fmt.Errorf("stored CRC32C %08x, %08x sent: %w", attrs.CRC32C, crc, errCorrupt)
	}
	// Removed even when ctx is what ends the Put.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	derr := t.bucket.Object(attrs.Name).If(gcs.Conditions{GenerationMatch: attrs.Generation}).Delete(ctx)
	if derr != nil && !errors.Is(derr, gcs.ErrObjectNotExist) {
		return fmt.Errorf("%w; removing it failed: %w", err, derr)
	}
	return err
}

// Stat describes the file at name.
func (t *Target) Stat(ctx context.Context, name string) (crmstorage.Object, error) {
	if err := crmstorage.ValidName(name); err != nil {
		return crmstorage.Object{}, fmt.Errorf("gcs: stat %q: %w", name, err)
	}
	attrs, err := t.bucket.Object(t.key(name)).Attrs(ctx)
	if err != nil {
		return crmstorage.Object{}, fmt.Errorf("gcs: stat %q: %w", name, translate(err))
	}
	return t.object(name, attrs, attrs.Metadata[metaSHA256]), nil
}

// Open reads the file at name. The reader uses ctx until it is closed; the
// client library checks the CRC32C of a file read to its end.
func (t *Target) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := crmstorage.ValidName(name); err != nil {
		return nil, fmt.Errorf("gcs: open %q: %w", name, err)
	}
	r, err := t.bucket.Object(t.key(name)).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcs: open %q: %w", name, translate(err))
	}
	return r, nil
}

// List returns the files whose names start with prefix, sorted by name.
// Objects whose names storage.ValidName refuses are skipped: folder
// placeholders (names ending in "/", as the console makes them), names
// with a dot element and the like, which Stat could not name either.
func (t *Target) List(ctx context.Context, prefix string) ([]crmstorage.Object, error) {
	if err := crmstorage.ValidPrefix(prefix); err != nil {
		return nil, fmt.Errorf("gcs: list %q: %w", prefix, err)
	}
	root := ""
	if t.root != "" {
		root = t.root + "/"
	}
	q := &gcs.Query{Prefix: root + prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Metadata", "Created"}); err != nil {
		return nil, fmt.Errorf("gcs: list %q: %w", prefix, err)
	}
	var out []crmstorage.Object
	it := t.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: list %q: %w", prefix, translate(err))
		}
		name := strings.TrimPrefix(attrs.Name, root)
		if crmstorage.ValidName(name) != nil {
			continue
		}
		out = append(out, t.object(name, attrs, attrs.Metadata[metaSHA256]))
	}
	slices.SortFunc(out, func(a, b crmstorage.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete removes the file at name.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := crmstorage.ValidName(name); err != nil {
		return fmt.Errorf("gcs: delete %q: %w", name, err)
	}
	if err := t.bucket.Object(t.key(name)).Delete(ctx); err != nil {
		return fmt.Errorf("gcs: delete %q: %w", name, translate(err))
	}
	return nil
}

// Close closes the client when New made it.
func (t *Target) Close() error {
	if !t.ownsClient {
		return nil
	}
	t.closeOnce.Do(func() { t.closeErr = t.client.Close() })
	return t.closeErr
}

// key is the object name of a file name.
func (t *Target) key(name string) string {
	if t.root == "" {
		return name
	}
	return t.root + "/" + name
}

func (t *Target) object(name string, attrs *gcs.ObjectAttrs, sumHex string) crmstorage.Object {
	return crmstorage.Object{
		Name:    name,
		Size:    attrs.Size,
		SHA256:  strings.ToLower(sumHex),
		ModTime: attrs.Created,
		URL:     "gs://" + t.bucketName + "/" + attrs.Name,
	}
}

// hashReader hashes and counts what is read through it, and refuses to
// read past an announced size.
type hashReader struct {
	r   io.Reader
	sha hash.Hash
	crc uint32
	n   int64
	max int64 // -1: unknown
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.sha.Write(p[:n])
		h.crc = crc32.Update(h.crc, castagnoli, p[:n])
		h.n += int64(n)
		if h.max >= 0 && h.n > h.max {
			return n, fmt.Errorf("%w: more than the %d bytes announced", crmstorage.ErrSize, h.max)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, crmstorage.ErrSize) {
		err = fmt.Errorf("read: %w", err)
	}
	return n, err
}

// complete checks, once the source is exhausted, that it had the announced
// size.
func (h *hashReader) complete() error {
	if h.max >= 0 && h.n != h.max {
		return fmt.Errorf("%w: read %d bytes, %d announced", crmstorage.ErrSize, h.n, h.max)
	}
	return nil
}

// readErr remembers the error its reader returned, to tell a failing
// source from a failing upload.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

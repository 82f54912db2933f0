// Package sftp stores session files on an SFTP server: the "SFTP server"
// choice of the portal's External Storage settings. One SSH connection is
// shared by all calls, opened on first use and reopened after it breaks;
// uploads go to a hidden temporary file and are published under their
// final name only once complete and verified, never over an existing
// file.
package sftp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/crmsync/crmsync/storage"
)

// ErrConnection wraps every error caused by a lost or failed connection
// (refused, reset, timed out, closed by the server). The call may be
// retried: the next one reconnects.
var ErrConnection = errors.New("sftp: connection lost")

var errClosed = errors.New("sftp: target is closed")

// Temporary files are named ".{name}.{random}.crmsync-tmp" beside their
// final name.
const tempSuffix = ".crmsync-tmp"

// maxOrphans bounds the temporary files remembered for removal after a
// connection broke before they could be removed.
const maxOrphans = 1000

// Target stores files below the configured folder of an SFTP server. It
// is safe for concurrent use.
type Target struct {
	cfg      Config // with defaults applied
	log      *slog.Logger
	auth     []ssh.AuthMethod
	hostKeys *hostKeyChecker
	urlHost  string

	ctx    context.Context // cancelled by Close, to stop a dial
	cancel context.CancelFunc
	wg     sync.WaitGroup // dial, watch, keepalive and watchdog goroutines

	mu      sync.Mutex
	cur     *conn
	dialing *dialCall
	closed  bool
	orphans []string // temporary files to remove on the next connection
}

var _ storage.Target = (*Target)(nil)

// New checks cfg and returns a Target. It does not connect: the first
// call does. A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Target, error) {
	auth, hostKeys, err := cfg.check()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	urlHost := cfg.Host
	if cfg.Port != DefaultPort {
		urlHost = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	} else if strings.Contains(cfg.Host, ":") {
		urlHost = "[" + cfg.Host + "]"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Target{
		cfg:      cfg,
		log:      logger,
		auth:     auth,
		hostKeys: hostKeys,
		urlHost:  urlHost,
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// Put uploads r to a temporary file beside name, checks its size, and
// links it under name (SSH_FXP_RENAME where the server has no hard
// links), which fails rather than replace a file that is already there.
func (t *Target) Put(ctx context.Context, name string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.Object{}, fmt.Errorf("sftp: put %q: %w", name, err)
	}
	// Nothing is read from r before the name is looked up, so that step
	// can be retried when the shared connection turns out to be broken.
	var (
		c  *conn
		fi os.FileInfo
	)
	err := t.retrying(ctx, "put", name, func(cc *conn) error {
		var err error
		c = cc
		fi, err = c.sftp.Stat(c.path(name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return t.fail(c, "put", name, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return storage.Object{}, err
	case fi != nil:
		return t.putExisting(ctx, c, name, c.path(name), fi, r, opts)
	}
	return t.upload(ctx, c, name, c.path(name), r, opts)
}

func (t *Target) upload(ctx context.Context, c *conn, name, full string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	tmp, err := tempPath(full)
	if err != nil {
		return storage.Object{}, fmt.Errorf("sftp: put %q: %w", name, err)
	}
	f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if errors.Is(err, os.ErrNotExist) {
		if err := t.mkdirs(c, path.Dir(full)); err != nil {
			return storage.Object{}, t.fail(c, "put", name, err)
		}
		f, err = c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	}
	if err != nil {
		return storage.Object{}, t.fail(c, "put", name, err)
	}

	// ReadFromWithConcurrency rather than ReadFrom: ReadFrom writes
	// sequentially unless the reader tells its length, and most readers
	// here (downloads, generators) do not.
	src := &sourceReader{ctx: ctx, r: r, h: sha256.New(), limit: opts.Size}
	_, werr := f.ReadFromWithConcurrency(src, t.cfg.Concurrency)
	cerr := f.Close()

	failed := func(err error) (storage.Object, error) {
		t.discard(c, tmp)
		return storage.Object{}, err
	}
	switch {
	case src.err != nil:
		return failed(fmt.Errorf("sftp: put %q: reading the source: %w", name, src.err))
	case ctx.Err() != nil:
		return failed(fmt.Errorf("sftp: put %q: %w", name, ctx.Err()))
	case werr != nil:
		return failed(t.fail(c, "put", name, werr))
	case cerr != nil:
		return failed(t.fail(c, "put", name, cerr))
	case opts.Size >= 0 && src.n != opts.Size:
		return failed(fmt.Errorf("sftp: put %q: the source had %d bytes, expected %d: %w", name, src.n, opts.Size, storage.ErrSize))
	}
	fi, err := c.sftp.Lstat(tmp)
	switch {
	case err != nil:
		return failed(t.fail(c, "put", name, err))
	case fi.Size() != src.n:
		return failed(fmt.Errorf("sftp: put %q: the server holds %d bytes of the %d sent: %w", name, fi.Size(), src.n, storage.ErrSize))
	case ctx.Err() != nil:
		return failed(fmt.Errorf("sftp: put %q: %w", name, ctx.Err()))
	}
	sum := hex.EncodeToString(src.h.Sum(nil))

	exists, linked, err := t.publish(c, tmp, full)
	if err != nil {
		return failed(t.fail(c, "put", name, err))
	}
	if exists || linked {
		t.discard(c, tmp)
	}
	if exists {
		// Another Put of the same name won the race.
		return t.compare(ctx, c, name, full, src.n, sum)
	}
	return storage.Object{Name: name, Size: src.n, SHA256: sum, ModTime: fi.ModTime(), URL: t.url(full)}, nil
}

// publish gives tmp its final name unless something is already there.
// It reports whether something was (tmp is then left as it was), and
// whether tmp was hard-linked (and so is still there to remove).
func (t *Target) publish(c *conn, tmp, full string) (exists, linked bool, err error) {
	if c.hardlink {
		err := c.sftp.Link(tmp, full)
		if err == nil {
			return false, true, nil
		}
		if isConnError(err) {
			return false, false, err
		}
		// The status for an existing file is the generic "failure", so
		// look.
		if _, serr := c.sftp.Lstat(full); serr == nil {
			return true, false, nil
		}
		// The filesystem may not do hard links: rename instead.
	}
	// SSH_FXP_RENAME refuses to replace an existing file in OpenSSH (and
	// in the protocol drafts), but some servers replace anyway, so look
	// first; a race with another writer remains only on those servers.
	if _, serr := c.sftp.Lstat(full); serr == nil {
		return true, false, nil
	}
	if err := c.sftp.Rename(tmp, full); err != nil {
		if isConnError(err) {
			return false, false, err
		}
		if _, serr := c.sftp.Lstat(full); serr == nil {
			return true, false, nil
		}
		return false, false, err
	}
	return false, false, nil
}

// putExisting handles a Put whose name is taken: a re-run with the same
// bytes returns the stored file, anything else is ErrExist. The source
// is hashed locally instead of uploaded.
func (t *Target) putExisting(ctx context.Context, c *conn, name, full string, fi os.FileInfo, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if !fi.Mode().IsRegular() {
		return storage.Object{}, fmt.Errorf("sftp: put %q: something other than a file has that name: %w", name, storage.ErrExist)
	}
	if opts.Size >= 0 && opts.Size != fi.Size() {
		return storage.Object{}, fmt.Errorf("sftp: put %q: %d bytes stored, %d offered: %w", name, fi.Size(), opts.Size, storage.ErrExist)
	}
	src := &sourceReader{ctx: ctx, r: r, h: sha256.New(), limit: -1}
	// One byte past the stored size is enough to know they differ.
	_, err := io.Copy(io.Discard, io.LimitReader(src, fi.Size()+1))
	switch {
	case src.err != nil:
		return storage.Object{}, fmt.Errorf("sftp: put %q: reading the source: %w", name, src.err)
	case err != nil:
		return storage.Object{}, fmt.Errorf("sftp: put %q: %w", name, err)
	case opts.Size >= 0 && src.n != opts.Size:
		return storage.Object{}, fmt.Errorf("sftp: put %q: the source had %d bytes, expected %d: %w", name, src.n, opts.Size, storage.ErrSize)
	}
	return t.compare(ctx, c, name, full, src.n, hex.EncodeToString(src.h.Sum(nil)))
}

// compare returns the file stored at full if it has size bytes hashing
// to sum, and ErrExist otherwise.
func (t *Target) compare(ctx context.Context, c *conn, name, full string, size int64, sum string) (storage.Object, error) {
	fi, err := c.sftp.Stat(full)
	if err != nil {
		return storage.Object{}, t.fail(c, "put", name, err)
	}
	if fi.Size() != size {
		return storage.Object{}, fmt.Errorf("sftp: put %q: %d bytes stored, %d offered: %w", name, fi.Size(), size, storage.ErrExist)
	}
	f, err := c.sftp.Open(full)
	if err != nil {
		return storage.Object{}, t.fail(c, "put", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(&ctxWriter{ctx: ctx, w: h}); err != nil {
		if ctx.Err() != nil {
			return storage.Object{}, fmt.Errorf("sftp: put %q: %w", name, ctx.Err())
		}
		return storage.Object{}, t.fail(c, "put", name, err)
	}
	if stored := hex.EncodeToString(h.Sum(nil)); stored != sum {
		return storage.Object{}, fmt.Errorf("sftp: put %q: stored SHA-256 %s, offered %s: %w", name, stored, sum, storage.ErrExist)
	}
	obj := t.object(name, full, fi)
	obj.SHA256 = sum
	return obj, nil
}

// mkdirs makes dir and its missing parents below the root, never the root
// itself.
func (t *Target) mkdirs(c *conn, dir string) error {
	if dir == c.root || !strings.HasPrefix(dir, c.root) {
		if _, err := c.sftp.Stat(c.root); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("folder_path %q is gone: %w", t.cfg.FolderPath, storage.ErrNoRoot)
		}
		return nil
	}
	err := c.sftp.Mkdir(dir)
	if err == nil {
		return nil
	}
	fi, serr := c.sftp.Stat(dir)
	switch {
	case serr == nil && fi.IsDir():
		return nil // made meanwhile by another Put
	case serr == nil:
		return fmt.Errorf("mkdir %q: a file has that name: %w", dir, storage.ErrExist)
	case !errors.Is(serr, os.ErrNotExist):
		return err
	}
	if err := t.mkdirs(c, path.Dir(dir)); err != nil {
		return err
	}
	if err := c.sftp.Mkdir(dir); err != nil {
		if fi, serr := c.sftp.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
		return err
	}
	return nil
}

// tempPath names the temporary file for full: hidden (dot first), unique,
// recognisable by List, and short enough for any filesystem.
func tempPath(full string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir, base := path.Split(full)
	if len(base) > 200 {
		base = base[:200]
	}
	return dir + "." + base + "." + hex.EncodeToString(b[:]) + tempSuffix, nil
}

// discard removes a temporary file, or remembers it for the next
// connection when this one is gone.
func (t *Target) discard(c *conn, tmp string) {
	if c.alive() {
		err := c.sftp.Remove(tmp)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if !isConnError(err) {
			t.log.Warn("sftp: could not remove a temporary file", "path", tmp, "err", err)
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.orphans) < maxOrphans {
		t.orphans = append(t.orphans, tmp)
	}
}

// removeOrphans removes the temporary files left by uploads whose
// connection broke.
func (t *Target) removeOrphans(c *conn) {
	t.mu.Lock()
	orphans := t.orphans
	t.orphans = nil
	t.mu.Unlock()
	for i, tmp := range orphans {
		err := c.sftp.Remove(tmp)
		if isConnError(err) {
			t.mu.Lock()
			t.orphans = append(t.orphans, orphans[i:]...)
			t.mu.Unlock()
			return
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Warn("sftp: could not remove a temporary file", "path", tmp, "err", err)
		}
	}
}

// Stat describes the file at name. The SHA-256 is left empty: it would
// take reading the file.
func (t *Target) Stat(ctx context.Context, name string) (storage.Object, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.Object{}, fmt.Errorf("sftp: stat %q: %w", name, err)
	}
	var obj storage.Object
	err := t.retrying(ctx, "stat", name, func(c *conn) error {
		full := c.path(name)
		fi, err := c.sftp.Stat(full)
		if err != nil {
			return t.fail(c, "stat", name, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("sftp: stat %q: not a file: %w", name, storage.ErrNotExist)
		}
		obj = t.object(name, full, fi)
		return nil
	})
	return obj, err
}

// Open streams the file at name; reads of 32 KiB or more are split into
// concurrent requests, and WriteTo (used by io.Copy) reads ahead.
func (t *Target) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, fmt.Errorf("sftp: open %q: %w", name, err)
	}
	var rc io.ReadCloser
	err := t.retrying(ctx, "open", name, func(c *conn) error {
		f, err := c.sftp.Open(c.path(name))
		if err != nil {
			return t.fail(c, "open", name, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return t.fail(c, "open", name, err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("sftp: open %q: not a file: %w", name, storage.ErrNotExist)
		}
		rc = &reader{ctx: ctx, t: t, c: c, f: f, name: name}
		return nil
	})
	return rc, err
}

// retrying runs an operation that is safe to repeat, and repeats it once
// on a new connection if the shared one turns out to be broken, as after
// a server restart while it was idle.
func (t *Target) retrying(ctx context.Context, op, name string, f func(c *conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := t.conn(ctx)
		if err != nil {
			return fmt.Errorf("sftp: %s %q: %w", op, name, err)
		}
		err = f(c)
		if attempt > 0 || !errors.Is(err, ErrConnection) || ctx.Err() != nil {
			return err
		}
	}
}

// List walks the folders the prefix can reach and returns the files in
// them (temporary files excluded), sorted by name. SHA-256 is left empty.
func (t *Target) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return nil, fmt.Errorf("sftp: list %q: %w", prefix, err)
	}
	var objs []storage.Object
	err := t.retrying(ctx, "list", prefix, func(c *conn) error {
		var err error
		objs, err = t.list(ctx, c, prefix)
		return err
	})
	return objs, err
}

func (t *Target) list(ctx context.Context, c *conn, prefix string) ([]storage.Object, error) {
	start := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
	}
	var objs []storage.Object
	var walk func(rel string) error
	walk = func(rel string) error {
		infos, err := c.sftp.ReadDirContext(ctx, c.path(rel))
		if err != nil {
			if rel != start || isConnError(err) {
				return err
			}
			if rel == "" {
				if _, serr := c.sftp.Stat(c.root); errors.Is(serr, os.ErrNotExist) {
					return fmt.Errorf("folder_path %q is gone: %w", t.cfg.FolderPath, storage.ErrNoRoot)
				}
				return err
			}
			// Nothing stored there yet, or the prefix names a file.
			fi, serr := c.sftp.Stat(c.path(rel))
			if errors.Is(serr, os.ErrNotExist) || (serr == nil && !fi.IsDir()) || t.missing(c, c.path(rel)) {
				return nil
			}
			return err
		}
		for _, fi := range infos {
			name := fi.Name()
			if strings.HasPrefix(name, ".") {
				continue // temporary files, and nothing storage.ValidName lets in
			}
			if rel != "" {
				name = rel + "/" + name
			}
			switch {
			case fi.IsDir():
				if strings.HasPrefix(name+"/", prefix) || strings.HasPrefix(prefix, name+"/") {
					if err := walk(name); err != nil {
						return err
					}
				}
			case fi.Mode().IsRegular() && strings.HasPrefix(name, prefix):
				objs = append(objs, t.object(name, c.path(name), fi))
			}
		}
		return nil
	}
	if err := walk(start); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sftp: list %q: %w", prefix, ctx.Err())
		}
		return nil, t.fail(c, "list", prefix, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Name < objs[j].Name })
	return objs, nil
}

// Delete removes the file at name; folders are left alone.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return fmt.Errorf("sftp: delete %q: %w", name, err)
	}
	// Looking is safe to repeat on a new connection; removing is not (a
	// second try would report the file missing).
	var (
		c  *conn
		fi os.FileInfo
	)
	err := t.retrying(ctx, "delete", name, func(cc *conn) error {
		var err error
		c = cc
		if fi, err = c.sftp.Lstat(c.path(name)); err != nil {
			return t.fail(c, "delete", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("sftp: delete %q: not a file: %w", name, storage.ErrNotExist)
	}
	if err := c.sftp.Remove(c.path(name)); err != nil {
		return t.fail(c, "delete", name, err)
	}
	return nil
}

// Close closes the connection. Calls after Close fail.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	c := t.cur
	t.cur = nil
	t.mu.Unlock()
	t.cancel()
	if c != nil {
		c.close()
	}
	t.wg.Wait()
	return nil
}

// Retryable reports whether err is transient: a lost or failed
// connection, or a size mismatch (most often a source cut short). Bad
// credentials, host keys, permissions, missing folders, existing files
// and cancelled contexts are not.
func Retryable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errClosed):
		return false
	case errors.Is(err, ErrConnection), errors.Is(err, storage.ErrSize):
		return true
	case errors.Is(err, storage.ErrAuth), errors.Is(err, storage.ErrHostKey),
		errors.Is(err, storage.ErrPermission), errors.Is(err, storage.ErrNoRoot),
		errors.Is(err, storage.ErrExist), errors.Is(err, storage.ErrNotExist):
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	return isConnError(err)
}

// fail translates an error from an operation on c, and drops c if the
// error means the connection is broken.
func (t *Target) fail(c *conn, op, name string, err error) error {
	var se *sftp.StatusError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, storage.ErrNoRoot), errors.Is(err, storage.ErrExist):
		return fmt.Errorf("sftp: %s %q: %w", op, name, err)
	case isConnError(err) || !c.alive():
		t.drop(c, err)
		return fmt.Errorf("sftp: %s %q: %w (%w)", op, name, ErrConnection, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("sftp: %s %q: %w", op, name, storage.ErrNotExist)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("sftp: %s %q: %w", op, name, storage.ErrPermission)
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure && op != "put" && t.missing(c, c.path(name)):
		// Servers that report ENOTDIR (a file where a folder should be)
		// as a generic failure.
		return fmt.Errorf("sftp: %s %q: %w", op, name, storage.ErrNotExist)
	}
	return fmt.Errorf("sftp: %s %q: %w", op, name, err)
}

// missing reports whether full cannot exist because it or a folder above
// it (below the root) is missing or is a file.
func (t *Target) missing(c *conn, full string) bool {
	for dir := full; dir != c.root && strings.HasPrefix(dir, c.root); dir = path.Dir(dir) {
		fi, err := c.sftp.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return true
		case err == nil:
			return dir != full && !fi.IsDir()
		case isConnError(err):
			return false
		}
	}
	return false
}

func (t *Target) object(name, full string, fi os.FileInfo) storage.Object {
	return storage.Object{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), URL: t.url(full)}
}

func (t *Target) url(full string) string {
	u := url.URL{Scheme: "sftp", Host: t.urlHost, Path: full}
	return u.String()
}

// sourceReader hashes and counts what Put reads, stops at cancellation,
// and keeps the source's own error apart from the server's.
type sourceReader struct {
	ctx   context.Context
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64 // -1: none
	err   error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if s.limit >= 0 && s.n > s.limit {
		s.err = fmt.Errorf("more than the %d bytes expected: %w", s.limit, storage.ErrSize)
		return n, s.err
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// ctxWriter stops a copy at cancellation.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error // the writer's own error
}

func (w *ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// reader is an open file. Its errors are translated like the Target's.
type reader struct {
	ctx context.Context
	t   *Target
	c   *conn
	f   interface {
		io.ReadCloser
		io.WriterTo
	}
	name string
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("sftp: read %q: %w", r.name, err)
	}
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = r.t.fail(r.c, "read", r.name, err)
	}
	return n, err
}

// WriteTo lets io.Copy use pkg/sftp's concurrent reads.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	cw := &ctxWriter{ctx: r.ctx, w: w}
	n, err := r.f.WriteTo(cw)
	switch {
	case err == nil:
		return n, nil
	case cw.err != nil:
		return n, cw.err // the destination's failure, as io.Copy would return it
	case r.ctx.Err() != nil:
		return n, fmt.Errorf("sftp: read %q: %w", r.name, r.ctx.Err())
	}
	return n, r.t.fail(r.c, "read", r.name, err)
}

func (r *reader) Close() error {
	if err := r.f.Close(); err != nil && r.c.alive() {
		return r.t.fail(r.c, "close", r.name, err)
	}
	return nil
}

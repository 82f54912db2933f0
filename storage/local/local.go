// Package local is the storage backend for a folder on the local disk (or
// a network file system mounted there).
//
// A file is written under a temporary dot-name in its folder, hashed while
// written, synced, checked, then hard-linked into place: a link never
// replaces an existing file, so two writers of one name cannot overwrite
// each other, and a crash leaves at most a temporary file that List does
// not show. Every operation goes through an os.Root opened on the folder,
// so no name and no symbolic link can reach outside it.
package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/crmsync/crmsync/storage"
)

// Config is the local target's part of the config file.
type Config struct {
	// Path is the folder files are stored below; required. A relative path is
	// taken from the working directory; a missing folder is created (0750).
	Path string `yaml:"path"`
}

// Target stores files below a folder. It is safe for concurrent use.
type Target struct {
	root string // absolute, cleaned
}

var _ storage.Target = (*Target)(nil)

const (
	fileMode = 0o640
	dirMode  = 0o750
	// tempPrefix starts every temporary file; storage.ValidName refuses
	// names starting with a dot, so it can never clash with a real one.
	tempPrefix = ".crmsync-"
	bufSize    = 256 << 10
)

// New returns a target storing below cfg.Path, creating the folder if
// needed.
func New(cfg Config) (*Target, error) {
	if cfg.Path == "" {
		return nil, errors.New("local: path is required")
	}
	root, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("local: path %q: %w", cfg.Path, err)
	}
	err = os.MkdirAll(root, dirMode)
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("local: %s is not a folder: %w", root, storage.ErrNoRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("local: create %s: %w", root, translate(err))
	}
	return &Target{root: root}, nil
}

// Put stores r under name: see storage.Target.
func (t *Target) Put(ctx context.Context, name string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.Object{}, err
	}
	if opts.Size < -1 {
		return storage.Object{}, fmt.Errorf("local: put %q: size %d: want -1 or more", name, opts.Size)
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, fmt.Errorf("local: put %q: %w", name, err)
	}
	root, err := t.open()
	if err != nil {
		return storage.Object{}, fmt.Errorf("local: put %q: %w", name, err)
	}
	defer root.Close()

	dir := path.Dir(name)
	newDir := false
	if dir != "." {
		if _, err := root.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			newDir = true
		}
		err := root.MkdirAll(dir, dirMode)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
			// A file holds a folder's name: a conflict that no retry fixes.
			return storage.Object{}, fmt.Errorf("local: put %q: a file is stored where its folder should be: %w (%w)", name, storage.ErrExist, err)
		}
		if err != nil {
			return storage.Object{}, t.fail("put", name, err)
		}
	}

	tmp := path.Join(dir, tempPrefix+rand.Text()+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return storage.Object{}, t.fail("put", name, err)
	}
	obj, err := t.write(ctx, f, name, r, opts.Size)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = t.fail("put", name, cerr)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return storage.Object{}, err
	}

	// Link, unlike rename, fails if name exists, so nothing is replaced.
	lerr := root.Link(tmp, name)
	_ = root.Remove(tmp)
	if errors.Is(lerr, fs.ErrExist) {
		return t.existing(ctx, root, name, obj)
	}
	if lerr != nil {
		return storage.Object{}, t.fail("put", name, lerr)
	}
	// The file is in place; a failed sync below only risks losing it in a
	// power cut, and a re-run of Put then finds it or writes it again.
	syncs := []string{dir}
	if newDir {
		for d := dir; d != "."; {
			d = path.Dir(d)
			syncs = append(syncs, d)
		}
	}
	for _, d := range syncs {
		if err := syncDir(root, d); err != nil {
			return storage.Object{}, t.fail("put", name, err)
		}
	}
	return obj, nil
}

// write copies r into f while hashing, then syncs and checks the size.
func (t *Target) write(ctx context.Context, f *os.File, name string, r io.Reader, want int64) (storage.Object, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return storage.Object{}, fmt.Errorf("local: put %q: %w", name, err)
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			n += int64(m)
			if want >= 0 && n > want {
				return storage.Object{}, fmt.Errorf("local: put %q: more than the %d bytes announced: %w", name, want, storage.ErrSize)
			}
			h.Write(buf[:m])
			if _, err := f.Write(buf[:m]); err != nil {
				return storage.Object{}, t.fail("put", name, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return storage.Object{}, fmt.Errorf("local: put %q: read: %w", name, rerr)
		}
	}
	if want >= 0 && n != want {
		return storage.Object{}, fmt.Errorf("local: put %q: got %d bytes, %d announced: %w", name, n, want, storage.ErrSize)
	}
	if err := f.Sync(); err != nil {
		return storage.Object{}, t.fail("put", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return storage.Object{}, t.fail("put", name, err)
	}
	if fi.Size() != n {
		return storage.Object{}, fmt.Errorf("local: put %q: wrote %d bytes, file holds %d: %w", name, n, fi.Size(), storage.ErrSize)
	}
	obj := t.object(name, fi)
	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	return obj, nil
}

// existing decides a Put that found name taken: the same bytes are a
// re-run, anything else is a conflict.
func (t *Target) existing(ctx context.Context, root *os.Root, name string, want storage.Object) (storage.Object, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return storage.Object{}, t.fail("put", name, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != want.Size {
		return storage.Object{}, fmt.Errorf("local: put %q: %w", name, storage.ErrExist)
	}
	obj, err := t.hash(ctx, root, name)
	if err != nil {
		return storage.Object{}, err
	}
	if obj.Size != want.Size || obj.SHA256 != want.SHA256 {
		return storage.Object{}, fmt.Errorf("local: put %q: %w", name, storage.ErrExist)
	}
	return obj, nil
}

// Stat describes the file at name. It reads the file to give its SHA-256.
func (t *Target) Stat(ctx context.Context, name string) (storage.Object, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, fmt.Errorf("local: stat %q: %w", name, err)
	}
	root, err := t.open()
	if err != nil {
		return storage.Object{}, fmt.Errorf("local: stat %q: %w", name, err)
	}
	defer root.Close()
	return t.hash(ctx, root, name)
}

// hash stats and reads the file at name.
func (t *Target) hash(ctx context.Context, root *os.Root, name string) (storage.Object, error) {
	f, fi, err := t.openFile(root, name)
	if err != nil {
		return storage.Object{}, t.fail("stat", name, err)
	}
	defer f.Close()
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(h, &ctxReader{ctx: ctx, r: f}, *bp)
	if err != nil {
		return storage.Object{}, t.fail("stat", name, err)
	}
	obj := t.object(name, fi)
	obj.Size = n
	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	return obj, nil
}

// Open reads the file at name. Reads fail once ctx is done.
func (t *Target) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: open %q: %w", name, err)
	}
	root, err := t.open()
	if err != nil {
		return nil, fmt.Errorf("local: open %q: %w", name, err)
	}
	defer root.Close()
	f, _, err := t.openFile(root, name)
	if err != nil {
		return nil, t.fail("open", name, err)
	}
	return &ctxReader{ctx: ctx, r: f, c: f}, nil
}

// openFile opens a regular file; anything else is not a stored file.
func (t *Target) openFile(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fs.ErrNotExist
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, fi, nil
}

// List returns the files below the root whose names start with prefix,
// sorted by name, without their SHA-256 (that would read every file).
func (t *Target) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: list %q: %w", prefix, err)
	}
	root, err := t.open()
	if err != nil {
		return nil, fmt.Errorf("local: list %q: %w", prefix, err)
	}
	defer root.Close()

	// Walk only the prefix's folder; a partial last element is filtered.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var objs []storage.Object
	err = fs.WalkDir(root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll // no such folder: nothing to list
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		objs = append(objs, t.object(p, fi))
		return nil
	})
	if err != nil {
		return nil, t.fail("list", prefix, err)
	}
	// WalkDir's order is per folder: "a/b" comes before "a-c" but sorts after.
	slices.SortFunc(objs, func(a, b storage.Object) int { return strings.Compare(a.Name, b.Name) })
	return objs, nil
}

// Delete removes the file at name. Its folder stays.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: delete %q: %w", name, err)
	}
	root, err := t.open()
	if err != nil {
		return fmt.Errorf("local: delete %q: %w", name, err)
	}
	defer root.Close()
	fi, err := root.Lstat(name)
	if err != nil {
		return t.fail("delete", name, err)
	}
	if !fi.Mode().IsRegular() {
		return t.fail("delete", name, fs.ErrNotExist)
	}
	if err := root.Remove(name); err != nil {
		return t.fail("delete", name, err)
	}
	if err := syncDir(root, path.Dir(name)); err != nil {
		return t.fail("delete", name, err)
	}
	return nil
}

// Close does nothing: every operation opens and closes what it uses.
func (t *Target) Close() error { return nil }

// open opens the root for one operation, so a folder removed or unmounted
// since New is reported instead of being written through a stale handle.
func (t *Target) open() (*os.Root, error) {
	root, err := os.OpenRoot(t.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%s: %w", t.root, storage.ErrNoRoot)
		}
		return nil, translate(err)
	}
	return root, nil
}

// fail wraps an error from the file system in the storage sentinels.
func (t *Target) fail(op, name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("local: %s %q: %w", op, name, err)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		if _, serr := os.Stat(t.root); serr != nil {
			return fmt.Errorf("local: %s %q: %s: %w", op, name, t.root, storage.ErrNoRoot)
		}
		return fmt.Errorf("local: %s %q: %w", op, name, storage.ErrNotExist)
	}
	return fmt.Errorf("local: %s %q: %w", op, name, translate(err))
}

// translate adds ErrPermission to a permission error, keeping the file
// system's own text, which says where.
func translate(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %w", storage.ErrPermission, err)
	}
	return err
}

func (t *Target) object(name string, fi fs.FileInfo) storage.Object {
	p := filepath.Join(t.root, filepath.FromSlash(name))
	return storage.Object{
		Name:    name,
		Size:    fi.Size(),
		ModTime: fi.ModTime().UTC(),
		URL:     (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String(),
	}
}

// syncDir makes a folder's new or removed entries durable.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync a folder and say so with EINVAL.
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	c   io.Closer
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *ctxReader) Close() error { return r.c.Close() }

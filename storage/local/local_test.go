package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/local"
	"github.com/crmsync/crmsync/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Target {
		return newTarget(t, filepath.Join(t.TempDir(), "root"))
	})
}

func newTarget(t testing.TB, dir string) *local.Target {
	t.Helper()
	tg, err := local.New(local.Config{Path: dir})
	require.NoError(t, err)
	return tg
}

func TestNew(t *testing.T) {
	t.Run("creates the folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		newTarget(t, dir)
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.True(t, fi.IsDir())
		assert.Zero(t, fi.Mode().Perm()&^0o750, "mode %v: more than 0750", fi.Mode())
	})
	t.Run("relative path is made absolute", func(t *testing.T) {
		t.Chdir(t.TempDir())
		tg := newTarget(t, "store")
		obj, err := tg.Put(t.Context(), "x.txt", strings.NewReader("x"), storage.PutOptions{Size: 1})
		require.NoError(t, err)
		wd, err := os.Getwd()
		require.NoError(t, err)
		assert.Equal(t, "file://"+filepath.ToSlash(filepath.Join(wd, "store", "x.txt")), obj.URL)
	})
	t.Run("errors", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		tests := []struct {
			desc string
			path string
			want error
		}{
			{"empty path", "", nil},
			{"a file, not a folder", file, storage.ErrNoRoot},
		}
		for _, tt := range tests {
			t.Run(tt.desc, func(t *testing.T) {
				_, err := local.New(local.Config{Path: tt.path})
				require.Error(t, err)
				if tt.want != nil {
					assert.ErrorIs(t, err, tt.want)
				}
			})
		}
	})
}

func TestPutFile(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, dir)
	name := "ujet-metadata/call-1.json"
	obj, err := tg.Put(t.Context(), name, strings.NewReader("{}"), storage.PutOptions{Size: 2})
	require.NoError(t, err)

	p := filepath.Join(dir, "ujet-metadata", "call-1.json")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Zero(t, fi.Mode().Perm()&^0o640, "mode %v: more than 0640", fi.Mode())
	assert.Equal(t, "file://"+filepath.ToSlash(p), obj.URL)
	assert.Equal(t, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", obj.SHA256)
	fi, err = os.Stat(filepath.Dir(p))
	require.NoError(t, err)
	assert.Zero(t, fi.Mode().Perm()&^0o750, "mode %v: more than 0750", fi.Mode())

	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, entries, 1, "the temporary file must be gone")
}

func TestURLEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space#1")
	tg := newTarget(t, dir)
	obj, err := tg.Put(t.Context(), "a b.txt", strings.NewReader("x"), storage.PutOptions{Size: 1})
	require.NoError(t, err)
	assert.Contains(t, obj.URL, "with%20space%231/a%20b.txt")
	u, err := url.Parse(obj.URL)
	require.NoError(t, err)
	assert.Equal(t, "file", u.Scheme)
	assert.Equal(t, filepath.ToSlash(filepath.Join(dir, "a b.txt")), u.Path)
}

// A crash between creating the temporary file and linking it leaves a
// dot-file behind: it must not show, and must not pass for the real file.
func TestCrashLeftover(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, dir)
	ctx := t.Context()
	name := "ujet-media/call-1-photo-p1.jpg"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ujet-media"), 0o750))
	leftover := filepath.Join(dir, "ujet-media", ".crmsync-LEFTOVER.tmp")
	require.NoError(t, os.WriteFile(leftover, []byte("half a pho"), 0o640))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".hidden-dir"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".hidden-dir", "x.txt"), []byte("x"), 0o640))

	list, err := tg.List(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, list)
	list, err = tg.List(ctx, "ujet-media/")
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = tg.Stat(ctx, name)
	require.ErrorIs(t, err, storage.ErrNotExist)

	photo := []byte("a whole photo")
	obj, err := tg.Put(ctx, name, bytes.NewReader(photo), storage.PutOptions{Size: int64(len(photo))})
	require.NoError(t, err)
	assert.Equal(t, int64(len(photo)), obj.Size)
	list, err = tg.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, name, list[0].Name)
	got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	require.NoError(t, err)
	assert.Equal(t, photo, got)
	_, err = os.Stat(leftover)
	assert.NoError(t, err, "Put must not touch another writer's temporary file")
}

// List hides dot-files, so the suite cannot see a temporary file left by
// a failed Put; the disk can.
func TestFailedPutLeavesNoTempFile(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	tests := []struct {
		desc string
		put  func(ctx context.Context, tg *local.Target, name string) error
	}{
		{"reader fails", func(ctx context.Context, tg *local.Target, name string) error {
			r := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errors.New("reset")))
			_, err := tg.Put(ctx, name, r, storage.PutOptions{Size: -1})
			return err
		}},
		{"too many bytes", func(ctx context.Context, tg *local.Target, name string) error {
			_, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: 10})
			return err
		}},
		{"too few bytes", func(ctx context.Context, tg *local.Target, name string) error {
			_, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: 2 << 20})
			return err
		}},
		{"cancelled", func(ctx context.Context, tg *local.Target, name string) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: -1})
			return err
		}},
		{"different file there", func(ctx context.Context, tg *local.Target, name string) error {
			if _, err := tg.Put(ctx, name, strings.NewReader("first"), storage.PutOptions{Size: 5}); err != nil {
				return err
			}
			_, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: -1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			dir := t.TempDir()
			tg := newTarget(t, dir)
			name := "ujet-media/call-1-video-v1.mp4"
			require.Error(t, tt.put(t.Context(), tg, name))
			var files []string
			require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					files = append(files, p)
				}
				return err
			}))
			for _, f := range files {
				assert.Equal(t, filepath.Join(dir, "ujet-media", "call-1-video-v1.mp4"), f, "left on disk")
			}
		})
	}
}

// Object stores allow "a" and "a/b" side by side; a folder cannot.
func TestFileWhereFolderShouldBe(t *testing.T) {
	tg := newTarget(t, t.TempDir())
	ctx := t.Context()
	_, err := tg.Put(ctx, "a", strings.NewReader("x"), storage.PutOptions{Size: 1})
	require.NoError(t, err)
	for _, name := range []string{"a/b", "a/b/c"} {
		_, err := tg.Put(ctx, name, strings.NewReader("y"), storage.PutOptions{Size: 1})
		assert.ErrorIs(t, err, storage.ErrExist, name)
		assert.NotErrorIs(t, err, storage.ErrNotExist, name)
	}
}

func TestNothingOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	tg := newTarget(t, filepath.Join(parent, "root"))
	ctx := t.Context()
	for _, name := range []string{"../escape.txt", "/tmp/escape.txt", `..\escape.txt`} {
		_, err := tg.Put(ctx, name, strings.NewReader("x"), storage.PutOptions{Size: 1})
		require.ErrorIs(t, err, storage.ErrInvalidName)
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "root", entries[0].Name())
}

// A symbolic link inside the root may not lead out of it.
func TestSymlinkOut(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	tg := newTarget(t, dir)
	outside := filepath.Join(parent, "outside")
	require.NoError(t, os.Mkdir(outside, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "ujet-media")))
	ctx := t.Context()

	_, err := tg.Put(ctx, "ujet-media/x.jpg", strings.NewReader("x"), storage.PutOptions{Size: 1})
	require.Error(t, err)
	_, err = tg.Open(ctx, "ujet-media/secret.txt")
	require.Error(t, err)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestRootGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	tg := newTarget(t, dir)
	require.NoError(t, os.Remove(dir))
	ctx := t.Context()

	_, err := tg.Put(ctx, "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
	assert.ErrorIs(t, err, storage.ErrNoRoot, "Put")
	_, err = tg.Stat(ctx, "a.txt")
	assert.ErrorIs(t, err, storage.ErrNoRoot, "Stat")
	_, err = tg.Open(ctx, "a.txt")
	assert.ErrorIs(t, err, storage.ErrNoRoot, "Open")
	_, err = tg.List(ctx, "")
	assert.ErrorIs(t, err, storage.ErrNoRoot, "List")
	assert.ErrorIs(t, tg.Delete(ctx, "a.txt"), storage.ErrNoRoot, "Delete")
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "Put must not recreate a missing root")
}

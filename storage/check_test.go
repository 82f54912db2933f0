package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/local"
)

func newLocal(t *testing.T) (*local.Target, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	tg, err := local.New(local.Config{Path: dir})
	require.NoError(t, err)
	return tg, dir
}

func TestCheck(t *testing.T) {
	t.Run("works", func(t *testing.T) {
		tg, dir := newLocal(t)
		require.NoError(t, storage.Check(t.Context(), tg))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries, "the probe file must be deleted")
	})
	t.Run("missing root", func(t *testing.T) {
		tg, dir := newLocal(t)
		require.NoError(t, os.Remove(dir))
		err := storage.Check(t.Context(), tg)
		require.ErrorIs(t, err, storage.ErrNoRoot)
		assert.True(t, strings.HasPrefix(err.Error(), "could not write the probe file: the bucket or folder does not exist ("), err.Error())
	})
	t.Run("read-only folder", func(t *testing.T) {
		tg, dir := newLocal(t)
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o750) })
		// Root, or a file system that ignores modes, writes anyway.
		if f, err := os.CreateTemp(dir, "probe"); err == nil {
			f.Close()
			t.Skip("this process can write to a read-only folder (running as root?)")
		}
		err := storage.Check(t.Context(), tg)
		require.ErrorIs(t, err, storage.ErrPermission)
		assert.True(t, strings.HasPrefix(err.Error(), "could not write the probe file: permission denied ("), err.Error())
	})
	t.Run("expired context", func(t *testing.T) {
		tg, _ := newLocal(t)
		ctx, cancel := context.WithTimeout(t.Context(), 0)
		defer cancel()
		err := storage.Check(ctx, tg)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.True(t, strings.HasPrefix(err.Error(), "could not write the probe file: timed out ("), err.Error())
	})
}

// TestCheckSteps fails each step in turn through a target that wraps the
// local one.
func TestCheckSteps(t *testing.T) {
	tests := []struct {
		desc       string
		fault      faulty
		is         error
		msg        string
		leftBehind bool
	}{
		{
			desc:  "write: authentication",
			fault: faulty{putErr: storage.ErrAuth},
			is:    storage.ErrAuth,
			msg:   "could not write the probe file: authentication failed (",
		},
		{
			desc:  "write: host key",
			fault: faulty{putErr: storage.ErrHostKey},
			is:    storage.ErrHostKey,
			msg:   "could not write the probe file: the server's host key does not match the one configured (",
		},
		{
			desc:  "write: wrong digest returned",
			fault: faulty{putSHA: strings.Repeat("0", 64)},
			is:    storage.ErrSize,
			msg:   "could not write the probe file: the stored size differs from the bytes sent (",
		},
		{
			desc:  "stat: gone",
			fault: faulty{statErr: storage.ErrNotExist},
			is:    storage.ErrNotExist,
			msg:   "could not find the probe file after writing it: the file is not there (",
		},
		{
			desc:  "stat: wrong size",
			fault: faulty{statSize: 3},
			is:    storage.ErrSize,
			msg:   "could not find the probe file after writing it: the stored size differs from the bytes sent (",
		},
		{
			desc:  "read: permission",
			fault: faulty{openErr: storage.ErrPermission},
			is:    storage.ErrPermission,
			msg:   "could not read the probe file back: permission denied (",
		},
		{
			desc:  "read: other bytes",
			fault: faulty{openData: "something else\n"},
			msg:   "could not read the probe file back: read 15 bytes that differ from the",
		},
		{
			desc:  "read: fails midway",
			fault: faulty{readErr: errors.New("connection reset")},
			msg:   "could not read the probe file back: connection reset",
		},
		{
			desc:       "delete: permission",
			fault:      faulty{deleteErr: storage.ErrPermission},
			is:         storage.ErrPermission,
			msg:        "could not delete the probe file: permission denied (",
			leftBehind: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tg, dir := newLocal(t)
			f := tt.fault
			f.Target = tg
			err := storage.Check(t.Context(), &f)
			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.True(t, strings.HasPrefix(err.Error(), tt.msg), "%q does not start with %q", err.Error(), tt.msg)
			assert.Equal(t, tt.leftBehind, strings.Contains(err.Error(), "may be left behind"), err.Error())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			if !tt.leftBehind {
				assert.Empty(t, entries, "the probe file must be deleted after a failed step")
			}
		})
	}
}

// faulty wraps a target and fails the steps it is told to.
type faulty struct {
	storage.Target
	putErr, statErr, openErr, readErr, deleteErr error
	putSHA                                       string
	statSize                                     int64
	openData                                     string
}

func (f *faulty) Put(ctx context.Context, name string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if f.putErr != nil {
		return storage.Object{}, wrap("put", f.putErr)
	}
	obj, err := f.Target.Put(ctx, name, r, opts)
	if f.putSHA != "" {
		obj.SHA256 = f.putSHA
	}
	return obj, err
}

func (f *faulty) Stat(ctx context.Context, name string) (storage.Object, error) {
	if f.statErr != nil {
		return storage.Object{}, wrap("stat", f.statErr)
	}
	obj, err := f.Target.Stat(ctx, name)
	if f.statSize != 0 {
		obj.Size = f.statSize
	}
	return obj, err
}

func (f *faulty) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	switch {
	case f.openErr != nil:
		return nil, wrap("open", f.openErr)
	case f.openData != "":
		return io.NopCloser(strings.NewReader(f.openData)), nil
	case f.readErr != nil:
		return io.NopCloser(io.MultiReader(strings.NewReader("crm"), iotest.ErrReader(f.readErr))), nil
	}
	return f.Target.Open(ctx, name)
}

func (f *faulty) Delete(ctx context.Context, name string) error {
	if f.deleteErr != nil {
		return wrap("delete", f.deleteErr)
	}
	return f.Target.Delete(ctx, name)
}

func wrap(op string, err error) error { return fmt.Errorf("fake: %s: %w", op, err) }

// Package storagetest is the conformance suite every storage backend runs
// from its own tests, so that all of them keep the promises documented on
// storage.Target: atomic, verified, never-overwriting Put; sentinel errors;
// sorted List; names checked by storage.ValidName.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/storage"
)

// Run runs the suite against targets made by newTarget, which must return
// a fresh, empty target for each subtest (and register any cleanup of its
// own with t.Cleanup). Run closes each target when its subtest ends.
func Run(t *testing.T, newTarget func(t *testing.T) storage.Target) {
	tests := []struct {
		name string
		run  func(t *testing.T, tg storage.Target)
	}{
		{"PutThenRead", testPutThenRead},
		{"PutStream", testPutStream},
		{"PutWrongSize", testPutWrongSize},
		{"PutSameTwice", testPutSameTwice},
		{"PutDifferent", testPutDifferent},
		{"PutReaderFails", testPutReaderFails},
		{"PutCancelled", testPutCancelled},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"NestedFolders", testNestedFolders},
		{"Concurrent", testConcurrent},
		{"ConcurrentSameContent", testConcurrentSameContent},
		{"Layout", testLayout},
		{"Rejects", testRejects},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t)
			require.NotNil(t, tg)
			t.Cleanup(func() { assert.NoError(t, tg.Close()) })
			tt.run(t, tg)
		})
	}
}

func testPutThenRead(t *testing.T, tg storage.Target) {
	tests := []struct {
		name      string
		data      []byte
		knownSize bool
	}{
		{"ujet-metadata/call-103646.json", []byte(`{"call_id":103646}`), true},
		{"ujet-metadata/chat-73522.json", []byte(`{"chat_id":73522}`), false},
		{"top-level.bin", content("top", 70_001), true},
		{"folder with space/naïve file.txt", []byte("hello\n"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			size := int64(-1)
			if tt.knownSize {
				size = int64(len(tt.data))
			}
			obj, err := tg.Put(ctx, tt.name, bytes.NewReader(tt.data), storage.PutOptions{Size: size, ContentType: "application/octet-stream"})
			require.NoError(t, err)
			want := storage.Object{Name: tt.name, Size: int64(len(tt.data)), SHA256: sum(tt.data)}
			assert.Equal(t, want.Name, obj.Name)
			assert.Equal(t, want.Size, obj.Size)
			assert.Equal(t, want.SHA256, obj.SHA256, "Put must return the SHA-256 of what it stored")

			st, err := tg.Stat(ctx, tt.name)
			require.NoError(t, err)
			assertSame(t, obj, st)

			assert.Equal(t, tt.data, read(t, tg, tt.name))

			list, err := tg.List(ctx, tt.name)
			require.NoError(t, err)
			require.Len(t, list, 1)
			assertSame(t, obj, list[0])
		})
	}
}

func testPutStream(t *testing.T, tg storage.Target) {
	tests := []struct {
		name string
		size int
	}{
		{"ujet-media/empty.jpg", 0},
		{"ujet-media/one.jpg", 1},
		{"ujet-media/multi-megabyte.mp4", 5<<20 + 123},
	}
	for _, tt := range tests {
		t.Run(path.Base(tt.name), func(t *testing.T) {
			data := content(tt.name, tt.size)
			// Short reads, data returned with io.EOF, and no Seek, Len or
			// WriteTo: a backend must take a body as a network gives it.
			r := iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(data)))
			obj, err := tg.Put(t.Context(), tt.name, r, storage.PutOptions{Size: -1})
			require.NoError(t, err)
			assert.Equal(t, int64(tt.size), obj.Size)
			assert.Equal(t, sum(data), obj.SHA256)

			st, err := tg.Stat(t.Context(), tt.name)
			require.NoError(t, err)
			assertSame(t, obj, st)
			got := read(t, tg, tt.name)
			assert.Equal(t, len(data), len(got))
			assert.True(t, bytes.Equal(data, got), "content read back differs")
		})
	}
}

func testPutWrongSize(t *testing.T, tg storage.Target) {
	data := content("wrong-size", 1000)
	tests := []struct {
		desc string
		data []byte
		size int64
	}{
		{"announced one more", data, 1001},
		{"announced one less", data, 999},
		{"announced empty", data, 0},
		{"empty but announced one", nil, 1},
	}
	for i, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			name := fmt.Sprintf("ujet-media/wrong-size-%d.jpg", i)
			_, err := tg.Put(t.Context(), name, bytes.NewReader(tt.data), storage.PutOptions{Size: tt.size})
			require.ErrorIs(t, err, storage.ErrSize)
			requireNothing(t, tg, name)
		})
	}
}

func testPutSameTwice(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	name := "ujet-voice-recordings/call-1.mp3"
	data := content(name, 40_000)
	first, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
	require.NoError(t, err)
	second, err := tg.Put(ctx, name, struct{ io.Reader }{bytes.NewReader(data)}, storage.PutOptions{Size: -1})
	require.NoError(t, err, "storing the same content again is a re-run, not an error")
	assert.Equal(t, first.Name, second.Name)
	assert.Equal(t, first.Size, second.Size)
	assert.Equal(t, first.SHA256, second.SHA256)
	assert.Equal(t, first.URL, second.URL)
	if !first.ModTime.IsZero() && !second.ModTime.IsZero() {
		assert.True(t, first.ModTime.Equal(second.ModTime), "the second Put must return the file stored first")
	}
	assert.Equal(t, []string{name}, names(t, tg, ""))
	assert.Equal(t, data, read(t, tg, name))
}

func testPutDifferent(t *testing.T, tg storage.Target) {
	first := content("first", 3000)
	sameSize := bytes.Clone(first)
	sameSize[1500] ^= 0xff
	tests := []struct {
		desc string
		data []byte
	}{
		{"different size", content("second", 2000)},
		{"same size, one byte differs", sameSize},
		{"empty", nil},
	}
	for i, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx := t.Context()
			name := fmt.Sprintf("ujet-metadata/call-%d.json", i)
			obj, err := tg.Put(ctx, name, bytes.NewReader(first), storage.PutOptions{Size: int64(len(first))})
			require.NoError(t, err)
			_, err = tg.Put(ctx, name, bytes.NewReader(tt.data), storage.PutOptions{Size: int64(len(tt.data))})
			require.ErrorIs(t, err, storage.ErrExist)

			st, err := tg.Stat(ctx, name)
			require.NoError(t, err)
			assertSame(t, obj, st)
			assert.Equal(t, first, read(t, tg, name), "the first content must be untouched")
			assert.Equal(t, []string{name}, names(t, tg, name))
		})
	}
}

var errBroken = errors.New("storagetest: connection reset by peer")

func testPutReaderFails(t *testing.T, tg storage.Target) {
	data := content("fails", 3<<20)
	tests := []struct {
		desc  string
		after int
	}{
		{"at once", 0},
		{"after some bytes", 1000},
		{"after megabytes", 2 << 20},
	}
	for i, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			name := fmt.Sprintf("ujet-media/chat-%d-video-v1.mp4", i)
			r := struct{ io.Reader }{io.MultiReader(bytes.NewReader(data[:tt.after]), iotest.ErrReader(errBroken))}
			_, err := tg.Put(t.Context(), name, r, storage.PutOptions{Size: int64(len(data))})
			require.ErrorIs(t, err, errBroken, "Put must return the reader's error")
			requireNothing(t, tg, name)
		})
	}
}

func testPutCancelled(t *testing.T, tg storage.Target) {
	name := "ujet-media/call-1-video-v1.mp4"
	data := content("cancelled", 8<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(data), after: 1 << 20, cancel: cancel}
	_, err := tg.Put(ctx, name, r, storage.PutOptions{Size: int64(len(data))})
	require.ErrorIs(t, err, context.Canceled)
	requireNothing(t, tg, name)
}

func testMissing(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	_, err := tg.Put(ctx, "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
	require.NoError(t, err)
	for _, name := range []string{
		"ujet-metadata/call-2.json",     // folder exists
		"ujet-media/call-1-photo-1.jpg", // folder does not
		"top.txt",
		"ujet-metadata/call-1.json/x", // below a file
		"ujet-metadata",               // a folder is not a file
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tg.Stat(ctx, name)
			assert.ErrorIs(t, err, storage.ErrNotExist, "Stat")
			rc, err := tg.Open(ctx, name)
			if err == nil {
				rc.Close()
			}
			assert.ErrorIs(t, err, storage.ErrNotExist, "Open")
			assert.ErrorIs(t, tg.Delete(ctx, name), storage.ErrNotExist, "Delete")
		})
	}
	assert.Equal(t, []string{"ujet-metadata/call-1.json"}, names(t, tg, ""))
}

func testDelete(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	gone, kept := "ujet-chat-transcripts/chat-1.txt", "ujet-chat-transcripts/chat-2.txt"
	for _, name := range []string{gone, kept} {
		_, err := tg.Put(ctx, name, strings.NewReader(name), storage.PutOptions{Size: int64(len(name))})
		require.NoError(t, err)
	}
	require.NoError(t, tg.Delete(ctx, gone))

	_, err := tg.Stat(ctx, gone)
	assert.ErrorIs(t, err, storage.ErrNotExist)
	_, err = tg.Open(ctx, gone)
	assert.ErrorIs(t, err, storage.ErrNotExist)
	assert.ErrorIs(t, tg.Delete(ctx, gone), storage.ErrNotExist, "a second Delete")
	assert.Equal(t, []string{kept}, names(t, tg, ""))
	assert.Equal(t, []byte(kept), read(t, tg, kept))

	// The name is free again.
	_, err = tg.Put(ctx, gone, strings.NewReader("new"), storage.PutOptions{Size: 3})
	require.NoError(t, err)
	assert.Equal(t, []byte("new"), read(t, tg, gone))
}

func testList(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	// Put in an order that is not sorted; "ujet-media-old.txt" sorts
	// before "ujet-media/..." ('-' < '/'), which a folder-by-folder walk
	// gets wrong.
	all := []string{
		"ujet-metadata/call-2.json",
		"ujet-media/call-1-photo-b.jpg",
		"top.txt",
		"ujet-media-old.txt",
		"ujet-metadata/call-10.json",
		"ujet-media/call-1-photo-a.jpg",
		"a/b/c.txt",
		"ujet-metadata/chat-1.json",
	}
	sizes := map[string]int64{}
	for i, name := range all {
		data := content(name, 10*i)
		sizes[name] = int64(len(data))
		_, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
		require.NoError(t, err)
	}
	sorted := slices.Sorted(slices.Values(all))

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", sorted},
		{"ujet-metadata/", []string{"ujet-metadata/call-10.json", "ujet-metadata/call-2.json", "ujet-metadata/chat-1.json"}},
		{"ujet-metadata/call-1", []string{"ujet-metadata/call-10.json"}},
		{"ujet-media/", []string{"ujet-media/call-1-photo-a.jpg", "ujet-media/call-1-photo-b.jpg"}},
		{"ujet-media", []string{"ujet-media-old.txt", "ujet-media/call-1-photo-a.jpg", "ujet-media/call-1-photo-b.jpg"}},
		{"a/", []string{"a/b/c.txt"}},
		{"a/b", []string{"a/b/c.txt"}},
		{"top.txt", []string{"top.txt"}},
		{"nothing/", nil},
		{"ujet-voicemails/", nil},
		{"top.txt/", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			list, err := tg.List(ctx, tt.prefix)
			require.NoError(t, err)
			var got []string
			for _, o := range list {
				got = append(got, o.Name)
				assert.Equal(t, sizes[o.Name], o.Size, o.Name)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func testNestedFolders(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	name := "x/y/z/deep.txt"
	_, err := tg.Put(ctx, name, strings.NewReader("deep"), storage.PutOptions{Size: 4})
	require.NoError(t, err)
	st, err := tg.Stat(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, int64(4), st.Size)
	assert.Equal(t, []string{name}, names(t, tg, "x/"))
	assert.Equal(t, []byte("deep"), read(t, tg, name))
}

func testConcurrent(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	const n = 20
	folders := []string{storage.FolderMedia, storage.FolderMetadata, storage.FolderRecordings, "new/folder"}
	files := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("%s/file-%02d.bin", folders[i%len(folders)], i)
		files[name] = content(name, i*37_000+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for name, data := range files {
		wg.Go(func() {
			obj, err := tg.Put(ctx, name, struct{ io.Reader }{bytes.NewReader(data)}, storage.PutOptions{Size: -1})
			if err == nil && obj.SHA256 != sum(data) {
				err = fmt.Errorf("%s: SHA-256 %s, want %s", name, obj.SHA256, sum(data))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, slices.Sorted(maps.Keys(files)), names(t, tg, ""))
	for name, data := range files {
		assert.True(t, bytes.Equal(data, read(t, tg, name)), name)
	}
}

func testConcurrentSameContent(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	name := "ujet-metadata/chat-1.json"
	data := content(name, 200_000)
	const n = 8
	var wg sync.WaitGroup
	objs := make([]storage.Object, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			objs[i], errs[i] = tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, sum(data), objs[i].SHA256)
	}
	assert.Equal(t, []string{name}, names(t, tg, ""))
	assert.True(t, bytes.Equal(data, read(t, tg, name)))
}

func testLayout(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	call := crmsync.SessionKey{Kind: crmsync.KindCall, ID: "103646"}
	chat := crmsync.SessionKey{Kind: crmsync.KindChat, ID: "73522"}
	files := []storage.File{
		{Kind: storage.CallRecordings, Session: call, Format: "mp3"},
		{Kind: storage.CallRecordings, Session: call, Format: "wav"},
		{Kind: storage.Voicemails, Session: call, Format: "mp3"},
		{Kind: storage.Voicemails, Session: call, Format: "wav"},
		{Kind: storage.ChatTranscripts, Session: chat},
		{Kind: storage.Photos, Session: call, MediaID: "p1"},
		{Kind: storage.Photos, Session: chat, MediaID: "p_2"},
		{Kind: storage.Videos, Session: call, MediaID: "v1"},
		{Kind: storage.Videos, Session: chat, MediaID: "v-2"},
		{Kind: storage.SessionMetadata, Session: call},
		{Kind: storage.SessionMetadata, Session: chat},
	}
	covered := map[storage.FileKind]bool{}
	var all []string
	for _, f := range files {
		covered[f.Kind] = true
		name, err := f.Name()
		require.NoError(t, err)
		all = append(all, name)
		data := []byte("content of " + name)
		obj, err := tg.Put(ctx, name, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
		require.NoError(t, err, name)
		assert.Equal(t, name, obj.Name)
		st, err := tg.Stat(ctx, name)
		require.NoError(t, err, name)
		assertSame(t, obj, st)
	}
	for _, k := range storage.FileKinds {
		assert.True(t, covered[k], "no file of kind %s in the layout test", k)
	}
	assert.Equal(t, slices.Sorted(slices.Values(all)), names(t, tg, ""))
}

func testRejects(t *testing.T, tg storage.Target) {
	ctx := t.Context()
	for _, name := range []string{
		"",
		"/abs.txt",
		"/ujet-metadata/call-1.json",
		"..",
		"../escape.txt",
		"ujet-media/../../escape.txt",
		"ujet-media/..",
		".",
		"./a.txt",
		`a\b.txt`,
		`..\escape.txt`,
		"a\x00b.txt",
		"a\nb.txt",
		"a\rb.txt",
		"a\tb.txt",
		"a\x1bb.txt",
		"a\x7fb.txt",
		"a\u0085b.txt",
		"bad\xffutf8.txt",
		"a//b.txt",
		"ujet-media/",
		".hidden",
		"ujet-media/.crmsync-x.tmp",
		strings.Repeat("a", 256),
		strings.Repeat("a/", 512) + "a",
	} {
		t.Run(fmt.Sprintf("%.40q", name), func(t *testing.T) {
			_, err := tg.Put(ctx, name, strings.NewReader("x"), storage.PutOptions{Size: 1})
			assertRejected(t, err, "Put")
			_, err = tg.Stat(ctx, name)
			assertRejected(t, err, "Stat")
			rc, err := tg.Open(ctx, name)
			if err == nil {
				rc.Close()
			}
			assertRejected(t, err, "Open")
			assertRejected(t, tg.Delete(ctx, name), "Delete")
		})
	}
	for _, prefix := range []string{"/", "/abs", "..", "../", "a/../", `a\`, "a\x00", "a//", "./"} {
		t.Run(fmt.Sprintf("List %q", prefix), func(t *testing.T) {
			_, err := tg.List(ctx, prefix)
			assertRejected(t, err, "List")
		})
	}
	assert.Empty(t, names(t, tg, ""), "nothing may be written")
}

func assertRejected(t *testing.T, err error, op string) {
	t.Helper()
	assert.ErrorIs(t, err, storage.ErrInvalidName, op)
	assert.NotErrorIs(t, err, storage.ErrNotExist, op)
}

// assertSame checks what Stat or List says against what Put returned. A
// backend may leave SHA256 empty where it cannot tell without reading.
func assertSame(t *testing.T, want, got storage.Object) {
	t.Helper()
	assert.Equal(t, want.Name, got.Name, "name")
	assert.Equal(t, want.Size, got.Size, "size of %s", want.Name)
	if got.SHA256 != "" {
		assert.Equal(t, want.SHA256, got.SHA256, "SHA-256 of %s", want.Name)
	}
	if got.URL != "" && want.URL != "" {
		assert.Equal(t, want.URL, got.URL, "URL of %s", want.Name)
	}
}

// requireNothing checks that a failed Put left no trace: not the file,
// and no partial or temporary file in its folder.
func requireNothing(t *testing.T, tg storage.Target, name string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	_, err := tg.Stat(ctx, name)
	require.ErrorIs(t, err, storage.ErrNotExist, "a failed Put left %s", name)
	require.Empty(t, names(t, tg, folderOf(name)), "a failed Put left files in the folder")
}

func names(t *testing.T, tg storage.Target, prefix string) []string {
	t.Helper()
	list, err := tg.List(context.WithoutCancel(t.Context()), prefix)
	require.NoError(t, err)
	var out []string
	for _, o := range list {
		out = append(out, o.Name)
	}
	return out
}

func read(t *testing.T, tg storage.Target, name string) []byte {
	t.Helper()
	rc, err := tg.Open(t.Context(), name)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	if data == nil {
		data = []byte{}
	}
	return data
}

// folderOf is the List prefix of name's folder ("" at the root).
func folderOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i+1]
	}
	return ""
}

// content is n bytes that depend on seed, so no two test files share
// content by accident.
func content(seed string, n int) []byte {
	rng := rand.NewChaCha8(sha256.Sum256([]byte(seed)))
	b := make([]byte, n)
	_, _ = rng.Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// cancellingReader cancels its context after some bytes and goes on
// giving data, so only the backend's own check of the context stops Put.
type cancellingReader struct {
	r      io.Reader
	after  int
	n      int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += n
	if r.n >= r.after {
		r.cancel()
	}
	return n, err
}

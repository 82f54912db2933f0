package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gcs "cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/googleapi"

	"github.com/crmsync/crmsync"
	crmstorage "github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/storagetest"
)

const testBucket = "crmsync-export"

// newServer starts fake-gcs-server on a loopback port with one empty
// bucket.
func newServer(t testing.TB) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1"})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	srv.CreateBucket(testBucket)
	return srv
}

// newTarget is a target on srv through its in-process client.
func newTarget(t testing.TB, srv *fakestorage.Server, cfg Config) *Target {
	t.Helper()
	client := srv.Client()
	t.Cleanup(func() { client.Close() })
	if cfg.Bucket == "" {
		cfg.Bucket = testBucket
	}
	return NewWithClient(client, cfg)
}

// stored lists the object names in the bucket, whatever their folder.
func stored(t testing.TB, srv *fakestorage.Server) []string {
	t.Helper()
	objs, _, err := srv.ListObjectsWithOptions(testBucket, fakestorage.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	return names
}

func data(seed string, n int) []byte {
	b := make([]byte, n)
	h := sha256.Sum256([]byte(seed))
	for i := range b {
		if i%32 == 0 {
			h = sha256.Sum256(h[:])
		}
		b[i] = h[i%32]
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestConformance(t *testing.T) {
	t.Run("bucket root", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) crmstorage.Target {
			return newTarget(t, newServer(t), Config{})
		})
	})
	// A small chunk sends the suite's larger files in several resumable
	// chunks, and its files of unknown size through the streaming path.
	t.Run("folder path, 256 KiB chunks", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) crmstorage.Target {
			return newTarget(t, newServer(t), Config{FolderPath: "/exports/crm/", ChunkSize: 1})
		})
	})
	t.Run("through New", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) crmstorage.Target {
			srv := newServer(t)
			tg, err := New(t.Context(), Config{Bucket: testBucket, FolderPath: "crm", Endpoint: srv.URL()}, nil)
			require.NoError(t, err)
			return tg
		})
	})
}

func TestPutStoresWhereAndHow(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{FolderPath: "/exports/crm/"})
	body := []byte(`{"call_id":103646}`)

	obj, err := tg.Put(t.Context(), "ujet-metadata/call-103646.json", bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
	require.NoError(t, err)
	assert.Equal(t, "ujet-metadata/call-103646.json", obj.Name)
	assert.Equal(t, "gs://crmsync-export/exports/crm/ujet-metadata/call-103646.json", obj.URL)
	assert.Equal(t, sum(body), obj.SHA256)
	assert.False(t, obj.ModTime.IsZero())

	got, err := srv.GetObject(testBucket, "exports/crm/ujet-metadata/call-103646.json")
	require.NoError(t, err)
	assert.Equal(t, body, got.Content)
	assert.Equal(t, "application/json", got.ContentType, "content type from the extension")
	assert.Equal(t, sum(body), got.Metadata["sha256"])

	_, err = tg.Put(t.Context(), "ujet-voice-recordings/call-1.mp3", strings.NewReader("ID3"), crmstorage.PutOptions{Size: 3, ContentType: "audio/mpeg"})
	require.NoError(t, err)
	got, err = srv.GetObject(testBucket, "exports/crm/ujet-voice-recordings/call-1.mp3")
	require.NoError(t, err)
	assert.Equal(t, "audio/mpeg", got.ContentType)
}

// TestPutPrecondition covers both upload paths: one request from memory
// (known size up to the chunk) and resumable chunks.
func TestPutPrecondition(t *testing.T) {
	for _, tt := range []struct {
		desc string
		size int
		opts func(n int) crmstorage.PutOptions
	}{
		{"small, known size", 4 << 10, func(n int) crmstorage.PutOptions { return crmstorage.PutOptions{Size: int64(n)} }},
		{"small, unknown size", 4 << 10, func(int) crmstorage.PutOptions { return crmstorage.PutOptions{Size: -1} }},
		{"chunked, known size", 700 << 10, func(n int) crmstorage.PutOptions { return crmstorage.PutOptions{Size: int64(n)} }},
		{"chunked, unknown size", 700 << 10, func(int) crmstorage.PutOptions { return crmstorage.PutOptions{Size: -1} }},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			srv := newServer(t)
			tg := newTarget(t, srv, Config{ChunkSize: 256 << 10})
			name := "ujet-media/call-1-video-v1.mp4"
			first := data("first", tt.size)

			a, err := tg.Put(t.Context(), name, bytes.NewReader(first), tt.opts(len(first)))
			require.NoError(t, err)

			t.Run("same content again", func(t *testing.T) {
				b, err := tg.Put(t.Context(), name, bytes.NewReader(first), tt.opts(len(first)))
				require.NoError(t, err)
				assert.Equal(t, a, b)
				assert.Equal(t, []string{name}, stored(t, srv))
			})
			t.Run("different content", func(t *testing.T) {
				other := bytes.Clone(first)
				other[len(other)/2] ^= 1
				_, err := tg.Put(t.Context(), name, bytes.NewReader(other), tt.opts(len(other)))
				require.ErrorIs(t, err, crmstorage.ErrExist)
				assert.False(t, Retryable(err))
				got, err := srv.GetObject(testBucket, name)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(first, got.Content), "the first content must be intact")
				assert.Equal(t, []string{name}, stored(t, srv))
			})
		})
	}
}

// An object stored by someone else has no sha256 metadata: the CRC32C
// decides.
func TestPutExistingWithoutSHA256(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{})
	name := "ujet-chat-transcripts/chat-7.txt"
	body := []byte("agent: hello\n")
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket, Name: name}, Content: body})

	obj, err := tg.Put(t.Context(), name, bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
	require.NoError(t, err)
	assert.Equal(t, sum(body), obj.SHA256)

	st, err := tg.Stat(t.Context(), name)
	require.NoError(t, err)
	assert.Empty(t, st.SHA256, "unknown without reading")

	_, err = tg.Put(t.Context(), name, strings.NewReader("agent: hellO\n"), crmstorage.PutOptions{Size: int64(len(body))})
	require.ErrorIs(t, err, crmstorage.ErrExist)
}

func TestPutChunkedRecordsSHA256(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{ChunkSize: 256 << 10})
	body := data("recording", 1<<20+17)
	obj, err := tg.Put(t.Context(), "ujet-voice-recordings/call-9.wav", bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
	require.NoError(t, err)
	assert.Equal(t, sum(body), obj.SHA256)
	got, err := srv.GetObject(testBucket, "ujet-voice-recordings/call-9.wav")
	require.NoError(t, err)
	assert.Equal(t, sum(body), got.Metadata["sha256"], "recorded after the upload")
	assert.True(t, bytes.Equal(body, got.Content))
}

func TestMissingBucket(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{Bucket: "no-such-bucket"})
	ctx := t.Context()

	for _, size := range []int{10, 700 << 10} {
		_, err := tg.Put(ctx, "ujet-metadata/call-1.json", bytes.NewReader(data("x", size)), crmstorage.PutOptions{Size: int64(size)})
		assert.ErrorIs(t, err, crmstorage.ErrNoRoot, "Put of %d bytes", size)
		assert.False(t, Retryable(err))
	}
	_, err := tg.List(ctx, "")
	assert.ErrorIs(t, err, crmstorage.ErrNoRoot, "List")
	// The client library reports every 404 on an object as a missing
	// object, bucket or not.
	_, err = tg.Stat(ctx, "ujet-metadata/call-1.json")
	assert.ErrorIs(t, err, crmstorage.ErrNotExist, "Stat")
}

func TestListSkipsWhatStatCannotName(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{FolderPath: "crm"})
	for _, name := range []string{
		"crm/ujet-metadata/", // console folder placeholder
		"crm/ujet-metadata/call-1.json",
		"crm/ujet-metadata/.partial",
		"crm//double.json",
		"crm-other/call-2.json", // beside the folder, not in it
		"outside.json",
	} {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket, Name: name}, Content: []byte("{}")})
	}
	list, err := tg.List(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "ujet-metadata/call-1.json", list[0].Name)
	assert.Equal(t, "gs://crmsync-export/crm/ujet-metadata/call-1.json", list[0].URL)
}

// TestCorruptionDetected shows the server refusing an upload whose declared
// CRC32C does not match the bytes, which fake-gcs-server checks as Cloud
// Storage does, and a chunked upload whose stored CRC32C differs from the
// one computed while streaming being removed.
func TestCorruptionDetected(t *testing.T) {
	t.Run("declared CRC32C refused", func(t *testing.T) {
		srv := newServer(t)
		tg := newTarget(t, srv, Config{})
		tg.sentCRC = func(c uint32) uint32 { return c ^ 1 }
		body := []byte(`{"call_id":1}`)
		_, err := tg.Put(t.Context(), "ujet-metadata/call-1.json", bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
		require.ErrorIs(t, err, errCorrupt)
		assert.Contains(t, err.Error(), "CRC32C")
		assert.True(t, Retryable(err))
		assert.Empty(t, stored(t, srv), "nothing may be created")
	})
	t.Run("stored CRC32C differs after a chunked upload", func(t *testing.T) {
		srv := newServer(t)
		tg := newTarget(t, srv, Config{ChunkSize: 256 << 10})
		tg.computedCRC = func(c uint32) uint32 { return c ^ 1 }
		body := data("video", 600<<10)
		_, err := tg.Put(t.Context(), "ujet-media/call-1-video-v1.mp4", bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
		require.ErrorIs(t, err, errCorrupt)
		assert.True(t, Retryable(err))
		assert.Empty(t, stored(t, srv), "the mismatching object must be removed")
	})
}

// blockingReader gives n bytes, then cancels and blocks until the context
// is done, as a slow network body would: Put must not wait for more.
type blockingReader struct {
	r      io.Reader
	n      int
	read   int
	cancel context.CancelFunc
	ctx    context.Context
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.read >= b.n {
		b.cancel()
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	p = p[:min(len(p), b.n-b.read)]
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func TestCancelledMidwayLeavesNothing(t *testing.T) {
	for _, tt := range []struct {
		desc string
		size int64
	}{
		{"known size", 4 << 20},
		{"unknown size", -1},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			p, tg := newProxy(t, Config{ChunkSize: 256 << 10})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			body := data("large", 4<<20)
			r := &blockingReader{r: bytes.NewReader(body), n: 1<<20 + 100<<10, cancel: cancel, ctx: ctx}
			_, err := tg.Put(ctx, "ujet-media/chat-1-video-v1.mp4", r, crmstorage.PutOptions{Size: tt.size})
			require.ErrorIs(t, err, context.Canceled)
			assert.False(t, Retryable(err))
			p.mu.Lock()
			uploads := p.uploads
			p.mu.Unlock()
			assert.GreaterOrEqual(t, uploads, 4, "the session was started and whole chunks were sent before the cancel")
			assert.Empty(t, stored(t, p.srv))
		})
	}
}

// TestFailedSourceLeavesNothing ends the source early with io.EOF after
// whole chunks went out, the case where closing the upload instead of
// tearing it down would store a truncated file.
func TestFailedSourceLeavesNothing(t *testing.T) {
	srv := newServer(t)
	tg := newTarget(t, srv, Config{ChunkSize: 256 << 10})
	body := data("short", 1<<20)
	_, err := tg.Put(t.Context(), "ujet-media/call-1-video-v1.mp4", bytes.NewReader(body), crmstorage.PutOptions{Size: 2 << 20})
	require.ErrorIs(t, err, crmstorage.ErrSize)
	assert.Empty(t, stored(t, srv))
}

func TestValidate(t *testing.T) {
	key := serviceAccountKey(testKey())
	tests := []struct {
		desc  string
		cfg   Config
		field string // "" = valid
		want  string
	}{
		{"minimal", Config{Bucket: "crm-exports"}, "", ""},
		{"all fields, service account", Config{Bucket: "crm.exports.example.com", FolderPath: "/ccai/exports/", CredentialsJSON: key, Endpoint: "https://storage.example.com", ChunkSize: 1 << 20}, "", ""},
		{"oauth client", Config{Bucket: "crm-exports", ClientID: "123.apps.googleusercontent.com", ClientSecret: "GOCSPX-secret", RefreshToken: "1//refresh-secret"}, "", ""},
		{"emulator", Config{Bucket: "crm-exports", Endpoint: "http://127.0.0.1:4443"}, "", ""},

		{"no bucket", Config{}, "bucket", "required"},
		{"bucket as URL", Config{Bucket: "gs://crm-exports"}, "bucket", "without gs://"},
		{"bucket with path", Config{Bucket: "crm-exports/folder"}, "bucket", "folder_path"},
		{"bucket uppercase", Config{Bucket: "CRM-Exports"}, "bucket", "lowercase"},
		{"bucket too short", Config{Bucket: "ab"}, "bucket", "3 to 63"},
		{"bucket ends with dash", Config{Bucket: "crm-exports-"}, "bucket", "start and end"},
		{"bucket google", Config{Bucket: "my-google-bucket"}, "bucket", "google"},
		{"folder dot-dot", Config{Bucket: "crm-exports", FolderPath: "a/../b"}, "folder_path", `".."`},
		{"folder double slash", Config{Bucket: "crm-exports", FolderPath: "a//b"}, "folder_path", "empty folder"},
		{"folder control char", Config{Bucket: "crm-exports", FolderPath: "a\nb"}, "folder_path", "control"},

		{"client id without secret", Config{Bucket: "crm-exports", ClientID: "123.apps", RefreshToken: "1//refresh-secret"}, "client_secret", "required"},
		{"secret without client id", Config{Bucket: "crm-exports", ClientSecret: "GOCSPX-secret", RefreshToken: "1//refresh-secret"}, "client_id", "required"},
		{"client without refresh token", Config{Bucket: "crm-exports", ClientID: "123.apps", ClientSecret: "GOCSPX-secret"}, "refresh_token", "required"},
		{"json and file", Config{Bucket: "crm-exports", CredentialsJSON: key, CredentialsFile: "/etc/key.json"}, "credentials_file", "only one kind"},
		{"file and client", Config{Bucket: "crm-exports", CredentialsFile: "/etc/key.json", ClientID: "123.apps", ClientSecret: "GOCSPX-secret", RefreshToken: "1//refresh-secret"}, "client_id", "only one kind"},
		{"json not JSON", Config{Bucket: "crm-exports", CredentialsJSON: "secret-key-material"}, "credentials_json", "not a JSON key file"},
		{"json not a service account", Config{Bucket: "crm-exports", CredentialsJSON: `{"type":"external_account","secret":"secret-key-material"}`}, "credentials_json", "service_account"},
		{"json without key", Config{Bucket: "crm-exports", CredentialsJSON: `{"type":"service_account","client_email":"a@b"}`}, "credentials_json", "private_key"},
		{"json key not PEM", Config{Bucket: "crm-exports", CredentialsJSON: serviceAccountKey("secret-key-material")}, "credentials_json", "not a PEM"},
		{"json key damaged", Config{Bucket: "crm-exports", CredentialsJSON: serviceAccountKey("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n")}, "credentials_json", "cannot be parsed"},

		{"endpoint not http", Config{Bucket: "crm-exports", Endpoint: "ftp://example.com"}, "endpoint", "http or https"},
		{"endpoint without host", Config{Bucket: "crm-exports", Endpoint: "https://"}, "endpoint", "no host"},
		{"endpoint with password", Config{Bucket: "crm-exports", Endpoint: "https://u:secret-key-material@example.com"}, "endpoint", "user or password"},
		{"credentials over http", Config{Bucket: "crm-exports", Endpoint: "http://storage.example.com", CredentialsJSON: key}, "endpoint", "plain http"},
		{"negative chunk", Config{Bucket: "crm-exports", ChunkSize: -1}, "chunk_size", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var fields []string
			for _, e := range unjoin(err) {
				var ce *crmsync.Error
				require.ErrorAs(t, e, &ce)
				assert.Equal(t, crmsync.EINVALID, ce.Code)
				fields = append(fields, ce.Field)
			}
			assert.Contains(t, fields, tt.field)
			assert.Contains(t, err.Error(), tt.want)
			for _, secret := range []string{"secret-key-material", "GOCSPX-secret", "1//refresh-secret"} {
				assert.NotContains(t, err.Error(), secret)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := (&Config{FolderPath: "..", ChunkSize: -5}).Validate()
	require.Error(t, err)
	assert.Len(t, unjoin(err), 3)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// testKey is a PEM private key, made once.
var testKey = sync.OnceValue(func() string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
})

func serviceAccountKey(privateKey string) crmsync.Secret {
	b, _ := json.Marshal(map[string]string{
		"type":         "service_account",
		"project_id":   "crm-project",
		"client_email": "exporter@crm-project.iam.gserviceaccount.com",
		"private_key":  privateKey,
		"token_uri":    "https://oauth2.googleapis.com/token",
	})
	return crmsync.Secret(b)
}

func TestSecretsStayOut(t *testing.T) {
	cfg := Config{
		Bucket:          "crm-exports",
		CredentialsJSON: serviceAccountKey("secret-key-material"),
		ClientSecret:    "GOCSPX-secret",
		RefreshToken:    "1//refresh-secret",
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "gcs", cfg)
	jsonDump, err := json.Marshal(cfg)
	require.NoError(t, err)
	for _, out := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		logs.String(), string(jsonDump), cfg.Validate().Error(),
	} {
		for _, secret := range []string{"secret-key-material", "GOCSPX-secret", "1//refresh-secret"} {
			assert.NotContains(t, out, secret)
		}
	}
}

func TestNew(t *testing.T) {
	t.Run("endpoint", func(t *testing.T) {
		srv := newServer(t)
		tg, err := New(t.Context(), Config{Bucket: testBucket, Endpoint: srv.URL()}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, tg.Close()) })
		roundTrip(t, tg)
		assert.Equal(t, []string{"ujet-metadata/call-1.json"}, stored(t, srv))
	})
	t.Run("STORAGE_EMULATOR_HOST", func(t *testing.T) {
		srv := newServer(t)
		u, err := url.Parse(srv.URL())
		require.NoError(t, err)
		t.Setenv("STORAGE_EMULATOR_HOST", u.Host)
		var logs bytes.Buffer
		// Credentials are set aside, with a warning, for the emulator.
		key := serviceAccountKey(testKey())
		tg, err := New(t.Context(), Config{Bucket: testBucket, FolderPath: "crm", CredentialsJSON: key},
			slog.New(slog.NewTextHandler(&logs, nil)))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, tg.Close()) })
		roundTrip(t, tg)
		assert.Equal(t, []string{"crm/ujet-metadata/call-1.json"}, stored(t, srv))
		assert.Contains(t, logs.String(), "STORAGE_EMULATOR_HOST")
		assert.NotContains(t, logs.String(), "PRIVATE KEY")
	})
	t.Run("invalid config", func(t *testing.T) {
		_, err := New(t.Context(), Config{Bucket: "gs://x"}, nil)
		var ce *crmsync.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "bucket", ce.Field)
	})
	t.Run("credentials file", func(t *testing.T) {
		dir := t.TempDir()
		missing := filepath.Join(dir, "missing.json")
		_, err := New(t.Context(), Config{Bucket: testBucket, CredentialsFile: missing}, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "credentials_file")
		assert.Contains(t, err.Error(), missing)

		wrong := filepath.Join(dir, "user.json")
		require.NoError(t, os.WriteFile(wrong, []byte(`{"type":"authorized_user","refresh_token":"1//refresh-secret"}`), 0o600))
		_, err = New(t.Context(), Config{Bucket: testBucket, CredentialsFile: wrong}, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "service_account")
		assert.NotContains(t, err.Error(), "refresh-secret")
	})
	t.Run("no application default credentials", func(t *testing.T) {
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
		_, err := New(t.Context(), Config{Bucket: testBucket}, nil)
		require.ErrorIs(t, err, crmstorage.ErrAuth)
	})
}

// roundTrip puts, stats, opens, lists and deletes a file.
func roundTrip(t *testing.T, tg *Target) {
	t.Helper()
	ctx := t.Context()
	name := "ujet-metadata/call-1.json"
	body := []byte(`{"call_id":1}`)
	obj, err := tg.Put(ctx, name, bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
	require.NoError(t, err)
	st, err := tg.Stat(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, obj, st)
	rc, err := tg.Open(ctx, name)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, body, got)
	list, err := tg.List(ctx, "ujet-metadata/")
	require.NoError(t, err)
	assert.Equal(t, []crmstorage.Object{obj}, list)
	// Leave it for the caller to look at the bucket; Delete is covered by
	// the suite.
}

// faultyProxy sits in front of fake-gcs-server and answers upload
// requests (or, with all set, every request) with the queued faults first.
type faultyProxy struct {
	srv *fakestorage.Server
	all bool
	mu  sync.Mutex
	// faults for the next upload requests, in order.
	faults []fault
	// uploads counts the upload requests seen.
	uploads int
}

type fault struct {
	status int
	// commit passes the request on, then answers status anyway: the reply
	// to a successful upload is lost.
	commit bool
}

func (p *faultyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.all || strings.HasPrefix(r.URL.Path, "/upload/") {
		p.mu.Lock()
		p.uploads++
		var f *fault
		if len(p.faults) > 0 {
			f = &p.faults[0]
			p.faults = p.faults[1:]
		}
		p.mu.Unlock()
		if f != nil {
			if f.commit {
				p.srv.HTTPHandler().ServeHTTP(httptest.NewRecorder(), r)
			} else {
				_, _ = io.Copy(io.Discard, r.Body)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected %s"}}`, f.status, http.StatusText(f.status))
			return
		}
	}
	p.srv.HTTPHandler().ServeHTTP(w, r)
}

// newProxy is a target through New on a faultyProxy in front of a fresh
// fake-gcs-server.
func newProxy(t *testing.T, cfg Config, faults ...fault) (*faultyProxy, *Target) {
	t.Helper()
	p := &faultyProxy{srv: newServer(t), faults: faults}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	cfg.Bucket = testBucket
	cfg.Endpoint = ts.URL
	tg, err := New(t.Context(), cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return p, tg
}

func TestPutErrors(t *testing.T) {
	body := []byte(`{"chat_id":73522}`)
	put := func(tg *Target) error {
		_, err := tg.Put(t.Context(), "ujet-metadata/chat-73522.json", bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body))})
		return err
	}
	t.Run("transient error retried", func(t *testing.T) {
		p, tg := newProxy(t, Config{}, fault{status: 503})
		require.NoError(t, put(tg))
		assert.Equal(t, 2, p.uploads)
	})
	t.Run("lost reply to a stored upload", func(t *testing.T) {
		// The retry meets its own first attempt: the same file, so no error.
		p, tg := newProxy(t, Config{}, fault{status: 502, commit: true})
		require.NoError(t, put(tg))
		assert.Equal(t, 2, p.uploads)
		assert.Equal(t, []string{"ujet-metadata/chat-73522.json"}, stored(t, p.srv))
	})
	t.Run("transient error persists", func(t *testing.T) {
		p, tg := newProxy(t, Config{}, fault{status: 503}, fault{status: 503}, fault{status: 429})
		err := put(tg)
		require.Error(t, err)
		assert.True(t, Retryable(err))
		assert.Equal(t, smallAttempts, p.uploads)
		assert.Contains(t, err.Error(), "429")
	})
	t.Run("forbidden", func(t *testing.T) {
		p, tg := newProxy(t, Config{}, fault{status: 403})
		err := put(tg)
		require.ErrorIs(t, err, crmstorage.ErrPermission)
		assert.False(t, Retryable(err))
		assert.Equal(t, 1, p.uploads)
	})
	t.Run("unauthorized", func(t *testing.T) {
		_, tg := newProxy(t, Config{}, fault{status: 401})
		err := put(tg)
		require.ErrorIs(t, err, crmstorage.ErrAuth)
		assert.False(t, Retryable(err))
	})
}

func TestOtherCallErrors(t *testing.T) {
	ctx := t.Context()
	name := "ujet-metadata/call-1.json"
	tests := []struct {
		desc   string
		status int
		want   error
	}{
		{"unauthorized", 401, crmstorage.ErrAuth},
		{"forbidden", 403, crmstorage.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p, tg := newProxy(t, Config{})
			p.all = true
			for range 4 {
				p.faults = append(p.faults, fault{status: tt.status})
			}
			_, err := tg.Stat(ctx, name)
			assert.ErrorIs(t, err, tt.want, "Stat")
			_, err = tg.Open(ctx, name)
			assert.ErrorIs(t, err, tt.want, "Open")
			_, err = tg.List(ctx, "")
			assert.ErrorIs(t, err, tt.want, "List")
			err = tg.Delete(ctx, name)
			assert.ErrorIs(t, err, tt.want, "Delete")
			assert.False(t, Retryable(err))
		})
	}
}

// TestRefusedRefreshToken: the token endpoint turning the OAuth client
// down is an authentication failure, and says so without the secrets.
func TestRefusedRefreshToken(t *testing.T) {
	token := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
	}))
	t.Cleanup(token.Close)
	saved := tokenURL
	tokenURL = token.URL
	t.Cleanup(func() { tokenURL = saved })
	cfg := Config{
		Bucket:       testBucket,
		ClientID:     "123.apps.googleusercontent.com",
		ClientSecret: "GOCSPX-secret",
		RefreshToken: "1//refresh-secret",
		// Nothing listens there: the token is fetched before any request.
		Endpoint: "https://127.0.0.1:1",
	}
	tg, err := New(t.Context(), cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	_, err = tg.Put(t.Context(), "ujet-metadata/call-1.json", strings.NewReader("{}"), crmstorage.PutOptions{Size: 2})
	require.ErrorIs(t, err, crmstorage.ErrAuth)
	assert.False(t, Retryable(err))
	assert.Contains(t, err.Error(), "invalid_grant")
	for _, secret := range []string{"GOCSPX-secret", "1//refresh-secret"} {
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&googleapi.Error{Code: 429}, true},
		{&googleapi.Error{Code: 408}, true},
		{&googleapi.Error{Code: 500}, true},
		{&googleapi.Error{Code: 503}, true},
		{fmt.Errorf("gcs: put %q: %w", "x", &googleapi.Error{Code: 502}), true},
		{&googleapi.Error{Code: 400}, false},
		{&googleapi.Error{Code: 404}, false},
		{&googleapi.Error{Code: 412}, false},
		{translate(&googleapi.Error{Code: 401}), false},
		{translate(&googleapi.Error{Code: 403}), false},
		{translate(gcs.ErrObjectNotExist), false},
		{translate(gcs.ErrBucketNotExist), false},
		{crmstorage.ErrExist, false},
		{fmt.Errorf("%w: read 1 bytes, 2 announced", crmstorage.ErrSize), false},
		{fmt.Errorf("%w: %w", crmstorage.ErrSize, errCorrupt), true},
		{errVanished, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{&url.Error{Op: "Post", URL: "https://storage.googleapis.com/upload", Err: errors.New("read: connection reset by peer")}, true},
		{&url.Error{Op: "Post", URL: "https://storage.googleapis.com/upload", Err: errors.New("dial tcp: connection refused")}, true},
		{fmt.Errorf("gcs: put: %w", io.ErrUnexpectedEOF), true},
		{errors.New("something else"), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Retryable(tt.err), "%v", tt.err)
	}
}

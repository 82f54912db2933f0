package crm

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/templating"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(b)
	return b
}

// memFile serves data as a File and counts how often it is opened.
func memFile(name, kind string, data []byte, size int64, opens *atomic.Int32) File {
	return File{
		Name: name, ContentType: "audio/mpeg", Kind: kind, Size: size,
		Open: func() (io.ReadCloser, error) {
			if opens != nil {
				opens.Add(1)
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	}
}

// withRecord creates the account and record that uploads go to.
func withRecord(t *testing.T, c *Client, cfg *Config) (*templating.Values, string) {
	t.Helper()
	v := session(cfg, bond)
	_, err := c.FindOrCreateAccount(context.Background(), v)
	require.NoError(t, err)
	rec, err := c.FindOrCreateRecord(context.Background(), v, false)
	require.NoError(t, err)
	return v, rec.ID
}

func TestUpload(t *testing.T) {
	data := randomBytes(300_001) // not a multiple of 3, larger than one read
	tests := []struct {
		name string
		edit func(up *UploadEndpoint)
		size int64
	}{
		{"multipart", func(*UploadEndpoint) {}, int64(len(data))},
		{"multipart of unknown size", func(*UploadEndpoint) {}, 0},
		{"multipart with fields and url from the response", func(up *UploadEndpoint) {
			up.FileField = "upload"
			up.Parameters = []Parameter{{Name: "note", Value: "call {Call_ID}"}, {Name: "gone", Value: "{EMAIL}"}, {Name: "file_data", Value: "{FILE_DATA}"}}
			up.AttachmentType, up.AttachmentURLLocation = "url", "data.url"
			up.ResponseLocation = "data"
		}, int64(len(data))},
		{"base64 json", func(up *UploadEndpoint) {
			up.Type = "base64"
			up.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}, {Name: "filename", Value: "call.mp3"}}
		}, int64(len(data))},
		{"base64 json of unknown size", func(up *UploadEndpoint) {
			up.Type = "base64"
			up.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}, {Name: "filename", Value: "call.mp3"}}
		}, 0},
		{"base64 json container", func(up *UploadEndpoint) {
			up.Type, up.Format, up.ContainerType, up.ContainerName = "base64", "container", "array", "attachment"
			up.Parameters = []Parameter{{Name: "filename", Value: "call.mp3"}, {Name: "data", Value: "{FILE_DATA}"}}
			up.AttachmentType, up.AttachmentURLLocation, up.ResponseLocation = "url", "data.url", "data"
		}, int64(len(data))},
		{"base64 form", func(up *UploadEndpoint) {
			up.Type, up.Body = "base64", "form"
			up.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}, {Name: "filename", Value: "call.mp3"}}
		}, int64(len(data))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm, base := startCRM(t, samplecrm.Options{})
			cfg := sampleConfig(base)
			tt.edit(cfg.Endpoints.UploadFile)
			c := newClient(t, cfg, Options{})
			v, recID := withRecord(t, c, cfg)

			var opens atomic.Int32
			res, err := c.Upload(context.Background(), v, memFile("call.mp3", FileCallRecordings, data, tt.size, &opens))
			require.NoError(t, err)
			assert.Equal(t, int32(1), opens.Load())

			atts := crm.Attachments(recID)
			require.Len(t, atts, 1)
			assert.True(t, bytes.Equal(data, atts[0].Bytes), "the stored bytes equal the file")
			assert.Equal(t, "call.mp3", atts[0].Filename)
			want := base + "/api/records/" + recID + "/attachments/" + atts[0].ID
			assert.Equal(t, want, res.URL)
			assert.Equal(t, atts[0].ID, res.AttachmentID)

			resp, err := http.Get(res.URL)
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(data, got), "the attachment URL serves the file")
		})
	}
}

func TestUploadMultipartFields(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	cfg.Endpoints.UploadFile.Parameters = []Parameter{
		{Name: "note", Value: "call {Call_ID}"}, {Name: "gone", Value: "{EMAIL}"}, {Name: "file_data", Value: "{FILE_DATA}"},
	}
	c := newClient(t, cfg, Options{})
	in := bond
	in.Email = ""
	v := session(cfg, in)
	_, err := c.FindOrCreateAccount(context.Background(), v)
	require.NoError(t, err)
	rec, err := c.FindOrCreateRecord(context.Background(), v, false)
	require.NoError(t, err)
	_, err = c.Upload(context.Background(), v, memFile("a.txt", FileChatTranscripts, []byte("hello"), 5, nil))
	require.NoError(t, err)
	posts := requestsTo(crm, "POST", "/api/records/"+rec.ID+"/attachments")
	require.Len(t, posts, 1)
	body := posts[0].Body
	assert.Contains(t, body, "name=\"note\"\r\n\r\ncall 103646\r\n")
	assert.NotContains(t, body, "name=\"gone\"", "empty fields are dropped")
	assert.NotContains(t, body, "file_data", "{FILE_DATA} has no value in a multipart body")
	assert.Contains(t, body, `Content-Disposition: form-data; name="file"; filename="a.txt"`)
	assert.Contains(t, body, "Content-Type: audio/mpeg")
}

func TestUploadComment(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	cfg.Endpoints.UploadFile.AddComment = true
	c := newClient(t, cfg, Options{})
	v, recID := withRecord(t, c, cfg)
	ctx := WithIdempotencyKey(context.Background(), "k")
	res, err := c.Upload(ctx, v, memFile("call.mp3", FileCallRecordings, []byte("abc"), 3, nil))
	require.NoError(t, err)
	comments := crm.Comments(recID)
	require.Len(t, comments, 1)
	assert.Equal(t, "Call recording uploaded: "+res.URL, comments[0].Body)

	posts := requestsTo(crm, "POST", "/api/records/"+recID+"/attachments")
	require.Len(t, posts, 1)
	assert.Equal(t, "k:upload_file:call_recordings:call.mp3", posts[0].Header.Get("Idempotency-Key"))
	cposts := requestsTo(crm, "POST", "/api/records/"+recID+"/comments")
	require.Len(t, cposts, 1)
	assert.Equal(t, "k:upload_file:call_recordings:call.mp3:comment", cposts[0].Header.Get("Idempotency-Key"))
}

func TestUploadRules(t *testing.T) {
	_, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	v, _ := withRecord(t, c, cfg)
	assert.True(t, c.Uploads(FileCallRecordings))
	assert.False(t, c.Uploads(FileVideos))
	_, err := c.Upload(context.Background(), v, memFile("v.mp4", FileVideos, []byte("x"), 1, nil))
	assert.ErrorIs(t, err, ErrNotConfigured)
	_, err = c.Upload(context.Background(), session(cfg, bond), memFile("a.mp3", FileCallRecordings, []byte("x"), 1, nil))
	assert.ErrorIs(t, err, ErrIncompleteURL, "no RECORD_ID")
}

func TestUploadRetryReopensFile(t *testing.T) {
	for _, typ := range []string{"multipart", "base64"} {
		t.Run(typ, func(t *testing.T) {
			crm, base := startCRM(t, samplecrm.Options{OAuth: &samplecrm.OAuthOptions{ClientID: "crmsync-app", ClientSecret: "client-secret-1"}})
			cfg := oauthConfig(base, "")
			up := cfg.Endpoints.UploadFile
			up.Type = typ
			if typ == "base64" {
				up.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}}
			}
			c := newClient(t, cfg, Options{})
			v, recID := withRecord(t, c, cfg)
			crm.ExpireAccessTokens()
			data := randomBytes(10_000)
			var opens atomic.Int32
			var rec calls
			_, err := c.Upload(rec.ctx(context.Background()), v, memFile("r.mp3", FileCallRecordings, data, int64(len(data)), &opens))
			require.NoError(t, err)
			assert.Equal(t, int32(2), opens.Load())
			assert.Equal(t, []string{EndpointUploadFile, endpointToken, EndpointUploadFile}, rec.endpoints())
			atts := crm.Attachments(recID)
			require.Len(t, atts, 1)
			assert.True(t, bytes.Equal(data, atts[0].Bytes))
		})
	}
}

// patternReader produces n bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestUploadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 96 MiB")
	}
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		_, _ = io.WriteString(w, `{"data":{"id":"1","url":"https://crm.example/a/1"}}`)
	}))
	t.Cleanup(srv.Close)
	const size = 32 << 20
	for _, typ := range []string{"multipart", "base64"} {
		t.Run(typ, func(t *testing.T) {
			cfg := sampleConfig(srv.URL)
			up := cfg.Endpoints.UploadFile
			up.Type = typ
			if typ == "base64" {
				up.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}}
			}
			c := newClient(t, cfg, Options{})
			v := session(cfg, bond)
			v.Set(templating.RecordID, "9")
			f := File{Name: "big.bin", Kind: FileCallRecordings, Size: size,
				Open: func() (io.ReadCloser, error) { return io.NopCloser(&patternReader{n: size}), nil }}

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := c.Upload(context.Background(), v, f)
			require.NoError(t, err)
			runtime.ReadMemStats(&after)
			assert.GreaterOrEqual(t, received.Load(), int64(size))
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("sent %d bytes of file, allocated %d bytes", size, alloc)
			assert.Less(t, alloc, uint64(8<<20), "allocated %d bytes to send %d", alloc, size)
		})
	}
}

func TestBase64Reader(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 3071, 3072, 3073, 10_000} {
		data := randomBytes(n)
		var got strings.Builder
		_, err := io.Copy(&got, &base64Reader{src: bytes.NewReader(data)})
		require.NoError(t, err)
		assert.Equal(t, base64.StdEncoding.EncodeToString(data), got.String(), "n=%d", n)
		got.Reset()
		_, err = io.Copy(&got, &base64Reader{src: bytes.NewReader(data), form: true})
		require.NoError(t, err)
		assert.Equal(t, url.QueryEscape(base64.StdEncoding.EncodeToString(data)), got.String(), "form n=%d", n)
	}
}

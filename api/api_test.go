package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/jobs"
	"github.com/crmsync/crmsync/storage/local"
)

const token = "test-token-123"

type apiEnv struct {
	srv       *Server
	http      *httptest.Server
	inspector *asynq.Inspector
	queue     string
	store     *jobs.Store
}

func newAPI(t *testing.T) *apiEnv {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	queue := redistest.Queue(t, rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	enq := jobs.NewEnqueuer(client, jobs.EnqueuerConfig{Queue: queue})
	store := jobs.NewStore(rdb, prefix)
	spool, err := local.New(local.Config{Path: t.TempDir()})
	require.NoError(t, err)
	s := &Server{
		Events:       enq,
		Sessions:     store,
		Files:        &jobs.Intake{Store: store, Spool: spool, Enqueuer: enq, MaxBytes: 100 << 10},
		Ready:        func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		APITokens:    []crmsync.Secret{token},
		AdminTokens:  []crmsync.Secret{"admin-token-123"},
		MaxBodyBytes: 64 << 10,
		Queues:       http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "queues") }),
		OAuth:        fakeOAuth{},
		Mounts:       map[string]http.Handler{"/sample-crm": http.NotFoundHandler()},
	}
	hs := httptest.NewServer(s.Handler())
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() {
		hs.Close()
	})
	return &apiEnv{srv: s, http: hs, inspector: insp, queue: queue, store: store}
}

// fakeOAuth stands in for the CRM client's OAuth setup, which has its own
// tests against a real token endpoint.
type fakeOAuth struct{}

func (fakeOAuth) AuthCodeURL(state string) (string, error) {
	return "https://crm.example/authorize?state=" + state, nil
}
func (fakeOAuth) Exchange(_ context.Context, code string) error {
	if code != "good" {
		return errors.New("invalid_grant")
	}
	return nil
}

func (e *apiEnv) do(t *testing.T, method, path, tok, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp, out
}

func (e *apiEnv) queued(t *testing.T) int {
	info, err := e.inspector.GetQueueInfo(e.queue)
	if err != nil {
		return 0 // the queue does not exist: nothing was ever enqueued
	}
	return info.Size
}

func TestPostEventsAccepted(t *testing.T) {
	e := newAPI(t)
	resp, out := e.do(t, "POST", "/v1/events", token, `{"type":"New_Call","data":{"call_id":103646,"agent_id":1}}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	acc := out["accepted"].([]any)
	require.Len(t, acc, 1)
	a := acc[0].(map[string]any)
	assert.Equal(t, "call-103646", a["session"])
	assert.Equal(t, "start", a["action"])
	assert.Nil(t, a["duplicate"])
	assert.Equal(t, 1, e.queued(t))

	resp, out = e.do(t, "POST", "/v1/events", token, `{"type":"New_Call","data":{"call_id":103646,"agent_id":1}}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, true, out["accepted"].([]any)[0].(map[string]any)["duplicate"])
	assert.Equal(t, 1, e.queued(t))
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newAPI(t)
	big := `{"type":"New_Call","data":{"call_id":1,"feedback":"` + strings.Repeat("x", 70<<10) + `"}}`
	cases := []struct {
		name, tok, body string
		status          int
		field, msg      string
	}{
		{"no token", "", `{"type":"New_Call","data":{"call_id":1}}`, 401, "Authorization", "bearer token"},
		{"wrong token", "nope-nope-nope", `{"type":"New_Call","data":{"call_id":1}}`, 401, "Authorization", "bearer token"},
		{"malformed", token, `{"type":`, 400, "", "malformed JSON"},
		{"missing field", token, `{"type":"New_Call","data":{}}`, 400, "data.call_id", "required"},
		{"wrong type", token, `{"type":"New_Call","data":{"call_id":{}}}`, 400, "data.call_id", "an object"},
		{"unknown type", token, `{"type":"New_Fax","data":{"call_id":1}}`, 400, "type", "unknown event type"},
		{"dot dot id", token, `{"type":"New_Call","data":{"call_id":"../../etc/passwd"}}`, 400, "data.call_id", "not allowed"},
		{"nul id", token, `{"type":"New_Call","data":{"call_id":"1\u0000"}}`, 400, "data.call_id", "not allowed"},
		{"too large", token, big, 413, "", "larger than"},
		{"one bad in a batch", token, `[{"type":"New_Call","data":{"call_id":1}},{"type":"End_Call","data":{"call_id":"a/b"}}]`, 400, "[1].data.call_id", "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := e.do(t, "POST", "/v1/events", c.tok, c.body)
			assert.Equal(t, c.status, resp.StatusCode)
			require.NotNil(t, out["error"], out)
			er := out["error"].(map[string]any)
			if c.field != "" {
				assert.Equal(t, c.field, er["field"])
			}
			assert.Contains(t, er["message"], c.msg)
			assert.Equal(t, 0, e.queued(t), "nothing enqueued")
		})
	}
	req, _ := http.NewRequest("POST", e.http.URL+"/v1/events", strings.NewReader(`type=New_Call`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	resp, _ = e.do(t, "GET", "/v1/events", token, "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestSessionView(t *testing.T) {
	e := newAPI(t)
	resp, out := e.do(t, "GET", "/v1/sessions/call-404404", token, "")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "not_found", out["error"].(map[string]any)["code"])
	for _, bad := range []string{"fax-1", "call-..", "call-a%2Fb", "call-%00"} {
		resp, _ := e.do(t, "GET", "/v1/sessions/"+bad, token, "")
		assert.Contains(t, []int{400, 404}, resp.StatusCode, bad)
		assert.NotEqual(t, 500, resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", "/v1/sessions/call-1", "", "")
	assert.Equal(t, 401, resp.StatusCode)
}

func TestHealthAndAdmin(t *testing.T) {
	e := newAPI(t)
	resp, _ := e.do(t, "GET", "/healthz", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, out := e.do(t, "GET", "/readyz", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ready", out["status"])
	resp, _ = e.do(t, "GET", "/metrics", "", "")
	assert.Equal(t, 200, resp.StatusCode)

	resp, _ = e.do(t, "GET", "/admin/queues/", "", "")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	resp, _ = e.do(t, "GET", "/admin/queues/", token, "")
	assert.Equal(t, 401, resp.StatusCode, "an API token is not an admin token")
	req, _ := http.NewRequest("GET", e.http.URL+"/admin/queues/", nil)
	req.SetBasicAuth("ops", "admin-token-123")
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	assert.Equal(t, 200, r2.StatusCode)
}

func TestOAuthSetupChecksState(t *testing.T) {
	e := newAPI(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", e.http.URL+"/admin/oauth/start", nil)
	req.Header.Set("Authorization", "Bearer admin-token-123")
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 302, resp.StatusCode)
	loc := resp.Header.Get("Location")
	state := loc[strings.Index(loc, "state=")+6:]
	cookie := resp.Cookies()[0]

	call := func(q string, withCookie bool) int {
		req, _ := http.NewRequest("GET", e.http.URL+"/admin/oauth/callback?"+q, nil)
		req.Header.Set("Authorization", "Bearer admin-token-123")
		if withCookie {
			req.AddCookie(cookie)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 400, call("code=good&state=forged", true))
	assert.Equal(t, 400, call("code=good&state="+state, false))
	assert.Equal(t, 503, call("code=bad&state="+state, true))
	assert.Equal(t, 200, call("code=good&state="+state, true))
}

// docs/openapi.yaml lists every route, and its examples are accepted.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newAPI(t)
	raw, err := os.ReadFile("../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value any `yaml:"value"`
					} `yaml:"examples"`
				} `yaml:"content"`
			} `yaml:"requestBody"`
		} `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	routes := e.srv.Routes()
	require.NotEmpty(t, routes)
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			method, path = "get", r
		}
		ops, found := doc.Paths[path]
		if assert.True(t, found, "route %q is not in docs/openapi.yaml", r) {
			_, has := ops[strings.ToLower(method)]
			assert.True(t, has, "route %q: method missing in docs/openapi.yaml", r)
		}
	}
	examples := doc.Paths["/v1/events"]["post"].RequestBody.Content["application/json"].Examples
	require.NotEmpty(t, examples)
	for name, ex := range examples {
		b, err := json.Marshal(ex.Value)
		require.NoError(t, err)
		resp, out := e.do(t, "POST", "/v1/events", token, string(b))
		assert.Equal(t, http.StatusAccepted, resp.StatusCode, "example %s: %v", name, out)
	}
}

func (e *apiEnv) upload(t *testing.T, path, ctype string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", e.http.URL+path, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp, out
}

func (e *apiEnv) files(t *testing.T, session string) map[string]jobs.FileRecord {
	k, err := crmsync.ParseSessionKey(session)
	require.NoError(t, err)
	m, err := e.store.Files(context.Background(), k)
	require.NoError(t, err)
	return m
}

func TestPostFiles(t *testing.T) {
	e := newAPI(t)
	rec := strings.Repeat("ID3 fake mp3 bytes ", 1000)
	resp, out := e.upload(t, "/v1/sessions/call-5/files?kind=call_recordings", "audio/mpeg", strings.NewReader(rec))
	require.Equal(t, 202, resp.StatusCode, out)
	files := e.files(t, "call-5")
	require.Contains(t, files, "ujet-voice-recordings/call-5.mp3")
	assert.EqualValues(t, len(rec), files["ujet-voice-recordings/call-5.mp3"].Size)

	// The same file again is taken once; a different one is refused.
	resp, _ = e.upload(t, "/v1/sessions/call-5/files?kind=call_recordings&format=mp3", "application/octet-stream", strings.NewReader(rec))
	assert.Equal(t, 202, resp.StatusCode)
	resp, out = e.upload(t, "/v1/sessions/call-5/files?kind=call_recordings&format=mp3", "application/octet-stream", strings.NewReader("other"))
	assert.Equal(t, 409, resp.StatusCode, out)

	// Multipart, with what the file is in form fields.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(t, mw.WriteField("kind", "photos"))
	require.NoError(t, mw.WriteField("media_id", "p1"))
	fw, err := mw.CreateFormFile("file", "photo.jpg")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("\xff\xd8 jpeg"))
	require.NoError(t, mw.Close())
	resp, out = e.upload(t, "/v1/sessions/chat-6/files", mw.FormDataContentType(), &buf)
	require.Equal(t, 202, resp.StatusCode, out)
	assert.Contains(t, e.files(t, "chat-6"), "ujet-media/chat-6-photo-p1.jpg")

	// A URL for a worker to fetch.
	resp, out = e.upload(t, "/v1/sessions/call-7/files", "application/json", strings.NewReader(`{"kind":"voicemails","url":"https://media.example.com/vm/7.wav"}`))
	require.Equal(t, 202, resp.StatusCode, out)
	assert.Equal(t, 1, e.queued(t), "a fetch task")
}

func TestPostFilesBadInput(t *testing.T) {
	e := newAPI(t)
	cases := []struct {
		name, path, ctype, body string
		status                  int
		field                   string
	}{
		{"unknown kind", "/v1/sessions/call-1/files?kind=faxes&format=mp3", "audio/mpeg", "x", 400, "kind"},
		{"metadata is not uploaded", "/v1/sessions/call-1/files?kind=session_metadata", "application/json", `{"url":"https://x/y"}`, 400, "kind"},
		{"no format", "/v1/sessions/call-1/files?kind=call_recordings", "application/octet-stream", "x", 400, "format"},
		{"recording on a chat", "/v1/sessions/chat-1/files?kind=call_recordings&format=mp3", "audio/mpeg", "x", 400, "format"},
		{"media id escapes", "/v1/sessions/call-1/files?kind=photos&media_id=..%2Fx", "image/jpeg", "x", 400, "media_id"},
		{"bad session", "/v1/sessions/call-..%2Fx/files?kind=photos&media_id=1", "image/jpeg", "x", 400, "session"},
		{"not a URL", "/v1/sessions/call-1/files", "application/json", `{"kind":"photos","media_id":"1","url":"file:///etc/passwd"}`, 400, "url"},
		{"too large", "/v1/sessions/call-1/files?kind=call_recordings&format=wav", "audio/wav", strings.Repeat("x", 101<<10), 413, ""},
		{"no file part", "/v1/sessions/call-1/files", "multipart/form-data; boundary=zz", "--zz\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nphotos\r\n--zz--\r\n", 400, "file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := e.upload(t, c.path, c.ctype, strings.NewReader(c.body))
			assert.Equal(t, c.status, resp.StatusCode, out)
			if c.field != "" {
				require.NotNil(t, out["error"], out)
				assert.Equal(t, c.field, out["error"].(map[string]any)["field"])
			}
		})
	}
	assert.Empty(t, e.files(t, "call-1"), "nothing recorded")
	assert.Equal(t, 0, e.queued(t))
}

package adapter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing/access"
)

const (
	tokenSecret = "adapter-tests-secret-0123456789"
	crmOrigin   = "https://crm.example.com"
)

// pageServer serves the handler over real HTTP the way cmd/crmsync
// registers it.
func pageServer(tb testing.TB, cfg Config) (*httptest.Server, *access.AgentTokens) {
	tb.Helper()
	tokens, err := access.NewAgentTokens(crmsync.Secret(tokenSecret))
	require.NoError(tb, err)
	h := &Handler{Config: cfg, Tokens: tokens}
	mux := http.NewServeMux()
	mux.Handle("GET /agent/adapter", h)
	mux.Handle("GET /agent/adapter.js", h)
	mux.Handle("GET /agent/adapter.css", h)
	mux.Handle("/agent/anything", h)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv, tokens
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(tb testing.TB, srv *httptest.Server, method, path string, q url.Values) answer {
	tb.Helper()
	u := srv.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	require.NoError(tb, err)
	res, err := srv.Client().Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// apiError decodes httpjson's error answer.
func apiError(tb testing.TB, a answer) (code, field, message string) {
	tb.Helper()
	var v struct {
		Error struct {
			Code, Field, Message string
		}
	}
	require.NoError(tb, json.Unmarshal([]byte(a.body), &v), "body: %s", a.body)
	assert.Equal(tb, "application/json", a.header.Get("Content-Type"))
	return v.Error.Code, v.Error.Field, v.Error.Message
}

func TestPageRefusesBadInput(t *testing.T) {
	srv, tokens := pageServer(t, Config{TargetOrigin: crmOrigin})
	good := tokens.Issue("sara")
	other := tokens.Issue("omar")
	tests := []struct {
		name   string
		q      url.Values
		status int
		code   string
		field  string
	}{
		{"no type", url.Values{"from": {"custom"}, "agent": {"sara"}, "token": {good}}, 400, crmsync.EINVALID, "type"},
		{"bad type", url.Values{"type": {"video"}, "agent": {"sara"}, "token": {good}}, 400, crmsync.EINVALID, "type"},
		{"bad from", url.Values{"type": {"chat"}, "from": {"salesforce"}, "agent": {"sara"}, "token": {good}}, 400, crmsync.EINVALID, "from"},
		{"no agent", url.Values{"type": {"chat"}, "token": {good}}, 400, crmsync.EINVALID, "agent"},
		{"agent with markup", url.Values{"type": {"chat"}, "agent": {"a</script><script>alert(1)"}, "token": {good}}, 400, crmsync.EINVALID, "agent"},
		{"agent with dots", url.Values{"type": {"chat"}, "agent": {"a..b"}, "token": {good}}, 400, crmsync.EINVALID, "agent"},
		{"no token", url.Values{"type": {"chat"}, "agent": {"sara"}}, 401, crmsync.EUNAUTHORIZED, "token"},
		{"another agent's token", url.Values{"type": {"chat"}, "agent": {"sara"}, "token": {other}}, 401, crmsync.EUNAUTHORIZED, "token"},
		{"forged token", url.Values{"type": {"call"}, "agent": {"sara"}, "token": {"agt_" + strings.Repeat("A", 43)}}, 401, crmsync.EUNAUTHORIZED, "token"},
		{"not a token", url.Values{"type": {"call"}, "agent": {"sara"}, "token": {"hunter2-secret"}}, 401, crmsync.EUNAUTHORIZED, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, srv, http.MethodGet, "/agent/adapter", tt.q)
			require.Equal(t, tt.status, a.status, a.body)
			code, field, msg := apiError(t, a)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.field, field)
			assert.NotEmpty(t, msg)
			// No token, good or bad, is ever echoed back.
			for _, tok := range []string{good, other, tt.q.Get("token")} {
				if tok != "" {
					assert.NotContains(t, a.body, tok)
				}
			}
			assert.NotContains(t, a.body, "<script>")
		})
	}
}

func TestPageRefusesOtherMethods(t *testing.T) {
	srv, tokens := pageServer(t, Config{TargetOrigin: crmOrigin})
	q := url.Values{"type": {"chat"}, "agent": {"sara"}, "token": {tokens.Issue("sara")}}
	a := get(t, srv, http.MethodPost, "/agent/anything", q)
	assert.Equal(t, http.StatusMethodNotAllowed, a.status)
	assert.Equal(t, "GET, HEAD", a.header.Get("Allow"))
	code, _, _ := apiError(t, a)
	assert.Equal(t, "method_not_allowed", code)
}

// pageConfigOf reads the JSON config block back out of a page.
var configBlock = regexp.MustCompile(`(?s)<script type="application/json" id="adapter-config">(.*?)</script>`)

func pageConfigOf(tb testing.TB, body string) pageConfig {
	tb.Helper()
	m := configBlock.FindStringSubmatch(body)
	require.NotNil(tb, m, "no config block in %s", body)
	var c pageConfig
	require.NoError(tb, json.Unmarshal([]byte(m[1]), &c))
	return c
}

func TestPage(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		q         url.Values
		auth      bool // token in the Authorization header instead
		ancestors string
		want      pageConfig
	}{
		{
			name: "chat", cfg: Config{TargetOrigin: crmOrigin + "/"},
			q:         url.Values{"type": {"chat"}, "from": {"custom"}, "agent": {"sara@pegasystems.com"}},
			ancestors: "frame-ancestors " + crmOrigin,
			want: pageConfig{Agent: "sara@pegasystems.com", Type: "chat", From: "custom", TargetOrigin: crmOrigin,
				StreamURL: "/v1/agents/sara@pegasystems.com/events", APIPath: "/v1/routing"},
		},
		{
			name: "call, no from, token in header, own paths", cfg: Config{TargetOrigin: "*", StreamPath: "/s/{id}/sse", APIPath: "/api/"},
			q: url.Values{"type": {"CALL"}, "agent": {"a+b"}}, auth: true,
			ancestors: "frame-ancestors *",
			want: pageConfig{Agent: "a+b", Type: "call", From: "custom", TargetOrigin: "*",
				StreamURL: "/s/a+b/sse", APIPath: "/api"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, tokens := pageServer(t, tt.cfg)
			tok := tokens.Issue(tt.want.Agent)
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/agent/adapter?"+tt.q.Encode(), nil)
			require.NoError(t, err)
			if tt.auth {
				req.Header.Set("Authorization", "Bearer "+tok)
			} else {
				q := req.URL.Query()
				q.Set("token", tok)
				req.URL.RawQuery = q.Encode()
			}
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, res.StatusCode, string(b))

			assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			csp := res.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", tt.ancestors} {
				assert.Contains(t, csp, d)
			}
			assert.NotContains(t, csp, "unsafe-inline")

			want := tt.want
			want.Token = tok
			assert.Equal(t, want, pageConfigOf(t, string(b)))
		})
	}
}

func TestStaticFiles(t *testing.T) {
	srv, _ := pageServer(t, Config{TargetOrigin: crmOrigin})
	for _, f := range []struct{ path, ctype, holds string }{
		{"/agent/adapter.js", "text/javascript; charset=utf-8", "postMessage"},
		{"/agent/adapter.css", "text/css; charset=utf-8", ".status"},
	} {
		t.Run(f.path, func(t *testing.T) {
			a := get(t, srv, http.MethodGet, f.path, nil)
			require.Equal(t, http.StatusOK, a.status)
			assert.Equal(t, f.ctype, a.header.Get("Content-Type"))
			assert.Contains(t, a.header.Get("Content-Security-Policy"), "frame-ancestors "+crmOrigin)
			assert.Contains(t, a.body, f.holds)
		})
	}
}

// The config block cannot end its script element, whatever a value holds:
// ids are validated before, but the page does not rely on it.
func TestRenderEscapesConfig(t *testing.T) {
	hostile := `a</script><script>alert(1)</script><!--`
	b, err := render(pageConfig{Agent: hostile, Token: "t</script>", Type: "chat", TargetOrigin: crmOrigin,
		StreamURL: "/v1/agents/x/events", APIPath: "/v1/routing"})
	require.NoError(t, err)
	body := string(b)
	assert.NotContains(t, body, "<script>alert")
	assert.Equal(t, 2, strings.Count(body, "</script>"), "only the page's own two script elements end")
	got := pageConfigOf(t, body)
	assert.Equal(t, hostile, got.Agent, "the value survives intact as JSON")
	assert.Equal(t, "t</script>", got.Token)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string // "" when valid
	}{
		{Config{TargetOrigin: crmOrigin}, ""},
		{Config{TargetOrigin: "http://127.0.0.1:8080/"}, ""},
		{Config{TargetOrigin: "*", StreamPath: "/x/{id}", APIPath: "/api"}, ""},
		{Config{}, "target_origin"},
		{Config{TargetOrigin: "crm.example.com"}, "target_origin"},
		{Config{TargetOrigin: crmOrigin + "/page"}, "target_origin"},
		{Config{TargetOrigin: "ftp://crm.example.com"}, "target_origin"},
		{Config{TargetOrigin: crmOrigin, StreamPath: "/v1/agents/events"}, "stream_path"},
		{Config{TargetOrigin: crmOrigin, StreamPath: "https://evil.example/{id}"}, "stream_path"},
		{Config{TargetOrigin: crmOrigin, APIPath: "//evil.example/api"}, "api_path"},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.TargetOrigin+" "+tt.cfg.StreamPath+" "+tt.cfg.APIPath, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tt.field, e.Field)
		})
	}
}

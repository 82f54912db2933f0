package samplecrm

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// crm is a sample CRM behind a real HTTP server.
type crm struct {
	*Server
	url    string
	client *http.Client
}

func start(t testing.TB, opts Options) *crm {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	client := srv.Client()
	// Enough idle connections that concurrent tests do not churn through
	// new ones.
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return &crm{Server: s, url: srv.URL, client: client}
}

// reply is a response read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// object decodes a JSON object answer.
func (r reply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// data returns the object under "data".
func (r reply) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := r.object(t)["data"].(map[string]any)
	require.True(t, ok, "no data object in %s", r.Body)
	return d
}

// items returns data.items.
func (r reply) items(t testing.TB) []map[string]any {
	t.Helper()
	raw, ok := r.data(t)["items"].([]any)
	require.True(t, ok, "no data.items array in %s", r.Body)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

// ids returns the ids of data.items.
func (r reply) ids(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, it := range r.items(t) {
		out = append(out, it["id"].(string))
	}
	return out
}

func (r reply) errorText(t testing.TB) string {
	t.Helper()
	msg, ok := r.object(t)["error"].(string)
	require.True(t, ok, "no error in %s", r.Body)
	return msg
}

// option changes a request before it is sent.
type option func(*http.Request)

func withHeader(name, value string) option {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func withBasic(user, pass string) option {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func withBearer(token string) option {
	return withHeader("Authorization", "Bearer "+token)
}

// call sends a request. A string body is sent as JSON, url.Values as a
// form, []byte as is, and anything else is marshalled to JSON.
func (c *crm) call(t testing.TB, method, path string, body any, opts ...option) reply {
	t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/json"
	case url.Values:
		rd, contentType = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// mustCreate posts body to path, requires a 201 and returns the new id.
func (c *crm) mustCreate(t testing.TB, path string, body any, opts ...option) string {
	t.Helper()
	r := c.call(t, http.MethodPost, path, body, opts...)
	require.Equal(t, http.StatusCreated, r.Status, "POST %s: %s", path, r.Body)
	id, ok := r.data(t)["id"].(string)
	require.True(t, ok, "no data.id in %s", r.Body)
	return id
}

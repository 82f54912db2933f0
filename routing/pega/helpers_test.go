package pega_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing/pega"
)

const (
	testToken    = "pega-inbound-token-5f1c"
	testUser     = "pega"
	testPassword = "pega-basic-pass-93ab"
)

// call is one Router call as recorded.
type call struct {
	Method string
	Arg    any
}

// recorder is a Router that records its calls and answers what it is told.
type recorder struct {
	mu    sync.Mutex
	calls []call
	// errs makes a method return an error.
	errs map[string]error
	// route is Route's answer.
	route pega.RouteResult
}

func newRecorder() *recorder {
	return &recorder{errs: map[string]error{}, route: pega.RouteResult{Identifying: true}}
}

func (r *recorder) record(method string, arg any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{method, arg})
	return r.errs[method]
}

func (r *recorder) setErr(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[method] = err
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) Route(_ context.Context, req pega.RouteRequest) (pega.RouteResult, error) {
	err := r.record("Route", req)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.route, err
}

func (r *recorder) SetQueues(_ context.Context, p pega.Presence) error {
	return r.record("SetQueues", p)
}
func (r *recorder) Offer(_ context.Context, o pega.Offer) error { return r.record("Offer", o) }
func (r *recorder) End(_ context.Context, ref pega.Ref) error   { return r.record("End", ref) }
func (r *recorder) LogOff(_ context.Context, ref pega.Ref) error {
	return r.record("LogOff", ref)
}
func (r *recorder) Transfer(_ context.Context, t pega.Transfer) error {
	return r.record("Transfer", t)
}
func (r *recorder) Requeue(_ context.Context, q pega.Requeue) error {
	return r.record("Requeue", q)
}
func (r *recorder) Resume(_ context.Context, ref pega.Ref) error {
	return r.record("Resume", ref)
}

var _ pega.Router = (*recorder)(nil)

// testServer is the endpoints on a real HTTP server.
type testServer struct {
	URL    string
	router *recorder
	logs   *logtest.Buffer
}

func newTestServer(tb testing.TB, cfg pega.Config) *testServer {
	tb.Helper()
	ts := &testServer{router: newRecorder(), logs: &logtest.Buffer{}}
	if cfg.BearerTokens == nil && cfg.Username == "" {
		cfg.BearerTokens = []crmsync.Secret{testToken}
		cfg.Username, cfg.Password = testUser, testPassword
	}
	cfg.Logger = slog.New(slog.NewTextHandler(ts.logs, nil))
	s, err := pega.New(ts.router, cfg)
	require.NoError(tb, err)
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(hs.Close)
	ts.URL = hs.URL
	return ts
}

// post sends body to path with the bearer token.
func (ts *testServer) post(tb testing.TB, path string, body []byte) routingtest.Answer {
	tb.Helper()
	return ts.do(tb, http.MethodPost, path, body, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+testToken)
	})
}

// do sends body to path, prep adding what the request needs (its
// credentials). The endpoints answer every request in JSON, so an empty
// answer fails the test.
func (ts *testServer) do(tb testing.TB, method, path string, body []byte, prep func(*http.Request)) routingtest.Answer {
	tb.Helper()
	req := routingtest.Request(tb, method, ts.URL+path, bytes.NewReader(body), "")
	req.Header.Set("Content-Type", "application/json")
	if prep != nil {
		prep(req)
	}
	a := routingtest.Do(tb, http.DefaultClient, req)
	require.NotEmpty(tb, a.Raw, "answer is not JSON: it is empty")
	return a
}

// example reads a spec example from testdata.
func example(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

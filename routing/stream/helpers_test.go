package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing/access"
)

const (
	systemToken = "sys-token-for-stream-tests"
	tokenSecret = "stream-tests-secret-0123456789"
	// patience bounds every blocking read, so a broken stream fails the
	// test instead of hanging it; nothing is asserted about speed.
	patience = 30 * time.Second
)

type fixture struct {
	tb     testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	s      *Streams
	srv    *httptest.Server
	tokens *access.AgentTokens
}

// newFixture gives a test Streams on its own prefix, served by a real
// HTTP server at /v1/agents/{id}/events.
func newFixture(tb testing.TB, mod ...func(*Config)) *fixture {
	tb.Helper()
	rdb := redistest.Client(tb)
	return newFixtureOn(tb, rdb, rdb, mod...)
}

// newFixtureOn is newFixture with Streams on its own client (through a
// proxy, say) while the test's own commands use direct.
func newFixtureOn(tb testing.TB, direct, streams redis.UniversalClient, mod ...func(*Config)) *fixture {
	tb.Helper()
	f := &fixture{
		tb:     tb,
		ctx:    context.Background(),
		rdb:    direct,
		prefix: routingtest.Prefix(tb, direct),
	}
	cfg := Config{Prefix: f.prefix}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(streams, cfg)
	require.NoError(tb, err)
	f.s = s
	tokens, err := access.NewAgentTokens(crmsync.Secret(tokenSecret))
	require.NoError(tb, err)
	f.tokens = tokens
	auth := &access.Authenticator{APITokens: []crmsync.Secret{systemToken}, Agents: tokens}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/agents/{id}/events", s.Handler(auth))
	mux.Handle("/any/{id}/events", s.Handler(auth))
	f.srv = httptest.NewServer(mux)
	// Cleanups run last first: end the streams, then stop the server,
	// which waits for every request to finish.
	tb.Cleanup(f.srv.Close)
	tb.Cleanup(s.Close)
	return f
}

// run starts Run until the test ends and waits for the subscription.
func (f *fixture) run() {
	f.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.s.Run(ctx) }()
	f.tb.Cleanup(func() {
		cancel()
		require.NoError(f.tb, <-done)
	})
	require.Eventually(f.tb, f.s.subscribed.Load, patience, 5*time.Millisecond, "Run never subscribed")
}

// luaPublish appends an event exactly as routing/engine.lua does.
func (f *fixture) luaPublish(agent, typ, data string) string {
	f.tb.Helper()
	const script = `
local prefix, agent, maxlen, typ, data = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local id = redis.call('XADD', prefix..'agent:'..agent..':events', 'MAXLEN', '~', maxlen, '*', 't', typ, 'd', data)
redis.call('PUBLISH', prefix..'agent-events', agent)
return id`
	id, err := f.rdb.Eval(f.ctx, script, []string{routingtest.AgentEvents(f.prefix, agent)},
		f.prefix, agent, 1000, typ, data).Text()
	require.NoError(f.tb, err)
	return id
}

func (f *fixture) publish(agent, typ string, data any) string {
	f.tb.Helper()
	id, err := f.s.Publish(f.ctx, agent, typ, data)
	require.NoError(f.tb, err)
	return id
}

// req builds a stream request for agent; edit sets headers or query.
func (f *fixture) req(ctx context.Context, agent string, edit ...func(*http.Request)) *http.Request {
	f.tb.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v1/agents/"+agent+"/events", nil)
	require.NoError(f.tb, err)
	r.Header.Set("Authorization", "Bearer "+f.tokens.Issue(agent))
	for _, e := range edit {
		e(r)
	}
	return r
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) {
		if tok == "" {
			r.Header.Del("Authorization")
			return
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
}

func header(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func query(k, v string) func(*http.Request) {
	return func(r *http.Request) {
		q := r.URL.Query()
		q.Set(k, v)
		r.URL.RawQuery = q.Encode()
	}
}

// do sends r and returns the answer, closed when the test ends.
func (f *fixture) do(r *http.Request) *http.Response {
	f.tb.Helper()
	resp, err := f.srv.Client().Do(r)
	require.NoError(f.tb, err)
	f.tb.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// apiError reads a JSON error answer.
func apiError(tb testing.TB, resp *http.Response) (code, field, msg string) {
	tb.Helper()
	require.Equal(tb, "application/json", resp.Header.Get("Content-Type"))
	var body struct {
		Error struct{ Code, Field, Message string }
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&body))
	return body.Error.Code, body.Error.Field, body.Error.Message
}

// client is a browser-like reader of one stream.
type client struct {
	tb     testing.TB
	resp   *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// sse is one block of the stream, up to its blank line.
type sse struct {
	ID      string
	HasID   bool
	Data    string
	Retry   string
	Comment string
	Other   []string // any other line: there should be none
}

// frameOf decodes the data line.
func (e sse) frame(tb testing.TB) (typ string, data map[string]any) {
	tb.Helper()
	var fr struct {
		Type string
		Data map[string]any
	}
	require.NoError(tb, json.Unmarshal([]byte(e.Data), &fr), "data line %q", e.Data)
	return fr.Type, fr.Data
}

// open connects and checks the stream's headers and its retry line.
func (f *fixture) open(agent string, edit ...func(*http.Request)) *client {
	f.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	f.tb.Cleanup(cancel)
	resp := f.do(f.req(ctx, agent, edit...))
	require.Equal(f.tb, http.StatusOK, resp.StatusCode)
	require.Equal(f.tb, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(f.tb, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(f.tb, "no", resp.Header.Get("X-Accel-Buffering"))
	c := &client{tb: f.tb, resp: resp, rd: bufio.NewReader(resp.Body), cancel: cancel}
	first := c.block()
	require.Equal(f.tb, sse{Retry: "2000"}, first)
	return c
}

// block reads the next block of lines.
func (c *client) block() sse {
	c.tb.Helper()
	var e sse
	for n := 0; ; n++ {
		line, err := c.rd.ReadString('\n')
		require.NoError(c.tb, err, "stream ended")
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if n == 0 {
				continue
			}
			return e
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "":
			e.Comment = v
		case "id":
			e.ID, e.HasID = v, true
		case "data":
			require.Empty(c.tb, e.Data, "one data line per event")
			e.Data = v
		case "retry":
			e.Retry = v
		default:
			e.Other = append(e.Other, line)
		}
	}
}

// next is the next event, skipping heartbeats.
func (c *client) next() sse {
	c.tb.Helper()
	for {
		e := c.block()
		if e.Data != "" || e.HasID || len(e.Other) > 0 {
			require.Empty(c.tb, e.Other, "unexpected lines")
			return e
		}
	}
}

// close drops the connection as a browser closing its tab does.
func (c *client) close() {
	c.cancel()
	_ = c.resp.Body.Close()
}

// ended reports that the server closed the stream: reading hits EOF.
func (c *client) ended() {
	c.tb.Helper()
	for {
		_, err := c.rd.ReadString('\n')
		if err != nil {
			require.ErrorIs(c.tb, err, io.EOF)
			return
		}
	}
}

// proxy is a TCP relay to Redis whose connections a test can cut, to
// play a network failure.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &proxy{ln: ln, target: target}
	go p.serve()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.cut()
	})
	return p
}

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
		go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
	}
}

// cut closes every connection made so far; new ones still go through.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

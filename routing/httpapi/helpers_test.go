package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

const apiToken = "test-api-token-0123"

type fixture struct {
	tb     testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	clock  *fakeclock.Clock
	e      *routing.Engine
	tokens *access.AgentTokens
	srv    *httptest.Server
	routes []string
}

// newFixture serves the API over real HTTP, on an engine with its own
// hash-tagged prefix and a fake clock.
func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	rdb := redistest.Client(tb)
	f := &fixture{
		tb:     tb,
		ctx:    context.Background(),
		rdb:    rdb,
		prefix: routingtest.Prefix(tb, rdb),
		clock:  routingtest.NewClock(),
	}
	e, err := routing.New(rdb, routing.Config{Prefix: f.prefix, Now: f.clock.Now, OfferTimeout: 30 * time.Second})
	require.NoError(tb, err)
	f.e = e
	f.tokens, err = access.NewAgentTokens(crmsync.Secret("agent-token-secret-0123456789"))
	require.NoError(tb, err)
	auth := &access.Authenticator{APITokens: []crmsync.Secret{apiToken}, Agents: f.tokens}
	mux := http.NewServeMux()
	NewHandler(e, auth, f.tokens, nil).Register(func(pattern string, h http.Handler) {
		f.routes = append(f.routes, pattern)
		mux.Handle(pattern, h)
	})
	f.srv = httptest.NewServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

// token is the agent's token.
func (f *fixture) token(agent string) string { return f.tokens.Issue(agent) }

// call sends a request with token as bearer ("" sends none); body is
// JSON-encoded unless it is a string, sent as is.
func (f *fixture) call(method, path, token string, body any) routingtest.Answer {
	f.tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(f.tb, err)
		rd = bytes.NewReader(j)
	}
	return routingtest.Do(f.tb, f.srv.Client(), routingtest.Request(f.tb, method, f.srv.URL+path, rd, token))
}

// ok calls and requires status want.
func (f *fixture) ok(want int, method, path, token string, body any) map[string]any {
	f.tb.Helper()
	a := f.call(method, path, token, body)
	require.Equal(f.tb, want, a.Status, "%s %s: %s", method, path, a.Raw)
	return a.Body
}

// setup builds a queue q1 (voice, chat) and agents sara and bob in it,
// available in that order (so sara has been idle longest), each taking one
// voice and two chats.
func (f *fixture) setup() {
	f.tb.Helper()
	f.ok(200, "PUT", "/v1/routing/queues/q1", apiToken, map[string]any{"name": "Support", "channels": []string{"voice", "chat"}})
	for _, a := range []string{"sara", "bob"} {
		f.ok(200, "PUT", "/v1/routing/agents/"+a, apiToken, map[string]any{
			"capacity": map[string]int{"voice": 1, "chat": 2}, "queues": []string{"q1"}, "presence": "available",
		})
		f.clock.Advance(time.Second)
	}
}

// dump is everything under the fixture's prefix, to show that nothing
// changed.
func (f *fixture) dump() map[string]string {
	f.tb.Helper()
	return redistest.Dump(f.tb, f.rdb, f.prefix)
}

func (f *fixture) conv(id string) *routing.Conversation {
	f.tb.Helper()
	c, err := f.e.GetConversation(f.ctx, id)
	require.NoError(f.tb, err)
	return c
}

func (f *fixture) agent(id string) *routing.Agent {
	f.tb.Helper()
	a, err := f.e.GetAgent(f.ctx, id)
	require.NoError(f.tb, err)
	return a
}

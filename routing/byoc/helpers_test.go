package byoc_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing/byoc"
)

// Salesforce-shaped ids.
const (
	flowID   = "300Hs00000ABCDE"
	fallback = "00GHs000001FaLl"
	salesQ   = "00GHs000001SaLe"
	voiceQ   = "00GHs000001VoIc"
)

type fixture struct {
	tb     testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	clock  *fakeclock.Clock
	sf     *sftest.Server
	logs   *logtest.Buffer
	r      *byoc.Router
}

// baseConfig routes queue "billing" by flow, queue "sales" to a queue,
// channel "voice" to another queue, and the rest by the channel setting.
func (f *fixture) baseConfig() byoc.Config {
	return byoc.Config{
		Prefix: f.prefix,
		Queues: map[string]byoc.Way{
			"billing": {FlowID: flowID, FallbackQueueID: fallback, Attributes: map[string]string{"Team": "billing"}},
			"sales":   {QueueID: salesQ},
		},
		Channels: map[string]byoc.Way{"voice": {QueueID: voiceQ}},
		Now:      f.clock.Now,
		Logger:   slog.New(slog.NewTextHandler(f.logs, nil)),
	}
}

func newFixture(tb testing.TB, mod ...func(*byoc.Config)) *fixture {
	tb.Helper()
	rdb := redistest.Client(tb)
	f := &fixture{
		tb: tb, ctx: context.Background(), rdb: rdb,
		prefix: routingtest.Prefix(tb, rdb) + "byoc:",
		clock:  routingtest.NewClock(),
		logs:   &logtest.Buffer{},
	}
	f.sf = sftest.Start(tb, f.clock.Now)
	f.r = f.router(mod...)
	return f
}

// router returns another Router on the fixture's Redis, prefix, clock and
// Salesforce, with a client of its own.
func (f *fixture) router(mod ...func(*byoc.Config)) *byoc.Router {
	f.tb.Helper()
	cfg := f.baseConfig()
	for _, m := range mod {
		m(&cfg)
	}
	sfc, err := salesforce.New(f.sf.ClientConfig(f.tb, f.clock.Now))
	require.NoError(f.tb, err)
	r, err := byoc.New(f.rdb, sfc, cfg)
	require.NoError(f.tb, err)
	return r
}

func (f *fixture) delegate(conv string, typ salesforce.RoutingType, mod ...func(*byoc.Request)) {
	f.tb.Helper()
	req := byoc.Request{Conversation: conv, RoutingType: typ}
	for _, m := range mod {
		m(&req)
	}
	require.NoError(f.tb, f.r.Delegate(f.ctx, req))
}

func (f *fixture) pending() []byoc.Pending {
	f.tb.Helper()
	p, err := f.r.Pending(f.ctx)
	require.NoError(f.tb, err)
	return p
}

func (f *fixture) stats() byoc.Stats {
	f.tb.Helper()
	s, err := f.r.Stats(f.ctx)
	require.NoError(f.tb, err)
	return s
}

// keys counts the keys under the fixture's prefix.
func (f *fixture) keys() int {
	f.tb.Helper()
	ks, err := f.rdb.Keys(f.ctx, f.prefix+"*").Result()
	require.NoError(f.tb, err)
	return len(ks)
}

// problems returns the refused calls the Salesforce side saw.
func (f *fixture) problems() []string {
	var out []string
	for _, c := range f.sf.Calls() {
		if c.Problem != "" && c.Status != 503 && c.Status != 404 {
			out = append(out, c.Problem)
		}
	}
	return out
}

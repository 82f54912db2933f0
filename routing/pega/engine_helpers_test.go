package pega_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/pega"
)

// engineFixture is the endpoints on a real HTTP server, backed by an
// EngineRouter over a real engine on its own key prefix and a fake clock.
type engineFixture struct {
	*testServer
	tb     testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	clock  *fakeclock.Clock
	e      *routing.Engine
	router *pega.EngineRouter
	seen   *routingtest.Cursor // what outbox has returned
}

func newEngineFixture(tb testing.TB, cfg pega.EngineConfig) *engineFixture {
	tb.Helper()
	rdb := redistest.Client(tb)
	f := &engineFixture{
		tb:     tb,
		ctx:    context.Background(),
		rdb:    rdb,
		prefix: routingtest.Prefix(tb, rdb),
		clock:  fakeclock.New(time.UnixMilli(1_764_748_800_000)),
		seen:   routingtest.NewCursor(rdb),
	}
	e, err := routing.New(rdb, routing.Config{Prefix: f.prefix, Now: f.clock.Now, OfferTimeout: 30 * time.Second})
	require.NoError(tb, err)
	f.e = e
	f.router = pega.NewEngineRouter(e, cfg)
	f.testServer = serveRouter(tb, f.router)
	return f
}

// queue creates a queue serving chat (and voice, so a queue that serves
// more than Pega's channel is covered).
func (f *engineFixture) queue(id string, channels ...string) {
	f.tb.Helper()
	if len(channels) == 0 {
		channels = []string{"chat", "voice"}
	}
	require.NoError(f.tb, f.e.PutQueue(f.ctx, routing.Queue{ID: id, Name: id, Channels: channels}))
}

// agent creates an available agent with chat capacity 1 in queues, and
// moves the clock so agents made one after the other are idle in order.
func (f *engineFixture) agent(id string, queues ...string) {
	f.tb.Helper()
	require.NoError(f.tb, f.e.PutAgent(f.ctx, routing.AgentSpec{
		ID: id, Capacity: map[string]int{"chat": 1}, Queues: queues, Presence: routing.Available,
	}))
	f.clock.Advance(time.Second)
}

// conv creates a conversation on chat, as Pega's route request would.
func (f *engineFixture) conv(id, queue string) *routing.Conversation {
	f.tb.Helper()
	c, err := f.e.CreateConversation(f.ctx, routing.NewConversation{ID: id, Queue: queue, Channel: "chat", Source: pega.SourceName})
	require.NoError(f.tb, err)
	f.clock.Advance(time.Second)
	return c
}

// offered: conversation id in queue is offered to agent, who must be the
// queue's only free agent.
func (f *engineFixture) offered(id, queue, agent string) {
	f.tb.Helper()
	c := f.conv(id, queue)
	require.Equal(f.tb, routing.StateOffered, c.State)
	require.Equal(f.tb, agent, c.OfferedTo)
}

// held: agent holds conversation id of queue.
func (f *engineFixture) held(id, queue, agent string) {
	f.tb.Helper()
	f.offered(id, queue, agent)
	require.NoError(f.tb, f.e.Accept(f.ctx, id, agent))
	f.clock.Advance(time.Second)
}

func (f *engineFixture) getConv(id string) *routing.Conversation {
	f.tb.Helper()
	c, err := f.e.GetConversation(f.ctx, id)
	require.NoError(f.tb, err)
	return c
}

func (f *engineFixture) getAgent(id string) *routing.Agent {
	f.tb.Helper()
	a, err := f.e.GetAgent(f.ctx, id)
	require.NoError(f.tb, err)
	return a
}

// convLine is a conversation in one line: state, then who has it, or its
// place in line.
func (f *engineFixture) convLine(id string) string {
	f.tb.Helper()
	c, err := f.e.GetConversation(f.ctx, id)
	if err != nil {
		return "error " + err.Error()
	}
	s := string(c.State)
	switch c.State {
	case routing.StateWaiting:
		s += " " + strconv.Itoa(c.Position)
	case routing.StateOffered:
		s += " " + c.OfferedTo
	case routing.StateAssigned, routing.StateEnded:
		s += " " + c.Agent
		if t := c.Transfer; t != nil {
			if t.ToAgent != "" {
				s += " xfer " + t.ToAgent
			} else {
				s += " xfer q:" + t.ToQueue
			}
			if c.OfferedTo != "" {
				s += " offered " + c.OfferedTo
			} else {
				s += " waiting " + strconv.Itoa(c.Position)
			}
		}
	}
	return s + " @" + c.Queue
}

// agentLine is an agent in one line: presence, chat load/capacity, queues.
func (f *engineFixture) agentLine(id string) string {
	f.tb.Helper()
	a, err := f.e.GetAgent(f.ctx, id)
	if err != nil {
		return "error " + err.Error()
	}
	return string(a.Presence) + " chat " + strconv.Itoa(a.Load["chat"]) + "/" + strconv.Itoa(a.Capacity["chat"]) +
		" [" + strings.Join(a.Queues, " ") + "]"
}

// outbox is the outbox since the last call, one line an event: name,
// conversation, agent, and the reason when there is one.
func (f *engineFixture) outbox() []string {
	f.tb.Helper()
	var out []string
	for _, m := range f.seen.Read(f.tb, f.e.OutboxKey()) {
		ev, err := routing.ParseOutboxEntry(m)
		require.NoError(f.tb, err)
		s := ev.Event + " " + or(ev.Conversation, "-") + " " + or(ev.Agent, "-")
		if ev.Reason != "" {
			s += " " + ev.Reason
		}
		out = append(out, s)
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dump is everything under the fixture's prefix, to show that nothing
// changed.
func (f *engineFixture) dump() map[string]string {
	f.tb.Helper()
	return redistest.Dump(f.tb, f.rdb, f.prefix)
}

// event posts a routing event and returns its answer.
func (f *engineFixture) event(body []byte) routingtest.Answer {
	f.tb.Helper()
	return f.post(f.tb, pega.EventsPath, body)
}

// route posts a route request and returns its answer.
func (f *engineFixture) route(body []byte) routingtest.Answer {
	f.tb.Helper()
	return f.post(f.tb, pega.RoutePath, body)
}

package routing

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
)

type fixture struct {
	tb     testing.TB
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	clock  *fakeclock.Clock
	e      *Engine
	seen   *routingtest.Cursor // what outbox and stream have returned
}

// newFixture gives a test an Engine on its own prefix and a fake clock.
func newFixture(tb testing.TB, mod ...func(*Config)) *fixture {
	tb.Helper()
	rdb := redistest.Client(tb)
	f := &fixture{
		tb:     tb,
		ctx:    context.Background(),
		rdb:    rdb,
		prefix: routingtest.Prefix(tb, rdb),
		clock:  routingtest.NewClock(),
		seen:   routingtest.NewCursor(rdb),
	}
	f.e = f.engine(mod...)
	return f
}

// engine returns another Engine on the fixture's Redis, prefix and clock.
func (f *fixture) engine(mod ...func(*Config)) *Engine {
	f.tb.Helper()
	cfg := Config{Prefix: f.prefix, Now: f.clock.Now, OfferTimeout: 30 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := New(f.rdb, cfg)
	require.NoError(f.tb, err)
	return e
}

func (f *fixture) queue(id string, mod ...func(*Queue)) {
	f.tb.Helper()
	q := Queue{ID: id, Name: id, Channels: []string{"voice", "chat"}}
	for _, m := range mod {
		m(&q)
	}
	require.NoError(f.tb, f.e.PutQueue(f.ctx, q))
}

func (f *fixture) agent(id string, p Presence, queues ...string) {
	f.tb.Helper()
	require.NoError(f.tb, f.e.PutAgent(f.ctx, AgentSpec{
		ID: id, Capacity: map[string]int{"voice": 1, "chat": 2}, Queues: queues, Presence: p,
	}))
}

func (f *fixture) conv(id, queue, ch string, mod ...func(*NewConversation)) *Conversation {
	f.tb.Helper()
	n := NewConversation{ID: id, Queue: queue, Channel: ch, Source: "api", Session: "chat-" + id,
		Attributes: map[string]string{"lang": "en"}}
	for _, m := range mod {
		m(&n)
	}
	c, err := f.e.CreateConversation(f.ctx, n)
	require.NoError(f.tb, err)
	return c
}

func (f *fixture) getConv(id string) *Conversation {
	f.tb.Helper()
	c, err := f.e.GetConversation(f.ctx, id)
	require.NoError(f.tb, err)
	return c
}

func (f *fixture) getAgent(id string) *Agent {
	f.tb.Helper()
	a, err := f.e.GetAgent(f.ctx, id)
	require.NoError(f.tb, err)
	return a
}

func (f *fixture) tick() int {
	f.tb.Helper()
	n, err := f.e.Tick(f.ctx)
	require.NoError(f.tb, err)
	return n
}

// outbox returns the outbox events since the last call.
func (f *fixture) outbox() []OutboxEvent {
	f.tb.Helper()
	evs, err := parseAll(f.seen.Read(f.tb, f.e.OutboxKey()))
	require.NoError(f.tb, err)
	return evs
}

// agentEvent is one entry of an agent's stream.
type agentEvent struct {
	Type string
	Data map[string]any
}

// stream returns the agent's stream entries since the last call.
func (f *fixture) stream(agent string) []agentEvent {
	f.tb.Helper()
	var out []agentEvent
	for _, m := range f.seen.Read(f.tb, routingtest.AgentEvents(f.prefix, agent)) {
		var d map[string]any
		require.NoError(f.tb, json.Unmarshal([]byte(m.Values["d"].(string)), &d))
		out = append(out, agentEvent{Type: m.Values["t"].(string), Data: d})
	}
	return out
}

// drain forgets every event so far.
func (f *fixture) drain(agents ...string) {
	f.tb.Helper()
	f.outbox()
	for _, a := range agents {
		f.stream(a)
	}
}

// dump is everything under the fixture's prefix, for "nothing changed".
func (f *fixture) dump() map[string]string {
	f.tb.Helper()
	return redistest.Dump(f.tb, f.rdb, f.prefix)
}

// summary describes conversations ("c1") and agents ("@sara") in one
// line each, for tables of states.
func (f *fixture) summary(ids ...string) map[string]string {
	f.tb.Helper()
	out := map[string]string{}
	for _, id := range ids {
		if a, ok := strings.CutPrefix(id, "@"); ok {
			out[id] = f.agentLine(a)
			continue
		}
		out[id] = f.convLine(id)
	}
	return out
}

func (f *fixture) agentLine(id string) string {
	a := f.getAgent(id)
	return string(a.Presence) + " voice " + itoa(a.Load["voice"]) + " chat " + itoa(a.Load["chat"])
}

func (f *fixture) convLine(id string) string {
	c, err := f.e.GetConversation(f.ctx, id)
	if err != nil {
		return "error " + err.Error()
	}
	s := string(c.State)
	switch {
	case c.State == StateWaiting:
		s += " " + itoa(c.Position)
	case c.State == StateOffered:
		s += " " + c.OfferedTo
	case c.State == StateAssigned:
		s += " " + c.Agent
		if t := c.Transfer; t != nil {
			if t.ToAgent != "" {
				s += " xfer " + t.ToAgent
			} else {
				s += " xfer q:" + t.ToQueue
				if c.OfferedTo != "" {
					s += " offered " + c.OfferedTo
				} else {
					s += " " + itoa(c.Position)
				}
			}
		}
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func outboxLines(evs []OutboxEvent) []string {
	var out []string
	for _, e := range evs {
		conv, agent := e.Conversation, e.Agent
		if conv == "" {
			conv = "-"
		}
		if agent == "" {
			agent = "-"
		}
		s := e.Event + " " + conv + " " + agent
		if e.Reason != "" {
			s += " " + e.Reason
		}
		if e.Event == EventLoggedOff {
			s += " [" + strings.Join(e.Conversations, ",") + "]"
		}
		out = append(out, s)
	}
	return out
}

func streamLines(evs []agentEvent) []string {
	var out []string
	for _, e := range evs {
		s := e.Type
		if c, ok := e.Data["conversation"].(string); ok {
			s += " " + c
		}
		if p, ok := e.Data["presence"].(string); ok {
			s += " " + p
		}
		if r, ok := e.Data["reason"].(string); ok {
			s += " " + r
		}
		if tr, ok := e.Data["transfer"].(bool); ok && tr {
			s += " transfer"
		}
		out = append(out, s)
	}
	return out
}

package pull

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
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
	s      *Store
	seen   *routingtest.Cursor // what events has returned of each agent's stream
}

// newFixture gives a test a Store on its own prefix and a fake clock.
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
	f.s = f.store(mod...)
	return f
}

// store returns another Store on the fixture's Redis, prefix and clock,
// as a second crmsync process would have.
func (f *fixture) store(mod ...func(*Config)) *Store {
	f.tb.Helper()
	cfg := Config{Prefix: f.prefix, Now: f.clock.Now}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(f.rdb, cfg)
	require.NoError(f.tb, err)
	return s
}

func (f *fixture) list(id string, channels ...string) {
	f.tb.Helper()
	if channels == nil {
		channels = []string{}
	}
	require.NoError(f.tb, f.s.PutList(f.ctx, List{ID: id, Name: "List " + id, Channels: channels}))
}

func (f *fixture) subscribe(agent string, lists ...string) {
	f.tb.Helper()
	require.NoError(f.tb, f.s.Subscribe(f.ctx, agent, lists...))
}

func (f *fixture) publish(id, list string) *Request {
	f.tb.Helper()
	r, err := f.s.Publish(f.ctx, NewRequest{ID: id, List: list, Channel: "fb", Session: "chat-" + id,
		Attributes: map[string]string{"lang": "en"}})
	require.NoError(f.tb, err)
	return r
}

func (f *fixture) join(id, agent string) *Request {
	f.tb.Helper()
	r, err := f.s.Join(f.ctx, id, agent)
	require.NoError(f.tb, err)
	return r
}

func (f *fixture) leave(id, agent string) *Request {
	f.tb.Helper()
	r, err := f.s.Leave(f.ctx, id, agent)
	require.NoError(f.tb, err)
	return r
}

func (f *fixture) get(id string) *Request {
	f.tb.Helper()
	r, err := f.s.GetRequest(f.ctx, id)
	require.NoError(f.tb, err)
	return r
}

func (f *fixture) seq(list string) int64 {
	f.tb.Helper()
	l, err := f.s.GetList(f.ctx, list)
	require.NoError(f.tb, err)
	return l.Seq
}

// event is one entry of an agent's stream, its data decoded.
type event struct {
	ID   string
	Type string
	Data eventData
}

type eventData struct {
	List         string `json:"list"`
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"`
	State        State  `json:"state"`
	Seq          *int64 `json:"seq"`
}

// events reads the agent's stream with XRANGE, past what the last call
// saw, exactly as routing/stream would.
func (f *fixture) events(agent string) []event {
	f.tb.Helper()
	msgs := f.seen.Read(f.tb, f.stream(agent))
	out := make([]event, 0, len(msgs))
	for _, m := range msgs {
		require.Len(f.tb, m.Values, 2, "an entry has the fields t and d only")
		typ, _ := m.Values["t"].(string)
		d, _ := m.Values["d"].(string)
		e := event{ID: m.ID, Type: typ}
		require.NoError(f.tb, json.Unmarshal([]byte(d), &e.Data), "data of %s: %s", typ, d)
		require.NotNil(f.tb, e.Data.Seq, "every pull event carries a seq: %s", d)
		out = append(out, e)
	}
	return out
}

// stream is the key of the agent's event stream.
func (f *fixture) stream(agent string) string { return routingtest.AgentEvents(f.prefix, agent) }

// told summarises an agent's new events as "Type STATE" (or "Type" when
// the event has no state).
func (f *fixture) told(agent string) []string {
	f.tb.Helper()
	out := []string{}
	for _, e := range f.events(agent) {
		s := e.Type
		if e.Data.State != "" {
			s += " " + string(e.Data.State)
		}
		out = append(out, s)
	}
	return out
}

// skip marks every event so far as seen.
func (f *fixture) skip(agents ...string) {
	f.tb.Helper()
	for _, a := range agents {
		f.events(a)
	}
}

func code(err error) string { return crmsync.ErrorCode(err) }

func field(err error) string {
	var e *crmsync.Error
	if !errors.As(err, &e) {
		return ""
	}
	return e.Field
}

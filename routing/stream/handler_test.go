package stream

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing"
)

// Events from Go and from a routing script reach the browser in order, as
// the exact lines the adapter page parses.
func TestStreamShape(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.publish("sara", "Offer", map[string]string{"conversation": "old"}) // before connecting: not sent
	c := f.open("sara")

	want := []sse{}
	id := f.publish("sara", "CRM_Record_Pop", map[string]string{"recordUrl": "https://crm.example.com/records/42"})
	want = append(want, sse{ID: id, HasID: true, Data: `{"type":"CRM_Record_Pop","data":{"recordUrl":"https://crm.example.com/records/42"}}`})
	id = f.luaPublish("sara", "Offer", `{"conversation":"c1","queue":"q1","channel":"chat","expires_at":1733130030000,"transfer":false,"from_agent":""}`)
	want = append(want, sse{ID: id, HasID: true, Data: `{"type":"Offer","data":{"conversation":"c1","queue":"q1","channel":"chat","expires_at":1733130030000,"transfer":false,"from_agent":""}}`})
	id = f.publish("sara", "New_Chat", []byte("{\n \"chat_id\": 73522,\n \"note\": \"a\\nb <i>\"\n}"))
	want = append(want, sse{ID: id, HasID: true, Data: `{"type":"New_Chat","data":{"chat_id":73522,"note":"a\nb <i>"}}`})
	id = f.luaPublish("sara", "Presence", `{"presence":"away","reason":"expired_offers"}`)
	want = append(want, sse{ID: id, HasID: true, Data: `{"type":"Presence","data":{"presence":"away","reason":"expired_offers"}}`})

	for i, w := range want {
		assert.Equal(t, w, c.next(), "event %d", i)
	}
}

func TestSinceStart(t *testing.T) {
	f := newFixture(t)
	first := f.publish("sara", "Offer", map[string]int{"n": 1})
	f.luaPublish("sara", "Offer", `{"n":2}`)
	c := f.open("sara", query("since", "start"))
	e := c.next()
	assert.Equal(t, first, e.ID)
	_, d := e.frame(t)
	assert.EqualValues(t, 1, d["n"])
	_, d = c.next().frame(t)
	assert.EqualValues(t, 2, d["n"])
}

// A client that drops and reconnects with the last id it saw gets every
// later event exactly once, including those sent while it was away.
func TestResume(t *testing.T) {
	tests := []struct {
		name string
		with func(id string) func(*http.Request)
	}{
		{"Last-Event-ID header", func(id string) func(*http.Request) { return header("Last-Event-ID", id) }},
		{"last_event_id query", func(id string) func(*http.Request) { return query("last_event_id", id) }},
		{"header wins over query", func(id string) func(*http.Request) {
			return func(r *http.Request) {
				header("Last-Event-ID", id)(r)
				query("last_event_id", "1-0")(r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.run()
			n := 0
			send := func() {
				n++
				if n%2 == 0 {
					f.luaPublish("sara", "List_Update", `{"n":`+strconv.Itoa(n)+`}`)
					return
				}
				f.publish("sara", "List_Update", map[string]int{"n": n})
			}
			seen := func(c *client) (string, int) {
				e := c.next()
				typ, d := e.frame(t)
				require.Equal(t, "List_Update", typ)
				return e.ID, int(d["n"].(float64))
			}

			c := f.open("sara")
			for range 5 {
				send()
			}
			var last string
			for want := 1; want <= 3; want++ {
				id, got := seen(c)
				require.Equal(t, want, got)
				last = id
			}
			c.close()
			require.Eventually(t, func() bool { return f.s.open("sara") == 0 }, patience, 5*time.Millisecond)
			for range 3 {
				send() // while away
			}

			c = f.open("sara", tt.with(last))
			for want := 4; want <= 8; want++ {
				_, got := seen(c)
				require.Equal(t, want, got)
			}
			send() // live again
			_, got := seen(c)
			require.Equal(t, 9, got)
		})
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Poll = 10 * time.Millisecond })
	f.publish("sara", "Offer", map[string]string{"conversation": "c1"})
	tests := []struct {
		name   string
		edit   func(*http.Request)
		status int
	}{
		{"no token", bearer(""), 401},
		{"unknown token", bearer("nope"), 401},
		{"basic scheme", header("Authorization", "Basic c2FyYTp4"), 401},
		// Agent tokens are checked against the agent in the path, so
		// another agent's token is simply not valid here.
		{"another agent's token", bearer(f.tokens.Issue("bob")), 401},
		{"another agent's token in the query", func(r *http.Request) {
			r.Header.Del("Authorization")
			query("access_token", f.tokens.Issue("bob"))(r)
		}, 401},
		{"own token", bearer(f.tokens.Issue("sara")), 200},
		{"system token", bearer(systemToken), 200},
		{"own token in the query", func(r *http.Request) {
			r.Header.Del("Authorization")
			query("access_token", f.tokens.Issue("sara"))(r)
		}, 200},
		{"system token in the query", func(r *http.Request) {
			r.Header.Del("Authorization")
			query("access_token", systemToken)(r)
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == http.StatusOK {
				c := f.open("sara", tt.edit, query("since", "start"))
				typ, d := c.next().frame(t)
				assert.Equal(t, "Offer", typ)
				assert.Equal(t, "c1", d["conversation"])
				c.close()
				return
			}
			resp := f.do(f.req(t.Context(), "sara", tt.edit))
			require.Equal(t, tt.status, resp.StatusCode)
			assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			code, _, msg := apiError(t, resp)
			assert.Equal(t, "unauthorized", code)
			assert.NotContains(t, msg, f.tokens.Issue("bob"), "no token in errors")
		})
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		agent  string
		edit   func(*http.Request)
		status int
		field  string
	}{
		{"agent id with a quote", "sa'ra", nil, 400, "id"},
		{"agent id starting with a dot", ".sara", nil, 400, "id"},
		{"agent id too long", fmt.Sprintf("%0129d", 1), nil, 400, "id"},
		{"malformed Last-Event-ID", "sara", header("Last-Event-ID", "yesterday"), 400, "Last-Event-ID"},
		{"Last-Event-ID without a sequence", "sara", header("Last-Event-ID", "1733130000000"), 400, "Last-Event-ID"},
		{"Last-Event-ID out of range", "sara", header("Last-Event-ID", "99999999999999999999-0"), 400, "Last-Event-ID"},
		{"malformed last_event_id", "sara", query("last_event_id", "1-x"), 400, "last_event_id"},
		{"unknown since", "sara", query("since", "yesterday"), 400, "since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edits := []func(*http.Request){}
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			resp := f.do(f.req(t.Context(), tt.agent, edits...))
			require.Equal(t, tt.status, resp.StatusCode)
			code, field, msg := apiError(t, resp)
			assert.Equal(t, "invalid", code)
			assert.Equal(t, tt.field, field)
			assert.NotEmpty(t, msg)
			assert.Zero(t, f.s.open(tt.agent), "no stream opened")
		})
	}

	t.Run("method", func(t *testing.T) {
		r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+"/any/sara/events", nil)
		require.NoError(t, err)
		resp := f.do(r)
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, http.MethodGet, resp.Header.Get("Allow"))
	})
}

// Without Run nothing wakes the connection; the poll still delivers.
func TestPollWithoutRun(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Poll = 20 * time.Millisecond
		c.Heartbeat = time.Hour
	})
	c := f.open("sara")
	id := f.publish("sara", "Offer", map[string]string{"conversation": "c1"})
	// next blocks until the poll delivers; the request's deadline
	// (patience) fails the test if it never does.
	assert.Equal(t, id, c.next().ID)
	id = f.luaPublish("sara", "Offer", `{"conversation":"c2"}`)
	assert.Equal(t, id, c.next().ID)
}

// With Run subscribed the connection does not poll at all (Poll is an
// hour), so an event that arrives was woken by the pub/sub message.
func TestWakeUp(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Poll = time.Hour
		c.Heartbeat = time.Hour
	})
	f.run()
	a := f.open("sara")
	b := f.open("sara")
	other := f.open("bob")
	for i := range 3 {
		id := f.luaPublish("sara", "Offer", `{"n":`+strconv.Itoa(i)+`}`)
		assert.Equal(t, id, a.next().ID)
		assert.Equal(t, id, b.next().ID)
	}
	id := f.publish("bob", "Offer", map[string]int{"n": 9})
	assert.Equal(t, id, other.next().ID)
}

func TestGap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxLen = 10 })
	first := f.publish("sara", "Offer", map[string]int{"n": 0})
	// MAXLEN ~ trims whole nodes of the stream (100 entries by default),
	// so write a few nodes' worth.
	for i := 1; i < 350; i++ {
		f.publish("sara", "Offer", map[string]int{"n": i})
	}
	kept, err := f.rdb.XRangeN(f.ctx, f.s.Key("sara"), "-", "+", 1).Result()
	require.NoError(t, err)
	require.NotEqual(t, first, kept[0].ID, "the first entry was trimmed")

	c := f.open("sara", header("Last-Event-ID", first))
	gap := c.next()
	assert.False(t, gap.HasID, "a gap has no id, so a reconnect still starts after the client's last event")
	typ, d := gap.frame(t)
	assert.Equal(t, GapType, typ)
	assert.Equal(t, map[string]any{"last_event_id": first, "oldest_id": kept[0].ID}, d)
	assert.Equal(t, kept[0].ID, c.next().ID, "then everything kept")

	t.Run("no gap from a kept entry", func(t *testing.T) {
		c := f.open("sara", query("last_event_id", kept[0].ID))
		typ, d := c.next().frame(t)
		assert.Equal(t, "Offer", typ)
		assert.NotNil(t, d["n"])
	})
	t.Run("no gap from the start", func(t *testing.T) {
		c := f.open("sara", query("since", "start"))
		e := c.next()
		assert.Equal(t, kept[0].ID, e.ID)
	})
}

func TestLimitPerAgent(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPerAgent = 2 })
	a := f.open("sara")
	f.open("sara")
	resp := f.do(f.req(t.Context(), "sara"))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	code, field, msg := apiError(t, resp)
	assert.Equal(t, "too_many_requests", code)
	assert.Equal(t, "id", field)
	assert.Contains(t, msg, "sara")

	f.open("bob") // other agents are not affected

	a.close()
	require.Eventually(t, func() bool { return f.s.open("sara") < 2 }, patience, 5*time.Millisecond)
	f.open("sara")
}

func TestHeartbeat(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	c := f.open("sara")
	assert.Equal(t, sse{Comment: "ping"}, c.block())
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	c := f.open("sara")
	f.s.Close()
	c.ended()
	resp := f.do(f.req(t.Context(), "sara"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	code, _, _ := apiError(t, resp)
	assert.Equal(t, "unavailable", code)
}

// Run subscribes again after its connection drops, and what was
// published meanwhile still arrives (polling is off, so only a wake-up
// can deliver it).
func TestRunResubscribes(t *testing.T) {
	direct := redistest.Client(t)
	opts := redistest.Options(t)
	p := newProxy(t, opts.Addr)
	opts.Addr = p.ln.Addr().String()
	viaProxy := redis.NewClient(opts)
	t.Cleanup(func() { _ = viaProxy.Close() })

	f := newFixtureOn(t, direct, viaProxy, func(c *Config) {
		c.Poll = time.Hour
		c.Heartbeat = time.Hour
	})
	f.run()
	c := f.open("sara")
	id := f.publish("sara", "Offer", map[string]int{"n": 1})
	require.Equal(t, id, c.next().ID)

	for round := 2; round <= 3; round++ {
		p.cut()
		require.Eventually(t, func() bool { return !f.s.subscribed.Load() }, patience, time.Millisecond)
		// Written past the Streams' client, while it is unsubscribed.
		id = f.luaPublish("sara", "Offer", `{"n":`+strconv.Itoa(round)+`}`)
		assert.Equal(t, id, c.next().ID)
	}
}

// The routing engine's own scripts publish to the stream this package
// serves: an offer made by the engine reaches the agent's browser.
func TestEngineOffer(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Poll = time.Hour; c.Heartbeat = time.Hour })
	f.run()
	e, err := routing.New(f.rdb, routing.Config{
		Prefix: f.prefix, StreamPrefix: f.prefix,
		Now: func() time.Time { return routingtest.Start },
	})
	require.NoError(t, err)
	require.NoError(t, e.PutQueue(f.ctx, routing.Queue{ID: "q1", Name: "q1", Channels: []string{"chat"}}))
	c := f.open("sara")
	require.NoError(t, e.PutAgent(f.ctx, routing.AgentSpec{
		ID: "sara", Capacity: map[string]int{"chat": 1}, Queues: []string{"q1"}, Presence: routing.Available,
	}))
	_, err = e.CreateConversation(f.ctx, routing.NewConversation{ID: "c1", Queue: "q1", Channel: "chat", Source: "api"})
	require.NoError(t, err)

	for {
		ev := c.next()
		require.True(t, ev.HasID)
		typ, d := ev.frame(t)
		if typ != "Offer" {
			continue // whatever else the engine tells the agent first
		}
		assert.Equal(t, "c1", d["conversation"])
		assert.Equal(t, "q1", d["queue"])
		assert.Equal(t, "chat", d["channel"])
		return
	}
}

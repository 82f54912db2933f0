package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

// outboxEvents returns the outbox's event names, oldest first.
func (f *fixture) outboxEvents() []string {
	f.tb.Helper()
	msgs, err := f.rdb.XRange(f.ctx, f.e.OutboxKey(), "-", "+").Result()
	require.NoError(f.tb, err)
	var out []string
	for _, m := range msgs {
		ev, err := routing.ParseOutboxEntry(m)
		require.NoError(f.tb, err)
		s := ev.Event + " " + ev.Conversation
		if ev.Agent != "" {
			s += " " + ev.Agent
		}
		out = append(out, s)
	}
	return out
}

// TestPushFlow drives a whole push-mode conversation over HTTP: offered to
// the longest idle agent, declined, offered to the other, accepted,
// transferred to a queue, accepted there, ended.
func TestPushFlow(t *testing.T) {
	f := newFixture(t)
	f.setup()
	sara, bob := f.token("sara"), f.token("bob")

	created := f.call("POST", "/v1/routing/conversations", apiToken, map[string]any{
		"id": "c1", "queue": "q1", "channel": "voice", "session": "call-103646",
		"attributes": map[string]string{"lang": "en"},
	})
	require.Equal(t, 201, created.Status, created.Raw)
	assert.Equal(t, "/v1/routing/conversations/c1", created.Header.Get("Location"))
	c := created.Body
	assert.Equal(t, "offered", c["state"])
	assert.Equal(t, "sara", c["offered_to"], "sara has been idle longest")
	assert.Equal(t, "call-103646", c["session"])
	assert.Equal(t, map[string]any{"lang": "en"}, c["attributes"])
	assert.NotEmpty(t, c["offer_expires"])

	// Sara's agent view shows the offer; her token acts as her.
	a := f.ok(200, "GET", "/v1/routing/agents/sara", sara, nil)
	require.Len(t, a["offers"], 1)
	assert.Equal(t, "c1", a["offers"].([]any)[0].(map[string]any)["conversation"])
	assert.Equal(t, map[string]any{"voice": float64(1), "chat": float64(0)}, a["load"], "the offer reserves capacity")

	// Sara declines without naming herself: it goes to bob.
	c = f.ok(200, "POST", "/v1/routing/conversations/c1/decline", sara, nil)
	assert.Equal(t, "offered", c["state"])
	assert.Equal(t, "bob", c["offered_to"])
	assert.Equal(t, float64(0), f.ok(200, "GET", "/v1/routing/agents/sara", sara, nil)["load"].(map[string]any)["voice"])

	c = f.ok(200, "POST", "/v1/routing/conversations/c1/accept", bob, map[string]any{"agent": "bob"})
	assert.Equal(t, "assigned", c["state"])
	assert.Equal(t, "bob", c["agent"])
	assert.Nil(t, c["offered_to"])
	a = f.ok(200, "GET", "/v1/routing/agents/bob", bob, nil)
	assert.Equal(t, []any{"c1"}, a["conversations"])

	// Past sara's decline cooldown, bob sends it back to the queue; sara
	// is the only other agent there.
	f.clock.Advance(15 * time.Second)
	_, err := f.e.Tick(f.ctx)
	require.NoError(t, err)
	c = f.ok(200, "POST", "/v1/routing/conversations/c1/transfer", bob, map[string]any{"to_queue": "q1"})
	assert.Equal(t, "assigned", c["state"], "bob holds it until someone accepts")
	assert.Equal(t, "bob", c["agent"])
	assert.Equal(t, map[string]any{"to_queue": "q1"}, c["transfer"])
	assert.Equal(t, "sara", c["offered_to"])
	a = f.ok(200, "GET", "/v1/routing/agents/sara", sara, nil)
	require.Len(t, a["offers"], 1)
	offer := a["offers"].([]any)[0].(map[string]any)
	assert.Equal(t, true, offer["transfer"])
	assert.Equal(t, "bob", offer["from_agent"])

	c = f.ok(200, "POST", "/v1/routing/conversations/c1/accept", sara, nil)
	assert.Equal(t, "sara", c["agent"])
	assert.Nil(t, c["transfer"])
	assert.Equal(t, float64(0), f.ok(200, "GET", "/v1/routing/agents/bob", bob, nil)["load"].(map[string]any)["voice"],
		"bob's capacity is freed once sara takes it over")

	c = f.ok(200, "POST", "/v1/routing/conversations/c1/end", apiToken, nil)
	assert.Equal(t, "ended", c["state"])
	assert.NotEmpty(t, c["ended_at"])
	a = f.ok(200, "GET", "/v1/routing/agents/sara", sara, nil)
	assert.Equal(t, float64(0), a["load"].(map[string]any)["voice"], "ending frees sara's capacity")
	assert.Equal(t, []any{}, a["conversations"])
	assert.Equal(t, []any{}, a["offers"])

	assert.Equal(t, []string{
		"offered c1 sara",
		"declined c1 sara",
		"offered c1 bob",
		"accepted c1 bob",
		"transfer_initiated c1 bob",
		"offered c1 sara",
		"transferred c1 sara",
		"ended c1 sara",
	}, f.outboxEvents())
}

// TestPositionAndWaitEstimate reads waiting conversations' positions and
// estimates; none is shown before the queue has seen an assignment.
func TestPositionAndWaitEstimate(t *testing.T) {
	f := newFixture(t)
	f.ok(200, "PUT", "/v1/routing/queues/q1", apiToken, map[string]any{"channels": []string{"voice"}})
	f.ok(200, "PUT", "/v1/routing/agents/sara", apiToken, map[string]any{
		"capacity": map[string]int{"voice": 1}, "queues": []string{"q1"}, "presence": "available",
	})
	sara := f.token("sara")
	create := func(id string) map[string]any {
		return f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": id, "queue": "q1", "channel": "voice"})
	}

	c := create("c1")
	assert.Equal(t, "offered", c["state"])
	assert.NotContains(t, c, "position")
	c = create("c2")
	assert.Equal(t, "waiting", c["state"])
	assert.Equal(t, float64(1), c["position"])
	assert.NotContains(t, c, "wait_estimate_seconds", "no assignment seen yet: no estimate, not zero")

	// First assignment after a 20 s wait: the estimate is the average wait.
	f.clock.Advance(20 * time.Second)
	f.ok(200, "POST", "/v1/routing/conversations/c1/accept", sara, nil)
	c = f.ok(200, "GET", "/v1/routing/conversations/c2", apiToken, nil)
	assert.Equal(t, float64(1), c["position"])
	assert.Equal(t, float64(20), c["wait_estimate_seconds"])

	// A second assignment 10 s later: position times the interval.
	create("c3")
	f.ok(200, "POST", "/v1/routing/conversations/c1/end", apiToken, nil)
	f.clock.Advance(10 * time.Second)
	f.ok(200, "POST", "/v1/routing/conversations/c2/accept", sara, nil)
	create("c4")
	c = f.ok(200, "GET", "/v1/routing/conversations/c3", apiToken, nil)
	assert.Equal(t, "waiting", c["state"])
	assert.Equal(t, float64(1), c["position"])
	assert.Equal(t, float64(10), c["wait_estimate_seconds"])
	c = f.ok(200, "GET", "/v1/routing/conversations/c4", apiToken, nil)
	assert.Equal(t, float64(2), c["position"])
	assert.Equal(t, float64(20), c["wait_estimate_seconds"])

	// The queue shows how many wait.
	q := f.ok(200, "GET", "/v1/routing/queues/q1", apiToken, nil)
	assert.Equal(t, map[string]any{"voice": float64(2)}, q["waiting"])
	assert.Equal(t, float64(1), q["agents"])
}

// TestNotYours: accepting an offer made to someone else is a state
// conflict that says so, and changes nothing.
func TestNotYours(t *testing.T) {
	f := newFixture(t)
	f.setup()
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c1", "queue": "q1", "channel": "voice"})
	require.Equal(t, "sara", f.conv("c1").OfferedTo)
	bob := f.token("bob")
	before := f.dump()

	cases := []struct {
		name    string
		token   string
		body    any
		message string
	}{
		{"bob names himself", bob, map[string]any{"agent": "bob"}, "conversation c1 is not offered to agent bob"},
		{"bob's token acts as bob", bob, nil, "conversation c1 is not offered to the agent of this token; it is offered"},
		{"the system for bob", apiToken, map[string]any{"agent": "bob"}, "conversation c1 is not offered to agent bob"},
	}
	for _, tc := range cases {
		for _, op := range []string{"accept", "decline"} {
			t.Run(tc.name+" "+op, func(t *testing.T) {
				a := f.call("POST", "/v1/routing/conversations/c1/"+op, tc.token, tc.body)
				assert.Equal(t, 409, a.Status, a.Raw)
				assert.Equal(t, "agent", a.ErrField())
				assert.Equal(t, tc.message, a.ErrMessage())
				assert.Equal(t, before, f.dump())
			})
		}
	}
	assert.Equal(t, "sara", f.conv("c1").OfferedTo)
}

func TestIssueToken(t *testing.T) {
	f := newFixture(t)
	f.setup()
	a := f.call("POST", "/v1/routing/agents/sara/token", apiToken, nil)
	require.Equal(t, 200, a.Status, a.Raw)
	assert.Equal(t, "no-store", a.Header.Get("Cache-Control"))
	assert.Equal(t, "sara", a.Body["agent"])
	tok, _ := a.Body["token"].(string)
	require.NoError(t, f.tokens.Verify(tok, "sara"))
	f.ok(200, "GET", "/v1/routing/agents/sara", tok, nil)
	assert.Equal(t, 403, f.call("GET", "/v1/routing/agents/bob", tok, nil).Status)
}

// TestQueueAndAgentAdmin covers the admin routes' answers.
func TestQueueAndAgentAdmin(t *testing.T) {
	f := newFixture(t)
	q := f.ok(200, "PUT", "/v1/routing/queues/q1", apiToken, map[string]any{
		"name": "Support", "priority": 5, "offer_timeout": "20s", "max_wait": "10m", "preferred_wait": "1m30s",
		"channels": []string{"voice", "chat"},
	})
	assert.Equal(t, map[string]any{
		"id": "q1", "name": "Support", "priority": float64(5), "offer_timeout": "20s", "max_wait": "10m0s",
		"preferred_wait": "1m30s", "channels": []any{"voice", "chat"},
		"waiting": map[string]any{"voice": float64(0), "chat": float64(0)}, "agents": float64(0),
	}, q)
	f.ok(200, "PUT", "/v1/routing/queues/q2", apiToken, map[string]any{"channels": []string{"chat"}})
	qs := f.ok(200, "GET", "/v1/routing/queues", apiToken, nil)["queues"].([]any)
	require.Len(t, qs, 2)
	assert.Equal(t, "q2", qs[1].(map[string]any)["id"])

	sara := f.token("sara")
	a := f.ok(200, "PUT", "/v1/routing/agents/sara", sara, map[string]any{"capacity": map[string]int{"chat": 2}})
	assert.Equal(t, "offline", a["presence"], "a new agent starts offline")
	a = f.ok(200, "POST", "/v1/routing/agents/sara/queues", sara, map[string]any{"queues": []string{"q1", "q2"}})
	assert.Equal(t, []any{"q1", "q2"}, a["queues"])
	a = f.ok(200, "PUT", "/v1/routing/agents/sara/capacity", sara, map[string]any{"capacity": map[string]int{"voice": 1}})
	assert.Equal(t, map[string]any{"chat": float64(2), "voice": float64(1)}, a["capacity"], "other channels stay")
	a = f.ok(200, "PUT", "/v1/routing/agents/sara/presence", sara, map[string]any{"presence": "available"})
	assert.Equal(t, "available", a["presence"])
	a = f.ok(200, "DELETE", "/v1/routing/agents/sara/queues/q2", sara, nil)
	assert.Equal(t, []any{"q1"}, a["queues"])
	f.ok(204, "POST", "/v1/routing/agents/sara/heartbeat", sara, nil)
	assert.Equal(t, f.clock.Now().UnixMilli(), f.agent("sara").LastHeartbeat.UnixMilli())
	a = f.ok(200, "POST", "/v1/routing/agents/sara/logoff", sara, nil)
	assert.Equal(t, "offline", a["presence"])

	f.ok(204, "DELETE", "/v1/routing/queues/q2", apiToken, nil)
	assert.Equal(t, 404, f.call("GET", "/v1/routing/queues/q2", apiToken, nil).Status)

	// A queue with conversations waiting stays.
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c1", "queue": "q1", "channel": "chat"})
	d := f.call("DELETE", "/v1/routing/queues/q1", apiToken, nil)
	assert.Equal(t, 409, d.Status)
	assert.Equal(t, "queue", d.ErrField())
	assert.Contains(t, d.ErrMessage(), "waiting")
}

// TestRequeueAndCancel covers the system's conversation routes.
func TestRequeueAndCancel(t *testing.T) {
	f := newFixture(t)
	f.setup()
	for _, id := range []string{"c1", "c2"} {
		f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": id, "queue": "q1", "channel": "voice"})
	}
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c3", "queue": "q1", "channel": "voice", "priority": true})
	require.Equal(t, "sara", f.conv("c1").OfferedTo)
	require.Equal(t, "bob", f.conv("c2").OfferedTo)
	require.Equal(t, 1, f.conv("c3").Position)
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c4", "queue": "q1", "channel": "voice"})

	f.ok(200, "POST", "/v1/routing/conversations/c2/accept", f.token("bob"), nil)

	c := f.ok(200, "POST", "/v1/routing/conversations/c4/requeue", apiToken, map[string]any{"priority": true})
	assert.Equal(t, float64(1), c["position"], "a priority requeue goes to the head")
	assert.Equal(t, 2, f.conv("c3").Position)
	c = f.ok(200, "POST", "/v1/routing/conversations/c3/cancel", apiToken, nil)
	assert.Equal(t, "cancelled", c["state"])

	// Bob's capacity comes free and goes to c4; c2 waits, out of his
	// reach for the cooldown.
	c = f.ok(200, "POST", "/v1/routing/conversations/c2/requeue", apiToken, nil)
	assert.Equal(t, "waiting", c["state"])
	assert.Equal(t, float64(1), c["position"])
	assert.Equal(t, "bob", f.conv("c4").OfferedTo)
}

// TestRedisDown: with the store unreachable the API answers 503, which
// tells the caller to try again, not 500.
func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	e, err := routing.New(rdb, routing.Config{})
	require.NoError(t, err)
	auth := &access.Authenticator{APITokens: []crmsync.Secret{apiToken}}
	mux := http.NewServeMux()
	NewHandler(e, auth, nil, nil).Register(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, path := range []string{"/v1/routing/queues", "/v1/routing/agents/sara", "/v1/routing/conversations/c1"} {
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		assert.Equal(t, 503, res.StatusCode, path)
		assert.Contains(t, string(body), `"unavailable"`, path)
	}
}

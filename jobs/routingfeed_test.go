package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/lookup"
	"github.com/crmsync/crmsync/connectors/pega"
	"github.com/crmsync/crmsync/connectors/pega/pegatest"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/routing"
)

type fakeClock = fakeclock.Clock

// streams publishes to agents' streams exactly as docs/ROUTING.md fixes
// the format, and reads them back.
type streams struct {
	rdb    redis.UniversalClient
	prefix string
}

func (s streams) key(agent string) string { return s.prefix + "agent:" + agent + ":events" }

func (s streams) Publish(ctx context.Context, agent, typ string, data any) (string, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key(agent), MaxLen: 1000, Approx: true, Values: []any{"t", typ, "d", string(b)}}).Result()
	if err != nil {
		return "", err
	}
	return id, s.rdb.Publish(ctx, s.prefix+"agent-events", agent).Err()
}

// read returns the data of every event of type typ on agent's stream.
func (s streams) read(tb testing.TB, agent, typ string) []map[string]any {
	tb.Helper()
	msgs, err := s.rdb.XRange(context.Background(), s.key(agent), "-", "+").Result()
	require.NoError(tb, err)
	var out []map[string]any
	for _, m := range msgs {
		if m.Values["t"] != typ {
			continue
		}
		var d map[string]any
		require.NoError(tb, json.Unmarshal([]byte(m.Values["d"].(string)), &d))
		out = append(out, d)
	}
	return out
}

type routedEnv struct {
	*env
	clock   *fakeClock
	engine  *routing.Engine
	streams streams
	feed    *RoutingFeed
	peg     *pegatest.Server
}

const pegaToken = "pega-token-5e1f"

// newRoutedEnv is env plus a routing engine on a fake clock, its outbox
// fed to the jobs, agents' streams, and a Pega peer.
func newRoutedEnv(t *testing.T) *routedEnv {
	t.Helper()
	r := &routedEnv{clock: fakeclock.New(time.UnixMilli(1_733_130_000_000))}
	r.peg = pegatest.New(t, pegatest.Config{Token: pegaToken})
	fast := DefaultPolicy()
	fast.InitialDelay, fast.MaxDelay, fast.Window = 20*time.Millisecond, 100*time.Millisecond, time.Hour
	r.env = newEnv(t, envOpts{policy: &fast, quiet: true, setup: func(e *env) {
		var err error
		prefix := e.prefix + "{routing}:"
		r.engine, err = routing.New(e.rdb, routing.Config{Prefix: prefix, Now: r.clock.Now, OfferTimeout: time.Minute})
		require.NoError(t, err)
		r.streams = streams{rdb: e.rdb, prefix: prefix}
		e.proc.AgentEvents = r.streams
		urls, err := lookup.Compile(lookup.Config{
			IVR:        "https://crm.example.com/ivr?ani={ANI}",
			Web:        "https://crm.example.com/web?cuid={CUID}&email={EMAIL}",
			OpenCustom: map[string]string{"support": "https://crm.example.com/new?account={ACCOUNT_ID}"},
		})
		require.NoError(t, err)
		e.proc.ScreenPops = urls
		client, err := pega.New(pega.Config{BaseURL: r.peg.URL(), Auth: pega.Auth{Token: pegaToken}})
		require.NoError(t, err)
		e.pega = &PegaHandler{Pega: client, Routing: r.engine, Store: e.store, Policy: fast, Logger: e.logger}
		r.feed, err = NewRoutingFeed(r.engine, e.enq, r.streams, e.store, RoutingFeedConfig{Consumer: "live", ReclaimAfter: time.Millisecond, Logger: e.logger})
		require.NoError(t, err)
	}})
	require.NoError(t, r.engine.PutQueue(context.Background(), routing.Queue{ID: "support", Name: "Support", Channels: []string{"voice", "chat"}}))
	return r
}

func (r *routedEnv) agent(id string) {
	r.t.Helper()
	require.NoError(r.t, r.engine.PutAgent(context.Background(), routing.AgentSpec{
		ID: id, Capacity: map[string]int{"voice": 1, "chat": 2}, Queues: []string{"support"}, Presence: routing.Available,
	}))
	r.clock.Advance(time.Second) // the first agent made is the longest idle
}

// deliverToDeadConsumer reads every new outbox entry as another consumer
// of the feed's group, does its work and dies before acking: the feed must
// take the entries over and handle them again.
func (r *routedEnv) deliverToDeadConsumer() int {
	r.t.Helper()
	dead, err := r.engine.Outbox("jobs", "dead")
	require.NoError(r.t, err)
	evs, err := dead.Read(context.Background(), 100, 0)
	require.NoError(r.t, err)
	for _, ev := range evs {
		require.NoError(r.t, r.feed.handle(context.Background(), ev))
	}
	time.Sleep(5 * time.Millisecond) // past ReclaimAfter
	return len(evs)
}

// poll runs one round of the feed and waits for the work it enqueued.
func (r *routedEnv) poll() int {
	r.t.Helper()
	n, err := r.feed.Poll(context.Background())
	require.NoError(r.t, err)
	r.drain(20 * time.Second)
	return n
}

func (r *routedEnv) pending() int64 {
	r.t.Helper()
	p, err := r.rdb.XPending(context.Background(), r.engine.OutboxKey(), "jobs").Result()
	require.NoError(r.t, err)
	return p.Count
}

func TestRoutingFeedRunsCRMAndPopsRecord(t *testing.T) {
	t.Parallel()
	r := newRoutedEnv(t)
	ctx := context.Background()
	const agent = "sara@example.com"
	r.agent(agent)
	c, err := r.engine.CreateConversation(ctx, routing.NewConversation{
		ID: "conv-73522", Queue: "support", Channel: "chat", Source: "api", Session: "chat-73522",
		Attributes: map[string]string{"name": "Maria Lopez", "email": "maria@example.com", "phone": "+1 415 555 0100",
			"custom_user_id": "cu-9", "lang": "es", "queue_path": "Support / Web", "end_user_id": "not an id!"},
	})
	require.NoError(t, err)
	require.Equal(t, agent, c.OfferedTo)
	require.NoError(t, r.engine.Accept(ctx, c.ID, agent))

	first := r.deliverToDeadConsumer()
	require.Equal(t, 2, first, "offered and accepted")
	assert.Equal(t, first, r.poll(), "the dead consumer's entries are taken over")
	assert.Zero(t, r.pending(), "every entry acked")

	accounts := r.crm.Accounts()
	require.Len(t, accounts, 1)
	assert.Equal(t, "Maria Lopez", accounts[0].Name)
	assert.Equal(t, "maria@example.com", accounts[0].Email)
	records := r.crm.Records()
	require.Len(t, records, 1)
	comments := r.crm.Comments(records[0].ID)
	require.Len(t, comments, 1, "the start was enqueued once")
	assert.Contains(t, comments[0].Body, "Chat 73522 started, answered by "+agent)

	pops := r.streams.read(t, agent, EventRecordPop)
	require.Len(t, pops, 1)
	assert.Equal(t, r.crmURL+"/records/"+records[0].ID, pops[0]["recordUrl"])
	assert.Equal(t, "chat-73522", pops[0]["session"])
	starts := r.streams.read(t, agent, "New_Chat")
	require.Len(t, starts, 1)
	assert.Equal(t, float64(73522), starts[0]["chat_id"])
	assert.Equal(t, agent, starts[0]["agent_id"])
	assert.Equal(t, "support", starts[0]["queue_id"])
	assert.Equal(t, "Support / Web", starts[0]["queue_path"])

	v := r.view("chat-73522")
	// A chat takes the web lookup URL; no contact was found, so the
	// queue's Open Custom URL pops too.
	assert.Equal(t, "https://crm.example.com/web?cuid=cu-9&email=maria@example.com", v.CRM.CustomLookupURL)
	assert.Equal(t, "https://crm.example.com/new?account="+accounts[0].ID, v.CRM.OpenCustomURL)
	lookups := r.streams.read(t, agent, EventLookupURL)
	require.Len(t, lookups, 1)
	assert.Equal(t, map[string]any{"url": v.CRM.CustomLookupURL, "session": "chat-73522"}, lookups[0])
	opens := r.streams.read(t, agent, EventOpenCustomURL)
	require.Len(t, opens, 1)
	assert.Equal(t, map[string]any{"url": v.CRM.OpenCustomURL, "session": "chat-73522"}, opens[0])
	require.NotNil(t, v.Routing)
	assert.Equal(t, agent, v.Routing.Agent)
	assert.Equal(t, "conv-73522", v.Routing.Conversation)
	require.Len(t, v.RecordPops, 1)
	assert.Equal(t, agent, v.RecordPops[0].Agent)
	assert.False(t, v.RecordPops[0].At.IsZero())
	assert.Equal(t, "cu-9", v.Facts.CustomUserID)
	assert.Empty(t, v.Facts.EndUserID, "a bad attribute is dropped")
	assert.Contains(t, r.logs.String(), `"field":"end_user_id"`)

	// The end updates and comments the record, and tells the agent.
	require.NoError(t, r.engine.End(ctx, c.ID))
	assert.Equal(t, 1, r.poll())
	comments = r.crm.Comments(records[0].ID)
	require.Len(t, comments, 2)
	assert.Contains(t, comments[1].Body, "Chat 73522 ended.")
	patches := 0
	for _, req := range r.crm.Requests() {
		if req.Method == http.MethodPatch {
			patches++
		}
	}
	assert.Equal(t, 1, patches, "the record is updated once")
	assert.Len(t, r.streams.read(t, agent, "End_Chat"), 1)
	assert.Len(t, r.streams.read(t, agent, EventRecordPop), 1, "no second pop")
	assert.False(t, r.view("chat-73522").Facts.EndedAt.IsZero())
}

// A transfer comments the record and pops it to the new agent.
func TestRoutingFeedTransferPopsToNewAgent(t *testing.T) {
	t.Parallel()
	r := newRoutedEnv(t)
	ctx := context.Background()
	r.agent("a1")
	r.agent("a2")
	c, err := r.engine.CreateConversation(ctx, routing.NewConversation{
		ID: "conv-5", Queue: "support", Channel: "voice", Source: "api",
		Attributes: map[string]string{"call_id": "5", "end_user_phone": "+1 415 555 0101"},
	})
	require.NoError(t, err)
	require.Equal(t, "a1", c.OfferedTo)
	require.NoError(t, r.engine.Accept(ctx, c.ID, "a1"))
	r.poll()
	require.NoError(t, r.engine.TransferToAgent(ctx, c.ID, "a1", "a2"))
	require.NoError(t, r.engine.Accept(ctx, c.ID, "a2"))
	r.poll()

	records := r.crm.Records()
	require.Len(t, records, 1)
	var bodies []string
	for _, cm := range r.crm.Comments(records[0].ID) {
		bodies = append(bodies, cm.Body)
	}
	assert.Equal(t, []string{"Call 5 started, answered by a1.", "Call 5 transferred from agent a1 to agent a2."}, bodies)
	for _, a := range []string{"a1", "a2"} {
		pops := r.streams.read(t, a, EventRecordPop)
		require.Len(t, pops, 1, a)
		assert.Equal(t, r.crmURL+"/records/"+records[0].ID, pops[0]["recordUrl"])
		assert.Len(t, r.streams.read(t, a, "New_Call"), 1, a)
	}
	assert.Equal(t, "a2", r.view("call-5").Routing.Agent)
}

func TestPegaAssign(t *testing.T) {
	t.Parallel()
	const laura, sara = "laura@pegasystems.com", "sara@pegasystems.com"
	tests := []struct {
		name  string
		fault *pegatest.Fault
		// want: the requests Pega saw, as agent and answer.
		want       []string
		assignedTo string
		timeline   string
	}{
		{name: "once though delivered twice", want: []string{laura + " Success"}, assignedTo: laura, timeline: "assigned to " + laura},
		{name: "delivered once Pega is back", fault: &pegatest.Fault{Status: 503, Count: 2},
			want: []string{" 503", " 503", laura + " Success"}, assignedTo: laura, timeline: "retry in "},
		{name: "Fail routes to another agent", fault: &pegatest.Fault{Mode: pegatest.FaultFail, Count: 1},
			want: []string{laura + " Fail", sara + " Success"}, assignedTo: sara, timeline: "refused; routed again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRoutedEnv(t)
			ctx := context.Background()
			r.agent(laura)
			r.agent(sara)
			if tt.fault != nil {
				r.peg.SetFault(*tt.fault)
			}
			const conv = "3bc1c3b45ea911ea88f277fee9bcd8c0"
			c, err := r.engine.CreateConversation(ctx, routing.NewConversation{
				ID: conv, Queue: "support", Channel: "chat", Source: "pega", Session: "chat-8801",
			})
			require.NoError(t, err)
			require.Equal(t, laura, c.OfferedTo)
			require.Equal(t, 1, r.deliverToDeadConsumer())
			r.poll()
			// A refused offer goes to the next agent: that offer is
			// passed on too.
			r.poll()

			var got []string
			for _, call := range r.peg.Calls() {
				if call.Status != http.StatusOK {
					// A faulty answer comes before the body is read.
					got = append(got, " "+strconv.Itoa(call.Status))
					continue
				}
				got = append(got, call.Agent+" "+call.Answer)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, []pegatest.Assignment{{Conversation: conv, Agent: tt.assignedTo}}, r.peg.Assignments())
			now, err := r.engine.GetConversation(ctx, conv)
			require.NoError(t, err)
			assert.Equal(t, tt.assignedTo, now.OfferedTo)
			assert.Zero(t, r.pending())

			var outcomes []string
			for _, e := range r.view("chat-8801").Timeline {
				if e.Kind == "routing" {
					outcomes = append(outcomes, e.Outcome)
				}
			}
			assert.Condition(t, func() bool {
				for _, o := range outcomes {
					if strings.HasPrefix(o, tt.timeline) {
						return true
					}
				}
				return false
			}, "timeline %q has %q", outcomes, tt.timeline)
			assert.NotContains(t, r.logs.String(), pegaToken)
			assert.NotContains(t, strings.Join(outcomes, " "), pegaToken)
		})
	}
}

// An offer that ended before its task ran is not passed on.
func TestPegaAssignSkipsGoneOffer(t *testing.T) {
	t.Parallel()
	r := newRoutedEnv(t)
	ctx := context.Background()
	r.agent("laura")
	c, err := r.engine.CreateConversation(ctx, routing.NewConversation{ID: "conv-9", Queue: "support", Channel: "chat", Source: "pega"})
	require.NoError(t, err)
	require.Equal(t, "laura", c.OfferedTo)
	require.NoError(t, r.engine.Cancel(ctx, c.ID))
	r.poll()
	assert.Empty(t, r.peg.Calls())
}

// Run feeds until stopped, then returns nil.
func TestRoutingFeedRun(t *testing.T) {
	t.Parallel()
	r := newRoutedEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	feed, err := NewRoutingFeed(r.engine, r.enq, r.streams, r.store, RoutingFeedConfig{Consumer: "runner", Block: 20 * time.Millisecond, Logger: r.logger})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- feed.Run(ctx) }()

	r.agent("a1")
	c, err := r.engine.CreateConversation(context.Background(), routing.NewConversation{ID: "conv-7", Queue: "support", Channel: "chat", Session: "chat-7"})
	require.NoError(t, err)
	require.NoError(t, r.engine.Accept(context.Background(), c.ID, "a1"))
	require.Eventually(t, func() bool { return len(r.streams.read(t, "a1", EventRecordPop)) == 1 }, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Len(t, r.streams.read(t, "a1", "New_Chat"), 1)
	assert.Zero(t, r.pending())
}

// Without the routing feed, the record pops to the agent the event names;
// with no agent at all there is no pop and no error.
func TestRecordPopToEventAgent(t *testing.T) {
	t.Parallel()
	var s streams
	e := newEnv(t, envOpts{setup: func(e *env) {
		s = streams{rdb: e.rdb, prefix: e.prefix + "{routing}:"}
		e.proc.AgentEvents = s
	}})
	e.post(newCall(41, phone(41)), `{"type":"New_Chat","data":{"chat_id":42,"end_user_email":"n@example.com"}}`)
	e.drain(20 * time.Second)
	pops := s.read(t, "1", EventRecordPop)
	require.Len(t, pops, 1)
	assert.Equal(t, e.view("call-41").CRM.RecordURL, pops[0]["recordUrl"])
	v := e.view("chat-42")
	assert.NotEmpty(t, v.CRM.RecordURL)
	assert.Empty(t, v.RecordPops)
	assert.Equal(t, "done", v.Timeline[len(v.Timeline)-1].Outcome)
}

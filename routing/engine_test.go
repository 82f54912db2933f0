package routing

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
)

// TestRestart: an Engine with offers pending stops (Run cancelled, the
// value dropped); new Engines on the same Redis fire its timers, each
// exactly once, on the fake clock.
func TestRestart(t *testing.T) {
	cfg := func(c *Config) { c.TickInterval = 2 * time.Millisecond; c.ExpiredInRow = 1 }
	f := newFixture(t, cfg)
	f.queue("billing", func(q *Queue) { q.MaxWait = 45 * time.Second })
	f.agent("sara", Available, "billing")
	f.conv("c1", "billing", "voice")
	f.conv("c2", "billing", "chat")
	f.conv("c3", "billing", "voice") // waits: sara's voice is taken
	require.Equal(t, map[string]string{"c1": "offered sara", "c2": "offered sara", "c3": "waiting 1"}, f.summary("c1", "c2", "c3"))

	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- f.e.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
	f.drain()
	f.e = nil

	// Two new Engines, both running: each timer must fire once.
	var wg sync.WaitGroup
	ctx, cancel = context.WithCancel(f.ctx)
	defer func() { cancel(); wg.Wait() }()
	for range 2 {
		e := f.engine(cfg)
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, e.Run(ctx)) }()
	}
	f.e = f.engine(cfg)

	var evs []string
	collect := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			evs = append(evs, outboxLines(f.outbox())...)
			return len(evs) >= n
		}, 10*time.Second, 5*time.Millisecond)
	}
	f.clock.Advance(30 * time.Second) // the offers expire; sara is set away at the first
	collect(3)
	f.clock.Advance(15 * time.Second) // the queue's maximum wait
	collect(6)
	// Let more ticks pass: nothing may fire twice.
	time.Sleep(50 * time.Millisecond)
	evs = append(evs, outboxLines(f.outbox())...)
	assert.Equal(t, []string{
		"expired c1 sara", "presence - sara offers_expired", "expired c2 sara",
		"timed_out c1 - max_wait", "timed_out c2 - max_wait", "timed_out c3 - max_wait",
	}, evs)
	assert.Equal(t, "away voice 0 chat 0", f.agentLine("sara"))
	audit(t, f)
}

// TestWaitEstimate: no estimate before anything is known, then the
// average wait, then position times the average interval between
// assignments.
func TestWaitEstimate(t *testing.T) {
	f := newFixture(t)
	f.queue("billing")
	f.agent("sara", Away, "billing")
	for _, id := range []string{"c1", "c2", "c3"} {
		c := f.conv(id, "billing", "voice")
		assert.False(t, c.HasWaitEstimate, "nothing known yet")
	}
	c3 := f.getConv("c3")
	assert.Equal(t, 3, c3.Position)
	assert.False(t, c3.HasWaitEstimate)

	f.clock.Advance(10 * time.Second)
	require.NoError(t, f.e.SetPresence(f.ctx, "sara", Available))
	f.clock.Advance(2 * time.Second)
	require.NoError(t, f.e.Accept(f.ctx, "c1", "sara")) // waited 12 s
	c3 = f.getConv("c3")
	assert.Equal(t, 2, c3.Position)
	assert.True(t, c3.HasWaitEstimate)
	assert.Equal(t, 12*time.Second, c3.WaitEstimate, "one assignment: the average wait")

	f.clock.Advance(8 * time.Second)
	require.NoError(t, f.e.End(f.ctx, "c1"))
	f.clock.Advance(2 * time.Second)
	require.NoError(t, f.e.Accept(f.ctx, "c2", "sara")) // waited 22 s, 10 s after the last assignment
	c3 = f.getConv("c3")
	assert.Equal(t, 1, c3.Position)
	assert.Equal(t, 10*time.Second, c3.WaitEstimate, "position 1 times the 10 s interval")

	c4 := f.conv("c4", "billing", "voice")
	assert.Equal(t, 2, c4.Position)
	assert.True(t, c4.HasWaitEstimate)
	assert.Equal(t, 20*time.Second, c4.WaitEstimate, "position 2 times the 10 s interval")
	assert.Equal(t, c4.WaitEstimate, f.getConv("c4").WaitEstimate, "create and get agree")
}

// TestResume: a finished conversation's id may come back (a long-running
// chat), and its sequence numbers go on.
func TestResume(t *testing.T) {
	f := newFixture(t)
	held(f)
	require.NoError(t, f.e.End(f.ctx, "c1"))
	evs := f.outbox()
	last := evs[len(evs)-1]
	require.Equal(t, EventEnded, last.Event)

	c := f.conv("c1", "billing", "chat", func(n *NewConversation) { n.PreferredAgent = "sara" })
	assert.Equal(t, StateOffered, c.State)
	assert.Equal(t, "sara", c.OfferedTo)
	evs = f.outbox()
	require.Len(t, evs, 1)
	assert.Equal(t, last.Seq+1, evs[0].Seq)
	assert.Equal(t, "chat", f.getConv("c1").Channel)
	assert.Equal(t, time.Duration(-1), f.rdb.TTL(f.ctx, f.prefix+"c:c1").Val(), "a live conversation does not expire")
}

// TestOutboxEvent: an outbox entry carries everything a consumer needs.
func TestOutboxEvent(t *testing.T) {
	f := newFixture(t)
	base(f)
	f.conv("c1", "billing", "chat", func(n *NewConversation) {
		n.Attributes = map[string]string{"lang": "fr", "note": `say "hi" <b>`}
		n.Session, n.Source = "chat-42", "pega"
	})
	evs := f.outbox()
	require.Len(t, evs, 1)
	ev := evs[0]
	assert.Equal(t, EventOffered, ev.Event)
	assert.Equal(t, "c1", ev.Conversation)
	assert.Equal(t, "sara", ev.Agent)
	assert.Equal(t, "billing", ev.Queue)
	assert.Equal(t, "chat", ev.Channel)
	assert.Equal(t, "pega", ev.Source)
	assert.Equal(t, "chat-42", ev.Session)
	assert.Equal(t, map[string]string{"lang": "fr", "note": `say "hi" <b>`}, ev.Attributes)
	assert.Equal(t, int64(1), ev.Seq)
	assert.Equal(t, f.clock.Now(), ev.At)
	assert.Equal(t, f.clock.Now().Add(30*time.Second), ev.ExpiresAt)
	assert.False(t, ev.Transfer)

	// The agent's stream entry, in routing/stream's format.
	s := f.stream("sara")
	require.Len(t, s, 1)
	assert.Equal(t, "Offer", s[0].Type)
	assert.Equal(t, map[string]any{"conversation": "c1", "queue": "billing", "channel": "chat",
		"expires_at": float64(f.clock.Now().Add(30 * time.Second).UnixMilli()), "transfer": false, "from_agent": ""}, s[0].Data)

	// A transfer names both ends.
	require.NoError(t, f.e.Accept(f.ctx, "c1", "sara"))
	require.NoError(t, f.e.TransferToQueue(f.ctx, "c1", "sara", "tech"))
	require.NoError(t, f.e.Accept(f.ctx, "c1", "bob"))
	evs = f.outbox()
	require.Len(t, evs, 4)
	tr := evs[3]
	assert.Equal(t, EventTransferred, tr.Event)
	assert.Equal(t, "bob", tr.Agent)
	assert.Equal(t, "sara", tr.FromAgent)
	assert.Equal(t, "bob", tr.ToAgent)
	assert.Equal(t, "billing", tr.FromQueue)
	assert.Equal(t, "tech", tr.ToQueue)
	assert.Equal(t, "tech", tr.Queue)
	assert.True(t, tr.Transfer)
	assert.Equal(t, int64(5), tr.Seq)
}

// TestOutboxReader: consumer groups, ack, and reclaiming what a dead
// consumer left pending.
func TestOutboxReader(t *testing.T) {
	f := newFixture(t)
	f.queue("billing")
	for _, id := range []string{"c1", "c2", "c3"} {
		f.conv(id, "billing", "chat")
	}
	dead, err := f.e.Outbox("jobs", "dead")
	require.NoError(t, err)
	got, err := dead.Read(f.ctx, 2, 0)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []string{"queued c1 -", "queued c2 -"}, outboxLines(got))

	live, err := f.e.Outbox("jobs", "live")
	require.NoError(t, err)
	rest, err := live.Read(f.ctx, 10, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"queued c3 -"}, outboxLines(rest), "a group delivers each entry to one consumer")
	require.NoError(t, live.Ack(f.ctx, rest[0].ID))

	// dead never acks: live takes its entries over.
	claimed, err := live.Reclaim(f.ctx, 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"queued c1 -", "queued c2 -"}, outboxLines(claimed))
	require.NoError(t, live.Ack(f.ctx, claimed[0].ID, claimed[1].ID))
	pending, err := f.rdb.XPending(f.ctx, f.e.OutboxKey(), "jobs").Result()
	require.NoError(t, err)
	assert.Zero(t, pending.Count)

	none, err := live.Read(f.ctx, 10, 0)
	require.NoError(t, err)
	assert.Empty(t, none)

	// Another group sees everything from the start.
	audit2, err := f.e.Outbox("audit", "a")
	require.NoError(t, err)
	all, err := audit2.Read(f.ctx, 10, 0)
	require.NoError(t, err)
	assert.Len(t, all, 3)

	// A blocking read wakes up on a new entry.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = f.e.CreateConversation(f.ctx, NewConversation{ID: "c4", Queue: "billing", Channel: "chat"})
	}()
	woke, err := live.Read(f.ctx, 10, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"queued c4 -"}, outboxLines(woke))
}

// TestQueues: create, read, list, update and delete, with the agents'
// side kept in step.
func TestQueues(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.e.CreateQueue(f.ctx, Queue{ID: "billing", Name: "Billing", Priority: 3, OfferTimeout: 20 * time.Second,
		MaxWait: time.Hour, PreferredWait: 5 * time.Second, Channels: []string{"chat"}}))
	require.NoError(t, f.e.PutQueue(f.ctx, Queue{ID: "tech", Channels: []string{"voice"}}))
	f.agent("sara", Available, "billing", "tech")
	f.conv("c1", "tech", "voice") // offered to sara
	f.conv("c2", "tech", "voice") // waits

	q, err := f.e.GetQueue(f.ctx, "billing")
	require.NoError(t, err)
	assert.Equal(t, &Queue{ID: "billing", Name: "Billing", Priority: 3, OfferTimeout: 20 * time.Second, MaxWait: time.Hour,
		PreferredWait: 5 * time.Second, Channels: []string{"chat"}, Waiting: map[string]int{"chat": 0}, Agents: 1}, q)
	list, err := f.e.ListQueues(f.ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "billing", list[0].ID)
	assert.Equal(t, map[string]int{"voice": 1}, list[1].Waiting)

	// A new channel: sara, free on voice? no; free on chat: joins its free set.
	require.NoError(t, f.e.UpdateQueue(f.ctx, Queue{ID: "tech", Priority: 9, Channels: []string{"voice", "chat"}}))
	audit(t, f)
	assert.Equal(t, float64(9), f.rdb.ZScore(f.ctx, f.prefix+"a:sara:qc:voice", "tech").Val(), "priority reaches the agents")
	f.conv("c3", "tech", "chat")
	assert.Equal(t, "offered sara", f.convLine("c3"))

	// Delete: refused while c2 waits, then done.
	assert.Equal(t, crmsync.ECONFLICT, crmsync.ErrorCode(f.e.DeleteQueue(f.ctx, "tech")))
	require.NoError(t, f.e.Cancel(f.ctx, "c2"))
	require.NoError(t, f.e.DeleteQueue(f.ctx, "tech"))
	assert.Equal(t, []string{"billing"}, f.getAgent("sara").Queues)
	_, err = f.e.GetQueue(f.ctx, "tech")
	assert.Equal(t, crmsync.ENOTFOUND, crmsync.ErrorCode(err))
	audit(t, f)
}

// TestGetAgent reads offers, transfers and held conversations.
func TestGetAgent(t *testing.T) {
	f := newFixture(t)
	held(f)
	require.NoError(t, f.e.Heartbeat(f.ctx, "bob"))
	require.NoError(t, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
	f.clock.Advance(time.Second)
	f.conv("c2", "billing", "chat") // sara is the longest idle on chat
	f.conv("c3", "billing", "chat") // then bob

	sara := f.getAgent("sara")
	assert.Equal(t, []string{"c1"}, sara.Conversations)
	require.Len(t, sara.Offers, 1)
	assert.Equal(t, "c2", sara.Offers[0].Conversation)
	bob := f.getAgent("bob")
	assert.Equal(t, Available, bob.Presence)
	assert.Equal(t, []string{"billing", "tech"}, bob.Queues)
	assert.Equal(t, map[string]int{"voice": 1, "chat": 2}, bob.Capacity)
	assert.Equal(t, map[string]int{"voice": 1, "chat": 1}, bob.Load)
	assert.False(t, bob.LastHeartbeat.IsZero())
	require.Len(t, bob.Offers, 2)
	assert.Equal(t, Offer{Conversation: "c1", Queue: "billing", Channel: "voice", ExpiresAt: f.clock.Now().Add(29 * time.Second),
		Transfer: true, FromAgent: "sara"}, bob.Offers[0])
	assert.Equal(t, "c3", bob.Offers[1].Conversation)
	assert.Empty(t, bob.Conversations)
}

// TestRepeatsAreDone: vendors resend events; what the engine already did
// is taken as done, not as a conflict, and writes nothing.
func TestRepeatsAreDone(t *testing.T) {
	f := newFixture(t)
	base(f)
	f.conv("c1", "billing", "voice")
	require.NoError(t, f.e.Expire(f.ctx, "c1", "sara")) // now offered to bob
	f.drain()
	before := f.dump()
	require.NoError(t, f.e.Expire(f.ctx, "c1", "sara"))
	require.NoError(t, f.e.SetPresence(f.ctx, "sara", Available))
	assert.Equal(t, before, f.dump())
	// Not a repeat: sara never declined it.
	assert.Equal(t, crmsync.ECONFLICT, crmsync.ErrorCode(f.e.Decline(f.ctx, "c1", "sara")))
}

func TestConfig(t *testing.T) {
	rdb := redistest.Client(t)
	for _, c := range []Config{
		{Prefix: "crmsync:routing:"},
		{Prefix: "x:{}:"},
		{Prefix: "x:{a}:", StreamPrefix: "x:{b}:"},
		{LogOff: "drop"},
		{OfferTimeout: time.Microsecond},
		{EndedTTL: time.Millisecond},
	} {
		_, err := New(rdb, c)
		assert.Error(t, err, "%+v", c)
	}
	e, err := New(rdb, Config{})
	require.NoError(t, err)
	c := e.Config()
	assert.Equal(t, DefaultPrefix, c.Prefix)
	assert.Equal(t, DefaultPrefix, c.StreamPrefix)
	assert.Equal(t, 30*time.Second, c.OfferTimeout)
	assert.Equal(t, LogOffRequeue, c.LogOff)
	assert.Equal(t, 3, c.ExpiredInRow)
	assert.Equal(t, DefaultPrefix+"outbox", e.OutboxKey())
}

// TestValidateID is the rule of docs/ROUTING.md.
func TestValidateID(t *testing.T) {
	for _, id := range []string{"sara@pegasystems.com", "Sarah", "3bc1c3b45ea911ea88f277fee9bcd8c0", "BotAgenta3256_1426819", "a+b-c_d.e"} {
		assert.NoError(t, ValidateID(id), id)
	}
	for _, id := range []string{"", "-a", ".a", "a..b", "a b", "a:b", "a/b", "a{b}", "é", string(make([]byte, 129))} {
		assert.Error(t, ValidateID(id), "%q", id)
	}
}

// TestConversationFragmentInPieces: the conversation's session, source
// and attributes are kept in the record in short pieces, so that the
// record keeps Redis's compact hash encoding however long the attributes
// are, and they read back whole.
func TestConversationFragmentInPieces(t *testing.T) {
	f := newFixture(t)
	base(f)
	long := map[string]string{"topic": strings.Repeat("billing question ", 12) + "é", "lang": "en"}
	f.conv("c1", "tech", "chat", func(n *NewConversation) { n.Attributes = long })
	rec := f.prefix + "c:c1"

	if enc, err := f.rdb.ObjectEncoding(f.ctx, rec).Result(); err == nil {
		// Only a real Redis answers OBJECT ENCODING.
		assert.Contains(t, []string{"listpack", "ziplist"}, enc, "the record stays compact")
	}
	h := f.rdb.HGetAll(f.ctx, rec).Val()
	for k, v := range h {
		assert.LessOrEqual(t, len(v), 64, "field %s", k)
	}
	assert.NotContains(t, h, "j")
	assert.Equal(t, "5", h["jn"], "about 280 bytes in pieces of 64")
	got := f.getConv("c1")
	assert.Equal(t, long, got.Attributes)
	assert.Equal(t, "chat-c1", got.Session)
	evs := f.outbox()
	require.NotEmpty(t, evs)
	assert.Equal(t, long, evs[0].Attributes, "events carry the whole fragment")

	// The id comes back with a shorter fragment: no piece of the old one
	// is left behind.
	require.NoError(t, f.e.Cancel(f.ctx, "c1"))
	f.conv("c1", "tech", "chat", func(n *NewConversation) { n.Session = "chat-99" })
	h = f.rdb.HGetAll(f.ctx, rec).Val()
	assert.Equal(t, "1", h["jn"])
	assert.NotContains(t, h, "j2")
	got = f.getConv("c1")
	assert.Equal(t, "chat-99", got.Session)
	assert.Equal(t, map[string]string{"lang": "en"}, got.Attributes)
}

// TestConversationRecordWithItsFragmentWhole: a record written before the
// fragment was cut in pieces (an upgrade with conversations in flight)
// still reads, and its events still carry its session.
func TestConversationRecordWithItsFragmentWhole(t *testing.T) {
	f := newFixture(t)
	base(f)
	f.conv("c1", "tech", "chat")
	f.outbox()
	rec := f.prefix + "c:c1"
	require.NoError(t, f.rdb.HDel(f.ctx, rec, "jn", "j1", "j2").Err())
	require.NoError(t, f.rdb.HSet(f.ctx, rec, "j", `"session":"chat-old","source":"pega","attributes":{"lang":"de"}`).Err())

	got := f.getConv("c1")
	assert.Equal(t, "chat-old", got.Session)
	assert.Equal(t, "pega", got.Source)
	assert.Equal(t, map[string]string{"lang": "de"}, got.Attributes)

	require.NoError(t, f.e.Accept(f.ctx, "c1", "bob"))
	evs := f.outbox()
	require.NotEmpty(t, evs)
	for _, ev := range evs {
		assert.Equal(t, "chat-old", ev.Session, ev.Event)
		assert.Equal(t, "pega", ev.Source, ev.Event)
	}
}

package routing

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// base: queues billing and tech; sara (billing) has been idle longest,
// bob (billing, tech) joined a second later.
func base(f *fixture) {
	f.queue("billing")
	f.queue("tech")
	f.agent("sara", Available, "billing")
	f.clock.Advance(time.Second)
	f.agent("bob", Available, "billing", "tech")
	f.clock.Advance(time.Second)
}

// held: sara holds c1 (voice, billing); bob is free.
func held(f *fixture) {
	base(f)
	f.conv("c1", "billing", "voice")
	require.NoError(f.tb, f.e.Accept(f.ctx, "c1", "sara"))
	f.clock.Advance(time.Second)
}

// heldChat: sara holds c1 (chat, billing) and bob holds c0 (chat, tech),
// sara being the longer idle on chat; both are in tech.
func heldChat(f *fixture) {
	f.queue("billing")
	f.queue("tech")
	f.queue("empty", func(q *Queue) { q.MaxWait = time.Minute })
	f.agent("sara", Available, "billing", "tech")
	f.clock.Advance(time.Second)
	f.agent("bob", Available, "tech")
	f.clock.Advance(time.Second)
	f.conv("c1", "billing", "chat")
	require.NoError(f.tb, f.e.Accept(f.ctx, "c1", "sara"))
	f.clock.Advance(time.Second)
	f.conv("c0", "tech", "chat")
	require.NoError(f.tb, f.e.Accept(f.ctx, "c0", "bob"))
	f.clock.Advance(time.Second)
}

func prefBob(n *NewConversation)  { n.PreferredAgent = "bob" }
func priority(n *NewConversation) { n.Priority = true }

// TestTransitions walks every transition on a fake clock: the states
// before, the operation, the states after, and the events it wrote to
// the outbox and the agents' streams.
func TestTransitions(t *testing.T) {
	type tc struct {
		name    string
		cfg     func(*Config)
		setup   func(f *fixture)
		before  map[string]string // "c1": conversation, "@sara": agent
		op      func(f *fixture) error
		after   map[string]string
		outbox  []string
		streams map[string][]string // agent -> its stream entries
	}
	tests := []tc{
		{
			name:   "arrival is offered to the longest-idle agent",
			setup:  base,
			before: map[string]string{"@sara": "available voice 0 chat 0", "@bob": "available voice 0 chat 0"},
			op: func(f *fixture) error {
				_, err := f.e.CreateConversation(f.ctx, NewConversation{ID: "c1", Queue: "billing", Channel: "chat", Source: "api"})
				return err
			},
			after:   map[string]string{"c1": "offered sara", "@sara": "available voice 0 chat 1", "@bob": "available voice 0 chat 0"},
			outbox:  []string{"offered c1 sara"},
			streams: map[string][]string{"sara": {"Offer c1"}, "bob": nil},
		},
		{
			name:    "arrival waits when nobody is free",
			setup:   func(f *fixture) { f.queue("billing"); f.agent("sara", Away, "billing") },
			before:  map[string]string{"@sara": "away voice 0 chat 0"},
			op:      func(f *fixture) error { f.conv("c1", "billing", "chat"); return nil },
			after:   map[string]string{"c1": "waiting 1", "@sara": "away voice 0 chat 0"},
			outbox:  []string{"queued c1 -"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name: "a priority arrival goes ahead of normal ones",
			setup: func(f *fixture) {
				f.queue("billing")
				f.conv("c1", "billing", "chat")
				f.clock.Advance(time.Second)
			},
			before: map[string]string{"c1": "waiting 1"},
			op:     func(f *fixture) error { f.conv("c2", "billing", "chat", priority); return nil },
			after:  map[string]string{"c1": "waiting 2", "c2": "waiting 1"},
			outbox: []string{"queued c2 -"},
		},
		{
			name: "an agent becoming available fills its capacity, oldest first",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Away, "billing")
				f.conv("c1", "billing", "chat")
				f.clock.Advance(time.Second)
				f.conv("c2", "billing", "chat")
				f.clock.Advance(time.Second)
				f.conv("c3", "billing", "chat")
			},
			before:  map[string]string{"c1": "waiting 1", "c2": "waiting 2", "c3": "waiting 3", "@sara": "away voice 0 chat 0"},
			op:      func(f *fixture) error { return f.e.SetPresence(f.ctx, "sara", Available) },
			after:   map[string]string{"c1": "offered sara", "c2": "offered sara", "c3": "waiting 1", "@sara": "available voice 0 chat 2"},
			outbox:  []string{"offered c1 sara", "offered c2 sara"},
			streams: map[string][]string{"sara": {"Offer c1", "Offer c2"}},
		},
		{
			name: "joining a queue takes its waiting conversation",
			setup: func(f *fixture) {
				base(f)
				f.queue("vip")
				f.conv("c1", "vip", "voice")
			},
			before:  map[string]string{"c1": "waiting 1"},
			op:      func(f *fixture) error { return f.e.JoinQueues(f.ctx, "sara", "vip") },
			after:   map[string]string{"c1": "offered sara", "@sara": "available voice 1 chat 0"},
			outbox:  []string{"offered c1 sara"},
			streams: map[string][]string{"sara": {"Offer c1"}},
		},
		{
			name: "a higher-priority queue goes first, whatever the age",
			setup: func(f *fixture) {
				f.queue("billing")
				f.queue("vip", func(q *Queue) { q.Priority = 10 })
				f.agent("sara", Away, "billing", "vip")
				f.conv("c1", "billing", "voice")
				f.clock.Advance(time.Second)
				f.conv("c2", "vip", "voice")
			},
			before: map[string]string{"c1": "waiting 1", "c2": "waiting 1"},
			op:     func(f *fixture) error { return f.e.SetPresence(f.ctx, "sara", Available) },
			after:  map[string]string{"c1": "waiting 1", "c2": "offered sara"},
			outbox: []string{"offered c2 sara"},
		},
		{
			name: "more capacity takes a waiting conversation",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "voice")
				f.conv("c2", "billing", "voice")
			},
			before: map[string]string{"c1": "offered sara", "c2": "waiting 1"},
			op:     func(f *fixture) error { return f.e.SetCapacity(f.ctx, "sara", map[string]int{"voice": 2}) },
			after:  map[string]string{"c2": "offered sara", "@sara": "available voice 2 chat 0"},
			outbox: []string{"offered c2 sara"},
		},
		{
			name:    "accept",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara", "@sara": "available voice 0 chat 1"},
			op:      func(f *fixture) error { return f.e.Accept(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "assigned sara", "@sara": "available voice 0 chat 1"},
			outbox:  []string{"accepted c1 sara"},
			streams: map[string][]string{"sara": {"Assigned c1"}},
		},
		{
			name:    "accept again is taken as done",
			setup:   held,
			before:  map[string]string{"c1": "assigned sara"},
			op:      func(f *fixture) error { return f.e.Accept(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "assigned sara", "@sara": "available voice 1 chat 0"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name:    "decline goes to the next agent, not back to the one who declined",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.Decline(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "offered bob", "@sara": "available voice 0 chat 0", "@bob": "available voice 0 chat 1"},
			outbox:  []string{"declined c1 sara", "offered c1 bob"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 declined"}, "bob": {"Offer c1"}},
		},
		{
			name: "decline again is taken as done",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "chat")
				require.NoError(f.tb, f.e.Decline(f.ctx, "c1", "sara"))
			},
			before:  map[string]string{"c1": "waiting 1"},
			op:      func(f *fixture) error { return f.e.Decline(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "waiting 1"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name: "a declined conversation waits out the cooldown of the only agent",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "chat")
			},
			before: map[string]string{"c1": "offered sara"},
			op: func(f *fixture) error {
				if err := f.e.Decline(f.ctx, "c1", "sara"); err != nil {
					return err
				}
				f.clock.Advance(9 * time.Second)
				f.tick()
				assert.Equal(f.tb, "waiting 1", f.convLine("c1"), "still in the cooldown")
				f.clock.Advance(time.Second)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "offered sara", "@sara": "available voice 0 chat 1"},
			outbox:  []string{"declined c1 sara", "offered c1 sara"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 declined", "Offer c1"}},
		},
		{
			name:   "the offer timer expires the offer",
			setup:  func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before: map[string]string{"c1": "offered sara"},
			op: func(f *fixture) error {
				f.clock.Advance(29 * time.Second)
				f.tick()
				assert.Equal(f.tb, "offered sara", f.convLine("c1"), "not due yet")
				f.clock.Advance(time.Second)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "offered bob", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"expired c1 sara", "offered c1 bob"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 expired"}, "bob": {"Offer c1"}},
		},
		{
			name:    "expire called explicitly",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.Expire(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "offered bob", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"expired c1 sara", "offered c1 bob"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 expired"}},
		},
		{
			name: "offers expiring in a row set the agent away",
			cfg:  func(c *Config) { c.ExpiredInRow = 2 },
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "chat")
				f.conv("c2", "billing", "chat")
			},
			before: map[string]string{"c1": "offered sara", "c2": "offered sara"},
			op: func(f *fixture) error {
				f.clock.Advance(30 * time.Second)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "waiting 1", "c2": "waiting 2", "@sara": "away voice 0 chat 0"},
			outbox:  []string{"expired c1 sara", "expired c2 sara", "presence - sara offers_expired"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 expired", "Offer_Cancelled c2 expired", "Presence away offers_expired"}},
		},
		{
			name:    "cancel a waiting conversation",
			setup:   func(f *fixture) { f.queue("billing"); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "waiting 1"},
			op:      func(f *fixture) error { return f.e.Cancel(f.ctx, "c1") },
			after:   map[string]string{"c1": "cancelled"},
			outbox:  []string{"cancelled c1 - customer_left"},
			streams: map[string][]string{},
		},
		{
			name:    "cancel an offered conversation",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.Cancel(f.ctx, "c1") },
			after:   map[string]string{"c1": "cancelled", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"cancelled c1 sara customer_left"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 customer_left"}},
		},
		{
			name:    "cancel a held conversation ends it",
			setup:   held,
			before:  map[string]string{"c1": "assigned sara"},
			op:      func(f *fixture) error { return f.e.Cancel(f.ctx, "c1") },
			after:   map[string]string{"c1": "ended", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"ended c1 sara customer_left"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 customer_left"}},
		},
		{
			name: "end frees capacity for the next waiting conversation",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "voice")
				require.NoError(f.tb, f.e.Accept(f.ctx, "c1", "sara"))
				f.conv("c2", "billing", "voice")
			},
			before:  map[string]string{"c1": "assigned sara", "c2": "waiting 1"},
			op:      func(f *fixture) error { return f.e.End(f.ctx, "c1") },
			after:   map[string]string{"c1": "ended", "c2": "offered sara", "@sara": "available voice 1 chat 0"},
			outbox:  []string{"ended c1 sara ended", "offered c2 sara"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 ended", "Offer c2"}},
		},
		{
			name:    "end again is taken as done",
			setup:   func(f *fixture) { held(f); require.NoError(f.tb, f.e.End(f.ctx, "c1")) },
			before:  map[string]string{"c1": "ended"},
			op:      func(f *fixture) error { return f.e.End(f.ctx, "c1") },
			after:   map[string]string{"c1": "ended"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name:    "the preferred agent gets it first when eligible",
			setup:   base,
			op:      func(f *fixture) error { f.conv("c1", "billing", "chat", prefBob); return nil },
			after:   map[string]string{"c1": "offered bob"},
			outbox:  []string{"offered c1 bob"},
			streams: map[string][]string{"bob": {"Offer c1"}, "sara": nil},
		},
		{
			name: "a busy preferred agent is waited for, alone",
			setup: func(f *fixture) {
				f.queue("billing", func(q *Queue) { q.PreferredWait = time.Minute })
				f.agent("sara", Available, "billing")
				f.agent("bob", Available, "billing")
				f.conv("c0", "billing", "voice", prefBob)
			},
			before:  map[string]string{"c0": "offered bob", "@sara": "available voice 0 chat 0"},
			op:      func(f *fixture) error { f.conv("c1", "billing", "voice", prefBob); return nil },
			after:   map[string]string{"c1": "waiting 1", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"queued c1 -"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name: "the preferred agent takes it once free",
			setup: func(f *fixture) {
				f.queue("billing", func(q *Queue) { q.PreferredWait = time.Minute })
				f.agent("sara", Available, "billing")
				f.agent("bob", Available, "billing")
				f.conv("c0", "billing", "voice", prefBob)
				f.conv("c1", "billing", "voice", prefBob)
			},
			before:  map[string]string{"c1": "waiting 1"},
			op:      func(f *fixture) error { return f.e.End(f.ctx, "c0") },
			after:   map[string]string{"c0": "ended", "c1": "offered bob", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"ended c0 bob ended", "offered c1 bob"},
			streams: map[string][]string{"bob": {"Offer_Cancelled c0 ended", "Offer c1"}},
		},
		{
			name: "when the preferred wait runs out anyone may take it",
			setup: func(f *fixture) {
				f.queue("billing", func(q *Queue) { q.PreferredWait = time.Minute })
				f.agent("sara", Available, "billing")
				f.agent("bob", Available, "billing")
				f.conv("c0", "billing", "voice", prefBob)
				f.conv("c1", "billing", "voice", prefBob)
			},
			before: map[string]string{"c1": "waiting 1"},
			op: func(f *fixture) error {
				require.NoError(f.tb, f.e.Accept(f.ctx, "c0", "bob"))
				f.drain("bob")
				f.clock.Advance(time.Minute)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "offered sara", "@sara": "available voice 1 chat 0"},
			outbox:  []string{"offered c1 sara"},
			streams: map[string][]string{"sara": {"Offer c1"}, "bob": nil},
		},
		{
			name:    "away keeps open offers and takes no new ones",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.SetPresence(f.ctx, "sara", Away) },
			after:   map[string]string{"c1": "offered sara", "@sara": "away voice 0 chat 1"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name:    "going offline sends open offers back to the queue",
			setup:   func(f *fixture) { base(f); f.conv("c1", "billing", "chat") },
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.SetPresence(f.ctx, "sara", Offline) },
			after:   map[string]string{"c1": "offered bob", "@sara": "offline voice 0 chat 0"},
			outbox:  []string{"requeued c1 sara offline", "offered c1 bob"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 offline"}, "bob": {"Offer c1"}},
		},
		{
			name: "missed heartbeats set the agent offline",
			cfg:  func(c *Config) { c.HeartbeatGrace = 20 * time.Second },
			setup: func(f *fixture) {
				base(f)
				require.NoError(f.tb, f.e.Heartbeat(f.ctx, "sara"))
				f.conv("c1", "billing", "chat")
			},
			before: map[string]string{"c1": "offered sara", "@sara": "available voice 0 chat 1"},
			op: func(f *fixture) error {
				f.clock.Advance(20 * time.Second)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "offered bob", "@sara": "offline voice 0 chat 0"},
			outbox:  []string{"requeued c1 sara heartbeat", "offered c1 bob", "presence - sara heartbeat"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 heartbeat", "Presence offline heartbeat"}},
		},
		{
			name:  "heartbeats in time keep the agent",
			cfg:   func(c *Config) { c.HeartbeatGrace = 20 * time.Second },
			setup: func(f *fixture) { base(f); require.NoError(f.tb, f.e.Heartbeat(f.ctx, "sara")) },
			op: func(f *fixture) error {
				for range 3 {
					f.clock.Advance(15 * time.Second)
					f.tick()
					if err := f.e.Heartbeat(f.ctx, "sara"); err != nil {
						return err
					}
				}
				return nil
			},
			after:   map[string]string{"@sara": "available voice 0 chat 0"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name: "log off requeues held conversations at the head",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "voice")
				require.NoError(f.tb, f.e.Accept(f.ctx, "c1", "sara"))
				f.clock.Advance(time.Second)
				f.conv("c2", "billing", "voice")
			},
			before:  map[string]string{"c1": "assigned sara", "c2": "waiting 1"},
			op:      func(f *fixture) error { return f.e.LogOff(f.ctx, "sara") },
			after:   map[string]string{"c1": "waiting 1", "c2": "waiting 2", "@sara": "offline voice 0 chat 0"},
			outbox:  []string{"requeued c1 sara logged_off", "logged_off - sara [c1]"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 logged_off"}},
		},
		{
			name:    "log off keeps held conversations when configured so",
			cfg:     func(c *Config) { c.LogOff = LogOffKeep },
			setup:   held,
			before:  map[string]string{"c1": "assigned sara"},
			op:      func(f *fixture) error { return f.e.LogOff(f.ctx, "sara") },
			after:   map[string]string{"c1": "assigned sara", "@sara": "offline voice 1 chat 0"},
			outbox:  []string{"logged_off - sara [c1]"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name:    "transfer to an agent: initiated",
			setup:   held,
			before:  map[string]string{"c1": "assigned sara", "@bob": "available voice 0 chat 0"},
			op:      func(f *fixture) error { return f.e.TransferToAgent(f.ctx, "c1", "sara", "bob") },
			after:   map[string]string{"c1": "assigned sara xfer bob", "@sara": "available voice 1 chat 0", "@bob": "available voice 1 chat 0"},
			outbox:  []string{"transfer_initiated c1 sara", "offered c1 bob"},
			streams: map[string][]string{"bob": {"Offer c1 transfer"}, "sara": nil},
		},
		{
			name: "transfer to an agent: accepted",
			setup: func(f *fixture) {
				held(f)
				require.NoError(f.tb, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
			},
			before:  map[string]string{"c1": "assigned sara xfer bob"},
			op:      func(f *fixture) error { return f.e.Accept(f.ctx, "c1", "bob") },
			after:   map[string]string{"c1": "assigned bob", "@sara": "available voice 0 chat 0", "@bob": "available voice 1 chat 0"},
			outbox:  []string{"transferred c1 bob"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 transferred"}, "bob": {"Assigned c1"}},
		},
		{
			name: "transfer to an agent: declined, the holder keeps it",
			setup: func(f *fixture) {
				held(f)
				require.NoError(f.tb, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
			},
			before:  map[string]string{"c1": "assigned sara xfer bob"},
			op:      func(f *fixture) error { return f.e.Decline(f.ctx, "c1", "bob") },
			after:   map[string]string{"c1": "assigned sara", "@sara": "available voice 1 chat 0", "@bob": "available voice 0 chat 0"},
			outbox:  []string{"transfer_declined c1 bob"},
			streams: map[string][]string{"bob": {"Offer_Cancelled c1 declined"}, "sara": nil},
		},
		{
			name: "transfer to an agent: expired, the holder keeps it",
			setup: func(f *fixture) {
				held(f)
				require.NoError(f.tb, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
			},
			before: map[string]string{"c1": "assigned sara xfer bob"},
			op: func(f *fixture) error {
				f.clock.Advance(30 * time.Second)
				f.tick()
				return nil
			},
			after:   map[string]string{"c1": "assigned sara", "@bob": "available voice 0 chat 0"},
			outbox:  []string{"transfer_expired c1 bob"},
			streams: map[string][]string{"bob": {"Offer_Cancelled c1 expired"}},
		},
		{
			name: "transfer to an agent: abandoned by the customer",
			setup: func(f *fixture) {
				held(f)
				require.NoError(f.tb, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
			},
			before:  map[string]string{"c1": "assigned sara xfer bob"},
			op:      func(f *fixture) error { return f.e.Cancel(f.ctx, "c1") },
			after:   map[string]string{"c1": "ended", "@sara": "available voice 0 chat 0", "@bob": "available voice 0 chat 0"},
			outbox:  []string{"transfer_abandoned c1 bob customer_left", "ended c1 sara customer_left"},
			streams: map[string][]string{"bob": {"Offer_Cancelled c1 customer_left"}, "sara": {"Conversation_Ended c1 customer_left"}},
		},
		{
			name:    "transfer to a queue goes to its agents, not the holder",
			setup:   heldChat,
			before:  map[string]string{"c1": "assigned sara", "@sara": "available voice 0 chat 1", "@bob": "available voice 0 chat 1"},
			op:      func(f *fixture) error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "tech") },
			after:   map[string]string{"c1": "assigned sara xfer q:tech offered bob", "@sara": "available voice 0 chat 1", "@bob": "available voice 0 chat 2"},
			outbox:  []string{"transfer_initiated c1 sara", "offered c1 bob"},
			streams: map[string][]string{"bob": {"Offer c1 transfer"}, "sara": nil},
		},
		{
			name: "transfer to a queue: accepted",
			setup: func(f *fixture) {
				heldChat(f)
				require.NoError(f.tb, f.e.TransferToQueue(f.ctx, "c1", "sara", "tech"))
			},
			before:  map[string]string{"c1": "assigned sara xfer q:tech offered bob"},
			op:      func(f *fixture) error { return f.e.Accept(f.ctx, "c1", "bob") },
			after:   map[string]string{"c1": "assigned bob", "@sara": "available voice 0 chat 0", "@bob": "available voice 0 chat 2"},
			outbox:  []string{"transferred c1 bob"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 transferred"}, "bob": {"Assigned c1"}},
		},
		{
			name: "transfer to a queue: declined, it waits in that queue and the holder keeps it",
			setup: func(f *fixture) {
				heldChat(f)
				require.NoError(f.tb, f.e.TransferToQueue(f.ctx, "c1", "sara", "tech"))
			},
			before:  map[string]string{"c1": "assigned sara xfer q:tech offered bob"},
			op:      func(f *fixture) error { return f.e.Decline(f.ctx, "c1", "bob") },
			after:   map[string]string{"c1": "assigned sara xfer q:tech 1", "@sara": "available voice 0 chat 1", "@bob": "available voice 0 chat 1"},
			outbox:  []string{"transfer_declined c1 bob"},
			streams: map[string][]string{"bob": {"Offer_Cancelled c1 declined"}},
		},
		{
			name:    "transfer to a queue nobody can take waits there",
			setup:   heldChat,
			op:      func(f *fixture) error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "empty") },
			after:   map[string]string{"c1": "assigned sara xfer q:empty 1", "@sara": "available voice 0 chat 1"},
			outbox:  []string{"transfer_initiated c1 sara"},
			streams: map[string][]string{"sara": nil},
		},
		{
			name: "transfer to a queue: its maximum wait ends the attempt",
			setup: func(f *fixture) {
				heldChat(f)
				require.NoError(f.tb, f.e.TransferToQueue(f.ctx, "c1", "sara", "empty"))
			},
			before: map[string]string{"c1": "assigned sara xfer q:empty 1"},
			op: func(f *fixture) error {
				f.clock.Advance(time.Minute)
				f.tick()
				return nil
			},
			after:  map[string]string{"c1": "assigned sara", "@sara": "available voice 0 chat 1"},
			outbox: []string{"transfer_expired c1 - max_wait"},
		},
		{
			name:    "requeue a held conversation: another agent gets it",
			setup:   held,
			before:  map[string]string{"c1": "assigned sara"},
			op:      func(f *fixture) error { return f.e.Requeue(f.ctx, "c1") },
			after:   map[string]string{"c1": "offered bob", "@sara": "available voice 0 chat 0", "@bob": "available voice 1 chat 0"},
			outbox:  []string{"requeued c1 sara requeue", "offered c1 bob"},
			streams: map[string][]string{"sara": {"Conversation_Ended c1 requeued"}, "bob": {"Offer c1"}},
		},
		{
			name: "priority requeue moves a waiting conversation to the head",
			setup: func(f *fixture) {
				f.queue("billing")
				f.conv("c1", "billing", "chat")
				f.clock.Advance(time.Second)
				f.conv("c2", "billing", "chat", priority)
				f.clock.Advance(time.Second)
				f.conv("c3", "billing", "chat")
			},
			before: map[string]string{"c1": "waiting 2", "c2": "waiting 1", "c3": "waiting 3"},
			op:     func(f *fixture) error { return f.e.PriorityRequeue(f.ctx, "c3") },
			after:  map[string]string{"c1": "waiting 3", "c2": "waiting 2", "c3": "waiting 1"},
			outbox: []string{"requeued c3 - priority_requeue"},
		},
		{
			name: "a queue's maximum wait times a conversation out",
			setup: func(f *fixture) {
				f.queue("billing", func(q *Queue) { q.MaxWait = time.Minute })
				f.conv("c1", "billing", "chat")
			},
			before: map[string]string{"c1": "waiting 1"},
			op: func(f *fixture) error {
				f.clock.Advance(time.Minute)
				f.tick()
				return nil
			},
			after:  map[string]string{"c1": "timed_out"},
			outbox: []string{"timed_out c1 - max_wait"},
		},
		{
			name: "an offer ending after its queue was deleted cancels the conversation",
			setup: func(f *fixture) {
				f.queue("billing")
				f.agent("sara", Available, "billing")
				f.conv("c1", "billing", "chat")
				require.NoError(f.tb, f.e.DeleteQueue(f.ctx, "billing"))
			},
			before:  map[string]string{"c1": "offered sara"},
			op:      func(f *fixture) error { return f.e.Decline(f.ctx, "c1", "sara") },
			after:   map[string]string{"c1": "cancelled", "@sara": "available voice 0 chat 0"},
			outbox:  []string{"declined c1 sara", "cancelled c1 - queue_deleted"},
			streams: map[string][]string{"sara": {"Offer_Cancelled c1 declined"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*Config)
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			f := newFixture(t, mods...)
			tt.setup(f)
			if tt.before != nil {
				require.Equal(t, tt.before, f.summary(slices.Collect(maps.Keys(tt.before))...), "before")
			}
			agents := []string{"sara", "bob"}
			f.drain(agents...)
			require.NoError(t, tt.op(f))
			assert.Equal(t, tt.after, f.summary(slices.Collect(maps.Keys(tt.after))...), "after")
			assert.Equal(t, tt.outbox, outboxLines(f.outbox()), "outbox")
			for agent, want := range tt.streams {
				assert.Equal(t, want, streamLines(f.stream(agent)), "stream of %s", agent)
			}
			audit(t, f)
		})
	}
}

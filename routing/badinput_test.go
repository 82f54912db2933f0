package routing

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

// TestBadInput: every operation refuses what it cannot do with an error
// that has a code, names the field and says why, and leaves Redis exactly
// as it was.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	// billing serves voice and chat, tech only chat. sara holds c1
	// (voice) and is offered c3 (chat); c2 waits in billing (sara's voice
	// is full, bob is away); c4 was cancelled.
	f.queue("billing")
	f.queue("tech", func(q *Queue) { q.Channels = []string{"chat"} })
	f.agent("sara", Available, "billing")
	f.agent("bob", Away, "billing")
	f.conv("c1", "billing", "voice")
	require.NoError(t, f.e.Accept(f.ctx, "c1", "sara"))
	f.conv("c2", "billing", "voice")
	f.conv("c3", "billing", "chat")
	f.conv("c4", "tech", "chat")
	require.NoError(t, f.e.Cancel(f.ctx, "c4"))
	require.Equal(t, map[string]string{"c1": "assigned sara", "c2": "waiting 1", "c3": "offered sara", "c4": "cancelled"},
		f.summary("c1", "c2", "c3", "c4"))

	conv := func(mod func(*NewConversation)) func() error {
		return func() error {
			n := NewConversation{ID: "c9", Queue: "billing", Channel: "chat", Source: "api"}
			mod(&n)
			_, err := f.e.CreateConversation(f.ctx, n)
			return err
		}
	}
	queue := func(mod func(*Queue)) func() error {
		return func() error {
			q := Queue{ID: "q9", Channels: []string{"chat"}}
			mod(&q)
			return f.e.CreateQueue(f.ctx, q)
		}
	}
	manyAttrs := map[string]string{}
	for i := range maxAttributes + 1 {
		manyAttrs["k"+strconv.Itoa(i)] = "v"
	}

	tests := []struct {
		name  string
		op    func() error
		code  string
		field string
		says  string // part of the message
	}{
		// queues
		{"queue without id", queue(func(q *Queue) { q.ID = "" }), crmsync.EINVALID, "id", "empty"},
		{"queue id with ..", queue(func(q *Queue) { q.ID = "a..b" }), crmsync.EINVALID, "id", ".."},
		{"queue id with a slash", queue(func(q *Queue) { q.ID = "a/b" }), crmsync.EINVALID, "id", "only letters"},
		{"queue id too long", queue(func(q *Queue) { q.ID = strings.Repeat("a", 129) }), crmsync.EINVALID, "id", "128"},
		{"queue without channels", queue(func(q *Queue) { q.Channels = nil }), crmsync.EINVALID, "channels", "at least one"},
		{"queue with a channel twice", queue(func(q *Queue) { q.Channels = []string{"chat", "chat"} }), crmsync.EINVALID, "channels[1]", "twice"},
		{"queue with a bad channel", queue(func(q *Queue) { q.Channels = []string{"vo ice"} }), crmsync.EINVALID, "channels[0]", "only letters"},
		{"queue with a negative offer timeout", queue(func(q *Queue) { q.OfferTimeout = -time.Second }), crmsync.EINVALID, "offer_timeout", "negative"},
		{"queue with a huge max wait", queue(func(q *Queue) { q.MaxWait = 8 * 24 * time.Hour }), crmsync.EINVALID, "max_wait", "week"},
		{"queue with a sub-millisecond preferred wait", queue(func(q *Queue) { q.PreferredWait = time.Microsecond }), crmsync.EINVALID, "preferred_wait", "millisecond"},
		{"queue name with a control character", queue(func(q *Queue) { q.Name = "a\nb" }), crmsync.EINVALID, "name", "control"},
		{"queue priority out of range", queue(func(q *Queue) { q.Priority = 2_000_000 }), crmsync.EINVALID, "priority", "outside"},
		{"queue that exists", queue(func(q *Queue) { q.ID = "billing" }), crmsync.ECONFLICT, "id", "already exists"},
		{"update of an unknown queue", func() error {
			return f.e.UpdateQueue(f.ctx, Queue{ID: "nope", Channels: []string{"chat"}})
		}, crmsync.ENOTFOUND, "id", "does not exist"},
		{"update dropping a channel with waiting conversations", func() error {
			return f.e.UpdateQueue(f.ctx, Queue{ID: "billing", Channels: []string{"chat"}})
		}, crmsync.ECONFLICT, "channels", "waiting on channel voice"},
		{"delete of an unknown queue", func() error { return f.e.DeleteQueue(f.ctx, "nope") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"delete of a queue with waiting conversations", func() error { return f.e.DeleteQueue(f.ctx, "billing") }, crmsync.ECONFLICT, "id", "waiting"},
		{"delete with a bad id", func() error { return f.e.DeleteQueue(f.ctx, "") }, crmsync.EINVALID, "id", "empty"},
		{"get of an unknown queue", func() error { _, err := f.e.GetQueue(f.ctx, "nope"); return err }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"get with a bad id", func() error { _, err := f.e.GetQueue(f.ctx, "-x"); return err }, crmsync.EINVALID, "id", "start with"},

		// agents
		{"agent without id", func() error { return f.e.PutAgent(f.ctx, AgentSpec{}) }, crmsync.EINVALID, "id", "empty"},
		{"agent with a bad presence", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "x", Presence: "busy"})
		}, crmsync.EINVALID, "presence", "available, away or offline"},
		{"agent with a negative capacity", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "x", Capacity: map[string]int{"voice": -1}})
		}, crmsync.EINVALID, "capacity.voice", "outside"},
		{"agent with a bad channel", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "x", Capacity: map[string]int{"a b": 1}})
		}, crmsync.EINVALID, "capacity", "only letters"},
		{"agent in an unknown queue", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "x", Queues: []string{"billing", "nope"}})
		}, crmsync.ENOTFOUND, "queues[1]", "queue nope does not exist"},
		{"agent with a bad queue id", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "x", Queues: []string{"a:b"}})
		}, crmsync.EINVALID, "queues[0]", "only letters"},
		{"capacity below what the agent holds", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "sara", Capacity: map[string]int{"voice": 0, "chat": 2}})
		}, crmsync.ECONFLICT, "capacity.voice", "holds 1"},
		{"capacity dropping a channel the agent holds", func() error {
			return f.e.PutAgent(f.ctx, AgentSpec{ID: "sara", Capacity: map[string]int{"chat": 2}})
		}, crmsync.ECONFLICT, "capacity.voice", "holds"},
		{"set capacity of an unknown agent", func() error {
			return f.e.SetCapacity(f.ctx, "nope", map[string]int{"chat": 1})
		}, crmsync.ENOTFOUND, "id", "does not exist"},
		{"set capacity of nothing", func() error { return f.e.SetCapacity(f.ctx, "sara", nil) }, crmsync.EINVALID, "capacity", "at least one"},
		{"set capacity below the load", func() error {
			return f.e.SetCapacity(f.ctx, "sara", map[string]int{"chat": 0})
		}, crmsync.ECONFLICT, "capacity.chat", "holds 1"},
		{"presence that does not exist", func() error { return f.e.SetPresence(f.ctx, "sara", "busy") }, crmsync.EINVALID, "presence", "available"},
		{"presence of an unknown agent", func() error { return f.e.SetPresence(f.ctx, "nope", Away) }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"heartbeat of an unknown agent", func() error { return f.e.Heartbeat(f.ctx, "nope") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"heartbeat with a bad id", func() error { return f.e.Heartbeat(f.ctx, "a b") }, crmsync.EINVALID, "id", "only letters"},
		{"join an unknown queue", func() error { return f.e.JoinQueues(f.ctx, "sara", "nope") }, crmsync.ENOTFOUND, "queues[0]", "does not exist"},
		{"join for an unknown agent", func() error { return f.e.JoinQueues(f.ctx, "nope", "billing") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"set queues with a bad id", func() error { return f.e.SetQueues(f.ctx, "sara", []string{"billing", ""}) }, crmsync.EINVALID, "queues[1]", "empty"},
		{"leave for an unknown agent", func() error { return f.e.LeaveQueues(f.ctx, "nope", "billing") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"log off of an unknown agent", func() error { return f.e.LogOff(f.ctx, "nope") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"get of an unknown agent", func() error { _, err := f.e.GetAgent(f.ctx, "nope"); return err }, crmsync.ENOTFOUND, "id", "does not exist"},

		// conversations
		{"conversation without id", conv(func(n *NewConversation) { n.ID = "" }), crmsync.EINVALID, "id", "empty"},
		{"conversation in an unknown queue", conv(func(n *NewConversation) { n.Queue = "nope" }), crmsync.ENOTFOUND, "queue", "does not exist"},
		{"conversation on a channel the queue does not serve", conv(func(n *NewConversation) { n.Queue, n.Channel = "tech", "voice" }),
			crmsync.EINVALID, "channel", "does not serve channel voice"},
		{"conversation without channel", conv(func(n *NewConversation) { n.Channel = "" }), crmsync.EINVALID, "channel", "empty"},
		{"conversation with a bad preferred agent", conv(func(n *NewConversation) { n.PreferredAgent = "a b" }), crmsync.EINVALID, "preferred_agent", "only letters"},
		{"conversation with a bad session", conv(func(n *NewConversation) { n.Session = "email-1" }), crmsync.EINVALID, "session", "call-{id}"},
		{"conversation with a control character in its source", conv(func(n *NewConversation) { n.Source = "a\x00" }), crmsync.EINVALID, "source", "control"},
		{"conversation with too many attributes", conv(func(n *NewConversation) { n.Attributes = manyAttrs }), crmsync.EINVALID, "attributes", "more than 64"},
		{"conversation with a bad attribute value", conv(func(n *NewConversation) { n.Attributes = map[string]string{"k": "\xff"} }), crmsync.EINVALID, "attributes.k", "UTF-8"},
		{"conversation with an empty attribute key", conv(func(n *NewConversation) { n.Attributes = map[string]string{"": "v"} }), crmsync.EINVALID, "attributes", "empty"},
		{"conversation still routed", conv(func(n *NewConversation) { n.ID = "c2" }), crmsync.ECONFLICT, "id", "already exists"},
		{"get of an unknown conversation", func() error { _, err := f.e.GetConversation(f.ctx, "nope"); return err }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"accept of a waiting conversation", func() error { return f.e.Accept(f.ctx, "c2", "sara") }, crmsync.ECONFLICT, "agent", "conversation c2 is not offered to agent sara"},
		{"accept by another agent", func() error { return f.e.Accept(f.ctx, "c3", "bob") }, crmsync.ECONFLICT, "agent", "not offered to agent bob"},
		{"accept of a cancelled conversation", func() error { return f.e.Accept(f.ctx, "c4", "sara") }, crmsync.ECONFLICT, "agent", "not offered"},
		{"accept of an unknown conversation", func() error { return f.e.Accept(f.ctx, "nope", "sara") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"accept with a bad agent id", func() error { return f.e.Accept(f.ctx, "c3", "") }, crmsync.EINVALID, "agent", "empty"},
		{"decline of a held conversation", func() error { return f.e.Decline(f.ctx, "c1", "sara") }, crmsync.ECONFLICT, "agent", "not offered"},
		{"expire by another agent", func() error { return f.e.Expire(f.ctx, "c3", "bob") }, crmsync.ECONFLICT, "agent", "not offered"},
		{"cancel of an unknown conversation", func() error { return f.e.Cancel(f.ctx, "nope") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"end with a bad id", func() error { return f.e.End(f.ctx, "..") }, crmsync.EINVALID, "id", "start with"},
		{"transfer by an agent that does not hold it", func() error { return f.e.TransferToAgent(f.ctx, "c1", "bob", "sara") }, crmsync.ECONFLICT, "agent", "not held by agent bob"},
		{"transfer of a waiting conversation", func() error { return f.e.TransferToQueue(f.ctx, "c2", "sara", "billing") }, crmsync.ECONFLICT, "agent", "not held"},
		{"transfer to the holder", func() error { return f.e.TransferToAgent(f.ctx, "c1", "sara", "sara") }, crmsync.EINVALID, "to_agent", "already holds"},
		{"transfer to an unknown agent", func() error { return f.e.TransferToAgent(f.ctx, "c1", "sara", "nope") }, crmsync.ENOTFOUND, "to_agent", "does not exist"},
		{"transfer to an agent that is away", func() error { return f.e.TransferToAgent(f.ctx, "c1", "sara", "bob") }, crmsync.ECONFLICT, "to_agent", "is away"},
		{"transfer with a bad target", func() error { return f.e.TransferToAgent(f.ctx, "c1", "sara", "") }, crmsync.EINVALID, "to_agent", "empty"},
		{"transfer to an unknown queue", func() error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "nope") }, crmsync.ENOTFOUND, "to_queue", "does not exist"},
		{"transfer to a queue without the channel", func() error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "tech") }, crmsync.EINVALID, "to_queue", "does not serve channel voice"},
		{"transfer to a bad queue id", func() error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "a/b") }, crmsync.EINVALID, "to_queue", "only letters"},
		{"requeue of a cancelled conversation", func() error { return f.e.Requeue(f.ctx, "c4") }, crmsync.ECONFLICT, "id", "cancelled"},
		{"priority requeue of an unknown conversation", func() error { return f.e.PriorityRequeue(f.ctx, "nope") }, crmsync.ENOTFOUND, "id", "does not exist"},
		{"outbox reader with a bad group", func() error { _, err := f.e.Outbox("", "c"); return err }, crmsync.EINVALID, "group", "empty"},
		{"outbox reader with a bad consumer", func() error { _, err := f.e.Outbox("g", "a b"); return err }, crmsync.EINVALID, "consumer", "only letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			err := tt.op()
			require.Error(t, err)
			var e *crmsync.Error
			require.True(t, errors.As(err, &e), "want a *crmsync.Error, got %T: %v", err, err)
			assert.Equal(t, tt.code, e.Code, "code of %q", err)
			assert.Equal(t, tt.field, e.Field, "field of %q", err)
			assert.Contains(t, e.Message, tt.says)
			assert.Equal(t, before, f.dump(), "nothing may change")
		})
	}
	audit(t, f)
}

// TestTransferPendingRefusesAnother: a second transfer or a requeue while
// one is pending is a conflict, and changes nothing.
func TestTransferPendingRefusesAnother(t *testing.T) {
	f := newFixture(t)
	held(f)
	require.NoError(t, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
	before := f.dump()
	for _, op := range []func() error{
		func() error { return f.e.TransferToQueue(f.ctx, "c1", "sara", "tech") },
		func() error { return f.e.Requeue(f.ctx, "c1") },
	} {
		err := op()
		assert.Equal(t, crmsync.ECONFLICT, crmsync.ErrorCode(err), "%v", err)
		assert.ErrorContains(t, err, "transfer")
	}
	// The same transfer again is a repeat, taken as done.
	assert.NoError(t, f.e.TransferToAgent(f.ctx, "c1", "sara", "bob"))
	assert.Equal(t, before, f.dump())
}

// TestAuditCatchesInconsistency makes sure the audit the other tests lean
// on does find a broken state.
func TestAuditCatchesInconsistency(t *testing.T) {
	f := newFixture(t)
	held(f)
	require.Empty(t, takeSnapshot(t, f).audit())
	require.NoError(t, f.rdb.HSet(f.ctx, f.prefix+"a:sara", "load:voice", 2).Err())
	require.NoError(t, f.rdb.SAdd(f.ctx, f.prefix+"a:bob:convs", "c1").Err())
	bad := takeSnapshot(t, f).audit()
	assert.NotEmpty(t, bad)
	joined := strings.Join(bad, "\n")
	assert.Contains(t, joined, "over its capacity")
	assert.Contains(t, joined, "held conversation c1 is with [bob sara]")
}

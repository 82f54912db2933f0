package pull

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

// setups bring request r1 on list L1 to a state. s1 and a1 subscribe to
// L1; a2 does not (joining needs no subscription).
var setups = map[string]func(f *fixture){
	"none":     func(f *fixture) {},
	"UNREAD":   func(f *fixture) { f.publish("r1", "L1") },
	"ACTIVE":   func(f *fixture) { f.publish("r1", "L1"); f.join("r1", "a1") },
	"ACTIVE+2": func(f *fixture) { f.publish("r1", "L1"); f.join("r1", "a1"); f.join("r1", "a2") },
	"INACTIVE": func(f *fixture) { f.publish("r1", "L1"); f.join("r1", "a1"); f.leave("r1", "a1") },
	"CLOSED": func(f *fixture) {
		f.publish("r1", "L1")
		f.join("r1", "a1")
		_, err := f.s.Close(f.ctx, "r1", "a1")
		require.NoError(f.tb, err)
	},
}

func TestStateTable(t *testing.T) {
	type action func(f *fixture) (*Request, error)
	publish := func(f *fixture) (*Request, error) {
		return f.s.Publish(f.ctx, NewRequest{ID: "r1", List: "L1", Channel: "fb"})
	}
	message := func(f *fixture) (*Request, error) { return f.s.Message(f.ctx, "r1") }
	join := func(a string) action { return func(f *fixture) (*Request, error) { return f.s.Join(f.ctx, "r1", a) } }
	leave := func(a string) action { return func(f *fixture) (*Request, error) { return f.s.Leave(f.ctx, "r1", a) } }
	closeBy := func(a string) action { return func(f *fixture) (*Request, error) { return f.s.Close(f.ctx, "r1", a) } }

	cases := []struct {
		name   string
		from   string
		do     action
		err    string // error code, "" for none
		field  string
		state  State    // after
		agents []string // in the request after
		bumps  bool     // the List's seq grows by one
		told   map[string][]string
	}{
		{name: "a new request tells the subscribers", from: "none", do: publish, state: StateUnread, agents: []string{}, bumps: true,
			told: map[string][]string{"s1": {"List_Request UNREAD"}, "a1": {"List_Request UNREAD"}}},
		{name: "UNREAD, published again, nobody is told", from: "UNREAD", do: publish, state: StateUnread, agents: []string{}},
		{name: "UNREAD, the customer writes, nobody is told again", from: "UNREAD", do: message, state: StateUnread, agents: []string{}},
		{name: "UNREAD, an agent joins", from: "UNREAD", do: join("a1"), state: StateActive, agents: []string{"a1"}, bumps: true,
			told: map[string][]string{"s1": {"List_Update ACTIVE"}, "a1": {"List_Update ACTIVE", "Agent_Joined ACTIVE"}}},
		{name: "UNREAD, an unsubscribed agent joins", from: "UNREAD", do: join("a2"), state: StateActive, agents: []string{"a2"}, bumps: true,
			told: map[string][]string{"s1": {"List_Update ACTIVE"}, "a1": {"List_Update ACTIVE"}, "a2": {"List_Update ACTIVE", "Agent_Joined ACTIVE"}}},
		{name: "UNREAD, an agent who never joined leaves", from: "UNREAD", do: leave("a1"), err: crmsync.ECONFLICT, field: "agent",
			state: StateUnread, agents: []string{}},
		{name: "UNREAD, the system closes", from: "UNREAD", do: closeBy(""), state: StateClosed, agents: []string{}, bumps: true,
			told: map[string][]string{"s1": {"List_Update CLOSED"}, "a1": {"List_Update CLOSED"}}},
		{name: "UNREAD, an agent not in it may not close", from: "UNREAD", do: closeBy("a1"), err: crmsync.ECONFLICT, field: "agent",
			state: StateUnread, agents: []string{}},

		{name: "ACTIVE, a second agent joins", from: "ACTIVE", do: join("a2"), state: StateActive, agents: []string{"a1", "a2"}, bumps: true,
			told: map[string][]string{"a1": {"Agent_Joined ACTIVE"}, "a2": {"Agent_Joined ACTIVE"}}},
		{name: "ACTIVE, the same agent joins again", from: "ACTIVE", do: join("a1"), state: StateActive, agents: []string{"a1"}},
		{name: "ACTIVE, the customer writes, the agents in it are told", from: "ACTIVE+2", do: message, state: StateActive, agents: []string{"a1", "a2"},
			told: map[string][]string{"a1": {"Customer_Message"}, "a2": {"Customer_Message"}}},
		{name: "ACTIVE, one of two leaves", from: "ACTIVE+2", do: leave("a1"), state: StateActive, agents: []string{"a2"}, bumps: true,
			told: map[string][]string{"a1": {"Agent_Left ACTIVE"}, "a2": {"Agent_Left ACTIVE"}}},
		{name: "ACTIVE, the last agent leaves", from: "ACTIVE", do: leave("a1"), state: StateInactive, agents: []string{}, bumps: true,
			told: map[string][]string{"s1": {"List_Update INACTIVE"}, "a1": {"List_Update INACTIVE", "Agent_Left INACTIVE"}}},
		{name: "ACTIVE, an agent in it closes", from: "ACTIVE+2", do: closeBy("a2"), state: StateClosed, agents: []string{"a1", "a2"}, bumps: true,
			told: map[string][]string{"s1": {"List_Update CLOSED"}, "a1": {"List_Update CLOSED"}, "a2": {"List_Update CLOSED"}}},
		{name: "ACTIVE, an agent not in it may not close", from: "ACTIVE", do: closeBy("a2"), err: crmsync.ECONFLICT, field: "agent",
			state: StateActive, agents: []string{"a1"}},

		{name: "INACTIVE, the customer writes, nobody is notified", from: "INACTIVE", do: message, state: StateInactive, agents: []string{}},
		{name: "INACTIVE, an agent joins again", from: "INACTIVE", do: join("a1"), state: StateActive, agents: []string{"a1"}, bumps: true,
			told: map[string][]string{"s1": {"List_Update ACTIVE"}, "a1": {"List_Update ACTIVE", "Agent_Joined ACTIVE"}}},
		{name: "INACTIVE, another agent joins", from: "INACTIVE", do: join("a2"), state: StateActive, agents: []string{"a2"}, bumps: true,
			told: map[string][]string{"s1": {"List_Update ACTIVE"}, "a1": {"List_Update ACTIVE"}, "a2": {"List_Update ACTIVE", "Agent_Joined ACTIVE"}}},
		{name: "INACTIVE, the agent who left leaves again", from: "INACTIVE", do: leave("a1"), state: StateInactive, agents: []string{}},
		{name: "INACTIVE, an agent who never joined leaves", from: "INACTIVE", do: leave("a2"), err: crmsync.ECONFLICT, field: "agent",
			state: StateInactive, agents: []string{}},
		{name: "INACTIVE, the agent who left may not close", from: "INACTIVE", do: closeBy("a1"), err: crmsync.ECONFLICT, field: "agent",
			state: StateInactive, agents: []string{}},
		{name: "INACTIVE, the system closes", from: "INACTIVE", do: closeBy(""), state: StateClosed, agents: []string{}, bumps: true,
			told: map[string][]string{"s1": {"List_Update CLOSED"}, "a1": {"List_Update CLOSED"}}},

		{name: "CLOSED, an agent may not join", from: "CLOSED", do: join("a2"), err: crmsync.ECONFLICT, field: "id",
			state: StateClosed, agents: []string{"a1"}},
		{name: "CLOSED, the customer writes", from: "CLOSED", do: message, err: crmsync.ECONFLICT, field: "id",
			state: StateClosed, agents: []string{"a1"}},
		{name: "CLOSED, published again", from: "CLOSED", do: publish, err: crmsync.ECONFLICT, field: "id",
			state: StateClosed, agents: []string{"a1"}},
		{name: "CLOSED, closed again", from: "CLOSED", do: closeBy(""), state: StateClosed, agents: []string{"a1"}},
		{name: "CLOSED, the agent who was in it leaves", from: "CLOSED", do: leave("a1"), state: StateClosed, agents: []string{"a1"}},
		{name: "CLOSED, an agent who never joined leaves", from: "CLOSED", do: leave("a2"), err: crmsync.ECONFLICT, field: "agent",
			state: StateClosed, agents: []string{"a1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.list("L1", "fb")
			f.subscribe("s1", "L1")
			f.subscribe("a1", "L1")
			setups[tc.from](f)
			f.skip("s1", "a1", "a2")
			seq := f.seq("L1")
			var before *Request
			if tc.from != "none" {
				before = f.get("r1")
			}

			got, err := tc.do(f)
			if tc.err != "" {
				require.Error(t, err)
				assert.Equal(t, tc.err, code(err), "%v", err)
				assert.Equal(t, tc.field, field(err), "%v", err)
				assert.Equal(t, before, f.get("r1"), "a refused call changes nothing")
			} else {
				require.NoError(t, err)
				assert.Equal(t, "r1", got.ID)
				assert.Equal(t, tc.state, got.State)
				assert.Equal(t, got, f.get("r1"), "the answer is the request as stored")
			}
			after := f.get("r1")
			assert.Equal(t, tc.state, after.State)
			assert.Equal(t, tc.agents, after.Agents)

			if tc.bumps {
				assert.Equal(t, seq+1, f.seq("L1"))
				assert.Equal(t, seq+1, after.Seq, "the request records the seq of its latest change")
			} else {
				assert.Equal(t, seq, f.seq("L1"), "nothing changed on the List")
			}
			for _, a := range []string{"s1", "a1", "a2"} {
				want := tc.told[a]
				if want == nil {
					want = []string{}
				}
				assert.Equal(t, want, f.told(a), "what %s was told", a)
			}
		})
	}
}

// TestEventData checks the data of each event type field by field.
func TestEventData(t *testing.T) {
	f := newFixture(t)
	f.list("L1", "fb")
	f.subscribe("s1", "L1")
	f.publish("r1", "L1")
	f.join("r1", "a1")
	_, err := f.s.Message(f.ctx, "r1")
	require.NoError(t, err)
	f.leave("r1", "a1")

	seq := func(n int64) *int64 { return &n }
	assert.Equal(t, []eventData{
		{List: "L1", Conversation: "r1", State: StateUnread, Seq: seq(1)},
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateActive, Seq: seq(2)},
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateInactive, Seq: seq(3)},
	}, datas(f.events("s1")))
	assert.Equal(t, []eventData{
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateActive, Seq: seq(2)},
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateActive, Seq: seq(2)},
		{List: "L1", Conversation: "r1", Seq: seq(2)},
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateInactive, Seq: seq(3)},
		{List: "L1", Conversation: "r1", Agent: "a1", State: StateInactive, Seq: seq(3)},
	}, datas(f.events("a1")))

	// Every event woke the agent's readers: the wake-up channel is
	// published to in the same step (checked through a real subscriber).
	sub := f.rdb.Subscribe(f.ctx, f.prefix+"agent-events")
	defer sub.Close()
	_, err = sub.Receive(f.ctx)
	require.NoError(t, err)
	f.join("r1", "a2")
	msg, err := sub.ReceiveMessage(f.ctx)
	require.NoError(t, err)
	assert.Contains(t, []string{"s1", "a2"}, msg.Payload)
}

func datas(es []event) []eventData {
	out := make([]eventData, len(es))
	for i, e := range es {
		out[i] = e.Data
	}
	return out
}

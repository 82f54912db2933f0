package pull

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

// view is a client's copy of one List, built from a Snapshot and kept up
// with changes, as the package comment says a client should.
type view struct {
	tb      testing.TB
	list    string
	seq     int64
	reqs    map[string]viewReq
	applied []int64 // the seqs applied, in order
	gaps    int     // catch-ups a gap in the seqs called for
	repeats int     // events of a change applied already
}

type viewReq struct {
	State  State
	Agents []string
}

func newView(tb testing.TB, snap *Snapshot) *view {
	v := &view{tb: tb, list: snap.List, seq: snap.Seq, reqs: map[string]viewReq{}}
	for _, r := range snap.Requests {
		v.reqs[r.ID] = viewReq{State: r.State, Agents: slices.Clone(r.Agents)}
	}
	return v
}

// apply applies one change. A change is applied only right after the one
// before it, which is what makes "no miss, no double" checkable.
func (v *view) apply(c Change) {
	v.tb.Helper()
	require.Equal(v.tb, v.seq+1, c.Seq, "changes come one by one: %+v", c)
	v.set(c)
	v.seq = c.Seq
	v.applied = append(v.applied, c.Seq)
}

// set makes the view say what c left behind.
func (v *view) set(c Change) {
	r := v.reqs[c.Conversation]
	r.State = c.State
	switch {
	case c.Type == EventAgentJoined || c.Type == EventListUpdate && c.State == StateActive && c.Agent != "":
		if !slices.Contains(r.Agents, c.Agent) {
			r.Agents = append(r.Agents, c.Agent)
			slices.Sort(r.Agents)
		}
	case c.Type == EventAgentLeft || c.Type == EventListUpdate && c.State == StateInactive && c.Agent != "":
		r.Agents = slices.DeleteFunc(r.Agents, func(a string) bool { return a == c.Agent })
	}
	if r.Agents == nil {
		r.Agents = []string{}
	}
	if c.State == StateClosed {
		delete(v.reqs, c.Conversation)
		return
	}
	v.reqs[c.Conversation] = r
}

// event takes one stream event by the rules of step 3; it asks the store
// for Changes when it finds a gap.
func (v *view) event(s *Store, e event) {
	v.tb.Helper()
	switch e.Type {
	case EventListRequest, EventListUpdate, EventAgentJoined, EventAgentLeft:
	default:
		return
	}
	if e.Data.List != v.list {
		return
	}
	c := Change{Seq: *e.Data.Seq, Type: e.Type, Conversation: e.Data.Conversation, State: e.Data.State, Agent: e.Data.Agent}
	switch {
	case c.Seq < v.seq:
		v.repeats++
	case c.Seq == v.seq:
		v.set(c) // the same change told again: harmless
		v.repeats++
	case c.Seq == v.seq+1:
		v.apply(c)
	default:
		v.gaps++
		v.catchUp(s)
	}
}

func (v *view) catchUp(s *Store) {
	v.tb.Helper()
	cs, err := s.Changes(v.tb.Context(), v.list, v.seq)
	require.NoError(v.tb, err)
	for _, c := range cs {
		v.apply(c)
	}
}

func (v *view) check(s *Store) {
	v.tb.Helper()
	snap, err := s.Snapshot(v.tb.Context(), v.list)
	require.NoError(v.tb, err)
	assert.Equal(v.tb, snap.Seq, v.seq, "the copy is at the List's seq")
	assert.Equal(v.tb, newView(v.tb, snap).reqs, v.reqs, "the copy is the List")
}

// workload changes list L1 at random: new requests, joins, leaves,
// closes, customer messages, some of them refused.
type workload struct {
	f    *fixture
	rnd  *rand.Rand
	next int
}

func (w *workload) step() {
	f := w.f
	ids := []string{}
	for i := max(0, w.next-8); i < w.next; i++ {
		ids = append(ids, fmt.Sprintf("r%d", i))
	}
	agent := fmt.Sprintf("a%d", w.rnd.IntN(5))
	var err error
	switch n := w.rnd.IntN(10); {
	case n < 2 || len(ids) == 0:
		_, err = f.s.Publish(f.ctx, NewRequest{ID: fmt.Sprintf("r%d", w.next), List: "L1"})
		w.next++
	case n < 5:
		_, err = f.s.Join(f.ctx, ids[w.rnd.IntN(len(ids))], agent)
	case n < 8:
		_, err = f.s.Leave(f.ctx, ids[w.rnd.IntN(len(ids))], agent)
	case n < 9:
		_, err = f.s.Message(f.ctx, ids[w.rnd.IntN(len(ids))])
	default:
		if w.rnd.IntN(2) == 0 {
			agent = ""
		}
		_, err = f.s.Close(f.ctx, ids[w.rnd.IntN(len(ids))], agent)
	}
	if err != nil {
		// Refusals are part of the mix; anything else is a failure.
		require.Equal(f.tb, crmsync.ECONFLICT, crmsync.ErrorCode(err), "%v", err)
	}
	f.clock.Advance(time.Millisecond)
}

func TestSnapshotAndChanges(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	w := &workload{f: f, rnd: rand.New(rand.NewPCG(1, 2))}
	var snaps []*Snapshot
	for i := 0; i < 150; i++ {
		if i%25 == 0 {
			s, err := f.s.Snapshot(f.ctx, "L1")
			require.NoError(t, err)
			snaps = append(snaps, s)
		}
		w.step()
	}
	end, err := f.s.Snapshot(f.ctx, "L1")
	require.NoError(t, err)
	require.Greater(t, end.Seq, int64(50), "the workload made changes")

	for _, s := range snaps {
		t.Run(fmt.Sprintf("from seq %d", s.Seq), func(t *testing.T) {
			v := newView(t, s)
			v.catchUp(f.s)
			v.check(f.s)
			want := []int64{}
			for q := s.Seq + 1; q <= end.Seq; q++ {
				want = append(want, q)
			}
			assert.Equal(t, want, v.applied, "every change once, in order")
		})
	}

	cs, err := f.s.Changes(f.ctx, "L1", end.Seq)
	require.NoError(t, err)
	assert.Empty(t, cs, "nothing after the latest seq")

	_, err = f.s.Changes(f.ctx, "L1", end.Seq+1)
	assert.ErrorIs(t, err, ErrSnapshotNeeded, "a seq ahead of the List")
	_, err = f.s.Changes(f.ctx, "nope", 0)
	assert.Equal(t, crmsync.ENOTFOUND, code(err))
}

func TestChangesBeyondTheLog(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LogMaxLen = 10 })
	f.list("L1")
	for i := 0; i < 250; i++ {
		f.publish(fmt.Sprintf("r%d", i), "L1")
	}
	_, err := f.s.Changes(f.ctx, "L1", 0)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrSnapshotNeeded), "%v", err)
	assert.Equal(t, crmsync.ECONFLICT, code(err))
	assert.Equal(t, "after", field(err))

	// The recent past is still there.
	cs, err := f.s.Changes(f.ctx, "L1", 245)
	require.NoError(t, err)
	require.Len(t, cs, 5)
	assert.Equal(t, Change{Seq: 246, Type: EventListRequest, Conversation: "r245", State: StateUnread, At: f.clock.Now().UTC()}, cs[0])
}

// TestClientCatchesUp follows a subscriber's client through the protocol
// of the package comment: stream first, snapshot, events, a
// disconnection, a catch-up and more events. Its copy ends equal to the
// List, having applied each change exactly once.
func TestClientCatchesUp(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	f.subscribe("a0", "L1")
	w := &workload{f: f, rnd: rand.New(rand.NewPCG(3, 4))}
	for i := 0; i < 30; i++ {
		w.step()
	}

	f.skip("a0") // step 1: the stream is open from here on
	for i := 0; i < 5; i++ {
		w.step() // changes between opening the stream and the snapshot
	}
	snap, err := f.s.Snapshot(f.ctx, "L1")
	require.NoError(t, err)
	v := newView(t, snap)
	start := v.seq

	read := func() {
		for _, e := range f.events("a0") {
			v.event(f.s, e)
		}
	}
	for i := 0; i < 60; i++ {
		w.step()
		if i%3 == 0 {
			read()
		}
	}
	read()
	v.check(f.s)

	// Disconnected: the stream is not read while the List moves on.
	mark := f.seen.Last(f.stream("a0"))
	for i := 0; i < 40; i++ {
		w.step()
	}
	v.catchUp(f.s) // step 4
	f.seen.Seek(f.stream("a0"), mark)
	for i := 0; i < 20; i++ {
		w.step()
	}
	read() // the events missed while away come too, and are skipped
	v.check(f.s)

	want := []int64{}
	for q := start + 1; q <= v.seq; q++ {
		want = append(want, q)
	}
	assert.Equal(t, want, v.applied, "every change applied once, in order")
	assert.Positive(t, v.gaps, "the workload made the client fill gaps")
	assert.Positive(t, v.repeats, "the workload told the client of changes it had")
}

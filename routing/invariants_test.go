package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

// TestInvariantsUnderConcurrency throws random presence changes,
// arrivals, accepts, declines, expiries, timeouts, transfers, requeues and
// ends at two Engines on one Redis from many goroutines, while a checker
// audits the whole state again and again. Afterwards the outbox is
// replayed: no agent ever held more than its capacity, no conversation
// was ever held by two agents or offered twice at once, and every offer
// ended.
func TestInvariantsUnderConcurrency(t *testing.T) {
	const (
		workers = 8
		ops     = 200
		nAgents = 8
	)
	f := newFixture(t, func(c *Config) {
		c.OfferTimeout = 5 * time.Second
		c.DeclineCooldown = time.Second
		c.HeartbeatGrace = 10 * time.Second
	})
	engines := []*Engine{f.e, f.engine(func(c *Config) {
		c.OfferTimeout = 5 * time.Second
		c.DeclineCooldown = time.Second
		c.HeartbeatGrace = 10 * time.Second
	})}
	queues := []string{"q1", "q2", "q3"}
	f.queue("q1", func(q *Queue) { q.Priority = 1 })
	f.queue("q2", func(q *Queue) { q.PreferredWait = 2 * time.Second })
	f.queue("q3", func(q *Queue) { q.MaxWait = 20 * time.Second; q.OfferTimeout = 3 * time.Second })
	agents := make([]string, nAgents)
	for i := range agents {
		agents[i] = "a" + strconv.Itoa(i)
		f.agent(agents[i], Available, queues[i%3], queues[(i+1)%3])
	}
	capacity := map[string]int{"voice": 1, "chat": 2}
	channels := []string{"voice", "chat"}

	var (
		mu    sync.Mutex
		convs []string
		seq   atomic.Int64
	)
	pickConv := func(r *rand.Rand) string {
		mu.Lock()
		defer mu.Unlock()
		if len(convs) == 0 {
			return "none"
		}
		return convs[r.IntN(len(convs))]
	}
	// ok accepts the refusals a racing caller must expect.
	ok := func(err error) {
		if err == nil {
			return
		}
		switch crmsync.ErrorCode(err) {
		case crmsync.ECONFLICT, crmsync.ENOTFOUND:
			return
		}
		t.Errorf("unexpected error: %v", err)
	}

	ctx, stop := context.WithCancel(f.ctx)
	var checks atomic.Int64
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // the checker
		defer bg.Done()
		for ctx.Err() == nil {
			if bad := takeSnapshot(t, f).audit(); len(bad) > 0 {
				t.Errorf("inconsistent state:\n%v", bad)
				return
			}
			checks.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() { // the timers, fired by both engines
		defer bg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, err := engines[i%2].Tick(ctx)
			if ctx.Err() == nil {
				ok(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for range ops {
				e := engines[r.IntN(2)]
				agent := agents[r.IntN(nAgents)]
				switch n := r.IntN(100); {
				case n < 20:
					id := "c" + strconv.FormatInt(seq.Add(1), 10)
					nc := NewConversation{ID: id, Queue: queues[r.IntN(3)], Channel: channels[r.IntN(2)],
						Priority: r.IntN(4) == 0, Source: "api", Attributes: map[string]string{"w": strconv.Itoa(w)}}
					if r.IntN(3) == 0 {
						nc.PreferredAgent = agent
					}
					_, err := e.CreateConversation(ctx, nc)
					ok(err)
					mu.Lock()
					convs = append(convs, id)
					mu.Unlock()
				case n < 55:
					a, err := e.GetAgent(ctx, agent)
					if err != nil {
						t.Errorf("get agent: %v", err)
						return
					}
					if len(a.Offers) == 0 {
						continue
					}
					c := a.Offers[r.IntN(len(a.Offers))].Conversation
					switch r.IntN(4) {
					case 0, 1:
						ok(e.Accept(ctx, c, agent))
					case 2:
						ok(e.Decline(ctx, c, agent))
					default:
						ok(e.Expire(ctx, c, agent))
					}
				case n < 72:
					a, err := e.GetAgent(ctx, agent)
					if err != nil {
						t.Errorf("get agent: %v", err)
						return
					}
					if len(a.Conversations) == 0 {
						continue
					}
					c := a.Conversations[r.IntN(len(a.Conversations))]
					switch r.IntN(6) {
					case 0, 1, 2:
						to := agents[r.IntN(nAgents)]
						if to == agent {
							continue
						}
						err := e.TransferToAgent(ctx, c, agent, to)
						ok(err)
						if err == nil && r.IntN(2) == 0 {
							// The target answers at once, racing the others.
							ok(engines[r.IntN(2)].Accept(ctx, c, to))
						}
					case 3:
						ok(e.TransferToQueue(ctx, c, agent, queues[r.IntN(3)]))
					case 4:
						ok(e.Requeue(ctx, c))
					default:
						ok(e.PriorityRequeue(ctx, c))
					}
				case n < 78:
					if r.IntN(2) == 0 {
						ok(e.End(ctx, pickConv(r)))
					} else {
						ok(e.Cancel(ctx, pickConv(r)))
					}
				case n < 87:
					p := []Presence{Available, Available, Away, Offline}[r.IntN(4)]
					ok(e.SetPresence(ctx, agent, p))
				case n < 89:
					ok(e.LogOff(ctx, agent))
				case n < 92:
					ok(e.Heartbeat(ctx, agent))
				case n < 94:
					ok(e.JoinQueues(ctx, agent, queues[r.IntN(3)]))
				case n < 95:
					ok(e.LeaveQueues(ctx, agent, queues[r.IntN(3)]))
				default:
					f.clock.Advance(time.Duration(r.IntN(1500)) * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	stop()
	bg.Wait()
	require.False(t, t.Failed())
	t.Logf("%d conversations, %d audits during the run", seq.Load(), checks.Load())

	// Wind down: everybody offline, then let every timer fire.
	for _, a := range agents {
		require.NoError(t, f.e.SetPresence(f.ctx, a, Offline))
	}
	for range 10 {
		f.clock.Advance(time.Minute)
		f.tick()
	}
	n, err := f.rdb.ZCount(f.ctx, f.prefix+"timers", "-inf", strconv.FormatInt(f.clock.Now().UnixMilli(), 10)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "timers still due")
	audit(t, f)

	// Every conversation in exactly one state, none offered.
	states := map[State]int{}
	for _, id := range convs {
		c, err := f.e.GetConversation(f.ctx, id)
		if crmsync.ErrorCode(err) == crmsync.ENOTFOUND {
			continue // refused at creation (a racing duplicate id cannot happen, an unknown queue cannot either)
		}
		require.NoError(t, err)
		states[c.State]++
		assert.NotEqual(t, StateOffered, c.State, "conversation %s", id)
		assert.Empty(t, c.OfferedTo, "conversation %s", id)
	}
	t.Logf("final states: %v", states)

	// Replay the outbox.
	msgs, err := f.rdb.XRange(f.ctx, f.e.OutboxKey(), "-", "+").Result()
	require.NoError(t, err)
	evs, err := parseAll(msgs)
	require.NoError(t, err)
	rp := newReplay(capacity)
	for _, ev := range evs {
		rp.apply(ev)
	}
	assert.Empty(t, rp.bad, "replay")
	assert.Empty(t, rp.offers, "offers that never ended")
	counts := map[string]int{}
	for _, ev := range evs {
		counts[ev.Event]++
	}
	t.Logf("%d outbox events: %v", len(evs), counts)
	// The run must have gone through the main paths for its checks to
	// mean something. A transfer's acceptance is left out: whether one
	// lands before its conversation ends or its target leaves is up to the
	// random interleaving (the transitions test covers it).
	for _, ev := range []string{EventOffered, EventAccepted, EventDeclined, EventExpired, EventTransferInitiated, EventRequeued, EventEnded} {
		assert.Positive(t, counts[ev], "the run should have produced %s events", ev)
	}
	// What the replay says each agent holds is what Redis says.
	for _, a := range agents {
		ag := f.getAgent(a)
		for _, ch := range channels {
			assert.Equal(t, rp.load[a][ch], ag.Load[ch], "load of %s on %s", a, ch)
		}
		var held []string
		for c, h := range rp.holder {
			if h == a {
				held = append(held, c)
			}
		}
		assert.ElementsMatch(t, held, ag.Conversations, "conversations of %s", a)
	}
}

// replay rebuilds from the outbox who was offered and who held what, and
// notes every event that breaks an invariant.
type replay struct {
	capacity map[string]int
	load     map[string]map[string]int // agent -> channel -> offers + holds
	offers   map[string]string         // conversation -> agent offered
	holder   map[string]string         // conversation -> agent holding
	bad      []string
}

func newReplay(capacity map[string]int) *replay {
	return &replay{capacity: capacity, load: map[string]map[string]int{}, offers: map[string]string{}, holder: map[string]string{}}
}

func (r *replay) fail(ev OutboxEvent, format string, args ...any) {
	r.bad = append(r.bad, fmt.Sprintf("%s %s %s (seq %d): ", ev.ID, ev.Event, ev.Conversation, ev.Seq)+fmt.Sprintf(format, args...))
}

func (r *replay) add(agent, ch string, n int) {
	if r.load[agent] == nil {
		r.load[agent] = map[string]int{}
	}
	r.load[agent][ch] += n
}

// release takes conversation c off agent: its offer or its hold.
func (r *replay) release(ev OutboxEvent, agent string) {
	c := ev.Conversation
	switch {
	case r.offers[c] == agent:
		delete(r.offers, c)
	case r.holder[c] == agent:
		delete(r.holder, c)
	default:
		r.fail(ev, "releases %s, who neither is offered nor holds it (offered %q, held %q)", agent, r.offers[c], r.holder[c])
		return
	}
	r.add(agent, ev.Channel, -1)
}

func (r *replay) apply(ev OutboxEvent) {
	c, a := ev.Conversation, ev.Agent
	switch ev.Event {
	case EventOffered:
		if o := r.offers[c]; o != "" {
			r.fail(ev, "offered to %s while offered to %s", a, o)
		}
		if ev.Transfer != (r.holder[c] != "") {
			r.fail(ev, "transfer %v, held by %q", ev.Transfer, r.holder[c])
		}
		if r.holder[c] == a {
			r.fail(ev, "offered to its holder")
		}
		r.offers[c] = a
		r.add(a, ev.Channel, 1)
		if l := r.load[a][ev.Channel]; l > r.capacity[ev.Channel] {
			r.fail(ev, "agent %s now has %d on %s, capacity %d", a, l, ev.Channel, r.capacity[ev.Channel])
		}
	case EventAccepted:
		if r.offers[c] != a {
			r.fail(ev, "accepted by %s, offered to %q", a, r.offers[c])
		}
		if h := r.holder[c]; h != "" {
			r.fail(ev, "accepted by %s while held by %s", a, h)
		}
		delete(r.offers, c)
		r.holder[c] = a
	case EventTransferred:
		if r.offers[c] != a || r.holder[c] != ev.FromAgent {
			r.fail(ev, "transferred to %s from %s; offered %q, held %q", a, ev.FromAgent, r.offers[c], r.holder[c])
		}
		delete(r.offers, c)
		r.release(ev, ev.FromAgent)
		r.holder[c] = a
	case EventTransferExpired, EventTransferDeclined, EventTransferAbandoned, EventTransferCancelled,
		EventDeclined, EventExpired, EventCancelled, EventRequeued, EventEnded:
		if a != "" {
			r.release(ev, a)
		}
		if ev.Event == EventEnded && r.holder[c] != "" {
			r.fail(ev, "ended but still held by %s", r.holder[c])
		}
		if ev.Event == EventEnded || ev.Event == EventCancelled {
			if o := r.offers[c]; o != "" {
				r.fail(ev, "finished with an offer to %s open", o)
			}
		}
	case EventQueued, EventTransferInitiated, EventTimedOut, EventPresence, EventLoggedOff:
	default:
		r.fail(ev, "unknown event")
	}
}

package pull

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

func TestManyAgentsJoinAtOnce(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	f.subscribe("s1", "L1")
	f.publish("r1", "L1")
	f.skip("s1")
	stores := []*Store{f.s, f.store()} // two processes on one Redis

	const n = 12
	agents := make([]string, n)
	for i := range agents {
		agents[i] = fmt.Sprintf("a%02d", i)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 2*n)
	for i, a := range agents {
		for k := 0; k < 2; k++ { // every agent clicks twice
			wg.Add(1)
			go func(s *Store) {
				defer wg.Done()
				<-start
				_, err := s.Join(f.ctx, "r1", a)
				errs <- err
			}(stores[(i+k)%2])
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	r := f.get("r1")
	assert.Equal(t, StateActive, r.State)
	assert.Equal(t, agents, r.Agents)
	assert.Equal(t, int64(1+n), f.seq("L1"), "one change per agent, repeats none")
	assert.Equal(t, []string{"List_Update ACTIVE"}, f.told("s1"), "the subscriber is told once that it is taken")

	// The k-th agent in saw its own join and every one after it.
	total := 0
	for _, a := range agents {
		own := 0
		for _, e := range f.events(a) {
			if e.Type == EventAgentJoined {
				total++
				if e.Data.Agent == a {
					own++
				}
			}
		}
		assert.Equal(t, 1, own, "%s is told of its own join once", a)
	}
	assert.Equal(t, n*(n+1)/2, total)

	v := newView(t, &Snapshot{List: "L1"})
	v.catchUp(f.s)
	v.check(f.s)
}

// TestConcurrentJoinsAndLeaves runs agents that join and leave requests
// at random from many goroutines, through two Stores. Each agent acts in
// one goroutine only, so its last successful call says whether it is in
// a request; the store must agree, the states must follow the agents, and
// the change log must replay to the List.
func TestConcurrentJoinsAndLeaves(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	f.subscribe("s1", "L1")
	reqs := []string{"r0", "r1", "r2", "r3"}
	for _, r := range reqs {
		f.publish(r, "L1")
	}
	stores := []*Store{f.s, f.store()}

	const agents, rounds = 16, 30
	type model map[string]bool // request -> in it
	models := make([]model, agents)
	joined := make([]map[string]bool, agents) // request -> ever joined
	var wg sync.WaitGroup
	for i := 0; i < agents; i++ {
		models[i] = model{}
		joined[i] = map[string]bool{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := fmt.Sprintf("a%02d", i)
			s := stores[i%2]
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			for k := 0; k < rounds; k++ {
				r := reqs[rnd.IntN(len(reqs))]
				var err error
				switch rnd.IntN(5) {
				case 0, 1:
					_, err = s.Join(f.ctx, r, a)
					if err == nil {
						models[i][r] = true
						joined[i][r] = true
					}
				case 2, 3:
					_, err = s.Leave(f.ctx, r, a)
					if err == nil {
						models[i][r] = false
					}
				default:
					_, err = s.Message(f.ctx, r)
				}
				if err != nil && crmsync.ErrorCode(err) != crmsync.ECONFLICT {
					t.Errorf("%s on %s: %v", a, r, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()

	for _, r := range reqs {
		want := []string{}
		ever := false
		for i, m := range models {
			if m[r] {
				want = append(want, fmt.Sprintf("a%02d", i))
			}
			ever = ever || joined[i][r]
		}
		got := f.get(r)
		assert.Equal(t, want, got.Agents, "agents in %s", r)
		switch {
		case len(want) > 0:
			assert.Equal(t, StateActive, got.State, r)
		case ever:
			assert.Equal(t, StateInactive, got.State, r)
		default:
			assert.Equal(t, StateUnread, got.State, r)
		}
	}

	v := newView(t, &Snapshot{List: "L1"})
	v.catchUp(f.s)
	v.check(f.s)

	// The subscriber heard of each change of state once, in seq order.
	var seqs []int64
	for _, e := range f.events("s1") {
		seqs = append(seqs, *e.Data.Seq)
	}
	assert.True(t, slices.IsSorted(seqs), "notifications in seq order")
	assert.Len(t, slices.Compact(slices.Clone(seqs)), len(seqs), "no change told twice")
}

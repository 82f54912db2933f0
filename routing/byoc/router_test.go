package byoc_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/routing/byoc"
)

func TestDelegateEveryWayAndType(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		req  byoc.Request
		want sftest.Route
		way  string
	}{
		{"flow by queue, attributes merged", byoc.Request{Queue: "billing", Channel: "voice", Attributes: map[string]string{"Lang": "fr"}},
			sftest.Route{HasRoutingInfo: true, FlowID: flowID, FallbackQueueID: fallback,
				RoutingAttributes: map[string]string{"Team": "billing", "Lang": "fr"}}, "flow"},
		{"queue by queue", byoc.Request{Queue: "sales", Channel: "voice"}, sftest.Route{HasRoutingInfo: true, QueueID: salesQ}, "queue"},
		{"queue by channel", byoc.Request{Queue: "other", Channel: "voice"}, sftest.Route{HasRoutingInfo: true, QueueID: voiceQ}, "queue"},
		{"channel setting", byoc.Request{Queue: "other", Channel: "chat"}, sftest.Route{}, "channel"},
	}
	seen := map[string]bool{}
	for i, tc := range cases {
		for _, typ := range []salesforce.RoutingType{salesforce.Initial, salesforce.Transfer} {
			t.Run(tc.name+"/"+string(typ), func(t *testing.T) {
				req := tc.req
				req.Conversation = fmt.Sprintf("conv-%d-%s", i, typ)
				req.RoutingType = typ
				require.NoError(t, f.r.Delegate(f.ctx, req))

				calls := f.sf.Calls()
				last := calls[len(calls)-1]
				require.Empty(t, last.Problem, "every header and the body passed the server's checks")
				require.NotNil(t, last.Claims, "the JWT verified")
				assert.Equal(t, sftest.ClientID, last.Claims.Issuer)
				assert.Equal(t, sftest.OrgID, last.OrgID)
				assert.Equal(t, sftest.AuthorizationContext, last.AuthorizationContext)
				assert.False(t, seen[last.RequestID], "a fresh RequestId")
				seen[last.RequestID] = true

				want := tc.want
				want.ConversationIdentifier, want.RoutingType = req.Conversation, string(typ)
				assert.Equal(t, want, *last.Route)

				var p *byoc.Pending
				for _, x := range f.pending() {
					if x.Conversation == req.Conversation {
						p = &x
					}
				}
				require.NotNil(t, p)
				assert.Equal(t, typ, p.RoutingType)
				assert.Equal(t, tc.way, p.Way)
				assert.Equal(t, byoc.StatePending, p.State)
				assert.Equal(t, last.RequestID, p.RequestID)
				assert.Equal(t, f.clock.Now().Add(byoc.DefaultPendingTimeout).UTC(), p.Due)
			})
		}
	}
	assert.Len(t, f.sf.Routes(), 8)
	assert.Equal(t, int64(8), f.stats().Routed)
}

func TestDelegateIsIdempotent(t *testing.T) {
	f := newFixture(t)
	const c = "conv-1"
	routes := func() int { return len(f.sf.Routes()) }

	f.delegate(c, salesforce.Initial)
	f.delegate(c, salesforce.Initial)
	assert.Equal(t, 1, routes(), "a repeated Initial is not sent again")

	f.delegate(c, salesforce.Transfer)
	assert.Equal(t, 2, routes(), "a Transfer is a new routing")
	f.delegate(c, salesforce.Transfer)
	assert.Equal(t, 2, routes())

	err := f.r.Delegate(f.ctx, byoc.Request{Conversation: c, RoutingType: salesforce.Initial})
	assert.Equal(t, crmsync.ECONFLICT, crmsync.ErrorCode(err), "an Initial after a Transfer: %v", err)

	require.NoError(t, f.r.Accepted(f.ctx, c))
	f.delegate(c, salesforce.Transfer)
	assert.Equal(t, 3, routes(), "a later Transfer of an accepted conversation goes out")

	f.delegate(c, salesforce.Transfer, func(r *byoc.Request) { r.Key = "ev-7" })
	assert.Equal(t, 4, routes())
	require.NoError(t, f.r.Accepted(f.ctx, c))
	f.delegate(c, salesforce.Transfer, func(r *byoc.Request) { r.Key = "ev-7" })
	assert.Equal(t, 4, routes(), "a keyed routing is a duplicate even once done")

	const d = "conv-2"
	f.delegate(d, salesforce.Initial)
	require.NoError(t, f.r.Accepted(f.ctx, d))
	f.delegate(d, salesforce.Initial)
	assert.Equal(t, 5, routes(), "a finished Initial is not sent again")
	assert.Equal(t, int64(4), f.stats().Duplicates)
	assert.Empty(t, f.problems())
}

func TestConcurrentDelegationsCallOnce(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.r.Delegate(f.ctx, byoc.Request{Conversation: "conv-c", RoutingType: salesforce.Initial})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Len(t, f.sf.Routes(), 1)
}

func TestFailedDelegationIsSentAgain(t *testing.T) {
	f := newFixture(t)
	f.sf.SetFault(sftest.Fault{Status: 503, RetryAfter: 3, Count: 1})
	err := f.r.Delegate(f.ctx, byoc.Request{Conversation: "conv-1", RoutingType: salesforce.Initial, Queue: "sales"})
	require.Error(t, err)
	assert.Equal(t, crmsync.EUNAVAILABLE, crmsync.ErrorCode(err))
	ok, after := salesforce.Retryable(err)
	assert.True(t, ok)
	assert.Equal(t, 3*time.Second, after)
	assert.Empty(t, f.pending())

	f.delegate("conv-1", salesforce.Initial, func(r *byoc.Request) { r.Queue = "sales" })
	assert.Len(t, f.sf.Routes(), 1, "the retry went out once the server recovered")
	assert.Len(t, f.sf.Calls(), 2)
	assert.Len(t, f.pending(), 1)

	f.sf.SetFault(sftest.Fault{Status: 400, Count: 1})
	err = f.r.Delegate(f.ctx, byoc.Request{Conversation: "conv-2", RoutingType: salesforce.Initial})
	require.Error(t, err)
	assert.Equal(t, crmsync.EINTERNAL, crmsync.ErrorCode(err), "a 4xx is final")
	ok, _ = salesforce.Retryable(err)
	assert.False(t, ok)
}

func TestAcceptedRemovesThePendingRouting(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	f.delegate("conv-2", salesforce.Initial)
	require.NoError(t, f.r.Accepted(f.ctx, "conv-1"))
	require.NoError(t, f.r.Accepted(f.ctx, "conv-1"), "a repeat is fine")
	p := f.pending()
	require.Len(t, p, 1)
	assert.Equal(t, "conv-2", p[0].Conversation)

	f.clock.Advance(byoc.DefaultPendingTimeout + time.Second)
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"conv-2"}, f.sf.Deletes(), "the accepted one is not deleted")

	err = f.r.Accepted(f.ctx, "conv-unknown")
	assert.Equal(t, crmsync.ENOTFOUND, crmsync.ErrorCode(err))
	assert.Equal(t, int64(1), f.stats().Accepted)
}

func TestSweepDeletesAfterTheTimeout(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.PendingTimeout = 2 * time.Minute })
	for i := range 3 {
		f.delegate(fmt.Sprintf("conv-%d", i), salesforce.Initial)
	}
	f.clock.Advance(2*time.Minute - time.Millisecond)
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Empty(t, f.sf.Deletes())

	f.clock.Advance(time.Millisecond)
	n, err = f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	got := f.sf.Deletes()
	sort.Strings(got)
	assert.Equal(t, []string{"conv-0", "conv-1", "conv-2"}, got)
	assert.Empty(t, f.sf.Pending(), "Salesforce holds no pending routing")
	assert.Empty(t, f.pending())
	assert.Equal(t, int64(3), f.stats().Deleted)
	assert.Empty(t, f.problems())

	n, err = f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Len(t, f.sf.Deletes(), 3, "nothing is deleted twice")
}

func TestSweepTakesAGoneRoutingAsDeleted(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	require.True(t, f.sf.Accept("conv-1"), "a rep took it, and we were not told")
	f.clock.Advance(byoc.DefaultPendingTimeout)
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Empty(t, f.pending())
	assert.Zero(t, f.stats().DeleteFailed)
}

func TestTwoRoutersSweepingAtOnceDeleteOnce(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.SweepBatch = 4 })
	other := f.router(func(c *byoc.Config) { c.SweepBatch = 4 })
	const n = 24
	for i := range n {
		f.delegate(fmt.Sprintf("conv-%02d", i), salesforce.Initial)
	}
	f.clock.Advance(byoc.DefaultPendingTimeout)

	var wg sync.WaitGroup
	start := make(chan struct{})
	counts := make([]int, 2)
	for i, r := range []*byoc.Router{f.r, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := r.Sweep(context.Background())
			assert.NoError(t, err)
			counts[i] = c
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, n, counts[0]+counts[1])
	deletes := f.sf.Deletes()
	assert.Len(t, deletes, n)
	once := map[string]int{}
	for _, d := range deletes {
		once[d]++
	}
	for c, k := range once {
		assert.Equal(t, 1, k, "%s deleted %d times", c, k)
	}
	assert.Len(t, once, n)
	assert.Empty(t, f.pending())
}

func TestFailedDeleteIsRetriedLoggedOnceAndCounted(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 503, Method: http.MethodDelete, Count: 2})

	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err, "a failed delete does not fail the sweep")
	assert.Zero(t, n)
	p := f.pending()
	require.Len(t, p, 1)
	assert.Equal(t, 1, p[0].Attempts)
	assert.Contains(t, p[0].LastError, "503")
	assert.Equal(t, byoc.StatePending, p[0].State)

	f.clock.Advance(time.Second)
	n, err = f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, 2, f.pending()[0].Attempts)
	assert.Equal(t, 1, strings.Count(f.logs.String(), "DELETE route failed"), "logged once:\n%s", f.logs)

	f.clock.Advance(time.Second)
	n, err = f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the server recovered")
	assert.Empty(t, f.pending())
	s := f.stats()
	assert.Equal(t, int64(2), s.DeleteFailed)
	assert.Equal(t, int64(1), s.Deleted)
}

func TestDeleteRetryHonoursRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 429, RetryAfter: 30, Method: http.MethodDelete, Count: 1})
	_, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	f.clock.Advance(29 * time.Second)
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Len(t, f.sf.Calls(), 2, "no call before Retry-After")
	f.clock.Advance(time.Second)
	n, err = f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestDeleteGivenUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.MaxDeleteAttempts = 3 })
	f.delegate("conv-1", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 500, Method: http.MethodDelete})
	for range 5 {
		_, err := f.r.Sweep(f.ctx)
		require.NoError(t, err)
		f.clock.Advance(time.Second)
	}
	assert.Len(t, f.sf.Calls(), 1+3, "three attempts, then no more")
	assert.Empty(t, f.pending())
	s := f.stats()
	assert.Equal(t, int64(3), s.DeleteFailed)
	assert.Equal(t, int64(1), s.DeleteAbandoned)
	assert.Equal(t, 1, strings.Count(f.logs.String(), "DELETE route given up"))

	f.sf.ClearFault()
	f.delegate("conv-2", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 400, Method: http.MethodDelete})
	_, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Empty(t, f.pending(), "a final 4xx is given up at once")
	assert.Equal(t, int64(2), f.stats().DeleteAbandoned)
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	require.NoError(t, f.r.Cancel(f.ctx, "conv-1"))
	assert.Equal(t, []string{"conv-1"}, f.sf.Deletes())
	assert.Empty(t, f.pending())
	require.NoError(t, f.r.Cancel(f.ctx, "conv-1"), "a repeat is fine")
	assert.Len(t, f.sf.Deletes(), 1)

	err := f.r.Cancel(f.ctx, "conv-unknown")
	assert.Equal(t, crmsync.ENOTFOUND, crmsync.ErrorCode(err))

	f.delegate("conv-2", salesforce.Initial)
	f.sf.SetFault(sftest.Fault{Status: 503, Method: http.MethodDelete, Count: 1})
	err = f.r.Cancel(f.ctx, "conv-2")
	assert.Equal(t, crmsync.EUNAVAILABLE, crmsync.ErrorCode(err))
	p := f.pending()
	require.Len(t, p, 1, "kept for the next sweep")
	assert.Equal(t, 1, p[0].Attempts)
	f.clock.Advance(time.Second)
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestRunSweeps(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.SweepInterval = 5 * time.Millisecond })
	f.delegate("conv-1", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	require.Eventually(t, func() bool { return len(f.sf.Deletes()) == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestOneSweepCallsOncePerRouting(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.SweepBatch = 1 })
	for i := range 3 {
		f.delegate(fmt.Sprintf("conv-%d", i), salesforce.Initial)
	}
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 503, Method: http.MethodDelete})
	n, err := f.r.Sweep(f.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Len(t, f.sf.Calls(), 3+3, "one DELETE each, though each failed and batches are full")
}

func TestNoNewRoutingWhileADeleteIsUnderWay(t *testing.T) {
	f := newFixture(t)
	f.delegate("conv-1", salesforce.Initial)
	f.sf.SetFault(sftest.Fault{Mode: sftest.FaultHang, Method: http.MethodDelete})
	done := make(chan error, 1)
	go func() { done <- f.r.Cancel(context.Background(), "conv-1") }()
	require.Eventually(t, func() bool {
		p := f.pending()
		return len(p) == 1 && p[0].State == byoc.StateDeleting
	}, 10*time.Second, 2*time.Millisecond)

	err := f.r.Delegate(f.ctx, byoc.Request{Conversation: "conv-1", RoutingType: salesforce.Transfer})
	assert.Equal(t, crmsync.ECONFLICT, crmsync.ErrorCode(err), "%v", err)
	f.sf.ClearFault()
	// Released, the hung delete either gives up or goes through,
	// depending on where it was; a failure says Salesforce was away.
	if err := <-done; err != nil {
		assert.Equal(t, crmsync.EUNAVAILABLE, crmsync.ErrorCode(err), "%v", err)
	}
	f.delegate("conv-1", salesforce.Transfer)
	assert.Len(t, f.sf.Routes(), 2)
}

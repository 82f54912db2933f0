package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/routing"
)

// Routing timers live in Redis, not in a process: a crmsync process is
// killed while an offer is open, nothing fires while no process runs, and
// the next process to start fires the offer's expiry.
func TestRoutingTimersSurviveAProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a crmsync process")
	}
	bin := binary(t)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	queue := redistest.Queue(t, rdb)
	crmSrv := samplecrm.New(samplecrm.Options{})
	hs := serveSampleCRM(t, crmSrv)
	cfgPath := workerConfig(t, strings.TrimPrefix(hs.URL, "http://"), prefix, queue)
	raw, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	y := strings.Replace(string(raw), "    - id: support\n      name: Support\n", "    - id: support\n      name: Support\n      offer_timeout: 2s\n", 1)
	require.NoError(t, os.WriteFile(cfgPath, []byte(y), 0o600))

	// The test's own engine, on the keys the processes use, makes the
	// offer; it never runs timers itself.
	ctx := context.Background()
	e, err := routing.New(rdb, routing.Config{Prefix: routingPrefix(configs.Redis{KeyPrefix: prefix})})
	require.NoError(t, err)
	w := startWorker(t, bin, cfgPath)
	require.Eventually(t, func() bool { _, err := e.GetQueue(ctx, "support"); return err == nil }, 30*time.Second, 20*time.Millisecond,
		"the process never created the config's queue: %s", w.out.String())
	require.NoError(t, e.PutAgent(ctx, routing.AgentSpec{ID: "sara", Capacity: map[string]int{"chat": 1}, Queues: []string{"support"}, Presence: routing.Available}))
	c, err := e.CreateConversation(ctx, routing.NewConversation{ID: "restart-1", Queue: "support", Channel: "chat", Source: "api"})
	require.NoError(t, err)
	require.Equal(t, routing.StateOffered, c.State)

	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	_ = w.cmd.Wait()
	// Past the offer's expiry with no process running: still offered.
	time.Sleep(3 * time.Second) // lets the deadline pass; not an assertion on speed
	c, err = e.GetConversation(ctx, "restart-1")
	require.NoError(t, err)
	assert.Equal(t, routing.StateOffered, c.State, "nothing fires while no process runs")

	w = startWorker(t, bin, cfgPath)
	require.Eventually(t, func() bool {
		c, err = e.GetConversation(ctx, "restart-1")
		return err == nil && c.State == routing.StateWaiting
	}, 30*time.Second, 20*time.Millisecond, "the offer never expired after the restart: %+v\n%s", c, w.out.String())
	a, err := e.GetAgent(ctx, "sara")
	require.NoError(t, err)
	assert.Empty(t, a.Offers, "the expired offer freed sara")
	assert.Equal(t, 1, a.ExpiredInRow)
	w.stop()
}

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/jobs"
)

// BenchmarkWorkerRSS measures a worker process's resident memory while it
// works through 100,000 queued sessions (200,000 tasks), beside the same
// binary's RSS idling on an empty queue in the same run. Run it with
// -benchtime 1x against a real Redis (REDIS_URL); it needs about 300 MB of
// Redis memory, freed at the end.
func BenchmarkWorkerRSS(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("CRMSYNC_BENCH_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	bin := binary(b)
	rdb := redistest.Client(b)
	prefix := redistest.Prefix(b, rdb)
	queue := redistest.Queue(b, rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)

	crmSrv := samplecrm.New(samplecrm.Options{})
	hs := serveSampleCRM(b, crmSrv)
	cfg := workerConfig(b, strings.TrimPrefix(hs.URL, "http://"), prefix, queue)

	for i := 0; i < b.N; i++ {
		idle := startWorker(b, bin, cfg)
		time.Sleep(3 * time.Second)
		idleRSS := rss(b, idle.cmd.Process.Pid)
		idle.stop()

		enqueueSessions(b, rdb, queue, n)
		info, err := insp.GetQueueInfo(queue)
		require.NoError(b, err)
		require.Equal(b, 2*n, info.Pending)

		w := startWorker(b, bin, cfg)
		var peak int64
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			peak = max(peak, rss(b, w.cmd.Process.Pid))
			time.Sleep(100 * time.Millisecond)
		}
		w.stop()
		done := len(crmSrv.Records())
		b.ReportMetric(float64(idleRSS)/1024, "idle-RSS-MiB")
		b.ReportMetric(float64(peak)/1024, "busy-RSS-MiB")
		b.ReportMetric(float64(peak)/float64(idleRSS), "rss-ratio")
		b.ReportMetric(float64(done), "sessions-done-in-15s")
	}
}

func enqueueSessions(b *testing.B, rdb redis.UniversalClient, queue string, n int) {
	c := asynq.NewClientFromRedisClient(rdb)
	enq := jobs.NewEnqueuer(c, jobs.EnqueuerConfig{Queue: queue})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 16 {
				body := fmt.Sprintf(`[{"type":"New_Call","data":{"call_id":%d,"agent_id":1,"end_user_name":"Caller %d","end_user_phone":"+1 628 %03d %04d"}},`+
					`{"type":"End_Call","data":{"call_id":%d,"agent_id":1,"call_duration":61}}]`, i, i, 200+i/10000, i%10000, i)
				evs, err := crmsync.DecodeEvents([]byte(body))
				if err == nil {
					_, err = enq.Enqueue(context.Background(), evs)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// rss reads a process's resident set size in KiB.
func rss(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(b, err)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

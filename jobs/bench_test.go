package jobs

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
)

// benchSessions is how many sessions one pipeline run drains;
// CRMSYNC_BENCH_SESSIONS overrides it.
func benchSessions() int {
	if n, err := strconv.Atoi(os.Getenv("CRMSYNC_BENCH_SESSIONS")); err == nil && n > 0 {
		return n
	}
	return 4000
}

// BenchmarkPipelineVsNoop drains a queue of sessions (New_Call then
// End_Call, every CRM call made against the sample CRM over HTTP, state in
// real Redis), and, in the same run, a queue of asynq tasks that do
// nothing: the ceiling any handler could reach on this machine. Run it with
// -benchtime 1x; set REDIS_URL to measure against a real Redis.
func BenchmarkPipelineVsNoop(b *testing.B) {
	n := benchSessions()
	concurrency := 64
	if c, err := strconv.Atoi(os.Getenv("CRMSYNC_BENCH_CONCURRENCY")); err == nil && c > 0 {
		concurrency = c
	}
	for i := 0; i < b.N; i++ {
		noop := drainNoop(b, 2*n, concurrency)
		sessions := drainSessions(b, n, concurrency)
		tasks := 2 * sessions
		b.ReportMetric(noop, "noop-tasks/s")
		b.ReportMetric(sessions, "sessions/s")
		b.ReportMetric(tasks, "tasks/s")
		b.ReportMetric(tasks/noop, "task-ratio")
	}
}

func drainNoop(b *testing.B, n, concurrency int) float64 {
	rdb := redistest.Client(b)
	queue := redistest.Queue(b, rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for i := 0; i < n; i++ {
		_, err := client.Enqueue(asynq.NewTask("bench:noop", []byte(`{"session":"call-1"}`)), asynq.Queue(queue))
		require.NoError(b, err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: concurrency, Queues: map[string]int{queue: 1}, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error { return nil })
	start := time.Now()
	require.NoError(b, srv.Start(mux))
	waitEmpty(b, insp, queue)
	elapsed := time.Since(start)
	srv.Shutdown()
	return float64(n) / elapsed.Seconds()
}

func drainSessions(b *testing.B, n, concurrency int) float64 {
	e := newEnv(b, envOpts{noWorker: true, quiet: true})
	for i := 0; i < n; i++ {
		for _, body := range []string{newCall(i, phone(i)), endCall(i)} {
			evs, err := crmsync.DecodeEvents([]byte(body))
			require.NoError(b, err)
			_, err = e.enq.Enqueue(context.Background(), evs)
			require.NoError(b, err)
		}
	}
	w := NewWorker(e.rdb, e.proc, WorkerConfig{Queue: e.queue, Concurrency: concurrency, PollInterval: 50 * time.Millisecond})
	waits0 := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "waiting"))
	busy0 := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "busy")) + testutil.ToFloat64(jobsTotal.WithLabelValues(TypeStart, "busy"))
	if f := os.Getenv("CRMSYNC_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(out))
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}
	cpu0 := processCPU()
	start := time.Now()
	require.NoError(b, w.Start())
	waitEmpty(b, e.inspector, e.queue)
	elapsed := time.Since(start)
	b.ReportMetric((processCPU()-cpu0).Seconds()/elapsed.Seconds(), "worker-cores")
	b.ReportMetric((testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "waiting"))-waits0)/float64(n), "start-waits/session")
	busy := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "busy")) + testutil.ToFloat64(jobsTotal.WithLabelValues(TypeStart, "busy"))
	b.ReportMetric((busy-busy0)/float64(n), "busy/session")
	w.Shutdown()
	if got := len(e.crm.Records()); got != n {
		b.Fatalf("%d records for %d sessions", got, n)
	}
	return float64(n) / elapsed.Seconds()
}

func waitEmpty(b *testing.B, insp *asynq.Inspector, queue string) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		info, err := insp.GetQueueInfo(queue)
		if err == nil && info.Pending+info.Active+info.Retry+info.Scheduled == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal(fmt.Sprintf("queue %s not drained: %+v", queue, info))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

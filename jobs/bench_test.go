package jobs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
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
//
// A third queue measures a floor: tasks whose handler makes only the
// round trips a session's task cannot do without, on average three HTTP
// requests to a handler that answers a fixed body over loopback and two
// trivial scripts in Redis. Its rate beside the no-op rate is the best
// task ratio any handler doing that I/O could reach here.
//
// Every phase reports the CPU it cost per task, this process and Redis
// together (both share the machine's cores). CRMSYNC_BENCH_REDISSTATS=1
// logs the Redis commands each phase ran per task.
func BenchmarkPipelineVsNoop(b *testing.B) {
	n := benchSessions()
	concurrency := 64
	if c, err := strconv.Atoi(os.Getenv("CRMSYNC_BENCH_CONCURRENCY")); err == nil && c > 0 {
		concurrency = c
	}
	if os.Getenv("CRMSYNC_BENCH_SESSIONS_ONLY") != "" {
		// For profiling the pipeline alone with outside tools.
		for i := 0; i < b.N; i++ {
			p := drainSessions(b, n, concurrency)
			b.ReportMetric(p.rate()/2, "sessions/s")
			b.ReportMetric(p.cpuPerTask(), "cpu-us/task")
		}
		return
	}
	for i := 0; i < b.N; i++ {
		noop := drainNoop(b, 2*n, concurrency)
		same := drainSameTasksNoop(b, n, concurrency)
		floor := drainFloor(b, 2*n, concurrency)
		sessions := drainSessions(b, n, concurrency)
		tasks := sessions.rate()
		b.ReportMetric(noop.rate(), "noop-tasks/s")
		b.ReportMetric(same.rate(), "noop-same-tasks/s")
		b.ReportMetric(floor.rate(), "floor-tasks/s")
		b.ReportMetric(tasks/2, "sessions/s")
		b.ReportMetric(tasks, "tasks/s")
		b.ReportMetric(tasks/noop.rate(), "task-ratio")
		b.ReportMetric(floor.rate()/noop.rate(), "floor-ratio")
		b.ReportMetric(sessions.cores(), "worker-cores")
		b.ReportMetric(sessions.redisCores(), "redis-cores")
		b.ReportMetric(noop.cpuPerTask(), "noop-cpu-us/task")
		b.ReportMetric(floor.cpuPerTask(), "floor-cpu-us/task")
		b.ReportMetric(sessions.cpuPerTask(), "cpu-us/task")
		for _, p := range []*phase{noop, same, floor, sessions} {
			b.Logf("%s: %d tasks in %s: %.0f tasks/s, process %.2f cores, redis %.2f cores, whole machine %.2f cores, %.0f µs CPU per task, %.1f running on average",
				p.name, p.tasks, p.elapsed.Round(time.Millisecond), p.rate(),
				p.cores(), p.redisCores(), p.machineCores(), p.cpuPerTask(), p.active)
			if os.Getenv("CRMSYNC_BENCH_REDISSTATS") != "" {
				b.Logf("%s: redis commands per task:\n%s", p.name, p.commandTable())
			}
		}
	}
}

// phase is one queue drained, with what it cost.
type phase struct {
	name     string
	tasks    int
	elapsed  time.Duration
	cpu      time.Duration // this process
	redisCPU time.Duration
	machine  time.Duration      // every process on the machine, ours included
	active   float64            // tasks running, on average: how full the worker's slots were
	cmds     map[string]cmdStat // run during the phase
}

func (p *phase) rate() float64       { return float64(p.tasks) / p.elapsed.Seconds() }
func (p *phase) cores() float64      { return p.cpu.Seconds() / p.elapsed.Seconds() }
func (p *phase) redisCores() float64 { return p.redisCPU.Seconds() / p.elapsed.Seconds() }
func (p *phase) machineCores() float64 {
	return p.machine.Seconds() / p.elapsed.Seconds()
}
func (p *phase) cpuPerTask() float64 {
	return float64((p.cpu + p.redisCPU).Microseconds()) / float64(p.tasks)
}

func (p *phase) commandTable() string {
	names := make([]string, 0, len(p.cmds))
	for k := range p.cmds {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(p.cmds[b].usec - p.cmds[a].usec) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %-22s %10s %10s %12s\n", "command", "calls/task", "µs/call", "µs/task")
	for _, k := range names {
		c := p.cmds[k]
		if c.calls == 0 {
			continue
		}
		fmt.Fprintf(&sb, "  %-22s %10.2f %10.2f %12.2f\n", k, float64(c.calls)/float64(p.tasks),
			float64(c.usec)/float64(c.calls), float64(c.usec)/float64(p.tasks))
	}
	return sb.String()
}

// measure runs drain, which must return once the tasks are done, and
// notes its time and the CPU this process and Redis used meanwhile. The
// Redis figures include whatever else uses that server at the time.
func measure(b *testing.B, rdb redis.UniversalClient, name string, tasks int, drain func() float64) *phase {
	b.Helper()
	cpu0, rcpu0, cmds0, m0 := processCPU(), redisCPU(b, rdb), redisCommands(b, rdb), machineCPU()
	start := time.Now()
	active := drain()
	elapsed := time.Since(start)
	cpu, rcpu, cmds, m := processCPU(), redisCPU(b, rdb), redisCommands(b, rdb), machineCPU()
	for k, c := range cmds {
		c0 := cmds0[k]
		cmds[k] = cmdStat{calls: c.calls - c0.calls, usec: c.usec - c0.usec}
	}
	return &phase{name: name, tasks: tasks, elapsed: elapsed, cpu: cpu - cpu0, redisCPU: rcpu - rcpu0, machine: m - m0, active: active, cmds: cmds}
}

func drainNoop(b *testing.B, n, concurrency int) *phase {
	rdb := redistest.Client(b)
	queue := redistest.Queue(b, rdb)
	enqueueBare(b, rdb, queue, "bench:noop", n)
	srv := newBenchServers(rdb, queue, concurrency)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error { return nil })
	p := measure(b, rdb, "noop", n, func() float64 {
		require.NoError(b, srv.Start(mux))
		return waitEmpty(b, rdb, queue)
	})
	srv.Shutdown()
	return p
}

// drainSameTasksNoop drains the sessions phase's own tasks (their types,
// payloads, ids, retention and timeouts, enqueued the same way) with a
// handler that does nothing: asynq's share of a session's cost.
func drainSameTasksNoop(b *testing.B, n, concurrency int) *phase {
	rdb := redistest.Client(b)
	queue := redistest.Queue(b, rdb)
	enq := NewEnqueuer(asynq.NewClientFromRedisClient(rdb), EnqueuerConfig{Queue: queue, TaskTimeout: 30 * time.Second})
	for i := 0; i < n; i++ {
		for _, body := range []string{newCall(i, phone(i)), endCall(i)} {
			evs, err := crmsync.DecodeEvents([]byte(body))
			require.NoError(b, err)
			_, err = enq.Enqueue(context.Background(), evs)
			require.NoError(b, err)
		}
	}
	srv := newBenchServers(rdb, queue, concurrency)
	mux := asynq.NewServeMux()
	mux.HandleFunc("crm:", func(context.Context, *asynq.Task) error { return nil })
	p := measure(b, rdb, "noop-same-tasks", 2*n, func() float64 {
		require.NoError(b, srv.Start(mux))
		return waitEmpty(b, rdb, queue)
	})
	srv.Shutdown()
	return p
}

// floorScripts are the least a handler holding session state in Redis
// runs per task: one script to take and read, one to write and release.
var floorScripts = [2]*redis.Script{
	redis.NewScript(`return redis.call('GET', KEYS[1])`),
	redis.NewScript(`return redis.call('EXISTS', KEYS[1])`),
}

// floorCalls are the HTTP requests each floor task makes: a session's two
// tasks make six CRM calls between them.
const floorCalls = 3

func drainFloor(b *testing.B, n, concurrency int) *phase {
	rdb := redistest.Client(b)
	queue := redistest.Queue(b, rdb)
	prefix := redistest.Prefix(b, rdb)
	enqueueBare(b, rdb, queue, "bench:floor", n)
	body := []byte(`{"data":{"id":"1"}}` + "\n")
	crmSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer crmSrv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	for _, s := range floorScripts {
		require.NoError(b, s.Load(context.Background(), rdb).Err())
	}
	srv := newBenchServers(rdb, queue, concurrency)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:floor", func(ctx context.Context, _ *asynq.Task) error {
		key := []string{prefix + "floor"}
		if err := floorScripts[0].Run(ctx, rdb, key).Err(); err != nil && err != redis.Nil {
			return err
		}
		for range floorCalls {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, crmSrv.URL+"/api/records/1", nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return floorScripts[1].Run(ctx, rdb, key).Err()
	})
	p := measure(b, rdb, "floor", n, func() float64 {
		require.NoError(b, srv.Start(mux))
		return waitEmpty(b, rdb, queue)
	})
	srv.Shutdown()
	return p
}

// splitConcurrency divides the slots between CRMSYNC_BENCH_SERVERS asynq
// servers in the process (1 unless set). Each server dequeues one task at
// a time, so this shows whether that loop, not the CPU, sets the pace.
func splitConcurrency(concurrency int) []int {
	n, err := strconv.Atoi(os.Getenv("CRMSYNC_BENCH_SERVERS"))
	if err != nil || n < 1 {
		n = 1
	}
	n = min(n, concurrency)
	out := make([]int, n)
	for i := range out {
		out[i] = concurrency / n
		if i < concurrency%n {
			out[i]++
		}
	}
	return out
}

// benchServers are the asynq servers of one phase.
type benchServers []interface {
	Shutdown()
}

// newBenchServers starts no server yet: the no-op and floor phases' asynq
// servers, with the worker's concurrency and poll interval.
func newBenchServers(rdb redis.UniversalClient, queue string, concurrency int) benchServers {
	var out benchServers
	for _, c := range splitConcurrency(concurrency) {
		out = append(out, asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: c, Queues: map[string]int{queue: 1},
			DelayedTaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.ErrorLevel}))
	}
	return out
}

func (bs benchServers) Start(mux *asynq.ServeMux) error {
	for _, s := range bs {
		var err error
		switch s := s.(type) {
		case *asynq.Server:
			err = s.Start(mux)
		case *Worker:
			err = s.Start()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (bs benchServers) Shutdown() {
	for _, s := range bs {
		s.Shutdown()
	}
}

func enqueueBare(b *testing.B, rdb redis.UniversalClient, queue, typ string, n int) {
	b.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	for i := 0; i < n; i++ {
		_, err := client.Enqueue(asynq.NewTask(typ, []byte(`{"session":"call-1"}`)), asynq.Queue(queue))
		require.NoError(b, err)
	}
}

func drainSessions(b *testing.B, n, concurrency int) *phase {
	e := newEnv(b, envOpts{noWorker: true, quiet: true})
	for i := 0; i < n; i++ {
		for _, body := range []string{newCall(i, phone(i)), endCall(i)} {
			evs, err := crmsync.DecodeEvents([]byte(body))
			require.NoError(b, err)
			_, err = e.enq.Enqueue(context.Background(), evs)
			require.NoError(b, err)
		}
	}
	var w benchServers
	for _, c := range splitConcurrency(concurrency) {
		w = append(w, NewWorker(e.rdb, e.proc, WorkerConfig{Queue: e.queue, Concurrency: c, PollInterval: 50 * time.Millisecond}))
	}
	waits0 := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "waiting"))
	busy0 := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "busy")) + testutil.ToFloat64(jobsTotal.WithLabelValues(TypeStart, "busy"))
	stop := func() {}
	if f := os.Getenv("CRMSYNC_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(out))
		stop = func() { pprof.StopCPUProfile(); _ = out.Close() }
	}
	p := measure(b, e.rdb, "sessions", 2*n, func() float64 {
		require.NoError(b, w.Start(nil))
		return waitEmpty(b, e.rdb, e.queue)
	})
	stop()
	b.ReportMetric((testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "waiting"))-waits0)/float64(n), "start-waits/session")
	busy := testutil.ToFloat64(jobsTotal.WithLabelValues(TypeEnd, "busy")) + testutil.ToFloat64(jobsTotal.WithLabelValues(TypeStart, "busy"))
	b.ReportMetric((busy-busy0)/float64(n), "busy/session")
	w.Shutdown()
	if got := len(e.crm.Records()); got != n {
		b.Fatalf("%d records for %d sessions", got, n)
	}
	if got := len(e.crm.Requests()); got < min(6*n, 10_000) {
		b.Fatalf("%d CRM requests for %d sessions, want 6 each", got, n)
	}
	return p
}

// waitEmpty polls the queue's lists until nothing is pending, running or
// waiting to run again, and returns how many tasks were running on
// average. It reads the four sizes asynq's inspector reads,
// without the inspector's memory sampling, which would load Redis with
// scripts a hundred times a second while it is being measured.
func waitEmpty(b *testing.B, rdb redis.UniversalClient, queue string) float64 {
	b.Helper()
	ctx := context.Background()
	base := "asynq:{" + queue + "}:"
	deadline := time.Now().Add(10 * time.Minute)
	var active, polls int64
	for {
		pipe := rdb.Pipeline()
		sizes := []*redis.IntCmd{pipe.LLen(ctx, base+"pending"), pipe.LLen(ctx, base+"active"),
			pipe.ZCard(ctx, base+"scheduled"), pipe.ZCard(ctx, base+"retry")}
		_, err := pipe.Exec(ctx)
		left := int64(0)
		for _, s := range sizes {
			left += s.Val()
		}
		if err == nil && left == 0 {
			return float64(active) / float64(max(polls, 1))
		}
		if err == nil {
			active += sizes[1].Val()
			polls++
		}
		if time.Now().After(deadline) {
			b.Fatalf("queue %s not drained: %d tasks left (%v)", queue, left, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the CPU time every process on the machine has used, from
// /proc/stat (0 where there is none): what is left of the cores beside this
// process and Redis is other people's work, the noise in the figures.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// redisCPU is the CPU time the Redis server has used, or 0 when it does
// not say (the in-process server).
func redisCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

type cmdStat struct{ calls, usec int64 }

var cmdStatsOnce sync.Once

// redisCommands reads INFO commandstats: calls and time by command,
// commands run inside scripts included.
func redisCommands(b *testing.B, rdb redis.UniversalClient) map[string]cmdStat {
	b.Helper()
	out := map[string]cmdStat{}
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		cmdStatsOnce.Do(func() { b.Logf("no INFO commandstats: %v", err) })
		return out
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var c cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				c.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				c.usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = c
	}
	return out
}

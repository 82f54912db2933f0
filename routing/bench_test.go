package routing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkRouting loads 10,000 agents, 5,000 queues and 500,000 waiting
// conversations into the Redis at REDIS_URL, then measures, in one run:
//
//   - eval_baseline: a bare EVALSHA of a trivial script, the yardstick;
//   - freed_agent_offer: an agent's conversation ends and the same script
//     offers it the best waiting conversation of its queues (one routing
//     decision per call), against the full data set;
//   - arrival_offer: a conversation arrives in a queue with a free agent
//     and is offered in the same script;
//   - arrival_latency_1000rps: arrivals at 1,000/s, open loop, each timed
//     from the call to its answer (the offer is made inside the call);
//   - memory per agent and per waiting conversation (INFO memory deltas).
//
// Run it alone, on an otherwise quiet Redis:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./routing/ -run '^$' -bench BenchmarkRouting -benchtime 20000x -timeout 30m
//
// It deletes every key it wrote.
func BenchmarkRouting(b *testing.B) {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		b.Skip("BenchmarkRouting needs a real Redis: set REDIS_URL (it loads 500,000 conversations)")
	}
	const (
		nQueues  = 5000
		nAgents  = 10000
		perAgent = 5 // queues each agent joins
	)
	nConvs := 500000
	workers := 32 // concurrent callers
	if n, err := strconv.Atoi(os.Getenv("ROUTING_BENCH_WORKERS")); err == nil && n > 0 {
		workers = n
	}
	if n, err := strconv.Atoi(os.Getenv("ROUTING_BENCH_CONVS")); err == nil && n > 0 {
		nConvs = n // a quicker, smaller run while profiling
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	opts.PoolSize = workers * 2
	rdb := redis.NewClient(opts)
	ctx := context.Background()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	prefix := "bench:" + hex.EncodeToString(rnd[:]) + ":{routing}:"
	b.Cleanup(func() {
		deleteKeys(b, rdb, prefix)
		_ = rdb.Close()
	})
	e, err := New(rdb, Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	if err := rdb.FunctionLoadReplace(ctx, engineLibrary).Err(); err != nil {
		b.Fatal(err)
	}

	mem0 := usedMemory(b, rdb)
	start := time.Now()
	pipelined(b, e, nQueues, func(i int) []any {
		return []any{"put_queue", "q" + strconv.Itoa(i), "put", "", i % 5, 0, 0, 0, "voice,chat"}
	})
	mem1 := usedMemory(b, rdb)
	agentQueues := func(i int) []any {
		args := []any{perAgent}
		for k := range perAgent {
			args = append(args, "q"+strconv.Itoa((i*7+k*977)%nQueues))
		}
		return args
	}
	pipelined(b, e, nAgents, func(i int) []any {
		args := []any{"put_agent", "a" + strconv.Itoa(i), "offline", 2, "chat", 2, "voice", 1}
		return append(append(args, agentQueues(i)...), "full")
	})
	mem2 := usedMemory(b, rdb)
	loadStart := time.Now()
	pipelined(b, e, nConvs, func(i int) []any {
		ch := "voice"
		if (i/nQueues)%2 == 1 {
			ch = "chat"
		}
		prio := "0"
		if i%10 == 0 {
			prio = "1"
		}
		return []any{"create", "c" + strconv.Itoa(i), "q" + strconv.Itoa(i%nQueues), ch, prio, "",
			`"session":"chat-` + strconv.Itoa(i) + `","source":"bench","attributes":{"lang":"en"}`}
	})
	loadTime := time.Since(loadStart)
	mem3 := usedMemory(b, rdb)
	outboxBytes, _ := rdb.MemoryUsage(ctx, e.OutboxKey(), 0).Result()
	outboxLen, _ := rdb.XLen(ctx, e.OutboxKey()).Result()
	b.Logf("loaded %d queues, %d agents, %d conversations in %v (conversations at %.0f/s)",
		nQueues, nAgents, nConvs, time.Since(start).Round(time.Millisecond), float64(nConvs)/loadTime.Seconds())
	b.Logf("memory: %.0f B per queue, %.0f B per agent (offline, with its queue memberships), %.0f B per waiting conversation of which %.0f B its outbox entry (%d entries)",
		float64(mem1-mem0)/nQueues, float64(mem2-mem1)/nAgents, float64(mem3-mem2)/float64(nConvs), float64(outboxBytes)/float64(max(outboxLen, 1)), outboxLen)

	// Every agent becomes available: each such call fills the agent's
	// capacity (voice 1, chat 2) from its five queues.
	offered := make([][]string, nAgents)
	var mu sync.Mutex
	availStart := time.Now()
	var availOffers atomic.Int64
	parallel(workers, nAgents, func(i int) {
		r, err := e.run(ctx, "presence", "a"+strconv.Itoa(i), "available")
		if err != nil {
			b.Error(err)
			return
		}
		availOffers.Add(int64(len(r.offers)))
		mu.Lock()
		for _, o := range r.offers {
			offered[i] = append(offered[i], o[0])
		}
		mu.Unlock()
	})
	availTime := time.Since(availStart)
	b.Logf("agent available: %d agents made %d offers in %v: %.0f agents/s, %.0f offers/s",
		nAgents, availOffers.Load(), availTime.Round(time.Millisecond), nAgents/availTime.Seconds(), float64(availOffers.Load())/availTime.Seconds())

	b.Run("memory", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(mem2-mem1)/nAgents, "B/agent")
		b.ReportMetric(float64(mem3-mem2)/float64(nConvs), "B/waiting-conv")
		b.ReportMetric(float64(outboxBytes)/float64(max(outboxLen, 1)), "B/outbox-entry")
		b.ReportMetric(0, "ns/op")
	})

	var evalRate float64
	trivial := redis.NewScript("return 1")
	if err := trivial.Load(ctx, rdb).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("eval_baseline", func(b *testing.B) {
		before := commandStats(b, rdb)
		b.ResetTimer()
		t0 := time.Now()
		parallel(workers, b.N, func(int) {
			if err := trivial.EvalSha(ctx, rdb, []string{prefix + "timers"}).Err(); err != nil {
				b.Error(err)
			}
		})
		el := time.Since(t0)
		b.StopTimer()
		evalRate = float64(b.N) / el.Seconds()
		st := commandStats(b, rdb).minus(before)
		b.ReportMetric(evalRate, "evals/s")
		b.ReportMetric(st.usecPerCall("evalsha"), "server-us/eval")
	})

	b.Run("freed_agent_offer", func(b *testing.B) {
		// Worker w owns agents w, w+workers, ...; it ends one of an agent's
		// offered conversations, and the call offers the agent the next.
		var decisions, calls atomic.Int64
		before := commandStats(b, rdb)
		cpu0 := serverCPU(b, rdb)
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; calls.Add(1) <= int64(b.N); i += workers {
					if i >= nAgents {
						i = w
					}
					if len(offered[i]) == 0 {
						calls.Add(-1)
						continue
					}
					c := offered[i][0]
					offered[i] = offered[i][1:]
					r, err := e.run(ctx, "finish", c, "ended")
					if err != nil {
						b.Error(err)
						return
					}
					for _, o := range r.offers {
						offered[i] = append(offered[i], o[0])
					}
					decisions.Add(int64(len(r.offers)))
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		b.StopTimer()
		cpu := serverCPU(b, rdb) - cpu0
		st := commandStats(b, rdb).minus(before)
		rate := float64(decisions.Load()) / el.Seconds()
		b.ReportMetric(cpu/float64(b.N), "server-cpu-us/call")
		b.ReportMetric(rate, "decisions/s")
		b.ReportMetric(rate/evalRate, "x-eval-rate")
		b.ReportMetric(float64(decisions.Load())/float64(b.N), "offers/call")
		b.ReportMetric(st.usecPerCall(st.scriptCmd()), "server-us/call")
		b.ReportMetric(float64(st.innerCalls())/float64(b.N), "redis-cmds/call")
		b.Logf("freed_agent_offer, server time per call by command: %s", st.breakdown(b.N))
	})

	run := 0
	// freePool gives arrivals queues whose one agent has room for n
	// chats, apart from the loaded data set's queues.
	freePool := func(b *testing.B, n int) []string {
		b.Helper()
		run++
		k := n/900 + 1
		qs := make([]string, k)
		pipelined(b, e, k, func(i int) []any {
			return []any{"put_queue", fmt.Sprintf("fq%d-%d", run, i), "put", "", 0, 0, 0, 0, "chat"}
		})
		pipelined(b, e, k, func(i int) []any {
			qs[i] = fmt.Sprintf("fq%d-%d", run, i)
			return []any{"put_agent", fmt.Sprintf("fa%d-%d", run, i), "available", 1, "chat", 1000, 1, qs[i], "full"}
		})
		return qs
	}

	b.Run("arrival_offer", func(b *testing.B) {
		qs := freePool(b, b.N)
		var n, notOffered atomic.Int64
		before := commandStats(b, rdb)
		cpu0 := serverCPU(b, rdb)
		b.ResetTimer()
		t0 := time.Now()
		parallel(workers, b.N, func(i int) {
			r, err := e.run(ctx, "create", fmt.Sprintf("arr%d-%d", run, i), qs[i%len(qs)], "chat", "0", "",
				`"session":"","source":"bench","attributes":{}`)
			if err != nil {
				b.Error(err)
				return
			}
			if len(r.offers) == 1 {
				n.Add(1)
			} else {
				notOffered.Add(1)
			}
		})
		el := time.Since(t0)
		b.StopTimer()
		if notOffered.Load() > 0 {
			b.Errorf("%d arrivals were not offered", notOffered.Load())
		}
		cpu := serverCPU(b, rdb) - cpu0
		st := commandStats(b, rdb).minus(before)
		rate := float64(n.Load()) / el.Seconds()
		b.ReportMetric(cpu/float64(b.N), "server-cpu-us/call")
		b.ReportMetric(rate, "decisions/s")
		b.ReportMetric(rate/evalRate, "x-eval-rate")
		b.ReportMetric(st.usecPerCall(st.scriptCmd()), "server-us/call")
		b.ReportMetric(float64(st.innerCalls())/float64(b.N), "redis-cmds/call")
		b.Logf("arrival_offer, server time per call by command: %s", st.breakdown(b.N))
	})

	b.Run("arrival_latency_1000rps", func(b *testing.B) {
		qs := freePool(b, b.N)
		lat := make([]time.Duration, b.N)
		var wg sync.WaitGroup
		b.ResetTimer()
		t0 := time.Now()
		for i := range b.N {
			if d := time.Until(t0.Add(time.Duration(i) * time.Millisecond)); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := time.Now()
				r, err := e.run(ctx, "create", fmt.Sprintf("lat%d-%d", run, i), qs[i%len(qs)], "chat", "0", "",
					`"session":"","source":"bench","attributes":{}`)
				lat[i] = time.Since(s)
				if err != nil || len(r.offers) != 1 {
					b.Errorf("arrival %d: offers %v, err %v", i, r.offers, err)
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		b.StopTimer()
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(float64(b.N)/el.Seconds(), "arrivals/s")
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	})
}

// pipelined runs n script calls, argv from args(i), in pipelines of 500
// from a few connections.
func pipelined(b *testing.B, e *Engine, n int, args func(i int) []any) {
	b.Helper()
	const batch = 500
	ctx := context.Background()
	parallel(4, (n+batch-1)/batch, func(k int) {
		pipe := e.rdb.Pipeline()
		cmds := make([]*redis.Cmd, 0, batch)
		for i := k * batch; i < min(n, (k+1)*batch); i++ {
			a := args(i)
			cmds = append(cmds, pipe.FCall(ctx, engineFunc, e.keys, e.argv(a[0].(string), a[1:]...)...))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Error(err)
			return
		}
		for _, c := range cmds {
			v, err := c.Slice()
			if err == nil {
				_, err = parseResult("load", v)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// parallel calls f(0..n-1) from w goroutines.
func parallel(w, n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// serverCPU is the CPU time, in microseconds, the server's main thread
// has used: unlike the command timings it does not grow when the server
// waits for a busy machine's CPU, so it compares two versions of the
// script better.
func serverCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sec float64
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread") {
			f, _ := strconv.ParseFloat(v, 64)
			sec += f
		}
	}
	return sec * 1e6
}

type cmdStat struct{ calls, usec int64 }
type cmdStats map[string]cmdStat

// commandStats reads INFO commandstats: calls and time per command,
// counting the commands scripts call.
func commandStats(b *testing.B, rdb *redis.Client) cmdStats {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := cmdStats{}
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var s cmdStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				s.calls = n
			case "usec":
				s.usec = n
			}
		}
		out[name] = s
	}
	return out
}

func (s cmdStats) minus(o cmdStats) cmdStats {
	out := cmdStats{}
	for k, v := range s {
		out[k] = cmdStat{v.calls - o[k].calls, v.usec - o[k].usec}
	}
	return out
}

// scriptCmd is the command the engine's calls went through: FCALL where
// the server has Functions, EVALSHA otherwise.
func (s cmdStats) scriptCmd() string {
	if s["fcall"].calls > 0 {
		return "fcall"
	}
	return "evalsha"
}

func (s cmdStats) usecPerCall(cmd string) float64 {
	if s[cmd].calls == 0 {
		return 0
	}
	return float64(s[cmd].usec) / float64(s[cmd].calls)
}

// innerCalls counts every command but the script calls themselves and
// INFO.
func (s cmdStats) innerCalls() int64 {
	var n int64
	for k, v := range s {
		if k != "evalsha" && k != "eval" && k != "fcall" && k != "info" {
			n += v.calls
		}
	}
	return n
}

// breakdown lists, per call of a script, the commands it ran: count and
// microseconds, the dearest first, and what the script spent outside them.
func (s cmdStats) breakdown(n int) string {
	type row struct {
		name        string
		calls, usec float64
	}
	var rows []row
	var inner float64
	for k, v := range s {
		if k == "evalsha" || k == "eval" || k == "fcall" || k == "info" || v.calls == 0 {
			continue
		}
		rows = append(rows, row{k, float64(v.calls) / float64(n), float64(v.usec) / float64(n)})
		inner += float64(v.usec) / float64(n)
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.usec*1000 - a.usec*1000) })
	var parts []string
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.1fx %.1fus", r.name, r.calls, r.usec))
	}
	c := s[s.scriptCmd()]
	total := float64(c.usec) / float64(max(c.calls, 1))
	return fmt.Sprintf("%.1fus in all, %.1fus in commands (%s), %.1fus in Lua", total, inner, strings.Join(parts, ", "), total-inner)
}

// deleteKeys removes every key under prefix.
func deleteKeys(b *testing.B, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var keys []string
	n := 0
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			n += len(keys)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
		n += len(keys)
	}
	if err := iter.Err(); err != nil {
		b.Errorf("cleaning up %s: %v", prefix, err)
	}
	b.Logf("deleted %d keys under %s", n, prefix)
}

package pega_test

// BenchmarkRouteEndpoint loads Pega's route endpoint the way Pega would:
// a fixed number of concurrent keep-alive clients send b.N route
// requests, each a new conversation into one queue, to RouteHandler (with
// its bearer check) served by net/http on a loopback port, backed by an
// EngineRouter over the Redis at REDIS_URL. Nobody takes the
// conversations, so each request creates one and gives its place in a
// line that grows to b.N.
//
// In the same run, the same load generator drives a trivial GET handler
// on the same kind of server (the HTTP ceiling of this machine at that
// moment), and EngineRouter.Route called directly, with no HTTP (the
// engine's own rate, which bounds the endpoint's). It reports the rates,
// the ratio of the endpoint's to the ceiling's (the figure to watch, since
// the machine is shared and its absolute speed varies) and to the
// engine's, and the p50 and p99 latency of each.
//
// Two more phases bound what any Redis-backed engine could reach here:
// the trivial GET handler making one bare EVALSHA of "return 1" before it
// answers (eval-get: an HTTP request and the cheapest Redis round trip),
// and the route endpoint itself (bearer check, decoding, answer) over a
// router whose Route is that same bare EVALSHA (bare-eval-route).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./routing/pega -run '^$' -bench BenchmarkRouteEndpoint -benchtime 20000x
//
// Without REDIS_URL it runs against the in-process Redis, whose figures
// say little. It deletes every key it wrote.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/pega"
)

// benchClients is the number of concurrent keep-alive clients.
const benchClients = 16

func BenchmarkRouteEndpoint(b *testing.B) {
	ctx := context.Background()
	rdb := redistest.Client(b)
	e, err := routing.New(rdb, routing.Config{Prefix: routingtest.Prefix(b, rdb)})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.PutQueue(ctx, routing.Queue{ID: "Billing", Name: "Billing", Channels: []string{"chat"}}); err != nil {
		b.Fatal(err)
	}
	s, err := pega.New(pega.NewEngineRouter(e, pega.EngineConfig{}), pega.Config{BearerTokens: []crmsync.Secret{testToken}})
	if err != nil {
		b.Fatal(err)
	}
	routeSrv := httptest.NewServer(s.RouteHandler())
	defer routeSrv.Close()
	ceilSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"_status":"ok"}`+"\n")
	}))
	defer ceilSrv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	router := pega.NewEngineRouter(e, pega.EngineConfig{})
	bare, err := pega.New(bareRouter{rdb: rdb, script: redis.NewScript("return 1")}, pega.Config{BearerTokens: []crmsync.Secret{testToken}})
	if err != nil {
		b.Fatal(err)
	}
	bareSrv := httptest.NewServer(bare.RouteHandler())
	defer bareSrv.Close()
	b.ResetTimer()
	ceil := load(b, b.N, func(int) error {
		return send(client, http.MethodGet, ceilSrv.URL, nil, []byte(`"ok"`))
	})
	route := load(b, b.N, func(i int) error {
		body := fmt.Appendf(nil, `{"_conversation_id":"c%d","_queue_name":"Billing","_source":"chat","_preferred_agent":"","_priority_queuing":"false"}`, i)
		return send(client, http.MethodPost, routeSrv.URL+pega.RoutePath, body, []byte(`"_identifying_route"`))
	})
	engine := load(b, b.N, func(i int) error {
		res, err := router.Route(ctx, pega.RouteRequest{Conversation: "e" + strconv.Itoa(i), Queue: "Billing", Source: "chat"})
		if err == nil && !res.Identifying {
			err = fmt.Errorf("conversation e%d: not routed", i)
		}
		return err
	})
	trivial := redis.NewScript("return 1")
	evalSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := trivial.Run(r.Context(), rdb, nil).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"_status":"ok"}`+"\n")
	}))
	defer evalSrv.Close()
	evalGet := load(b, b.N, func(int) error {
		return send(client, http.MethodGet, evalSrv.URL, nil, []byte(`"ok"`))
	})
	bareRoute := load(b, b.N, func(i int) error {
		body := fmt.Appendf(nil, `{"_conversation_id":"b%d","_queue_name":"Billing","_source":"chat","_preferred_agent":"","_priority_queuing":"false"}`, i)
		return send(client, http.MethodPost, bareSrv.URL+pega.RoutePath, body, []byte(`"_identifying_route"`))
	})
	b.StopTimer()

	b.ReportMetric(float64(route.elapsed.Nanoseconds())/float64(b.N), "ns/op")
	for _, m := range []struct {
		name string
		r    loadResult
	}{{"route", route}, {"ceiling", ceil}, {"engine", engine}, {"eval-get", evalGet}, {"bare-eval-route", bareRoute}} {
		b.ReportMetric(m.r.rate(), m.name+"-req/s")
		b.ReportMetric(ms(m.r.p(50)), m.name+"-p50-ms")
		b.ReportMetric(ms(m.r.p(99)), m.name+"-p99-ms")
	}
	b.ReportMetric(route.rate()/ceil.rate(), "route/ceiling")
	b.ReportMetric(route.rate()/engine.rate(), "route/engine")
	b.ReportMetric(evalGet.rate()/ceil.rate(), "eval-get/ceiling")
	b.ReportMetric(bareRoute.rate()/ceil.rate(), "bare-eval-route/ceiling")
}

// bareRouter answers every route request after one bare script call: the
// least a Redis-backed router could do. Only Route is called.
type bareRouter struct {
	pega.Router
	rdb    redis.UniversalClient
	script *redis.Script
}

func (r bareRouter) Route(ctx context.Context, _ pega.RouteRequest) (pega.RouteResult, error) {
	if err := r.script.Run(ctx, r.rdb, nil).Err(); err != nil {
		return pega.RouteResult{}, err
	}
	return pega.RouteResult{Identifying: true}, nil
}

// loadResult is one phase's outcome.
type loadResult struct {
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r loadResult) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// p is the q-th percentile latency.
func (r loadResult) p(q int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, len(r.lat)*q/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// load makes n calls of do from benchClients goroutines, each taking the
// next call number as soon as its previous call returned.
func load(b *testing.B, n int, do func(i int) error) loadResult {
	b.Helper()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, n)
		firstErr error
	)
	start := time.Now()
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/benchClients+1)
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := do(i)
				mine = append(mine, time.Since(t0))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop everyone
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	return loadResult{elapsed: elapsed, lat: lat}
}

// send makes one request and checks that the answer is a 200 holding
// want. The body is read to its end, so the connection is kept.
func send(client *http.Client, method, url string, body, want []byte) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(got, want) {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, got)
	}
	return nil
}

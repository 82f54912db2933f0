package routing

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
)

func BenchmarkDecisionCost(b *testing.B) {
	rdb := redistest.Client(b)
	c := rdb.(*redis.Client)
	p := routingtest.Prefix(b, rdb)
	e, _ := New(rdb, Config{Prefix: p})
	ctx := context.Background()
	for i := range 5 {
		e.PutQueue(ctx, Queue{ID: "q" + strconv.Itoa(i), Priority: i, Channels: []string{"voice", "chat"}})
	}
	e.PutAgent(ctx, AgentSpec{ID: "a", Capacity: map[string]int{"voice": 1, "chat": 2}, Queues: []string{"q0", "q1", "q2", "q3", "q4"}})
	n := b.N + 10
	for i := range n {
		e.CreateConversation(ctx, NewConversation{ID: "c" + strconv.Itoa(i), Queue: "q" + strconv.Itoa(i%5), Channel: "voice",
			Source: "bench", Session: "chat-" + strconv.Itoa(i), Attributes: map[string]string{"lang": "en"}})
	}
	r, _ := e.run(ctx, "presence", "a", "available")
	cur := r.offers[0][0]
	before := commandStats(b, c)
	b.ResetTimer()
	for range b.N {
		r, err := e.run(ctx, "finish", cur, "ended")
		if err != nil || len(r.offers) != 1 {
			b.Fatal(err, r.offers)
		}
		cur = r.offers[0][0]
	}
	b.StopTimer()
	st := commandStats(b, c).minus(before)
	b.ReportMetric(st.usecPerCall(st.scriptCmd()), "server-us")
	b.Logf("%s", st.breakdown(b.N))
}

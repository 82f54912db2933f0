package pull

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkPull measures the scripts against a bare EVALSHA in the same
// run (the yardstick docs/BENCHMARKS.md uses for routing scripts), on a
// List with 50 subscribers and 200 open requests:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./routing/pull -run '^$' -bench BenchmarkPull
func BenchmarkPull(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.StreamMaxLen = 100 })
	f.list("L1")
	for i := 0; i < 50; i++ {
		f.subscribe(fmt.Sprintf("s%02d", i), "L1")
	}
	for i := 0; i < 200; i++ {
		f.publish(fmt.Sprintf("open%d", i), "L1")
	}
	baseline := redis.NewScript("return 1")

	b.Run("eval_baseline", func(b *testing.B) {
		for b.Loop() {
			if err := baseline.Run(f.ctx, f.rdb, []string{f.prefix + "x"}).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("publish_50_subscribers", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := f.s.Publish(f.ctx, NewRequest{ID: fmt.Sprintf("p%d", i), List: "L1"}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.s.Close(f.ctx, fmt.Sprintf("p%d", i), ""); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("join_leave", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.s.Join(f.ctx, "open0", "a1"); err != nil {
				b.Fatal(err)
			}
			if _, err := f.s.Leave(f.ctx, "open0", "a1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot_200_open", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.s.Snapshot(f.ctx, "L1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

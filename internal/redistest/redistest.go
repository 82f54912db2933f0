// Package redistest gives a test a real Redis: the server at REDIS_URL when
// it is set (CI sets it to the machine's Redis), otherwise an in-process
// one. Tests share that server with every package running in parallel, so
// each test gets its own key prefix and never flushes a database.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

var (
	once sync.Once
	addr string
	opts *redis.Options
)

// Options returns the connection options of the test server, starting an
// in-process one the first time when REDIS_URL is not set.
func Options(tb testing.TB) *redis.Options {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv("REDIS_URL"); u != "" {
			o, err := redis.ParseURL(u)
			if err != nil {
				panic("redistest: REDIS_URL does not parse: " + err.Error())
			}
			opts = o
			return
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			panic("redistest: start in-process redis: " + err.Error())
		}
		// An in-process Redis only expires keys when told that time
		// passed: tell it, so that locks and leases left by a killed
		// process lapse as they would on a real server.
		go func() {
			last := time.Now()
			for range time.Tick(50 * time.Millisecond) {
				now := time.Now()
				m.FastForward(now.Sub(last))
				last = now
			}
		}()
		opts = &redis.Options{Addr: m.Addr()}
	})
	o := *opts
	o.PoolSize = 128
	return &o
}

// URL is the test server as a redis:// URL, for child processes.
func URL(tb testing.TB) string {
	o := Options(tb)
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://" + o.Addr
}

// Client returns a client for the test server, closed when the test ends.
func Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	c := redis.NewClient(Options(tb))
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redistest: ping %s: %v", Options(tb).Addr, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses, and deletes its keys when
// the test ends.
func Prefix(tb testing.TB, c redis.UniversalClient) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	p := "t:" + name + ":" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() { DeletePrefix(c, p) })
	return p
}

// Queue returns an asynq queue name no other test uses, and removes the
// queue's keys when the test ends.
func Queue(tb testing.TB, c redis.UniversalClient) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	q := "t" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { DropQueue(c, q) })
	return q
}

// DeletePrefix removes every key that starts with p.
func DeletePrefix(c redis.UniversalClient, p string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}

// DropQueue removes every key of an asynq queue a test used, finished
// tasks kept for retention included (asynq's DeleteQueue leaves those to
// expire), and forgets the queue.
func DropQueue(c redis.UniversalClient, queue string) {
	DeletePrefix(c, "asynq:{"+queue+"}:")
	c.SRem(context.Background(), "asynq:queues", queue)
}

// Dump reads every key that starts with p, by its name less p, as its type
// and its contents in JSON: two dumps are equal when nothing under p
// changed, which is how tests show that a refused request wrote nothing.
func Dump(tb testing.TB, c redis.UniversalClient, p string) map[string]string {
	tb.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ := c.Type(ctx, k).Val()
		var v any
		switch typ {
		case "hash":
			v = c.HGetAll(ctx, k).Val()
		case "set":
			m := c.SMembers(ctx, k).Val()
			sort.Strings(m)
			v = m
		case "zset":
			v = c.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "stream":
			v = c.XRange(ctx, k, "-", "+").Val()
		default:
			v = c.Get(ctx, k).Val()
		}
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatalf("redistest: dump %s: %v", k, err)
		}
		out[strings.TrimPrefix(k, p)] = typ + ":" + string(b)
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("redistest: dump %s*: %v", p, err)
	}
	return out
}

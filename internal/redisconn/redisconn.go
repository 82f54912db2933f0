// Package redisconn opens the one Redis connection every part of crmsync
// shares: a URL, a Sentinel group, or, with neither configured, an
// in-process Redis that keeps nothing across a restart.
package redisconn

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// Options says where Redis is.
type Options struct {
	URL      crmsync.Secret
	Sentinel *Sentinel
}

// Sentinel locates a master through Redis Sentinel.
type Sentinel struct {
	MasterName string
	Addrs      []string
	Password   crmsync.Secret
	DB         int
}

// Conn is an open connection.
type Conn struct {
	Client redis.UniversalClient
	// InProcess is true when the server runs inside this process: its data
	// dies with the process.
	InProcess bool
	// Addr is the in-process server's address, for child processes.
	Addr string
	mini *miniredis.Miniredis
}

// Open connects and pings.
func Open(ctx context.Context, o Options) (*Conn, error) {
	c := &Conn{}
	switch {
	case !o.URL.IsZero():
		opt, err := redis.ParseURL(o.URL.Reveal())
		if err != nil {
			// The URL may hold a password: never echo it.
			return nil, fmt.Errorf("redis: the configured url does not parse")
		}
		tune(opt)
		c.Client = redis.NewClient(opt)
	case o.Sentinel != nil:
		c.Client = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:    o.Sentinel.MasterName,
			SentinelAddrs: o.Sentinel.Addrs,
			Password:      o.Sentinel.Password.Reveal(),
			DB:            o.Sentinel.DB,
			PoolSize:      256,
		})
	default:
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("redis: start in-process server: %w", err)
		}
		c.mini, c.InProcess, c.Addr = m, true, m.Addr()
		opt := &redis.Options{Addr: m.Addr()}
		tune(opt)
		c.Client = redis.NewClient(opt)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Client.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: ping: %w", err)
	}
	return c, nil
}

// tune sizes the pool for a worker that runs many jobs at once.
func tune(o *redis.Options) {
	if o.PoolSize == 0 {
		o.PoolSize = 256
	}
}

// Close closes the client and stops an in-process server.
func (c *Conn) Close() error {
	err := c.Client.Close()
	if c.mini != nil {
		c.mini.Close()
	}
	return err
}

// AsynqOpt adapts the shared client to the interface asynq's tools (the
// asynqmon UI) take: they get this same client instead of opening another.
type AsynqOpt struct{ C redis.UniversalClient }

// MakeRedisClient returns the shared client.
func (o AsynqOpt) MakeRedisClient() any { return o.C }

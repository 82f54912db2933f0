package stream

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Run holds this process's one subscription to the wake-up channel and
// wakes the open streams of the agent each message names. It returns nil
// when ctx ends. A dropped subscription is made again (backing off up to
// a few seconds); meanwhile the streams poll, and once subscribed again
// every stream re-reads, so what was published in between is only
// delayed.
func (s *Streams) Run(ctx context.Context) error {
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	for {
		subscribed, err := s.listen(ctx)
		if s.subscribed.Swap(false) {
			// Streams waiting for a wake-up switch to polling now.
			s.wakeAll()
		}
		if ctx.Err() != nil {
			return nil
		}
		if subscribed {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("stream: wake-up subscription lost; subscribing again", "err", err, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// listen subscribes and dispatches until the connection fails or ctx
// ends. subscribed says whether the subscription was ever confirmed.
func (s *Streams) listen(ctx context.Context) (subscribed bool, err error) {
	ps := s.rdb.Subscribe(ctx, WakeChannel(s.cfg.Prefix))
	defer func() { _ = ps.Close() }()
	// A blocked read does not watch ctx; closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	// A connection that died without a word (a network cut) only shows
	// when a ping goes unanswered: ping after a quiet spell, give up
	// after a second one.
	quiet := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.Heartbeat)
		if ctx.Err() != nil {
			return subscribed, nil
		}
		if err != nil {
			if isTimeout(err) && quiet == 0 {
				quiet++
				if err := ps.Ping(ctx); err != nil {
					return subscribed, err
				}
				continue
			}
			return subscribed, err
		}
		quiet = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				s.subscribed.Store(true)
				// Messages sent before this (re)subscription were not
				// seen: let every stream look for itself.
				s.wakeAll()
			}
		case *redis.Message:
			s.wake(m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// register adds a waiter for agent, unless the agent already holds
// MaxPerAgent streams here or Streams is closed.
func (s *Streams) register(agent string) (*waiter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.waiters[agent]
	if len(set) >= s.cfg.MaxPerAgent {
		return nil, false
	}
	if set == nil {
		set = map[*waiter]struct{}{}
		s.waiters[agent] = set
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	set[w] = struct{}{}
	return w, true
}

func (s *Streams) unregister(agent string, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters[agent], w)
	if len(s.waiters[agent]) == 0 {
		delete(s.waiters, agent)
	}
}

// open is how many streams agent holds open in this process.
func (s *Streams) open(agent string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters[agent])
}

func (s *Streams) wake(agent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.waiters[agent] {
		w.poke()
	}
}

func (s *Streams) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.waiters {
		for w := range set {
			w.poke()
		}
	}
}

// poke never blocks: one pending wake-up is as good as many, since the
// stream is read from where the connection is anyway.
func (w *waiter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close ends every open stream (their clients reconnect elsewhere and
// resume) and refuses new ones with 503. Call it when the server shuts
// down, for example from http.Server.RegisterOnShutdown: Shutdown does not
// cancel the contexts of requests that never finish on their own.
func (s *Streams) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

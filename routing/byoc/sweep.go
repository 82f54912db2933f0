package byoc

import (
	"context"
	"sync"
	"time"
)

// sweepWorkers bounds the DELETE route calls one sweep makes at once.
const sweepWorkers = 8

// Sweep deletes the pending routings past their timeout (and those whose
// failed delete is due again) with DELETE route, and returns how many it
// finished. Every Router on a Redis may sweep at once: each routing is
// claimed by one. A failed delete is recorded for a later sweep and does
// not fail the sweep; only a Redis failure does.
func (r *Router) Sweep(ctx context.Context) (int, error) {
	token := newToken()
	// Only what is due when the sweep starts: a delete that fails now is
	// due again later, so one sweep never calls twice for a routing.
	cutoff := r.cfg.Now()
	total := 0
	for {
		convs, err := r.take(ctx, token, "", cutoff)
		if err != nil {
			return total, err
		}
		if len(convs) == 0 {
			return total, nil
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
			sem      = make(chan struct{}, sweepWorkers)
		)
		for _, c := range convs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				done, err := r.remove(ctx, c, token, "expired")
				mu.Lock()
				defer mu.Unlock()
				if done {
					total++
				}
				// A delete that failed is already recorded; a store failure
				// is the sweep's.
				if err != nil && isStoreError(err) && firstErr == nil {
					firstErr = err
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return total, firstErr
		}
		if len(convs) < r.cfg.SweepBatch || ctx.Err() != nil {
			return total, nil
		}
	}
}

// Run sweeps every Config.SweepInterval until ctx ends, then returns nil.
// A failing sweep is logged once, when it starts failing, and once when
// it recovers.
func (r *Router) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, err := r.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			failing = true
			r.cfg.Logger.Error("byoc: sweep failed; retrying every interval", "err", err)
		case err == nil && failing:
			failing = false
			r.cfg.Logger.Info("byoc: sweep recovered")
		}
	}
}

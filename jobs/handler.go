package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/templating"
)

// Processor runs event tasks: the CRM flows of one session at a time.
type Processor struct {
	CRM    *crm.Client
	Store  *Store
	Policy Policy
	Logger *slog.Logger
	// LockTTL is how long a dead job keeps a session locked. Zero means 2m30s.
	LockTTL time.Duration
	// LockWait is how long a job waits for a busy session before handing
	// the task back to the queue. Zero means 3s.
	LockWait time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// retryError carries the delay the policy chose to asynq's RetryDelayFunc.
type retryError struct {
	err   error
	delay time.Duration
}

func (e *retryError) Error() string { return fmt.Sprintf("%v (retry in %s)", e.err, e.delay) }
func (e *retryError) Unwrap() error { return e.err }

// ProcessTask implements asynq.Handler.
func (p *Processor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	outcome := "done"
	defer func() {
		jobsTotal.WithLabelValues(t.Type(), outcome).Inc()
		jobDuration.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
	}()

	var pl Payload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil {
		outcome = "archived"
		return fmt.Errorf("jobs: malformed payload: %v: %w", err, asynq.SkipRetry)
	}
	key, err := crmsync.ParseSessionKey(pl.Session)
	if err != nil {
		outcome = "archived"
		return fmt.Errorf("jobs: %v: %w", err, asynq.SkipRetry)
	}
	taskID, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)

	st, err := p.lock(ctx, key, taskID)
	if errors.Is(err, ErrBusy) {
		outcome = "busy"
		return err
	}
	if err != nil {
		outcome = "retry"
		return err
	}

	var entries []Entry
	ctx = crm.WithRecorder(ctx, func(c crm.Call) {
		entries = append(entries, Entry{
			At: c.At.UTC(), Kind: "crm", Event: pl.Event.Type, EventID: pl.Event.ID,
			Endpoint: c.Endpoint, Method: c.Method, URL: c.URL, Status: c.Status,
			Duration: float64(c.Duration.Microseconds()) / 1000, Attempt: c.Attempt, Error: c.Err,
		})
	})

	p.absorb(st, pl)
	runErr := p.run(ctx, st, key, pl.Event)
	now := p.now()
	result := Entry{At: now.UTC(), Kind: "job", Event: pl.Event.Type, EventID: pl.Event.ID, Attempt: retried + 1}
	var ret error
	if runErr == nil {
		result.Outcome = "done"
	} else {
		first := st.FirstAttempt
		if first.IsZero() {
			first = now
		}
		delay, giveUp := p.Policy.Decide(runErr, retried, first, now)
		if giveUp != nil {
			outcome = "archived"
			result.Outcome = "archived"
			result.Error = giveUp.Error()
			ret = fmt.Errorf("%v: %w", giveUp, asynq.SkipRetry)
		} else {
			outcome = "retry"
			result.Outcome = "retry in " + delay.String()
			result.Error = runErr.Error()
			ret = &retryError{err: runErr, delay: delay}
		}
	}
	entries = append(entries, result)
	// The state must be written even when the job's context has ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.Store.Unlock(wctx, st, entries, now); err != nil {
		return errors.Join(ret, err)
	}
	if outcome == "archived" {
		p.logger().Warn("job archived", "type", t.Type(), "session", key.String(), "event", pl.Event.Type, "reason", result.Error)
	}
	return ret
}

func (p *Processor) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// lock waits a little for a busy session: two events of one session often
// arrive together, and waiting here is cheaper than a trip through the
// retry queue.
func (p *Processor) lock(ctx context.Context, key crmsync.SessionKey, taskID string) (*State, error) {
	ttl, wait := p.LockTTL, p.LockWait
	if ttl == 0 {
		ttl = 150 * time.Second
	}
	if wait == 0 {
		wait = 3 * time.Second
	}
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		st, err := p.Store.Lock(ctx, key, taskID, ttl, p.now())
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause + rand.N(pause)):
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// absorb merges the event into what is known of the session. It is
// idempotent: a re-delivered event changes nothing more.
func (p *Processor) absorb(st *State, pl Payload) {
	ev := pl.Event
	st.Facts.merge(ev.Data)
	at := pl.ReceivedAt
	if ev.Data.OccurredAt != "" {
		if t, err := time.Parse(time.RFC3339, ev.Data.OccurredAt); err == nil {
			at = t
		}
	}
	seen := ev.ID + ":seen"
	if st.Done(seen) {
		return
	}
	st.Steps[seen] = at.UTC().Format(time.RFC3339Nano)
	st.changes[stepPrefix+seen] = st.Steps[seen]
	switch ev.Action {
	case crmsync.ActionStart:
		if st.Facts.StartedAt.IsZero() {
			st.Facts.StartedAt = at.UTC()
		}
	case crmsync.ActionEnd:
		st.Facts.EndedAt = at.UTC()
	case crmsync.ActionTransfer:
		st.Facts.Transfers++
	}
}

// run does the CRM side of one event. Every step is recorded when done, so
// a retry starts where the last attempt stopped.
func (p *Processor) run(ctx context.Context, st *State, key crmsync.SessionKey, ev crmsync.Event) error {
	if ev.Action == crmsync.ActionRecord || p.CRM == nil {
		return nil
	}
	v := st.Facts.values(key, p.CRM.PhoneFormat())
	if err := p.ensureAccount(ctx, st, key, &v); err != nil {
		return err
	}
	if st.AccountID == "" {
		return nil // no account endpoints configured: nothing more can be done
	}
	if err := p.ensureRecord(ctx, st, key, &v); err != nil {
		return err
	}
	if st.RecordID == "" {
		return nil
	}
	idem := "crmsync:" + key.String() + ":" + ev.ID
	if step := ev.ID + ":comment"; !st.Done(step) && p.CRM.Has(crm.EndpointComment) {
		text := commentText(ev.Action, key, &st.Facts, ev.Data)
		if err := p.CRM.Comment(crm.WithIdempotencyKey(ctx, idem), &v, text); err != nil {
			return err
		}
		if err := p.Store.MarkDone(ctx, st, step, p.now()); err != nil {
			return err
		}
	}
	if ev.Action != crmsync.ActionRating && ev.Action != crmsync.ActionEnd {
		return nil
	}
	if step := ev.ID + ":update"; !st.Done(step) && p.CRM.Has(crm.EndpointUpdateRecord) {
		if err := p.CRM.UpdateRecord(ctx, &v); err != nil {
			return err
		}
		if err := p.Store.MarkDone(ctx, st, step, p.now()); err != nil {
			return err
		}
	}
	return nil
}

func (p *Processor) ensureAccount(ctx context.Context, st *State, key crmsync.SessionKey, v *templating.Values) error {
	if st.AccountID != "" {
		v.Set(templating.AccountID, st.AccountID)
		return nil
	}
	if !p.CRM.Has(crm.EndpointFindAccount) && !p.CRM.Has(crm.EndpointCreateAccount) && !p.CRM.Has(crm.EndpointFindAccountByID) {
		return nil
	}
	res, err := p.CRM.FindOrCreateAccount(crm.WithIdempotencyKey(ctx, "crmsync:"+key.String()+":account"), v)
	if err != nil {
		return err
	}
	st.AccountID, st.AccountURL = res.ID, res.URL
	return p.Store.Set(ctx, st, fieldAccountID, res.ID, fieldAccountURL, res.URL)
}

func (p *Processor) ensureRecord(ctx context.Context, st *State, key crmsync.SessionKey, v *templating.Values) error {
	if st.RecordID != "" {
		v.Set(templating.RecordID, st.RecordID)
		return nil
	}
	if !p.CRM.Has(crm.EndpointCreateRecord) && !p.CRM.Has(crm.EndpointFindRecord) {
		return nil
	}
	// Note that a create may be under way before making it: if this job
	// dies after the CRM created the record, the next attempt looks first.
	mayHaveCreated := st.RecordPending
	if !mayHaveCreated {
		if err := p.Store.Set(ctx, st, fieldRecordPending, "1"); err != nil {
			return err
		}
		st.RecordPending = true
	}
	res, err := p.CRM.FindOrCreateRecord(crm.WithIdempotencyKey(ctx, "crmsync:"+key.String()+":record"), v, mayHaveCreated)
	if err != nil {
		return err
	}
	st.RecordID, st.RecordURL = res.ID, res.URL
	return p.Store.Set(ctx, st, fieldRecordID, res.ID, fieldRecordURL, res.URL, fieldRecordPending, "0")
}

// RetryDelay is the asynq RetryDelayFunc that goes with the processor.
func (p *Processor) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var re *retryError
	switch {
	case errors.As(err, &re):
		return re.delay
	case errors.Is(err, ErrBusy):
		return 500*time.Millisecond + rand.N(500*time.Millisecond)
	case errors.Is(err, asynq.ErrLeaseExpired):
		return time.Second
	}
	return p.Policy.Delay(n)
}

// IsFailure tells asynq which errors count as a failed attempt: a busy
// session does not.
func IsFailure(err error) bool { return err != nil && !errors.Is(err, ErrBusy) }

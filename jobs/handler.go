package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
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
	// Closeouts, when set, gets each ended session's close-out, to run
	// CloseoutDelay later (late data such as a rating makes it in).
	Closeouts     *Enqueuer
	CloseoutDelay time.Duration
	// StartWait is how long a transfer, rating or end event waits for its
	// session's start event, so the CRM sees them in order; after that it
	// runs anyway (the start may never come). Zero means 30s.
	StartWait time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// AgentEvents, when set, gets a CRM_Record_Pop for the session's
	// agent as soon as the session's record is known, and the screen pops
	// below; each once per agent.
	AgentEvents AgentEvents
	// ScreenPops, when set, renders the session's custom lookup URL at
	// its start (Custom_Lookup_URL) and its queue's Open Custom URL when
	// no contact was found (Open_Custom_URL). Both are kept on the session.
	ScreenPops ScreenPops

	gate sessionGate
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
	outcome := "done"
	defer observeJob(t.Type(), time.Now(), &outcome)

	var pl Payload
	key, err := decodeTask(t, &pl, &pl.Session)
	if err != nil {
		outcome = "archived"
		return err
	}
	taskID, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)

	st, leave, err := p.lock(ctx, key, taskID, pl)
	if errors.Is(err, ErrBusy) {
		outcome = "busy"
		return err
	}
	if err != nil {
		outcome = "retry"
		return err
	}
	// Even a panic below must let the process's other jobs at the session.
	defer leave()

	if p.mustWaitForStart(st, pl) {
		outcome = "waiting"
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := p.Store.Unlock(wctx, st, nil, p.now())
		leave()
		return errors.Join(ErrNotStarted, err)
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
	p.renderScreenPops(st, key)
	// A record known is worth popping even when a later step failed.
	if err := p.pop(ctx, st, key, pl, &entries); err != nil && runErr == nil {
		runErr = err
	}
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
	err = p.Store.Unlock(wctx, st, entries, now)
	leave()
	if err != nil {
		return errors.Join(ret, err)
	}
	if outcome == "archived" {
		p.logger().Warn("job archived", "type", t.Type(), "session", key.String(), "event", pl.Event.Type, "reason", result.Error)
	}
	// The session ended whatever became of its CRM steps: its files and
	// outcome are due either way.
	if pl.Event.Action == crmsync.ActionEnd && p.Closeouts != nil {
		if err := p.Closeouts.EnqueueCloseout(wctx, key, p.CloseoutDelay); err != nil {
			return errors.Join(ret, err)
		}
	}
	return ret
}

func (p *Processor) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// lock waits a little for a busy session, or for the start event of a
// session whose later event overtook it: two events of one session often
// arrive together, and waiting here is cheaper than a trip through the
// retry queue. When the wait runs out, the caller hands the task back. On
// success the caller holds the session in this process's gate too, and
// must call leave once it has unlocked.
func (p *Processor) lock(ctx context.Context, key crmsync.SessionKey, taskID string, pl Payload) (st *State, leave func(), err error) {
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
		leave, held := p.gate.enter(key)
		if held != nil {
			// A job of this process has the session: it will say when it
			// is done, no need to ask Redis meanwhile.
			left := time.Until(deadline)
			if left <= 0 {
				return nil, nil, ErrBusy
			}
			t := time.NewTimer(left)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			case <-held:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		st, err := p.Store.Lock(ctx, key, taskID, ttl, p.now())
		if err == nil && p.mustWaitForStart(st, pl) && time.Now().Before(deadline) {
			if err := p.Store.Release(ctx, st); err != nil {
				leave()
				return nil, nil, err
			}
			err = ErrBusy
		}
		if err == nil {
			return st, leave, nil
		}
		leave()
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			return nil, nil, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(pause + rand.N(pause)):
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// ErrNotStarted hands back an event that came before its session's start.
var ErrNotStarted = errors.New("jobs: waiting for the session's start event")

// mustWaitForStart holds back a transfer, rating or end that overtook its
// session's start: run first, it would create the account and record with
// what little it knows, before the start event brings the caller's details.
func (p *Processor) mustWaitForStart(st *State, pl Payload) bool {
	switch pl.Event.Action {
	case crmsync.ActionTransfer, crmsync.ActionRating, crmsync.ActionEnd:
	default:
		return false
	}
	if !st.Facts.StartedAt.IsZero() || st.AccountID != "" {
		return false
	}
	wait := p.StartWait
	if wait == 0 {
		wait = 30 * time.Second
	}
	return p.now().Sub(pl.ReceivedAt) < wait
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
	if r := pl.Routing; r != nil && r.Agent != "" && (r.Conversation != st.Routing.Conversation || r.Seq >= st.Routing.Seq) {
		// Only a later decision changes the agent: an accept handled after
		// the transfer that followed it must not take the session back.
		if *r != st.Routing {
			st.Routing = *r
			st.set(fieldRoutingAgent, r.Agent, fieldRoutingConv, r.Conversation, fieldRoutingSeq, strconv.FormatInt(r.Seq, 10))
		}
	}
	seen := ev.ID + ":seen"
	if st.Done(seen) {
		return
	}
	st.markDone(seen, at)
	if st.Facts.FirstSeenAt.IsZero() || at.Before(st.Facts.FirstSeenAt) {
		st.Facts.FirstSeenAt = at.UTC()
	}
	d := ev.Data
	st.Facts.noteAgent(Agent{ID: d.AgentID, CustomID: d.AgentCustomID, Email: d.AgentEmail})
	st.Facts.noteAgent(Agent{ID: d.FromAgentID, Email: d.FromAgentEmail})
	st.Facts.noteAgent(Agent{ID: d.ToAgentID, Email: d.ToAgentEmail})
	switch ev.Action {
	case crmsync.ActionStart:
		if st.Facts.StartedAt.IsZero() {
			st.Facts.StartedAt = at.UTC()
		}
	case crmsync.ActionEnd:
		st.Facts.EndedAt = at.UTC()
	case crmsync.ActionRecord:
		if line := transcriptLine(ev, at); line != "" {
			st.transcript = append(st.transcript, line)
		}
	case crmsync.ActionTransfer:
		st.Facts.Transfers++
		st.Facts.TransferLog = append(st.Facts.TransferLog, Transfer{At: at.UTC(),
			FromAgentID: d.FromAgentID, ToAgentID: d.ToAgentID, FromQueueID: d.FromQueueID, ToQueueID: d.ToQueueID})
	}
}

// run does the CRM side of one event. Every step is recorded when done, so
// a retry starts where the last attempt stopped.
func (p *Processor) run(ctx context.Context, st *State, key crmsync.SessionKey, ev crmsync.Event) error {
	if ev.Action == crmsync.ActionRecord || p.CRM == nil {
		return nil
	}
	v := st.Facts.values(key, p.CRM.PhoneFormat())
	created, err := p.ensureAccount(ctx, st, key, &v)
	if err != nil {
		return err
	}
	if st.AccountID == "" {
		return nil // no account endpoints configured: nothing more can be done
	}
	if err := p.ensureRecord(ctx, st, key, &v, created); err != nil {
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
		st.markDone(step, p.now())
	}
	if ev.Action != crmsync.ActionRating && ev.Action != crmsync.ActionEnd {
		return nil
	}
	if step := ev.ID + ":update"; !st.Done(step) && p.CRM.Has(crm.EndpointUpdateRecord) {
		if err := p.CRM.UpdateRecord(ctx, &v); err != nil {
			return err
		}
		st.markDone(step, p.now())
	}
	return nil
}

// ensureAccount finds or creates the session's account; created says the
// CRM made it just now.
func (p *Processor) ensureAccount(ctx context.Context, st *State, key crmsync.SessionKey, v *templating.Values) (created bool, err error) {
	if st.AccountID != "" {
		v.Set(templating.AccountID, st.AccountID)
		return false, nil
	}
	if !p.CRM.Has(crm.EndpointFindAccount) && !p.CRM.Has(crm.EndpointCreateAccount) && !p.CRM.Has(crm.EndpointFindAccountByID) {
		return false, nil
	}
	res, err := p.CRM.FindOrCreateAccount(crm.WithIdempotencyKey(ctx, "crmsync:"+key.String()+":account"), v)
	if err != nil {
		return false, err
	}
	st.AccountID, st.AccountURL = res.ID, res.URL
	st.set(fieldAccountID, res.ID, fieldAccountURL, res.URL)
	if res.Created {
		st.AccountCreated = true
		st.set(fieldAccountCreated, "1")
	}
	return res.Created, nil
}

// ensureRecord finds or creates the session's record. An account the CRM
// created a moment ago has no record to find, so the search is skipped;
// an account made by an earlier, crashed attempt is found, not created, so
// this never skips a search that could find something.
func (p *Processor) ensureRecord(ctx context.Context, st *State, key crmsync.SessionKey, v *templating.Values, newAccount bool) error {
	if st.RecordID != "" {
		v.Set(templating.RecordID, st.RecordID)
		return nil
	}
	if !p.CRM.Has(crm.EndpointCreateRecord) && !p.CRM.Has(crm.EndpointFindRecord) {
		return nil
	}
	// When every session gets a new record, nothing would find one this
	// job created before dying: note that a create may be under way before
	// making it, so the next attempt looks first. (With reuse_open the
	// find always comes first anyway.)
	mayHaveCreated := st.RecordPending
	if !mayHaveCreated && p.CRM.AlwaysCreate() {
		if err := p.Store.WriteNow(ctx, st, fieldRecordPending, "1"); err != nil {
			return err
		}
		st.RecordPending = true
	}
	rctx := crm.WithIdempotencyKey(ctx, "crmsync:"+key.String()+":record")
	var res crm.RecordResult
	var err error
	if newAccount && !mayHaveCreated && p.CRM.Has(crm.EndpointCreateRecord) {
		res, err = p.CRM.CreateRecord(rctx, v)
	} else {
		res, err = p.CRM.FindOrCreateRecord(rctx, v, mayHaveCreated)
	}
	if err != nil {
		return err
	}
	st.RecordID, st.RecordURL = res.ID, res.URL
	st.set(fieldRecordID, res.ID, fieldRecordURL, res.URL, fieldRecordPending, "0")
	return nil
}

// RetryDelay is the asynq RetryDelayFunc that goes with the processor.
func (p *Processor) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var re *retryError
	switch {
	case errors.As(err, &re):
		return re.delay
	case errors.Is(err, ErrBusy):
		return 500*time.Millisecond + rand.N(500*time.Millisecond)
	case errors.Is(err, ErrNotStarted):
		return 100*time.Millisecond + rand.N(100*time.Millisecond)
	case errors.Is(err, asynq.ErrLeaseExpired):
		return time.Second
	}
	return p.Policy.Delay(n)
}

// IsFailure tells asynq which errors count as a failed attempt: a busy
// session or a start still to come does not.
func IsFailure(err error) bool {
	return err != nil && !errors.Is(err, ErrBusy) && !errors.Is(err, ErrNotStarted)
}

// transcriptLine is one chat message as the transcript file shows it.
func transcriptLine(ev crmsync.Event, at time.Time) string {
	var who string
	switch ev.Type {
	case "Chat_Inbound_Message":
		who = firstNonEmpty(ev.Data.EndUserName, "End user")
	case "Chat_Outbound_Message":
		who = "Agent " + firstNonEmpty(ev.Data.AgentEmail, ev.Data.AgentID)
	default:
		return ""
	}
	msg := strings.ReplaceAll(strings.TrimRight(ev.Data.Message, "\n"), "\n", "\n    ")
	return at.UTC().Format(time.RFC3339) + " " + strings.TrimSpace(who) + ": " + msg
}

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/pega"
	"github.com/crmsync/crmsync/routing"
)

// TypePegaAssign tells Pega which CSR the routing engine offered one of
// its conversations to (PostRoutingEvents).
const TypePegaAssign = "pega:assign"

// PegaAssignPayload is one offer to pass on to Pega.
type PegaAssignPayload struct {
	Conversation string    `json:"conversation"`
	Agent        string    `json:"agent"`
	Seq          int64     `json:"seq"`
	Session      string    `json:"session,omitempty"`
	OfferedAt    time.Time `json:"offered_at,omitzero"`
}

// PegaAssignTaskID is the task id of an offer: one per conversation and
// outbox sequence, so a redelivered outbox entry enqueues nothing new.
func PegaAssignTaskID(conversation string, seq int64) string {
	return TypePegaAssign + ":" + conversation + ":" + strconv.FormatInt(seq, 10)
}

// NewPegaAssignTask makes the task of one offer.
func NewPegaAssignTask(pl PegaAssignPayload) (*asynq.Task, error) {
	if pl.Conversation == "" {
		return nil, crmsync.Errorf(crmsync.EINVALID, "conversation", "required")
	}
	if pl.Agent == "" {
		return nil, crmsync.Errorf(crmsync.EINVALID, "agent", "required")
	}
	b, err := json.Marshal(pl)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return asynq.NewTask(TypePegaAssign, b, asynq.TaskID(PegaAssignTaskID(pl.Conversation, pl.Seq))), nil
}

// EnqueuePegaAssign enqueues an offer's task; duplicate says it was
// already there.
func (e *Enqueuer) EnqueuePegaAssign(ctx context.Context, pl PegaAssignPayload) (duplicate bool, err error) {
	task, err := NewPegaAssignTask(pl)
	if err != nil {
		return false, err
	}
	_, err = e.client.EnqueueContext(ctx, task,
		asynq.Queue(e.queue), asynq.MaxRetry(maxRetry),
		asynq.Timeout(e.timeout), asynq.Retention(e.retention))
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("jobs: enqueue %s: %w", task.Type(), err)
	}
	return false, nil
}

// PegaAssigner calls Pega's PostRoutingEvents; connectors/pega.Client
// implements it. An error wrapping pega.ErrFail is Pega's Fail.
type PegaAssigner interface {
	Assign(ctx context.Context, conversation, agent string) error
}

// Rerouter hands an offer back so the engine looks for another agent;
// routing.Engine implements it.
type Rerouter interface {
	Decline(ctx context.Context, conv, agent string) error
}

// offerReader is the optional power of a Rerouter to say whether an offer
// is still open (routing.Engine has it): a gone offer is not sent to Pega.
type offerReader interface {
	GetConversation(ctx context.Context, id string) (*routing.Conversation, error)
}

// PegaHandler runs pega:assign tasks. Transport errors, timeouts, 429 and
// 5xx are retried by Policy's delays (pega.Retryable sorts them) while
// the offer is open; Pega's Fail, any other error, or retries running out
// decline the offer, so the engine offers the conversation to someone
// else. Each outcome is logged, counted and put on the session's timeline.
type PegaHandler struct {
	Pega    PegaAssigner
	Routing Rerouter
	Store   *Store
	Policy  Policy
	Logger  *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Outcome notes kept per offer, so a rerun never calls Pega again for an
// offer it already answered.
const (
	pegaSent    = "sent"
	pegaRefused = "refused"
)

func (h *PegaHandler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *PegaHandler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func (h *PegaHandler) noteKey(pl PegaAssignPayload) string {
	return h.Store.prefix + "pega:" + pl.Conversation + ":" + strconv.FormatInt(pl.Seq, 10)
}

// noteTTL outlives any retry of the offer.
const noteTTL = 8 * 24 * time.Hour

// readNote returns what an earlier run of the offer's task concluded
// ("" when none did) and the time of its first attempt, noting now as
// that time on the first.
func (h *PegaHandler) readNote(ctx context.Context, pl PegaAssignPayload, now time.Time) (string, time.Time, error) {
	key := h.noteKey(pl)
	var all *redis.MapStringStringCmd
	_, err := h.Store.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, key, "first", strconv.FormatInt(now.UnixMilli(), 10))
		p.Expire(ctx, key, noteTTL)
		all = p.HGetAll(ctx, key)
		return nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("jobs: pega note: %w", err)
	}
	m := all.Val()
	first := msTime(m["first"])
	if first.IsZero() {
		first = now
	}
	return m["state"], first, nil
}

// ProcessTask implements asynq.Handler.
func (h *PegaHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	outcome := "done"
	defer observeJob(t.Type(), time.Now(), &outcome)
	var pl PegaAssignPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.Conversation == "" || pl.Agent == "" {
		outcome = "archived"
		return fmt.Errorf("jobs: malformed %s payload: %w", TypePegaAssign, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	now := h.now()
	note, first, err := h.readNote(ctx, pl, now)
	if err != nil {
		outcome = "retry"
		return &retryError{err: err, delay: h.Policy.Delay(retried)}
	}
	switch note {
	case pegaSent:
		pegaAssignTotal.WithLabelValues("duplicate").Inc()
		return nil
	case pegaRefused:
		return h.reroute(ctx, pl, retried, "refused earlier", &outcome)
	}

	if open, err := h.offerOpen(ctx, pl); err != nil {
		outcome = "retry"
		return &retryError{err: err, delay: h.Policy.Delay(retried)}
	} else if !open {
		pegaAssignTotal.WithLabelValues("skipped").Inc()
		h.timeline(ctx, pl, Entry{Outcome: "skipped: the offer is gone", Attempt: retried + 1})
		return nil
	}

	callErr := h.Pega.Assign(ctx, pl.Conversation, pl.Agent)
	if callErr == nil {
		// A failed note only risks one more call on a rerun, which Pega
		// answers for the same CSR either way.
		if err := h.Store.rdb.HSet(ctx, h.noteKey(pl), "state", pegaSent).Err(); err != nil {
			h.logger().Warn("pega assign: note", "err", err)
		}
		pegaAssignTotal.WithLabelValues("assigned").Inc()
		h.timeline(ctx, pl, Entry{Outcome: "assigned to " + pl.Agent, Attempt: retried + 1})
		return nil
	}
	if !errors.Is(callErr, pega.ErrFail) {
		if ok, after := pega.Retryable(callErr); ok {
			d := h.Policy.Delay(retried)
			if after > 0 {
				d = min(after, h.Policy.MaxDelay)
			}
			if !now.Add(d).After(first.Add(h.Policy.Window)) {
				outcome = "retry"
				pegaAssignTotal.WithLabelValues("retry").Inc()
				h.timeline(ctx, pl, Entry{Outcome: "retry in " + d.String(), Error: callErr.Error(), Attempt: retried + 1})
				return &retryError{err: callErr, delay: d}
			}
		}
	}
	if err := h.Store.rdb.HSet(ctx, h.noteKey(pl), "state", pegaRefused).Err(); err != nil {
		outcome = "retry"
		return &retryError{err: fmt.Errorf("jobs: pega note: %w", err), delay: h.Policy.Delay(retried)}
	}
	return h.reroute(ctx, pl, retried, callErr.Error(), &outcome)
}

// reroute declines the offer so the engine looks for another agent, and
// records why. An offer already gone (ECONFLICT, ENOTFOUND) needs nothing.
func (h *PegaHandler) reroute(ctx context.Context, pl PegaAssignPayload, retried int, reason string, outcome *string) error {
	err := h.Routing.Decline(ctx, pl.Conversation, pl.Agent)
	switch crmsync.ErrorCode(err) {
	case "", crmsync.ECONFLICT, crmsync.ENOTFOUND:
	default:
		*outcome = "retry"
		return &retryError{err: fmt.Errorf("jobs: decline %s for %s: %w", pl.Conversation, pl.Agent, err), delay: h.Policy.Delay(retried)}
	}
	*outcome = "archived"
	pegaAssignTotal.WithLabelValues("rerouted").Inc()
	h.logger().Warn("pega refused the assignment; conversation routed again",
		"conversation", pl.Conversation, "agent", pl.Agent, "session", pl.Session, "reason", reason)
	h.timeline(ctx, pl, Entry{Outcome: "refused; routed again", Error: reason, Attempt: retried + 1})
	return fmt.Errorf("jobs: pega assign %s to %s: %s: %w", pl.Conversation, pl.Agent, reason, asynq.SkipRetry)
}

// offerOpen reports whether the offer the task is about still stands:
// offered to the agent, with no later event of the conversation.
func (h *PegaHandler) offerOpen(ctx context.Context, pl PegaAssignPayload) (bool, error) {
	r, ok := h.Routing.(offerReader)
	if !ok {
		return true, nil
	}
	c, err := r.GetConversation(ctx, pl.Conversation)
	switch {
	case crmsync.ErrorCode(err) == crmsync.ENOTFOUND:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("jobs: read conversation %s: %w", pl.Conversation, err)
	}
	return c.OfferedTo == pl.Agent && c.Seq == pl.Seq, nil
}

// timeline notes an outcome on the conversation's session, if it has one.
func (h *PegaHandler) timeline(ctx context.Context, pl PegaAssignPayload, e Entry) {
	k, err := crmsync.ParseSessionKey(pl.Session)
	if err != nil {
		return
	}
	now := h.now()
	e.At, e.Kind, e.Event, e.Endpoint = now.UTC(), "routing", TypePegaAssign, pega.EndpointPostRoutingEvents
	if err := h.Store.AppendTimeline(context.WithoutCancel(ctx), k, now, e); err != nil {
		h.logger().Warn("pega assign: timeline", "session", k.String(), "err", err)
	}
}

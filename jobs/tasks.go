// Package jobs turns contact-center events into asynq tasks and runs them:
// the CRM flows of each session, with its state in Redis, one retry policy,
// and idempotent handlers, since asynq delivers a task at least once. The
// routing engine's decisions come in the same way (RoutingFeed), and what
// the agent's browser should open (the CRM record, lookup URLs) goes out
// to the agent's stream (AgentEvents).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmsync/crmsync"
)

// Task types, one per action.
const (
	TypeStart    = "crm:start"
	TypeTransfer = "crm:transfer"
	TypeRating   = "crm:rating"
	TypeEnd      = "crm:end"
	TypeRecord   = "session:record"
)

var typeOf = map[crmsync.Action]string{
	crmsync.ActionStart:    TypeStart,
	crmsync.ActionTransfer: TypeTransfer,
	crmsync.ActionRating:   TypeRating,
	crmsync.ActionEnd:      TypeEnd,
	crmsync.ActionRecord:   TypeRecord,
}

// Payload is what every event task carries.
type Payload struct {
	Session    string        `json:"session"`
	Event      crmsync.Event `json:"event"`
	ReceivedAt time.Time     `json:"received_at"`
	// Routing is set when the routing feed made the event from a routing
	// decision: it names the agent the engine chose.
	Routing *RoutingRef `json:"routing,omitempty"`
}

// RoutingRef ties an event to the routing decision it came from.
type RoutingRef struct {
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"`
	Seq          int64  `json:"seq"`
}

// NewEventTask makes the task for one event. Its id is derived from the
// session and the event id, so the same event enqueued twice is refused by
// asynq as a duplicate.
func NewEventTask(ev crmsync.Event, received time.Time) (*asynq.Task, error) {
	return newEventTask(ev, received, nil)
}

func newEventTask(ev crmsync.Event, received time.Time, ref *RoutingRef) (*asynq.Task, error) {
	typ, ok := typeOf[ev.Action]
	if !ok || ev.Session.IsZero() {
		return nil, fmt.Errorf("jobs: event %s has no task", ev.Type)
	}
	b, err := json.Marshal(Payload{Session: ev.Session.String(), Event: ev, ReceivedAt: received.UTC(), Routing: ref})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return asynq.NewTask(typ, b, asynq.TaskID(TaskID(ev))), nil
}

// TaskID is the asynq task id of an event.
func TaskID(ev crmsync.Event) string { return ev.Session.String() + ":" + ev.ID }

// Accepted says what became of one event.
type Accepted struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Session   string `json:"session,omitempty"`
	Action    string `json:"action"`
	TaskID    string `json:"task_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// Enqueuer puts events on the queue.
type Enqueuer struct {
	client    *asynq.Client
	queue     string
	timeout   time.Duration
	retention time.Duration
	now       func() time.Time
}

// EnqueuerConfig configures an Enqueuer.
type EnqueuerConfig struct {
	// Queue is the asynq queue. Empty means "crmsync".
	Queue string
	// TaskTimeout bounds one run of a task. Zero means 2m.
	TaskTimeout time.Duration
	// Retention keeps finished tasks, so a re-sent event stays a
	// duplicate that long. Zero means 24h.
	Retention time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// NewEnqueuer returns an Enqueuer on client.
func NewEnqueuer(client *asynq.Client, cfg EnqueuerConfig) *Enqueuer {
	e := &Enqueuer{client: client, queue: cfg.Queue, timeout: cfg.TaskTimeout, retention: cfg.Retention, now: cfg.Now}
	if e.queue == "" {
		e.queue = "crmsync"
	}
	if e.timeout == 0 {
		e.timeout = 2 * time.Minute
	}
	if e.retention == 0 {
		e.retention = 24 * time.Hour
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e
}

// maxRetry is only a backstop: the policy's window decides when to stop.
const maxRetry = 100000

// Enqueue puts every event that has work on the queue. Events are enqueued
// one by one; on an error the ones before it are in, and the caller may
// send the whole batch again: those come back as duplicates.
func (e *Enqueuer) Enqueue(ctx context.Context, events []crmsync.Event) ([]Accepted, error) {
	now := e.now()
	out := make([]Accepted, 0, len(events))
	for _, ev := range events {
		a, err := e.enqueue(ctx, ev, nil, now)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// enqueue puts one event on the queue; ref ties it to a routing decision.
func (e *Enqueuer) enqueue(ctx context.Context, ev crmsync.Event, ref *RoutingRef, now time.Time) (Accepted, error) {
	a := Accepted{ID: ev.ID, Type: ev.Type, Session: ev.Session.String(), Action: string(ev.Action)}
	if ev.Action == crmsync.ActionNone || ev.Session.IsZero() {
		a.Action = string(crmsync.ActionNone)
		return a, nil
	}
	task, err := newEventTask(ev, now, ref)
	if err != nil {
		return a, err
	}
	a.TaskID = TaskID(ev)
	_, err = e.client.EnqueueContext(ctx, task,
		asynq.Queue(e.queue), asynq.MaxRetry(maxRetry),
		asynq.Timeout(e.timeout), asynq.Retention(e.retention))
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
		a.Duplicate = true
	case err != nil:
		eventsTotal.WithLabelValues(ev.Type, "error").Inc()
		return a, fmt.Errorf("jobs: enqueue %s: %w", a.TaskID, err)
	}
	if a.Duplicate {
		eventsTotal.WithLabelValues(ev.Type, "duplicate").Inc()
	} else {
		eventsTotal.WithLabelValues(ev.Type, "enqueued").Inc()
	}
	return a, nil
}

// EnqueueCloseout schedules the session's close-out after delay. It is
// enqueued once per session (its task id is the session's); a second end
// event finds it already there.
func (e *Enqueuer) EnqueueCloseout(ctx context.Context, k crmsync.SessionKey, delay time.Duration) error {
	_, err := e.client.EnqueueContext(ctx, NewCloseoutTask(k),
		asynq.Queue(e.queue), asynq.MaxRetry(maxRetry), asynq.ProcessIn(delay),
		asynq.Timeout(e.closeoutTimeout()), asynq.Retention(e.retention))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
		return fmt.Errorf("jobs: enqueue close-out of %s: %w", k, err)
	}
	return nil
}

// closeoutTimeout bounds one close-out run: it may move large recordings.
func (e *Enqueuer) closeoutTimeout() time.Duration { return max(e.timeout, 30*time.Minute) }

// decodeTask decodes a task's payload into pl and parses its session (the
// field session points at). Either failing is permanent: the task is
// archived.
func decodeTask(t *asynq.Task, pl any, session *string) (crmsync.SessionKey, error) {
	if err := json.Unmarshal(t.Payload(), pl); err != nil {
		return crmsync.SessionKey{}, fmt.Errorf("jobs: malformed payload: %v: %w", err, asynq.SkipRetry)
	}
	key, err := crmsync.ParseSessionKey(*session)
	if err != nil {
		return crmsync.SessionKey{}, fmt.Errorf("jobs: %v: %w", err, asynq.SkipRetry)
	}
	return key, nil
}

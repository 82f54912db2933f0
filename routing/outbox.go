package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outbox event names (OutboxEvent.Event).
const (
	EventQueued            = "queued"             // a conversation waits in a queue (not sent when it was offered at once)
	EventOffered           = "offered"            // offered to Agent (Transfer: a transfer's target), until ExpiresAt
	EventAccepted          = "accepted"           // Agent took it
	EventDeclined          = "declined"           // Agent declined; it waits again
	EventExpired           = "expired"            // Agent let the offer expire (or Expire said so); it waits again
	EventCancelled         = "cancelled"          // the customer left before an agent took it (Reason customer_left), or its queue went (queue_deleted)
	EventTransferInitiated = "transfer_initiated" // Agent (the holder) started a transfer to ToAgent or ToQueue
	EventTransferred       = "transferred"        // Agent, the target, took it over from FromAgent
	EventTransferDeclined  = "transfer_declined"  // the target declined; FromAgent keeps it (a transfer to a queue looks further)
	EventTransferExpired   = "transfer_expired"   // the target's offer expired, or (Agent empty, Reason max_wait) the target queue's MaxWait ran out
	EventTransferAbandoned = "transfer_abandoned" // the customer left while a transfer was pending
	EventTransferCancelled = "transfer_cancelled" // the transfer was called off: the conversation ended, its holder logged off, its target went offline
	EventRequeued          = "requeued"           // back in its queue (Reason requeue, priority_requeue, logged_off, offline, heartbeat)
	EventEnded             = "ended"              // finished (Reason ended or customer_left); Agent held it
	EventTimedOut          = "timed_out"          // waited longer than its queue's MaxWait
	EventPresence          = "presence"           // the engine changed Agent's presence (Reason offers_expired, heartbeat)
	EventLoggedOff         = "logged_off"         // Agent logged off; Conversations are the ones it held
)

// OutboxEvent is one outbox entry. Conversation events carry the
// conversation's fields and a Seq that grows by one with each event of
// that conversation, so a consumer can derive an idempotency key from
// (Conversation, Seq). Agent is always the agent whose offer or hold the
// event is about (for presence and logged_off, the agent itself).
type OutboxEvent struct {
	ID    string // the stream entry id
	Event string

	Conversation string
	Agent        string
	Queue        string
	Channel      string
	Source       string
	Session      string
	Attributes   map[string]string
	Seq          int64
	At           time.Time

	Reason    string
	FromAgent string
	ToAgent   string
	FromQueue string
	ToQueue   string
	Transfer  bool
	ExpiresAt time.Time

	Presence      string   // presence
	Conversations []string // logged_off
	Policy        string   // logged_off: requeue or keep

	// Data is the entry's JSON as written.
	Data json.RawMessage
}

type outboxData struct {
	Conversation  string            `json:"conversation"`
	Agent         string            `json:"agent"`
	Queue         string            `json:"queue"`
	Channel       string            `json:"channel"`
	Source        string            `json:"source"`
	Session       string            `json:"session"`
	Attributes    map[string]string `json:"attributes"`
	Seq           int64             `json:"seq"`
	At            int64             `json:"at"`
	Reason        string            `json:"reason"`
	FromAgent     string            `json:"from_agent"`
	ToAgent       string            `json:"to_agent"`
	FromQueue     string            `json:"from_queue"`
	ToQueue       string            `json:"to_queue"`
	Transfer      bool              `json:"transfer"`
	ExpiresAt     int64             `json:"expires_at"`
	Presence      string            `json:"presence"`
	Conversations []string          `json:"conversations"`
	Policy        string            `json:"policy"`
}

// ParseOutboxEntry decodes one outbox stream entry.
func ParseOutboxEntry(m redis.XMessage) (OutboxEvent, error) {
	ev := OutboxEvent{ID: m.ID}
	ev.Event, _ = m.Values["e"].(string)
	d, _ := m.Values["d"].(string)
	ev.Data = json.RawMessage(d)
	var x outboxData
	if err := json.Unmarshal([]byte(d), &x); err != nil {
		return ev, fmt.Errorf("routing: outbox entry %s: %w", m.ID, err)
	}
	ev.Conversation, ev.Agent, ev.Queue, ev.Channel = x.Conversation, x.Agent, x.Queue, x.Channel
	ev.Source, ev.Session, ev.Attributes, ev.Seq = x.Source, x.Session, x.Attributes, x.Seq
	ev.Reason, ev.FromAgent, ev.ToAgent, ev.FromQueue, ev.ToQueue = x.Reason, x.FromAgent, x.ToAgent, x.FromQueue, x.ToQueue
	ev.Transfer, ev.Presence, ev.Conversations, ev.Policy = x.Transfer, x.Presence, x.Conversations, x.Policy
	if x.At > 0 {
		ev.At = time.UnixMilli(x.At)
	}
	if x.ExpiresAt > 0 {
		ev.ExpiresAt = time.UnixMilli(x.ExpiresAt)
	}
	return ev, nil
}

// Outbox reads the outbox as one consumer of a consumer group: delivery
// is at least once, so whatever acts on an event must be idempotent.
type Outbox struct {
	rdb      redis.UniversalClient
	key      string
	group    string
	consumer string

	mu      sync.Mutex
	created bool
	cursor  string // where Reclaim goes on
}

// Outbox returns a reader for consumer in group. A group that does not
// exist yet is created on first use, from the start of the stream.
func (e *Engine) Outbox(group, consumer string) (*Outbox, error) {
	if err := checkID("group", group); err != nil {
		return nil, err
	}
	if err := checkID("consumer", consumer); err != nil {
		return nil, err
	}
	return &Outbox{rdb: e.rdb, key: e.OutboxKey(), group: group, consumer: consumer, cursor: "0-0"}, nil
}

func (o *Outbox) ensure(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.created {
		return nil
	}
	err := o.rdb.XGroupCreateMkStream(ctx, o.key, o.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable("outbox: create group", err)
	}
	o.created = true
	return nil
}

// Read returns up to count new events for this consumer, waiting up to
// block for one when there is none (block <= 0: do not wait). Each stays
// pending until Ack.
func (o *Outbox) Read(ctx context.Context, count int64, block time.Duration) ([]OutboxEvent, error) {
	if err := o.ensure(ctx); err != nil {
		return nil, err
	}
	if block <= 0 {
		block = -1 // go-redis: no BLOCK argument
	}
	res, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: o.group, Consumer: o.consumer, Streams: []string{o.key, ">"}, Count: count, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("outbox: read", err)
	}
	var out []OutboxEvent
	for _, s := range res {
		evs, err := parseAll(s.Messages)
		out = append(out, evs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Ack marks events as done for the group.
func (o *Outbox) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := o.rdb.XAck(ctx, o.key, o.group, ids...).Err(); err != nil {
		return unavailable("outbox: ack", err)
	}
	return nil
}

// Reclaim takes over up to count events that another consumer of the
// group read but did not ack for at least minIdle (it died, say), and
// returns them; they are now pending on this consumer. Successive calls
// walk the pending list and start over at its end.
func (o *Outbox) Reclaim(ctx context.Context, minIdle time.Duration, count int64) ([]OutboxEvent, error) {
	if err := o.ensure(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	start := o.cursor
	o.mu.Unlock()
	msgs, next, err := o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: o.key, Group: o.group, Consumer: o.consumer, MinIdle: minIdle, Start: start, Count: count,
	}).Result()
	if err != nil {
		return nil, unavailable("outbox: reclaim", err)
	}
	o.mu.Lock()
	o.cursor = next
	o.mu.Unlock()
	return parseAll(msgs)
}

func parseAll(msgs []redis.XMessage) ([]OutboxEvent, error) {
	out := make([]OutboxEvent, 0, len(msgs))
	for _, m := range msgs {
		ev, err := ParseOutboxEntry(m)
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

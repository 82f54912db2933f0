package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// RoutingFeed turns the routing engine's decisions into work: it reads the
// engine's outbox as one consumer of a group and, for each event,
//
//   - accepted or transferred, for a conversation that names a session:
//     publishes New_Call / New_Chat to the agent's stream and enqueues the
//     session's start (and, for a transfer, the Transfer comment), so the
//     CRM flows run and the record is popped to that agent;
//   - ended: publishes End_Call / End_Chat to the agent and enqueues the
//     session's end (record update, then the close-out);
//   - offered, for a conversation whose Source is "pega": enqueues a
//     pega:assign task that tells Pega which CSR was chosen.
//
// Everything else is acknowledged and left alone. An entry is acked only
// once its work is enqueued; a failure leaves it pending, and Run reclaims
// it (from this or a dead consumer) after ReclaimAfter. Redelivery is
// harmless: every task id is derived from the conversation and the
// event's Seq (the start from the session), and each adapter event
// published is remembered for MarkTTL.
//
// The session is OutboxEvent.Session, else the attribute "session"
// ("chat-73522"), else the attribute "call_id" or "chat_id". The end
// user's details come from the conversation's attributes, named as the
// adapter events name them (end_user_name, end_user_email,
// end_user_phone, end_user_id, custom_user_id, lang, queue_path,
// queue_name, queue_id, menu_path, menu_id, session_type,
// outbound_phone_number, crm_account_id), or by the aliases name, email,
// phone and language. A value that fails the event checks is dropped with
// a warning naming the attribute, never the value; the rest goes through.
type RoutingFeed struct {
	outbox *routing.Outbox
	enq    *Enqueuer
	events AgentEvents
	rdb    redis.UniversalClient
	marks  string
	cfg    RoutingFeedConfig
	log    *slog.Logger

	mu          sync.Mutex
	lastReclaim time.Time
}

// RoutingFeedConfig configures a RoutingFeed.
type RoutingFeedConfig struct {
	// Group is the outbox consumer group. Empty means "jobs".
	Group string
	// Consumer names this process in the group. Empty means the host name
	// and process id.
	Consumer string
	// Batch is how many entries one read takes at most. Zero means 100.
	Batch int64
	// Block is how long Run waits for a new entry per read. Zero means 1s;
	// a stop is noticed within it.
	Block time.Duration
	// ReclaimAfter: an entry read but not acked for this long (its reader
	// died, or its work failed) is taken over and handled again. Zero
	// means 1m.
	ReclaimAfter time.Duration
	// MarkTTL is how long an adapter event published to an agent is
	// remembered, so a redelivered entry does not publish it again. Zero
	// means 24h.
	MarkTTL time.Duration
	// Logger gets the failures. Nil discards.
	Logger *slog.Logger
}

// NewRoutingFeed builds a feed reading engine's outbox. events may be nil:
// then no adapter events are published. store gives the Redis client and
// key prefix for the feed's own notes.
func NewRoutingFeed(engine *routing.Engine, enq *Enqueuer, events AgentEvents, store *Store, cfg RoutingFeedConfig) (*RoutingFeed, error) {
	if engine == nil || enq == nil || store == nil {
		return nil, errors.New("jobs: routing feed: engine, enqueuer and store are required")
	}
	if cfg.Group == "" {
		cfg.Group = "jobs"
	}
	if cfg.Consumer == "" {
		cfg.Consumer = defaultConsumer()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.ReclaimAfter <= 0 {
		cfg.ReclaimAfter = time.Minute
	}
	if cfg.MarkTTL <= 0 {
		cfg.MarkTTL = 24 * time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ob, err := engine.Outbox(cfg.Group, cfg.Consumer)
	if err != nil {
		return nil, fmt.Errorf("jobs: routing feed: %w", err)
	}
	return &RoutingFeed{outbox: ob, enq: enq, events: events, rdb: store.rdb, marks: store.prefix + "routingfeed:", cfg: cfg, log: log}, nil
}

// defaultConsumer is the host name and pid, cut to what routing ids allow.
func defaultConsumer() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return -1
	}, host)
	host = strings.Trim(host, ".-")
	if host == "" {
		host = "crmsync"
	}
	return fmt.Sprintf("%.100s-%d", host, os.Getpid())
}

// Run feeds until ctx ends; then it returns nil. Redis being away is
// logged and waited out, never returned.
func (f *RoutingFeed) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		f.mu.Lock()
		reclaim := time.Since(f.lastReclaim) >= f.cfg.ReclaimAfter/2
		f.mu.Unlock()
		_, err := f.poll(ctx, f.cfg.Block, reclaim)
		if err == nil {
			pause = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			break
		}
		f.log.Warn("routing feed", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(pause*2, 5*time.Second)
	}
	return nil
}

// Poll does one round without waiting: takes over entries left pending
// longer than ReclaimAfter, reads the new ones, handles and acks them. It
// returns how many entries were handled.
func (f *RoutingFeed) Poll(ctx context.Context) (int, error) {
	return f.poll(ctx, 0, true)
}

func (f *RoutingFeed) poll(ctx context.Context, block time.Duration, reclaim bool) (int, error) {
	n := 0
	if reclaim {
		f.mu.Lock()
		f.lastReclaim = time.Now()
		f.mu.Unlock()
		evs, err := f.outbox.Reclaim(ctx, f.cfg.ReclaimAfter, f.cfg.Batch)
		n += f.handleAll(ctx, evs)
		if err != nil {
			return n, err
		}
	}
	evs, err := f.outbox.Read(ctx, f.cfg.Batch, block)
	n += f.handleAll(ctx, evs)
	return n, err
}

// handleAll handles events and acks the ones whose work is enqueued; a
// failed one stays pending, to be reclaimed.
func (f *RoutingFeed) handleAll(ctx context.Context, evs []routing.OutboxEvent) int {
	if len(evs) == 0 {
		return 0
	}
	done := make([]string, 0, len(evs))
	for _, ev := range evs {
		if err := f.handle(ctx, ev); err != nil {
			routingFeedTotal.WithLabelValues(ev.Event, "error").Inc()
			f.log.Warn("routing feed: event left pending", "entry", ev.ID, "event", ev.Event, "conversation", ev.Conversation, "err", err)
			continue
		}
		done = append(done, ev.ID)
	}
	if err := f.outbox.Ack(ctx, done...); err != nil {
		// Not acked means handled again later, which is harmless.
		f.log.Warn("routing feed: ack", "err", err)
	}
	return len(done)
}

// handle turns one outbox event into work.
func (f *RoutingFeed) handle(ctx context.Context, ev routing.OutboxEvent) error {
	switch ev.Event {
	case routing.EventAccepted, routing.EventTransferred, routing.EventEnded:
	case routing.EventOffered:
		if !strings.EqualFold(ev.Source, "pega") {
			routingFeedTotal.WithLabelValues(ev.Event, "ignored").Inc()
			return nil
		}
		if ev.Conversation == "" || ev.Agent == "" {
			return f.skip(ev, errors.New("offer without conversation or agent"))
		}
		dup, err := f.enq.EnqueuePegaAssign(ctx, PegaAssignPayload{
			Conversation: ev.Conversation, Agent: ev.Agent, Seq: ev.Seq, Session: ev.Session, OfferedAt: ev.At,
		})
		if err != nil {
			return err
		}
		routingFeedTotal.WithLabelValues(ev.Event, result(dup)).Inc()
		return nil
	default:
		routingFeedTotal.WithLabelValues(ev.Event, "ignored").Inc()
		return nil
	}
	key, ok := f.sessionOf(ev)
	if !ok || ev.Agent == "" {
		routingFeedTotal.WithLabelValues(ev.Event, "no_session").Inc()
		return nil
	}
	ref := &RoutingRef{Conversation: ev.Conversation, Agent: ev.Agent, Seq: ev.Seq}
	var todo []crmsync.Event
	var adapter crmsync.Event
	switch ev.Event {
	case routing.EventAccepted, routing.EventTransferred:
		start, err := f.buildEvent(ev, key, startType(key), "rt-start")
		if err != nil {
			return f.skip(ev, err)
		}
		adapter = start
		todo = append(todo, start)
		if ev.Event == routing.EventTransferred {
			tr, err := f.buildEvent(ev, key, "Transfer", eventID(ev, "transfer"))
			if err != nil {
				return f.skip(ev, err)
			}
			todo = append(todo, tr)
		}
	case routing.EventEnded:
		end, err := f.buildEvent(ev, key, endType(key), eventID(ev, "end"))
		if err != nil {
			return f.skip(ev, err)
		}
		adapter = end
		todo = append(todo, end)
	}
	// The agent's browser hears of the session before its record pop,
	// which the worker sends once the CRM answered.
	if err := f.publishOnce(ctx, ev, adapter); err != nil {
		return err
	}
	now := f.enq.now()
	dup := true
	for _, x := range todo {
		a, err := f.enq.enqueue(ctx, x, ref, now)
		if err != nil {
			return err
		}
		dup = dup && a.Duplicate
	}
	routingFeedTotal.WithLabelValues(ev.Event, result(dup)).Inc()
	return nil
}

func result(dup bool) string {
	if dup {
		return "duplicate"
	}
	return "enqueued"
}

// skip acks an event that can never become a valid session event:
// holding it pending would only bring it back forever.
func (f *RoutingFeed) skip(ev routing.OutboxEvent, err error) error {
	routingFeedTotal.WithLabelValues(ev.Event, "invalid").Inc()
	f.log.Error("routing feed: event skipped", "entry", ev.ID, "event", ev.Event, "conversation", ev.Conversation, "err", err)
	return nil
}

// sessionOf finds the crmsync session a conversation belongs to.
func (f *RoutingFeed) sessionOf(ev routing.OutboxEvent) (crmsync.SessionKey, bool) {
	for _, s := range []string{ev.Session, ev.Attributes["session"]} {
		if s == "" {
			continue
		}
		if k, err := crmsync.ParseSessionKey(s); err == nil {
			return k, true
		}
		f.log.Warn("routing feed: not a session", "conversation", ev.Conversation, "field", "session")
	}
	for _, kind := range []string{crmsync.KindCall, crmsync.KindChat} {
		if id := ev.Attributes[kind+"_id"]; id != "" {
			if crmsync.ValidateID(id) == nil {
				return crmsync.SessionKey{Kind: kind, ID: id}, true
			}
			f.log.Warn("routing feed: not a session id", "conversation", ev.Conversation, "field", "attributes."+kind+"_id")
		}
	}
	return crmsync.SessionKey{}, false
}

func startType(k crmsync.SessionKey) string {
	if k.Kind == crmsync.KindCall {
		return "New_Call"
	}
	return "New_Chat"
}

func endType(k crmsync.SessionKey) string {
	if k.Kind == crmsync.KindCall {
		return "End_Call"
	}
	return "End_Chat"
}

// eventID names the event made from one outbox event: conversation ids
// may hold characters event ids may not, so the conversation is digested.
func eventID(ev routing.OutboxEvent, what string) string {
	h := sha256.Sum256([]byte(ev.Conversation))
	return "rt-" + hex.EncodeToString(h[:8]) + "-" + strconv.FormatInt(ev.Seq, 10) + "-" + what
}

// attrFields are the attributes that carry end-user details, each under
// its adapter event name, with the aliases accepted for it.
var attrFields = []struct {
	field   string
	aliases []string
}{
	{"end_user_name", []string{"name"}},
	{"end_user_email", []string{"email"}},
	{"end_user_phone", []string{"phone"}},
	{"end_user_id", nil},
	{"custom_user_id", nil},
	{"lang", []string{"language"}},
	{"queue_path", nil},
	{"queue_name", nil},
	{"queue_id", nil},
	{"menu_path", nil},
	{"menu_id", nil},
	{"session_type", nil},
	{"outbound_phone_number", nil},
	{"crm_account_id", nil},
}

// buildEvent makes the session event for an outbox event and checks it
// exactly as an event posted by the adapter is checked.
func (f *RoutingFeed) buildEvent(ev routing.OutboxEvent, key crmsync.SessionKey, typ, id string) (crmsync.Event, error) {
	data := map[string]any{key.Kind + "_id": key.ID}
	for _, a := range attrFields {
		for _, name := range append([]string{a.field}, a.aliases...) {
			if v := ev.Attributes[name]; v != "" {
				data[a.field] = v
				break
			}
		}
	}
	if _, ok := data["queue_id"]; !ok && ev.Queue != "" {
		data["queue_id"] = ev.Queue
	}
	if _, ok := data["session_type"]; !ok {
		data["session_type"] = sessionType(key, ev)
	}
	putAgent(data, "agent", ev.Agent)
	switch typ {
	case "Transfer":
		putAgent(data, "from_agent", ev.FromAgent)
		putAgent(data, "to_agent", ev.Agent)
		// The engine names the queue on both sides even when the transfer
		// was to an agent: only a change of queue is a queue transfer.
		if ev.ToQueue != "" && ev.ToQueue != ev.FromQueue {
			data["from_queue_id"] = ev.FromQueue
			data["to_queue_id"] = ev.ToQueue
		}
	case "End_Call", "End_Chat":
		if ev.Reason == "customer_left" {
			data["disconnected_by"] = "end_user"
		}
	}
	if !ev.At.IsZero() {
		data["occurred_at"] = ev.At.UTC().Format(time.RFC3339)
	}
	// A value the checks refuse is dropped, not the whole event: a bad
	// email in an attribute must not cost the session its CRM record.
	for range len(data) + 1 {
		body, err := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
		if err != nil {
			return crmsync.Event{}, fmt.Errorf("encode %s: %w", typ, err)
		}
		evs, err := crmsync.DecodeEvents(body)
		if err == nil {
			return evs[0], nil
		}
		var ce *crmsync.Error
		if !errors.As(err, &ce) {
			return crmsync.Event{}, err
		}
		field := strings.TrimPrefix(ce.Field, "data.")
		if _, ok := data[field]; !ok || field == key.Kind+"_id" {
			return crmsync.Event{}, err
		}
		f.log.Warn("routing feed: attribute dropped", "conversation", ev.Conversation, "field", field, "reason", ce.Message)
		delete(data, field)
	}
	return crmsync.Event{}, fmt.Errorf("build %s: too many bad fields", typ)
}

// putAgent sets {role}_id, or {role}_email when the routing id is an
// email address (Pega's CSR ids are), which event ids cannot hold.
func putAgent(data map[string]any, role, agent string) {
	switch {
	case agent == "":
	case crmsync.ValidateID(agent) == nil:
		data[role+"_id"] = agent
	case strings.Contains(agent, "@"):
		data[role+"_email"] = agent
	}
}

func sessionType(k crmsync.SessionKey, ev routing.OutboxEvent) string {
	if k.Kind == crmsync.KindCall {
		return "Voice Inbound"
	}
	if ev.Channel != "" && ev.Channel != "chat" {
		return "Messaging Inbound (" + ev.Channel + ")"
	}
	return "Messaging Inbound (Web Chat)"
}

// adapterData is what the adapter event carries on the agent's stream:
// the fields the adapter's own event of that type has, ids as numbers
// when they are numbers, and the agent as the routing engine names it.
func adapterData(ev crmsync.Event, agent string) map[string]any {
	d := ev.Data
	m := map[string]any{"agent_id": jsonID(agent), "session_type": d.SessionType}
	if ev.Session.Kind == crmsync.KindCall {
		m["call_id"] = jsonID(d.CallID)
	} else {
		m["chat_id"] = jsonID(d.ChatID)
	}
	for k, v := range map[string]string{"agent_email": d.AgentEmail, "agent_custom_id": d.AgentCustomID, "queue_path": d.QueuePath} {
		if v != "" {
			m[k] = v
		}
	}
	if d.QueueID != "" {
		m["queue_id"] = jsonID(d.QueueID)
	}
	return m
}

func jsonID(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && strconv.FormatInt(n, 10) == s {
		return n
	}
	return s
}

// publishOnce publishes ev's adapter event to the agent unless an earlier
// delivery of the same outbox entry did. The note is written after the
// publish, so a crash in between publishes twice rather than never.
func (f *RoutingFeed) publishOnce(ctx context.Context, oe routing.OutboxEvent, ev crmsync.Event) error {
	if f.events == nil {
		return nil
	}
	mark := f.marks + oe.Conversation + ":" + strconv.FormatInt(oe.Seq, 10) + ":" + ev.Type
	n, err := f.rdb.Exists(ctx, mark).Result()
	if err != nil {
		return fmt.Errorf("routing feed: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := f.events.Publish(ctx, oe.Agent, ev.Type, adapterData(ev, oe.Agent)); err != nil {
		return fmt.Errorf("routing feed: publish %s to %s: %w", ev.Type, oe.Agent, err)
	}
	if err := f.rdb.Set(ctx, mark, "1", f.cfg.MarkTTL).Err(); err != nil {
		return fmt.Errorf("routing feed: %w", err)
	}
	return nil
}

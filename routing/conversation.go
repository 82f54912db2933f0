package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// State is where a conversation stands.
type State string

const (
	StateWaiting   State = "waiting"   // in a queue (or waiting for its preferred agent)
	StateOffered   State = "offered"   // offered to one agent, capacity reserved
	StateAssigned  State = "assigned"  // held by an agent (a transfer may be pending)
	StateEnded     State = "ended"     // finished
	StateCancelled State = "cancelled" // the customer left before an agent took it
	StateTimedOut  State = "timed_out" // waited longer than its queue's MaxWait
)

// Terminal reports whether nothing more happens to a conversation in s.
func (s State) Terminal() bool {
	return s == StateEnded || s == StateCancelled || s == StateTimedOut
}

// NewConversation is a conversation to route.
type NewConversation struct {
	ID      string
	Queue   string
	Channel string // one the queue serves
	// Priority puts it ahead of the queue's normal conversations.
	Priority bool
	// PreferredAgent gets it first when eligible; see Queue.PreferredWait.
	PreferredAgent string
	// Attributes are carried through to every outbox event.
	Attributes map[string]string
	// Session is the crmsync session (call-123, chat-456), when known.
	Session string
	// Source says who routed it ("pega", "api", "salesforce"...).
	Source string
}

// Conversation is a conversation as read.
type Conversation struct {
	ID             string
	Queue          string // its queue (the target's, once a transfer to a queue is accepted)
	Channel        string
	Priority       bool
	PreferredAgent string
	Attributes     map[string]string
	Session        string
	Source         string

	State State
	// Agent holds it (assigned), or held it last (ended).
	Agent string
	// OfferedTo is the agent of the open offer (a transfer's target
	// while one is pending), until OfferExpires.
	OfferedTo    string
	OfferExpires time.Time
	// Transfer is the pending transfer of a held conversation.
	Transfer *Transfer

	CreatedAt  time.Time
	EnqueuedAt time.Time // when it last joined a queue
	EndedAt    time.Time

	// Position in its waiting line, from 1, while waiting (or waiting
	// in a transfer's target queue); 0 otherwise.
	Position int
	// WaitEstimate is the expected wait, when HasWaitEstimate (see the
	// package comment for how it is computed).
	WaitEstimate    time.Duration
	HasWaitEstimate bool
	// Seq is the sequence number of its latest outbox event.
	Seq int64
}

// Transfer is a pending transfer: to an agent, or to a queue.
type Transfer struct {
	ToAgent string
	ToQueue string
}

// fragment is the part of every outbox event that never changes: written
// once, as JSON, and pasted by the scripts.
type fragment struct {
	Session    string            `json:"session"`
	Source     string            `json:"source"`
	Attributes map[string]string `json:"attributes"`
}

func (n *NewConversation) check() error {
	if err := checkID("id", n.ID); err != nil {
		return err
	}
	if err := checkID("queue", n.Queue); err != nil {
		return err
	}
	if err := checkID("channel", n.Channel); err != nil {
		return err
	}
	if n.PreferredAgent != "" {
		if err := checkID("preferred_agent", n.PreferredAgent); err != nil {
			return err
		}
	}
	if n.Session != "" {
		if _, err := crmsync.ParseSessionKey(n.Session); err != nil {
			return err
		}
	}
	if err := checkText("source", n.Source, maxSourceLen); err != nil {
		return err
	}
	if len(n.Attributes) > maxAttributes {
		return crmsync.Errorf(crmsync.EINVALID, "attributes", "has %d entries, more than %d", len(n.Attributes), maxAttributes)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Attributes)) {
		if k == "" {
			return crmsync.Errorf(crmsync.EINVALID, "attributes", "a key is empty")
		}
		if err := checkText("attributes", k, maxAttrKeyLen); err != nil {
			return crmsync.Errorf(crmsync.EINVALID, "attributes", "key %q: %s", truncate(k, 40), err.(*crmsync.Error).Message)
		}
		if err := checkText("attributes."+k, n.Attributes[k], maxAttrValueLen); err != nil {
			return err
		}
	}
	return nil
}

// CreateConversation routes a new conversation: offered at once when an
// agent is free, otherwise waiting with its position and estimate. The
// queue must exist (ENOTFOUND, field queue) and serve the channel
// (EINVALID, field channel). An id still routed is ECONFLICT; the id of
// a finished conversation starts it again (a long-running chat the
// customer came back to), its sequence numbers going on.
func (e *Engine) CreateConversation(ctx context.Context, n NewConversation) (*Conversation, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	attrs := n.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	j, err := json.Marshal(fragment{Session: n.Session, Source: n.Source, Attributes: attrs})
	if err != nil {
		return nil, fmt.Errorf("routing: create conversation: %w", err)
	}
	prio := "0"
	if n.Priority {
		prio = "1"
	}
	now := e.cfg.Now()
	r, err := e.run(ctx, "create", n.ID, n.Queue, n.Channel, prio, n.PreferredAgent, string(j[1:len(j)-1]))
	if err != nil {
		return nil, err
	}
	c := &Conversation{
		ID: n.ID, Queue: n.Queue, Channel: n.Channel, Priority: n.Priority, PreferredAgent: n.PreferredAgent,
		Attributes: maps.Clone(attrs), Session: n.Session, Source: n.Source,
		State: State(str(r.values[0])), OfferedTo: str(r.values[1]), Position: int(num(r.values[2])),
		CreatedAt: time.UnixMilli(now.UnixMilli()), EnqueuedAt: time.UnixMilli(now.UnixMilli()),
	}
	if est := num(r.values[3]); est >= 0 {
		c.WaitEstimate, c.HasWaitEstimate = time.Duration(est)*time.Millisecond, true
	}
	if c.OfferedTo != "" {
		c.OfferExpires = time.UnixMilli(num(r.values[4]))
	}
	return c, nil
}

// GetConversation reads a conversation, with its position and wait
// estimate while it waits; ENOTFOUND when there is none (a finished one
// is forgotten after Config.EndedTTL).
func (e *Engine) GetConversation(ctx context.Context, id string) (*Conversation, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	p := e.cfg.Prefix
	h, err := e.rdb.HGetAll(ctx, p+"c:"+id).Result()
	if err != nil {
		return nil, unavailable("read conversation", err)
	}
	if len(h) == 0 {
		return nil, crmsync.Errorf(crmsync.ENOTFOUND, "id", "conversation %s does not exist", id)
	}
	c := &Conversation{
		ID: id, Queue: h["q"], Channel: h["ch"], Priority: h["prio"] == "1", PreferredAgent: h["pref"],
		State: State(h["state"]), Agent: h["agent"], OfferedTo: h["oto"], Seq: num(h["seq"]),
		CreatedAt: msTime(h["created"]), EnqueuedAt: msTime(h["enq"]), EndedAt: msTime(h["ended"]),
	}
	var f fragment
	j := h["j"] // a record written before the fragment was cut in pieces
	if j == "" {
		j = joinFragment(h)
	}
	if err := json.Unmarshal([]byte("{"+j+"}"), &f); err == nil {
		c.Session, c.Source, c.Attributes = f.Session, f.Source, f.Attributes
	}
	if c.OfferedTo != "" {
		c.OfferExpires = msTime(h["oexp"])
	}
	wq := c.Queue
	switch h["xfer"] {
	case "agent":
		c.Transfer = &Transfer{ToAgent: h["xto"]}
	case "queue":
		c.Transfer = &Transfer{ToQueue: h["xto"]}
		wq = h["xto"]
		c.EnqueuedAt = msTime(h["xenq"])
	}
	if w := h["where"]; w != "" {
		key := p + "q:" + wq + ":wait:" + c.Channel
		if w == "p" {
			key = p + "a:" + c.PreferredAgent + ":pref:" + c.Channel
		}
		pipe := e.rdb.Pipeline()
		rank := pipe.ZRank(ctx, key, id)
		st := pipe.HMGet(ctx, p+"q:"+wq, "ia:"+c.Channel, "wt:"+c.Channel)
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, unavailable("read conversation", err)
		}
		if rank.Err() == nil {
			c.Position = int(rank.Val()) + 1
			ia, wt := str(st.Val()[0]), str(st.Val()[1])
			switch {
			case ia != "":
				c.WaitEstimate, c.HasWaitEstimate = time.Duration(int64(c.Position)*num(ia))*time.Millisecond, true
			case wt != "":
				c.WaitEstimate, c.HasWaitEstimate = ms(wt), true
			}
		}
	}
	return c, nil
}

func msTime(s string) time.Time {
	n := num(s)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// Accept: the agent takes the conversation offered to it (a transfer's
// target takes it over, and the old holder's capacity is freed).
// ECONFLICT when it is not offered to that agent; a repeat by the agent
// that holds it is taken as done.
func (e *Engine) Accept(ctx context.Context, conv, agent string) error {
	return e.convAgent(ctx, "accept", conv, agent)
}

// Decline: the agent refuses the offer. The conversation goes back to its
// place in the queue (a transfer to an agent stays with its holder) and is
// not offered to that agent again for Config.DeclineCooldown.
func (e *Engine) Decline(ctx context.Context, conv, agent string) error {
	return e.convAgent(ctx, "decline", conv, agent)
}

// Expire ends the offer as expired, as its timer would: for a vendor that
// times offers itself (Pega's Expired). It counts towards
// Config.ExpiredInRow.
func (e *Engine) Expire(ctx context.Context, conv, agent string) error {
	return e.convAgent(ctx, "expire", conv, agent)
}

func (e *Engine) convAgent(ctx context.Context, op, conv, agent string) error {
	if err := checkID("id", conv); err != nil {
		return err
	}
	if err := checkID("agent", agent); err != nil {
		return err
	}
	_, err := e.run(ctx, op, conv, agent)
	return err
}

// Cancel: the customer left. A waiting or offered conversation is
// cancelled; a held one ends (reason customer_left), abandoning a pending
// transfer. A repeat is taken as done.
func (e *Engine) Cancel(ctx context.Context, conv string) error {
	return e.finish(ctx, conv, "cancelled")
}

// End finishes the conversation in whatever state, freeing the capacity
// it took. A repeat is taken as done.
func (e *Engine) End(ctx context.Context, conv string) error {
	return e.finish(ctx, conv, "ended")
}

func (e *Engine) finish(ctx context.Context, conv, how string) error {
	if err := checkID("id", conv); err != nil {
		return err
	}
	_, err := e.run(ctx, "finish", conv, how)
	return err
}

// TransferToAgent offers the conversation held by from to agent to, who
// must be available with free capacity on the channel (ECONFLICT). from
// keeps it until to accepts; a decline or expiry leaves it with from.
func (e *Engine) TransferToAgent(ctx context.Context, conv, from, to string) error {
	if err := checkID("to_agent", to); err != nil {
		return err
	}
	return e.transfer(ctx, conv, from, "agent", to)
}

// TransferToQueue puts the conversation held by from in queue's line,
// matched among that queue's agents other than from. from keeps it until
// one accepts; the queue's MaxWait, when set, ends the attempt
// (transfer_expired).
func (e *Engine) TransferToQueue(ctx context.Context, conv, from, queue string) error {
	if err := checkID("to_queue", queue); err != nil {
		return err
	}
	return e.transfer(ctx, conv, from, "queue", queue)
}

func (e *Engine) transfer(ctx context.Context, conv, from, kind, to string) error {
	if err := checkID("id", conv); err != nil {
		return err
	}
	if err := checkID("agent", from); err != nil {
		return err
	}
	_, err := e.run(ctx, "transfer", conv, from, kind, to)
	return err
}

// Requeue puts an offered or held conversation back at the end of its
// queue's line (its band kept); an agent that held it is in its cooldown.
// A waiting one is left as it is.
func (e *Engine) Requeue(ctx context.Context, conv string) error {
	return e.requeue(ctx, conv, "0")
}

// PriorityRequeue puts the conversation at the head of its queue's line;
// a waiting one moves there.
func (e *Engine) PriorityRequeue(ctx context.Context, conv string) error {
	return e.requeue(ctx, conv, "1")
}

func (e *Engine) requeue(ctx context.Context, conv, head string) error {
	if err := checkID("id", conv); err != nil {
		return err
	}
	_, err := e.run(ctx, "requeue", conv, head)
	return err
}

// joinFragment puts together the JSON fragment that the engine keeps in
// the record in pieces j1..jN (see R.setj in engine.lua).
func joinFragment(h map[string]string) string {
	n, _ := strconv.Atoi(h["jn"])
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(h["j"+strconv.Itoa(i)])
	}
	return b.String()
}

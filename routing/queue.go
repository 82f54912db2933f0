package routing

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// Queue is a routing queue: its settings, and (when read) how many
// conversations wait and how many agents joined.
type Queue struct {
	ID   string
	Name string
	// Priority orders queues for an agent in several: higher first.
	Priority int
	// OfferTimeout is how long an offer from this queue stays open. Zero:
	// Config.OfferTimeout.
	OfferTimeout time.Duration
	// MaxWait ends a conversation's wait (state timed_out, outbox event
	// timed_out; a transfer to this queue expires instead). Zero: no limit.
	MaxWait time.Duration
	// PreferredWait is how long a conversation waits for its preferred
	// agent alone, when that agent is in the queue and not offline but
	// cannot take it now. Zero: it goes to anyone at once.
	PreferredWait time.Duration
	// Channels are the media channels the queue serves (voice, chat...).
	Channels []string

	// Read-only, filled by GetQueue and ListQueues.
	Waiting map[string]int // waiting conversations per channel
	Agents  int            // agents that joined
}

func (q *Queue) check() error {
	if err := checkID("id", q.ID); err != nil {
		return err
	}
	if err := checkText("name", q.Name, maxNameLen); err != nil {
		return err
	}
	if q.Priority < -1_000_000 || q.Priority > 1_000_000 {
		return crmsync.Errorf(crmsync.EINVALID, "priority", "%d is outside -1000000..1000000", q.Priority)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"offer_timeout", q.OfferTimeout}, {"max_wait", q.MaxWait}, {"preferred_wait", q.PreferredWait}} {
		if d.v < 0 {
			return crmsync.Errorf(crmsync.EINVALID, d.field, "must not be negative, got %v", d.v)
		}
		if d.v > 0 && d.v < time.Millisecond {
			return crmsync.Errorf(crmsync.EINVALID, d.field, "%v is shorter than a millisecond", d.v)
		}
		if d.v > 7*24*time.Hour {
			return crmsync.Errorf(crmsync.EINVALID, d.field, "%v is longer than a week", d.v)
		}
	}
	if len(q.Channels) == 0 {
		return crmsync.Errorf(crmsync.EINVALID, "channels", "must name at least one channel")
	}
	if len(q.Channels) > maxChannels {
		return crmsync.Errorf(crmsync.EINVALID, "channels", "names %d channels, more than %d", len(q.Channels), maxChannels)
	}
	seen := map[string]bool{}
	for i, ch := range q.Channels {
		f := "channels[" + strconv.Itoa(i) + "]"
		if err := checkID(f, ch); err != nil {
			return err
		}
		if seen[ch] {
			return crmsync.Errorf(crmsync.EINVALID, f, "channel %s is named twice", ch)
		}
		seen[ch] = true
	}
	return nil
}

// CreateQueue adds a queue; ECONFLICT when one with its id exists.
func (e *Engine) CreateQueue(ctx context.Context, q Queue) error {
	return e.putQueue(ctx, q, "create")
}

// UpdateQueue changes a queue's settings; ENOTFOUND when there is none.
// A channel may be dropped only while no conversation waits on it
// (ECONFLICT otherwise).
func (e *Engine) UpdateQueue(ctx context.Context, q Queue) error {
	return e.putQueue(ctx, q, "update")
}

// PutQueue creates the queue or updates its settings: what loading the
// queues of the config file does.
func (e *Engine) PutQueue(ctx context.Context, q Queue) error {
	return e.putQueue(ctx, q, "put")
}

func (e *Engine) putQueue(ctx context.Context, q Queue, mode string) error {
	if err := q.check(); err != nil {
		return err
	}
	_, err := e.run(ctx, "put_queue", q.ID, mode, q.Name, q.Priority, q.OfferTimeout.Milliseconds(),
		q.MaxWait.Milliseconds(), q.PreferredWait.Milliseconds(), strings.Join(q.Channels, ","))
	return err
}

// DeleteQueue removes a queue and takes its agents out of it; ECONFLICT
// while conversations wait in it. Conversations offered from it or held
// when it goes are not touched; one whose offer ends afterwards is
// cancelled (reason queue_deleted), since it has no queue to go back to.
func (e *Engine) DeleteQueue(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	_, err := e.run(ctx, "delete_queue", id)
	return err
}

// GetQueue reads a queue; ENOTFOUND when there is none.
func (e *Engine) GetQueue(ctx context.Context, id string) (*Queue, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	qs, err := e.readQueues(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, crmsync.Errorf(crmsync.ENOTFOUND, "id", "queue %s does not exist", id)
	}
	return &qs[0], nil
}

// ListQueues reads every queue, ordered by id.
func (e *Engine) ListQueues(ctx context.Context) ([]Queue, error) {
	ids, err := e.rdb.SMembers(ctx, e.cfg.Prefix+"queues").Result()
	if err != nil {
		return nil, unavailable("list queues", err)
	}
	slices.Sort(ids)
	return e.readQueues(ctx, ids)
}

func (e *Engine) readQueues(ctx context.Context, ids []string) ([]Queue, error) {
	p := e.cfg.Prefix
	pipe := e.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(ids))
	ns := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HGetAll(ctx, p+"q:"+id)
		ns[i] = pipe.SCard(ctx, p+"q:"+id+":agents")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("read queues", err)
	}
	out := make([]Queue, 0, len(ids))
	for i, id := range ids {
		h := hs[i].Val()
		if len(h) == 0 {
			continue // deleted meanwhile
		}
		q := Queue{
			ID:            id,
			Name:          h["name"],
			Priority:      int(num(h["prio"])),
			OfferTimeout:  ms(h["offer"]),
			MaxWait:       ms(h["maxwait"]),
			PreferredWait: ms(h["pref"]),
			Agents:        int(ns[i].Val()),
			Waiting:       map[string]int{},
		}
		if h["chans"] != "" {
			q.Channels = strings.Split(h["chans"], ",")
		}
		out = append(out, q)
	}
	pipe = e.rdb.Pipeline()
	ws := map[*Queue]map[string]*redis.IntCmd{}
	for i := range out {
		q := &out[i]
		ws[q] = map[string]*redis.IntCmd{}
		for _, ch := range q.Channels {
			ws[q][ch] = pipe.ZCard(ctx, p+"q:"+q.ID+":wait:"+ch)
		}
	}
	if len(out) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, unavailable("read queues", err)
		}
	}
	for q, m := range ws {
		for ch, c := range m {
			q.Waiting[ch] = int(c.Val())
		}
	}
	return out, nil
}

func ms(s string) time.Duration { return time.Duration(num(s)) * time.Millisecond }

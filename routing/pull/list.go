package pull

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// List is where requests of some channels are parked for agents to pull.
type List struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Channels publish their new conversations to this List. A channel
	// publishes to one List at most.
	Channels []string `json:"channels"`

	// Read-only, filled by GetList and ListLists.
	Seq         int64     `json:"seq"`         // the List's change counter
	Open        int       `json:"open"`        // requests not CLOSED
	Subscribers int       `json:"subscribers"` // agents subscribed
	CreatedAt   time.Time `json:"created_at"`
}

func (l *List) check() error {
	if err := checkID("id", l.ID); err != nil {
		return err
	}
	if err := checkText("name", l.Name, maxNameLen); err != nil {
		return err
	}
	if len(l.Channels) > maxChannels {
		return crmsync.Errorf(crmsync.EINVALID, "channels", "names %d channels, more than %d", len(l.Channels), maxChannels)
	}
	seen := map[string]bool{}
	for i, ch := range l.Channels {
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

// PutList creates the List or replaces its name and channels. A channel
// that already publishes to another List is ECONFLICT (field
// channels[i]); channels dropped from the List stop publishing anywhere.
func (s *Store) PutList(ctx context.Context, l List) error {
	_, err := s.putList(ctx, l)
	return err
}

// putList is PutList that also tells whether the List is new.
func (s *Store) putList(ctx context.Context, l List) (created bool, err error) {
	if err := l.check(); err != nil {
		return false, err
	}
	v, err := s.run(ctx, "put_list", l.ID, l.Name, strings.Join(l.Channels, ","))
	if err != nil {
		return false, err
	}
	return num(v[0]) == 1, nil
}

// GetList reads a List; ENOTFOUND (field id) when there is none.
func (s *Store) GetList(ctx context.Context, id string) (*List, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	ls, err := s.readLists(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, crmsync.Errorf(crmsync.ENOTFOUND, "id", "list %s does not exist", id)
	}
	return &ls[0], nil
}

// ListLists returns every List, by id.
func (s *Store) ListLists(ctx context.Context) ([]List, error) {
	ids, err := s.rdb.SMembers(ctx, s.cfg.Prefix+"lists").Result()
	if err != nil {
		return nil, unavailable("list lists", err)
	}
	slices.Sort(ids)
	return s.readLists(ctx, ids)
}

// readLists reads the Lists named, in one transaction so each List's
// counters agree with each other; Lists that vanished are left out.
func (s *Store) readLists(ctx context.Context, ids []string) ([]List, error) {
	if len(ids) == 0 {
		return []List{}, nil
	}
	type reads struct {
		h    *redis.MapStringStringCmd
		open *redis.IntCmd
		subs *redis.IntCmd
	}
	rs := make([]reads, len(ids))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			k := s.listKey(id)
			rs[i] = reads{h: p.HGetAll(ctx, k), open: p.ZCard(ctx, k+":open"), subs: p.SCard(ctx, k+":subs")}
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("read lists", err)
	}
	out := make([]List, 0, len(ids))
	for i, id := range ids {
		h := rs[i].h.Val()
		if len(h) == 0 {
			continue
		}
		l := List{ID: id, Name: h["name"], Channels: split(h["chans"]), Seq: num(h["seq"]),
			Open: int(rs[i].open.Val()), Subscribers: int(rs[i].subs.Val()), CreatedAt: msTime(h["created"])}
		out = append(out, l)
	}
	return out, nil
}

// DeleteList removes a List, its channel mappings, its subscriptions and
// its change log. ECONFLICT while it has open requests; ENOTFOUND when
// there is none.
func (s *Store) DeleteList(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	_, err := s.run(ctx, "delete_list", id)
	return err
}

// Subscribe makes agent a subscriber of lists: from now on it is told of
// every new request on them and of each change of state. Subscribing
// again changes nothing. Every List must exist (ENOTFOUND, field
// lists[i]); otherwise none is subscribed.
func (s *Store) Subscribe(ctx context.Context, agent string, lists ...string) error {
	if err := checkSubscription(agent, lists); err != nil {
		return err
	}
	_, err := s.run(ctx, "subscribe", agent, strings.Join(lists, ","))
	return err
}

// Unsubscribe ends agent's subscriptions to lists. A List it does not
// subscribe to, or that does not exist, is passed over.
func (s *Store) Unsubscribe(ctx context.Context, agent string, lists ...string) error {
	if err := checkSubscription(agent, lists); err != nil {
		return err
	}
	_, err := s.run(ctx, "unsubscribe", agent, strings.Join(lists, ","))
	return err
}

func checkSubscription(agent string, lists []string) error {
	if err := checkID("agent", agent); err != nil {
		return err
	}
	if len(lists) == 0 {
		return crmsync.Errorf(crmsync.EINVALID, "lists", "must name at least one list")
	}
	if len(lists) > maxListsAtOnce {
		return crmsync.Errorf(crmsync.EINVALID, "lists", "names %d lists, more than %d", len(lists), maxListsAtOnce)
	}
	for i, l := range lists {
		if err := checkID("lists["+strconv.Itoa(i)+"]", l); err != nil {
			return err
		}
	}
	return nil
}

// Subscriptions returns the Lists agent subscribes to, by id.
func (s *Store) Subscriptions(ctx context.Context, agent string) ([]string, error) {
	if err := checkID("agent", agent); err != nil {
		return nil, err
	}
	l, err := s.rdb.SMembers(ctx, s.cfg.Prefix+"a:"+agent+":lists").Result()
	if err != nil {
		return nil, unavailable("subscriptions", err)
	}
	slices.Sort(l)
	return l, nil
}

// subscribed reports whether agent subscribes to list.
func (s *Store) subscribed(ctx context.Context, agent, list string) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, s.listKey(list)+":subs", agent).Result()
	if err != nil {
		return false, unavailable("subscribed", err)
	}
	return ok, nil
}

// subscribers returns the agents subscribed to list.
func (s *Store) subscribers(ctx context.Context, list string) ([]string, error) {
	l, err := s.rdb.SMembers(ctx, s.listKey(list)+":subs").Result()
	if err != nil {
		return nil, unavailable("subscribers", err)
	}
	return l, nil
}

func (s *Store) listKey(id string) string { return s.cfg.Prefix + "l:" + id }

func split(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

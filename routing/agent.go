package routing

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// Presence is an agent's availability.
type Presence string

const (
	Available Presence = "available" // takes offers
	Away      Presence = "away"      // logged in, takes no new offers; open offers stay
	Offline   Presence = "offline"   // gone: open offers go back to their queues
)

func (p Presence) valid() bool { return p == Available || p == Away || p == Offline }

// AgentSpec creates an agent or changes one.
type AgentSpec struct {
	ID string
	// Capacity per channel: how many conversations of that channel the
	// agent handles at once (offers included). It replaces the agent's
	// capacities: a channel left out drops to 0. A capacity may not fall
	// below what the agent holds on that channel now (ECONFLICT).
	Capacity map[string]int
	// Queues, when not nil, become exactly the agent's queues.
	Queues []string
	// Presence, when set, becomes the agent's presence. A new agent
	// starts offline.
	Presence Presence
}

// Agent is an agent as read.
type Agent struct {
	ID       string
	Presence Presence
	Queues   []string       // sorted
	Capacity map[string]int // per channel
	// Load counts per channel the conversations the agent holds or is
	// offered.
	Load          map[string]int
	LastHeartbeat time.Time // zero before the first
	ExpiredInRow  int
	// Offers are the agent's open offers, transfers included, oldest
	// first.
	Offers []Offer
	// Conversations are the ones it holds, sorted.
	Conversations []string
}

// Offer is an open offer.
type Offer struct {
	Conversation string
	Queue        string
	Channel      string
	ExpiresAt    time.Time
	Transfer     bool   // a transfer from FromAgent
	FromAgent    string // the holder, for a transfer
}

func checkCapacity(field string, m map[string]int) error {
	if len(m) > maxChannels {
		return crmsync.Errorf(crmsync.EINVALID, field, "names %d channels, more than %d", len(m), maxChannels)
	}
	for _, ch := range slices.Sorted(maps.Keys(m)) {
		if err := checkID(field+"."+ch, ch); err != nil {
			return crmsync.Errorf(crmsync.EINVALID, field, "channel %q: %v", ch, err.(*crmsync.Error).Message)
		}
		if n := m[ch]; n < 0 || n > maxCapacity {
			return crmsync.Errorf(crmsync.EINVALID, field+"."+ch, "%d is outside 0..%d", n, maxCapacity)
		}
	}
	return nil
}

func checkQueueList(field string, qs []string) error {
	if len(qs) > maxQueuesOfAgent {
		return crmsync.Errorf(crmsync.EINVALID, field, "names %d queues, more than %d", len(qs), maxQueuesOfAgent)
	}
	for i, q := range qs {
		if err := checkID(field+"["+strconv.Itoa(i)+"]", q); err != nil {
			return err
		}
	}
	return nil
}

func capArgs(m map[string]int) []any {
	args := []any{len(m)}
	for _, ch := range slices.Sorted(maps.Keys(m)) {
		args = append(args, ch, m[ch])
	}
	return args
}

// PutAgent creates an agent or replaces its capacities (and its queues
// and presence when given). Queues must exist (ENOTFOUND naming
// queues[i]).
func (e *Engine) PutAgent(ctx context.Context, s AgentSpec) error {
	if err := checkID("id", s.ID); err != nil {
		return err
	}
	if err := checkCapacity("capacity", s.Capacity); err != nil {
		return err
	}
	if s.Presence != "" && !s.Presence.valid() {
		return crmsync.Errorf(crmsync.EINVALID, "presence", "want available, away or offline, got %q", truncate(string(s.Presence), 40))
	}
	if err := checkQueueList("queues", s.Queues); err != nil {
		return err
	}
	args := []any{s.ID, string(s.Presence)}
	args = append(args, capArgs(s.Capacity)...)
	if s.Queues == nil {
		args = append(args, -1)
	} else {
		args = append(args, len(s.Queues))
		for _, q := range s.Queues {
			args = append(args, q)
		}
	}
	args = append(args, "full")
	_, err := e.run(ctx, "put_agent", args...)
	return err
}

// SetCapacity changes the agent's capacity on the channels named, leaving
// the others as they are; ENOTFOUND for an unknown agent.
func (e *Engine) SetCapacity(ctx context.Context, id string, capacity map[string]int) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if len(capacity) == 0 {
		return crmsync.Errorf(crmsync.EINVALID, "capacity", "must name at least one channel")
	}
	if err := checkCapacity("capacity", capacity); err != nil {
		return err
	}
	args := []any{id, ""}
	args = append(args, capArgs(capacity)...)
	args = append(args, -1, "partial")
	_, err := e.run(ctx, "put_agent", args...)
	return err
}

// SetPresence changes the agent's presence. Available makes it take
// offers at once; away keeps its open offers; offline sends them back to
// their queues (the conversations it holds stay; LogOff is the way out
// with them).
func (e *Engine) SetPresence(ctx context.Context, id string, p Presence) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if !p.valid() {
		return crmsync.Errorf(crmsync.EINVALID, "presence", "want available, away or offline, got %q", truncate(string(p), 40))
	}
	_, err := e.run(ctx, "presence", id, string(p))
	return err
}

// Heartbeat records that the agent's client is alive. Once an agent sent
// one, missing them for Config.HeartbeatGrace sets it offline (outbox
// event presence, reason heartbeat).
func (e *Engine) Heartbeat(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	_, err := e.run(ctx, "heartbeat", id)
	return err
}

// SetQueues makes the agent's queues exactly qs (Pega's QueuesJoined).
func (e *Engine) SetQueues(ctx context.Context, id string, qs []string) error {
	return e.queues(ctx, id, "set", qs)
}

// JoinQueues adds queues to the agent's.
func (e *Engine) JoinQueues(ctx context.Context, id string, qs ...string) error {
	return e.queues(ctx, id, "join", qs)
}

// LeaveQueues takes the agent out of queues; its open offers from them
// stay open.
func (e *Engine) LeaveQueues(ctx context.Context, id string, qs ...string) error {
	return e.queues(ctx, id, "leave", qs)
}

func (e *Engine) queues(ctx context.Context, id, mode string, qs []string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if err := checkQueueList("queues", qs); err != nil {
		return err
	}
	args := []any{id, mode}
	for _, q := range qs {
		args = append(args, q)
	}
	_, err := e.run(ctx, "queues", args...)
	return err
}

// LogOff sets the agent offline, sends its open offers back to their
// queues and, as Config.LogOff says, requeues the conversations it holds
// (at the head) or leaves them with it. The outbox gets logged_off with
// the conversations it held.
func (e *Engine) LogOff(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	_, err := e.run(ctx, "logoff", id)
	return err
}

// GetAgent reads an agent with its offers and conversations; ENOTFOUND
// when there is none.
func (e *Engine) GetAgent(ctx context.Context, id string) (*Agent, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	p := e.cfg.Prefix
	pipe := e.rdb.Pipeline()
	h := pipe.HGetAll(ctx, p+"a:"+id)
	qs := pipe.SMembers(ctx, p+"a:"+id+":queues")
	cs := pipe.SMembers(ctx, p+"a:"+id+":convs")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("read agent", err)
	}
	if len(h.Val()) == 0 {
		return nil, crmsync.Errorf(crmsync.ENOTFOUND, "id", "agent %s does not exist", id)
	}
	a := &Agent{
		ID:           id,
		Presence:     Presence(h.Val()["presence"]),
		Queues:       qs.Val(),
		Capacity:     map[string]int{},
		Load:         map[string]int{},
		ExpiredInRow: int(num(h.Val()["xrow"])),
	}
	slices.Sort(a.Queues)
	if hb := num(h.Val()["hb"]); hb > 0 {
		a.LastHeartbeat = time.UnixMilli(hb)
	}
	for f, v := range h.Val() {
		if ch, ok := strings.CutPrefix(f, "cap:"); ok {
			a.Capacity[ch] = int(num(v))
			a.Load[ch] = int(num(h.Val()["load:"+ch]))
		}
	}
	convs := cs.Val()
	if len(convs) > 0 {
		pipe = e.rdb.Pipeline()
		rs := make([]*redis.SliceCmd, len(convs))
		for i, c := range convs {
			rs[i] = pipe.HMGet(ctx, p+"c:"+c, "state", "q", "ch", "oto", "oexp", "agent", "xfer", "xto")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, unavailable("read agent", err)
		}
		for i, c := range convs {
			v := rs[i].Val()
			st, q, ch, oto, oexp, holder, xfer, xto := str(v[0]), str(v[1]), str(v[2]), str(v[3]), str(v[4]), str(v[5]), str(v[6]), str(v[7])
			switch {
			case oto == id:
				o := Offer{Conversation: c, Queue: q, Channel: ch, ExpiresAt: time.UnixMilli(num(oexp))}
				if st == string(StateAssigned) {
					o.Transfer, o.FromAgent = true, holder
					if xfer == "queue" {
						o.Queue = xto
					}
				}
				a.Offers = append(a.Offers, o)
			case holder == id && st == string(StateAssigned):
				a.Conversations = append(a.Conversations, c)
			}
		}
		slices.SortFunc(a.Offers, func(x, y Offer) int {
			if c := x.ExpiresAt.Compare(y.ExpiresAt); c != 0 {
				return c
			}
			return strings.Compare(x.Conversation, y.Conversation)
		})
		slices.Sort(a.Conversations)
	}
	return a, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

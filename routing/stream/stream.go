package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// Defaults of the Config fields.
const (
	DefaultMaxLen      = 1000
	DefaultHeartbeat   = 15 * time.Second
	DefaultPoll        = 2 * time.Second
	DefaultMaxPerAgent = 8
)

// GapType is the type of the event a resuming client gets first when
// entries it never saw were trimmed away: it should reload its state.
const GapType = "Stream_Gap"

// Limits on what Publish accepts.
const (
	MaxTypeLen  = 64
	MaxDataSize = 64 << 10
)

// maxBatch bounds one read, so one busy agent cannot hold a connection in
// a single huge reply.
const maxBatch = 500

// Config tunes Streams. Every field has a usable zero value.
type Config struct {
	// Prefix starts the stream keys and the wake-up channel, as
	// routing.Config.StreamPrefix does; it must hold a hash tag ("{...}")
	// so the keys sit in the engine's Redis Cluster slot. Zero:
	// routing.DefaultPrefix.
	Prefix string
	// MaxLen caps each agent's stream (approximately, MAXLEN ~). Zero:
	// 1000.
	MaxLen int64
	// Heartbeat is how often an idle SSE connection gets a comment line,
	// so proxies do not close it; the connection also re-reads its stream
	// then, in case a wake-up was lost. Zero: 15 s.
	Heartbeat time.Duration
	// Poll is how often a connection re-reads its stream while this
	// process holds no wake-up subscription (Run not started yet, or
	// resubscribing). Zero: 2 s.
	Poll time.Duration
	// MaxPerAgent is how many streams one agent may hold open at once in
	// this process; more are refused with 429, so a page that leaks
	// connections cannot exhaust the server. Zero: 8.
	MaxPerAgent int
	// Logger gets Run's and the handler's failures. Zero: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = routing.DefaultPrefix
	}
	if !hasHashTag(c.Prefix) {
		return c, fmt.Errorf("stream: config: prefix %q holds no hash tag such as {routing}", c.Prefix)
	}
	if c.MaxLen == 0 {
		c.MaxLen = DefaultMaxLen
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.MaxPerAgent == 0 {
		c.MaxPerAgent = DefaultMaxPerAgent
	}
	switch {
	case c.MaxLen < 0:
		return c, fmt.Errorf("stream: config: max_len %d must not be negative", c.MaxLen)
	case c.Heartbeat < 0 || c.Poll < 0:
		return c, errors.New("stream: config: heartbeat and poll must not be negative")
	case c.MaxPerAgent < 0:
		return c, fmt.Errorf("stream: config: max_per_agent %d must not be negative", c.MaxPerAgent)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

func hasHashTag(key string) bool {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(key[i+1:], '}')
	return j > 0
}

// EventsKey is the Redis stream of agent's events under prefix.
func EventsKey(prefix, agent string) string { return prefix + "agent:" + agent + ":events" }

// WakeChannel is the pub/sub channel that names agents whose stream grew.
func WakeChannel(prefix string) string { return prefix + "agent-events" }

// Event is one entry of an agent's stream.
type Event struct {
	// ID is the stream entry id ("1733130000000-0"), also the SSE id.
	ID string
	// Type is the event type, such as "Offer" or "CRM_Record_Pop".
	Type string
	// Data is the event's data, always valid JSON.
	Data json.RawMessage
}

// Streams writes and serves the agents' event streams. It is safe for
// concurrent use; one value per process is enough.
type Streams struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger

	// subscribed is true while Run holds a live subscription, so
	// connections can wait for wake-ups instead of polling.
	subscribed atomic.Bool

	mu        sync.Mutex
	waiters   map[string]map[*waiter]struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// waiter is one open SSE connection, woken when its agent's stream grew.
type waiter struct{ wake chan struct{} }

// New returns Streams on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Streams, error) {
	if rdb == nil {
		return nil, errors.New("stream: no redis client")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Streams{
		rdb:     rdb,
		cfg:     cfg,
		log:     cfg.Logger,
		waiters: map[string]map[*waiter]struct{}{},
		closed:  make(chan struct{}),
	}, nil
}

// Key is agent's stream key.
func (s *Streams) Key(agent string) string { return EventsKey(s.cfg.Prefix, agent) }

// publishScript appends and announces in one step, in exactly the form
// the routing scripts use, so no reader can tell the writers apart.
var publishScript = redis.NewScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[2], 'd', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return id
`)

// Publish appends an event to agent's stream and wakes its readers. data
// is encoded as JSON (a json.RawMessage or []byte holding JSON passes
// through, compacted); nil data is sent as {}. It returns the entry id.
func (s *Streams) Publish(ctx context.Context, agent, typ string, data any) (string, error) {
	if err := routing.ValidateID(agent); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, "agent", "%v", err)
	}
	if err := checkType(typ); err != nil {
		return "", err
	}
	d, err := encodeData(data)
	if err != nil {
		return "", err
	}
	id, err := publishScript.Run(ctx, s.rdb,
		[]string{s.Key(agent)},
		s.cfg.MaxLen, typ, d, WakeChannel(s.cfg.Prefix), agent).Text()
	if err != nil {
		return "", fmt.Errorf("stream: publish %s to %s: %w", typ, agent, err)
	}
	return id, nil
}

// checkType accepts the spec's event names: letters, digits, _ and -.
func checkType(typ string) error {
	if typ == "" {
		return crmsync.Errorf(crmsync.EINVALID, "type", "must not be empty")
	}
	if len(typ) > MaxTypeLen {
		return crmsync.Errorf(crmsync.EINVALID, "type", "is %d bytes long, more than %d", len(typ), MaxTypeLen)
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return crmsync.Errorf(crmsync.EINVALID, "type", "holds %q; only letters, digits, _ and - are allowed", rune(c))
		}
	}
	return nil
}

func encodeData(data any) (string, error) {
	var raw []byte
	switch v := data.(type) {
	case nil:
		return "{}", nil
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		// URLs are the usual payload; keep their & and < as they are.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", crmsync.Errorf(crmsync.EINVALID, "data", "cannot be encoded as JSON: %v", err)
		}
		raw = b.Bytes()
	}
	if !json.Valid(raw) {
		return "", crmsync.Errorf(crmsync.EINVALID, "data", "is not valid JSON")
	}
	var buf bytes.Buffer
	// Compacting keeps the SSE data on one line; Valid said it parses.
	_ = json.Compact(&buf, raw)
	if buf.Len() > MaxDataSize {
		return "", crmsync.Errorf(crmsync.ETOOLARGE, "data", "is %d bytes, more than %d", buf.Len(), MaxDataSize)
	}
	return buf.String(), nil
}

// Read returns up to count entries of agent's stream after afterID, oldest
// first. afterID "" reads from the oldest entry kept; "$" means only
// entries newer than now, so it returns none (a caller that wants to
// follow the stream reads once with "" or a known id and then from the
// last id it got). count <= 0 means 100; more than 500 is cut to 500.
func (s *Streams) Read(ctx context.Context, agent, afterID string, count int64) ([]Event, error) {
	if err := routing.ValidateID(agent); err != nil {
		return nil, crmsync.Errorf(crmsync.EINVALID, "agent", "%v", err)
	}
	switch afterID {
	case "$":
		return []Event{}, nil
	case "":
		afterID = "0-0"
	default:
		if _, err := parseID(afterID); err != nil {
			return nil, crmsync.Errorf(crmsync.EINVALID, "afterID", "%v", err)
		}
	}
	if count <= 0 {
		count = 100
	}
	if count > maxBatch {
		count = maxBatch
	}
	return s.read(ctx, agent, afterID, count)
}

// read is Read after its checks.
func (s *Streams) read(ctx context.Context, agent, afterID string, count int64) ([]Event, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.Key(agent), "("+afterID, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("stream: read %s: %w", agent, err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, s.toEvent(agent, m))
	}
	return out, nil
}

// toEvent turns an entry into an Event. Entries come from Lua scripts as
// well as from Publish, so a malformed one is repaired rather than allowed
// to break every browser reading the stream.
func (s *Streams) toEvent(agent string, m redis.XMessage) Event {
	typ, _ := m.Values["t"].(string)
	d, _ := m.Values["d"].(string)
	ev := Event{ID: m.ID, Type: typ, Data: json.RawMessage(d)}
	switch {
	case d == "":
		ev.Data = json.RawMessage("{}")
	case !json.Valid([]byte(d)):
		s.log.Warn("stream: entry data is not JSON; sent as a string", "agent", agent, "id", m.ID, "type", typ)
		b, _ := json.Marshal(d)
		ev.Data = b
	}
	return ev
}

// lastID is the id of the newest entry, "0-0" for an empty stream.
func (s *Streams) lastID(ctx context.Context, agent string) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.Key(agent), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("stream: last id of %s: %w", agent, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// firstID is the id of the oldest entry kept, "" for an empty stream.
func (s *Streams) firstID(ctx context.Context, agent string) (string, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.Key(agent), "-", "+", 1).Result()
	if err != nil {
		return "", fmt.Errorf("stream: first id of %s: %w", agent, err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}

// streamID is a parsed entry id, comparable.
type streamID struct{ ms, seq uint64 }

func (a streamID) less(b streamID) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

// parseID accepts a full entry id, "<ms>-<seq>", in decimal.
func parseID(id string) (streamID, error) {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok || ms == "" || seq == "" || len(id) > 41 {
		return streamID{}, errors.New(`must be a stream entry id such as "1733130000000-0"`)
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, errors.New(`must be a stream entry id such as "1733130000000-0"`)
	}
	return streamID{a, b}, nil
}

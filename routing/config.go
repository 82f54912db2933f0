package routing

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/crmsync/crmsync/internal/scriptstore"
)

// LogOffPolicy says what becomes of the conversations an agent holds when
// it logs off.
type LogOffPolicy string

const (
	// LogOffRequeue puts them back at the head of their queues.
	LogOffRequeue LogOffPolicy = "requeue"
	// LogOffKeep leaves them with the agent, whose capacity stays taken.
	LogOffKeep LogOffPolicy = "keep"
)

// DefaultPrefix starts every routing key unless Config.Prefix says
// otherwise (with the deployment's redis.key_prefix put in front).
const DefaultPrefix = "crmsync:{routing}:"

// Config tunes an Engine. Every field has a usable zero value.
type Config struct {
	// Prefix starts every routing key. It must hold a hash tag ("{...}")
	// so that on a Redis Cluster every key sits in one slot, which the
	// scripts rely on. Zero: DefaultPrefix.
	Prefix string
	// StreamPrefix starts the agents' stream keys and their wake-up
	// channel, as routing/stream names them ({StreamPrefix}agent:{id}:events,
	// {StreamPrefix}agent-events). It must hold the same hash tag as
	// Prefix. Zero: Prefix.
	StreamPrefix string
	// StreamMaxLen caps each agent's stream (approximately, MAXLEN ~).
	// Zero: 1000.
	StreamMaxLen int64
	// OutboxMaxLen caps the outbox (approximately). A consumer group that
	// falls further behind than this loses the oldest entries. Zero:
	// 1,000,000.
	OutboxMaxLen int64
	// OfferTimeout is how long an offer stays open in a queue that sets no
	// timeout of its own. Zero: 30 s.
	OfferTimeout time.Duration
	// HeartbeatGrace: an agent that sends heartbeats goes offline, and its
	// open offers go back to their queues, when none came for this long.
	// Agents that never sent one are not watched. Zero: 60 s; negative:
	// heartbeats are recorded but never time out.
	HeartbeatGrace time.Duration
	// ExpiredInRow: an available agent that lets this many offers in a
	// row expire is set away. Zero: 3; negative: never.
	ExpiredInRow int
	// DeclineCooldown: a conversation an agent declined, let expire or
	// requeued is not offered to that agent again for this long. Zero:
	// 10 s; negative: no cooldown.
	DeclineCooldown time.Duration
	// LogOff is what LogOff does with the conversations the agent holds.
	// Zero: LogOffRequeue.
	LogOff LogOffPolicy
	// EndedTTL is how long a finished conversation stays readable (and
	// how long a repeated end or cancel is recognised as one). Zero: 1 h.
	EndedTTL time.Duration
	// TickInterval is how often Run fires the timers that are due. Zero:
	// 100 ms.
	TickInterval time.Duration
	// TickBatch is how many timers one script call fires at most; Tick
	// calls again while a batch comes back full. Zero: 256.
	TickBatch int
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Logger gets Run's failures. Zero: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.StreamPrefix == "" {
		c.StreamPrefix = c.Prefix
	}
	tag, ok := hashTag(c.Prefix)
	if !ok {
		return c, fmt.Errorf("routing: config: prefix %q holds no hash tag such as {routing}", c.Prefix)
	}
	if st, _ := hashTag(c.StreamPrefix); st != tag {
		return c, fmt.Errorf("routing: config: stream prefix %q must hold the hash tag %q of prefix %q", c.StreamPrefix, tag, c.Prefix)
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = 1000
	}
	if c.OutboxMaxLen == 0 {
		c.OutboxMaxLen = 1_000_000
	}
	if c.StreamMaxLen < 0 || c.OutboxMaxLen < 0 {
		return c, fmt.Errorf("routing: config: stream and outbox lengths must not be negative")
	}
	if c.OfferTimeout == 0 {
		c.OfferTimeout = 30 * time.Second
	}
	if c.OfferTimeout < time.Millisecond {
		return c, fmt.Errorf("routing: config: offer timeout %v is too short", c.OfferTimeout)
	}
	if c.HeartbeatGrace == 0 {
		c.HeartbeatGrace = time.Minute
	}
	if c.ExpiredInRow == 0 {
		c.ExpiredInRow = 3
	}
	if c.DeclineCooldown == 0 {
		c.DeclineCooldown = 10 * time.Second
	}
	switch c.LogOff {
	case "":
		c.LogOff = LogOffRequeue
	case LogOffRequeue, LogOffKeep:
	default:
		return c, fmt.Errorf("routing: config: log-off policy %q is neither %q nor %q", c.LogOff, LogOffRequeue, LogOffKeep)
	}
	if c.EndedTTL == 0 {
		c.EndedTTL = time.Hour
	}
	if c.EndedTTL < time.Second {
		return c, fmt.Errorf("routing: config: ended TTL %v is shorter than a second", c.EndedTTL)
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.TickBatch <= 0 {
		c.TickBatch = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

var hashTag = scriptstore.HashTag

package pull

import (
	"fmt"
	"time"

	"github.com/crmsync/crmsync/internal/scriptstore"
	"github.com/crmsync/crmsync/routing"
)

// Defaults of the Config fields.
const (
	DefaultStreamMaxLen = 1000
	DefaultLogMaxLen    = 1000
	DefaultClosedTTL    = time.Hour
)

// Config tunes a Store. Every field has a usable zero value.
type Config struct {
	// Prefix starts every pull-mode key. It must hold a hash tag ("{...}")
	// so that on a Redis Cluster every key sits in one slot, which the
	// script relies on. Zero: routing.DefaultPrefix, which push mode uses
	// too; the two key sets do not overlap.
	Prefix string
	// StreamPrefix starts the agents' stream keys and their wake-up
	// channel ({StreamPrefix}agent:{id}:events, {StreamPrefix}agent-events),
	// as routing/stream reads them. It must hold the hash tag of Prefix.
	// Zero: Prefix.
	StreamPrefix string
	// StreamMaxLen caps each agent's stream (approximately, MAXLEN ~).
	// Zero: DefaultStreamMaxLen.
	StreamMaxLen int64
	// LogMaxLen caps each List's change log (approximately). A client
	// that falls further behind than this must take a fresh snapshot.
	// Zero: DefaultLogMaxLen.
	LogMaxLen int64
	// ClosedTTL is how long a closed request stays readable (and a repeat
	// of its id is refused) before Redis drops it. Zero: DefaultClosedTTL.
	ClosedTTL time.Duration
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = routing.DefaultPrefix
	}
	if c.StreamPrefix == "" {
		c.StreamPrefix = c.Prefix
	}
	tag, ok := hashTag(c.Prefix)
	if !ok {
		return c, fmt.Errorf("pull: config: prefix %q holds no hash tag such as {routing}", c.Prefix)
	}
	if st, _ := hashTag(c.StreamPrefix); st != tag {
		return c, fmt.Errorf("pull: config: stream prefix %q must hold the hash tag %q of prefix %q", c.StreamPrefix, tag, c.Prefix)
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = DefaultStreamMaxLen
	}
	if c.LogMaxLen == 0 {
		c.LogMaxLen = DefaultLogMaxLen
	}
	if c.StreamMaxLen < 0 || c.LogMaxLen < 0 {
		return c, fmt.Errorf("pull: config: stream and log lengths must not be negative")
	}
	if c.ClosedTTL == 0 {
		c.ClosedTTL = DefaultClosedTTL
	}
	if c.ClosedTTL < time.Second {
		return c, fmt.Errorf("pull: config: closed TTL %v is shorter than a second", c.ClosedTTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

var hashTag = scriptstore.HashTag

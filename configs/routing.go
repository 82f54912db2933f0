package configs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/lookup"
	"github.com/crmsync/crmsync/routing"
)

// Routing is the routing engine: push-mode queues and agents, pull-mode
// Lists, the agents' event streams and the adapter page. Off unless
// Enabled.
type Routing struct {
	Enabled bool `yaml:"enabled"`
	// AgentTokenSecret signs the per-agent tokens that agents' browsers
	// present on their event stream and the routing API (at least 16
	// characters; changing it revokes every agent token). Required when
	// routing is enabled.
	AgentTokenSecret crmsync.Secret `yaml:"agent_token_secret"`
	// OfferTimeout is how long an offer stays open in a queue that sets
	// none. Zero means 30s.
	OfferTimeout time.Duration `yaml:"offer_timeout"`
	// HeartbeatGrace: an agent that sends heartbeats goes offline after
	// none came for this long, and its open offers go back to their
	// queues. Zero means 60s.
	HeartbeatGrace time.Duration `yaml:"heartbeat_grace"`
	// ExpiredInRow: an agent that lets this many offers in a row expire is
	// set away. Zero means 3.
	ExpiredInRow int `yaml:"expired_in_row"`
	// DeclineCooldown: a conversation an agent declined or let expire is
	// not offered to that agent again for this long. Zero means 10s.
	DeclineCooldown time.Duration `yaml:"decline_cooldown"`
	// LogOff is what becomes of the conversations an agent holds when it
	// logs off: requeue (default) or keep.
	LogOff string `yaml:"log_off"`
	// Queues are created, or updated to these settings, at startup.
	// Queues made through the API are left alone.
	Queues []RoutingQueue `yaml:"queues"`
	// Lists are the pull-mode Lists, created or updated at startup.
	Lists []RoutingList `yaml:"lists"`
	// StreamMaxLen caps each agent's event stream (approximately): how
	// far back a reconnecting browser can resume. Zero means 1000.
	StreamMaxLen int64 `yaml:"stream_max_len"`
	// Adapter is the agent adapter page at /agent/adapter.
	Adapter Adapter `yaml:"adapter"`
	// Lookup holds the custom lookup URLs and the per-queue Open Custom
	// URL screen pops that reach the agent's browser.
	Lookup lookup.Config `yaml:"lookup"`
}

// RoutingQueue is a push-mode queue.
type RoutingQueue struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Priority orders queues for an agent in several: higher first.
	Priority int `yaml:"priority"`
	// OfferTimeout overrides routing.offer_timeout. Zero means that.
	OfferTimeout time.Duration `yaml:"offer_timeout"`
	// MaxWait ends a conversation's wait. Zero means no limit.
	MaxWait time.Duration `yaml:"max_wait"`
	// PreferredWait is how long a conversation waits for its preferred
	// agent alone. Zero means it goes to anyone at once.
	PreferredWait time.Duration `yaml:"preferred_wait"`
	// Channels are the media the queue serves (voice, chat, ...). At
	// least one.
	Channels []string `yaml:"channels"`
}

// RoutingList is a pull-mode List.
type RoutingList struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Channels publish their new conversations to this List. A channel
	// may feed one List only.
	Channels []string `yaml:"channels"`
}

// Adapter configures the agent adapter page.
type Adapter struct {
	// TargetOrigin is the origin of the CRM page that frames the adapter
	// (https://crm.example.com): every postMessage names it, and only it
	// may frame the page. "*" must be written out to allow any. Required
	// when routing is enabled.
	TargetOrigin string `yaml:"target_origin"`
}

// validateRouting fills routing's defaults and checks it.
func (c *Config) validateRouting(ps *Problems) {
	r := &c.Routing
	if !r.Enabled {
		return
	}
	if n := len(r.AgentTokenSecret.Reveal()); n < 16 {
		ps.add("routing.agent_token_secret", "required when routing is enabled: at least 16 characters, got %d", n)
	}
	durations := []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"routing.offer_timeout", &r.OfferTimeout, 30 * time.Second},
		{"routing.heartbeat_grace", &r.HeartbeatGrace, time.Minute},
		{"routing.decline_cooldown", &r.DeclineCooldown, 10 * time.Second},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			ps.add(d.field, "must not be negative")
		case *d.v > 24*time.Hour:
			ps.add(d.field, "must be at most 24h, got %s", *d.v)
		}
	}
	if r.ExpiredInRow == 0 {
		r.ExpiredInRow = 3
	} else if r.ExpiredInRow < 0 || r.ExpiredInRow > 1000 {
		ps.add("routing.expired_in_row", "must be from 1 to 1000")
	}
	switch r.LogOff {
	case "":
		r.LogOff = "requeue"
	case "requeue", "keep":
	default:
		ps.add("routing.log_off", "want requeue or keep, got %q", r.LogOff)
	}
	if r.StreamMaxLen == 0 {
		r.StreamMaxLen = 1000
	} else if r.StreamMaxLen < 10 || r.StreamMaxLen > 1_000_000 {
		ps.add("routing.stream_max_len", "must be from 10 to 1000000")
	}
	seen := map[string]bool{}
	for i, q := range r.Queues {
		p := fmt.Sprintf("routing.queues[%d]", i)
		if err := routing.ValidateID(q.ID); err != nil {
			ps.add(p+".id", "%s", err)
		} else if seen[q.ID] {
			ps.add(p+".id", "queue %q is listed twice", q.ID)
		}
		seen[q.ID] = true
		if len(q.Channels) == 0 {
			ps.add(p+".channels", "at least one channel is required")
		}
		for j, ch := range q.Channels {
			if err := routing.ValidateID(ch); err != nil {
				ps.add(fmt.Sprintf("%s.channels[%d]", p, j), "%s", err)
			}
		}
		for _, d := range []struct {
			f string
			v time.Duration
		}{{"offer_timeout", q.OfferTimeout}, {"max_wait", q.MaxWait}, {"preferred_wait", q.PreferredWait}} {
			if d.v < 0 || d.v > 7*24*time.Hour {
				ps.add(p+"."+d.f, "must be from 0 to 168h, got %s", d.v)
			}
		}
	}
	seenList, channelList := map[string]bool{}, map[string]string{}
	for i, l := range r.Lists {
		p := fmt.Sprintf("routing.lists[%d]", i)
		if err := routing.ValidateID(l.ID); err != nil {
			ps.add(p+".id", "%s", err)
		} else if seenList[l.ID] {
			ps.add(p+".id", "list %q is listed twice", l.ID)
		}
		seenList[l.ID] = true
		for j, ch := range l.Channels {
			if err := routing.ValidateID(ch); err != nil {
				ps.add(fmt.Sprintf("%s.channels[%d]", p, j), "%s", err)
			} else if other, ok := channelList[ch]; ok {
				ps.add(fmt.Sprintf("%s.channels[%d]", p, j), "channel %q already feeds list %q", ch, other)
			}
			channelList[ch] = l.ID
		}
	}
	if _, err := lookup.Compile(r.Lookup); err != nil {
		var e *crmsync.Error
		if errors.As(err, &e) {
			ps.add("routing.lookup."+e.Field, "%s", e.Message)
		} else {
			ps.add("routing.lookup", "%s", err)
		}
	}
	if o := r.Adapter.TargetOrigin; o == "" {
		ps.add("routing.adapter.target_origin", "required when routing is enabled: the origin of the CRM page that frames the adapter, or \"*\"")
	} else if o != "*" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			ps.add("routing.adapter.target_origin", "want an origin such as https://crm.example.com, got %q", o)
		}
	}
}

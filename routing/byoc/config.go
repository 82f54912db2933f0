package byoc

import (
	"io"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/internal/scriptstore"
	"github.com/crmsync/crmsync/routing"
)

// DefaultPrefix starts every key unless Config.Prefix says otherwise. It
// shares the routing engine's hash tag.
const DefaultPrefix = "crmsync:{routing}:byoc:"

// Defaults of Config.
const (
	DefaultPendingTimeout    = 5 * time.Minute
	DefaultSweepInterval     = 15 * time.Second
	DefaultSweepBatch        = 64
	DefaultMaxDeleteAttempts = 5
	DefaultDoneTTL           = time.Hour
)

// Way is how Salesforce routes a conversation. The zero Way defers to the
// channel's own setting; FlowID (with FallbackQueueID) routes by flow;
// QueueID routes to one queue.
type Way struct {
	// FlowID is the flow's FlowDefinitionView record id.
	FlowID string
	// FallbackQueueID is the queue the flow falls back to; required with
	// FlowID.
	FallbackQueueID string
	// Attributes are routing attributes sent with flow routing (channel
	// variable name -> value). Only with FlowID.
	Attributes map[string]string
	// QueueID routes to this queue. Not with FlowID.
	QueueID string
}

// Name is "flow", "queue" or "channel".
func (w Way) Name() string {
	switch {
	case w.FlowID != "":
		return "flow"
	case w.QueueID != "":
		return "queue"
	}
	return "channel"
}

// Config tunes a Router. Every field has a usable zero value.
type Config struct {
	// Prefix starts every key; it must hold a hash tag ("{...}"). Zero:
	// DefaultPrefix.
	Prefix string
	// Default is the way for a conversation whose queue and channel have
	// none below. Zero: the channel's own setting.
	Default Way
	// Queues gives the way per crmsync queue (Request.Queue). Zero: none.
	Queues map[string]Way
	// Channels gives the way per channel (Request.Channel), for
	// conversations whose queue has none. Zero: none.
	Channels map[string]Way
	// PendingTimeout is how long a routing may stay pending before Sweep
	// deletes it. Zero: DefaultPendingTimeout.
	PendingTimeout time.Duration
	// SweepInterval is how often Run sweeps. Zero: DefaultSweepInterval.
	SweepInterval time.Duration
	// SweepBatch is how many routings one sweep claims at a time. Zero:
	// DefaultSweepBatch.
	SweepBatch int
	// MaxDeleteAttempts bounds the DELETE route calls for one routing;
	// then it is given up (state "abandoned"). Zero:
	// DefaultMaxDeleteAttempts.
	MaxDeleteAttempts int
	// DoneTTL is how long a finished routing is remembered, so that a
	// repeated delegation or acceptance is recognised. Zero:
	// DefaultDoneTTL.
	DoneTTL time.Duration
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Logger gets delete failures and Run's failures. Zero: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !hasHashTag(c.Prefix) {
		return c, crmsync.Errorf(crmsync.EINVALID, "prefix", "must hold a hash tag such as {routing}")
	}
	if err := checkWay("default", c.Default); err != nil {
		return c, err
	}
	for _, m := range []struct {
		name string
		ways map[string]Way
	}{{"queues", c.Queues}, {"channels", c.Channels}} {
		for id, w := range m.ways {
			if err := routing.ValidateID(id); err != nil {
				return c, crmsync.Errorf(crmsync.EINVALID, m.name, "key %q %v", id, err)
			}
			if err := checkWay(m.name+"."+id, w); err != nil {
				return c, err
			}
		}
	}
	c.Queues, c.Channels = maps.Clone(c.Queues), maps.Clone(c.Channels)
	durations := []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"pending_timeout", &c.PendingTimeout, DefaultPendingTimeout},
		{"sweep_interval", &c.SweepInterval, DefaultSweepInterval},
		{"done_ttl", &c.DoneTTL, DefaultDoneTTL},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			return c, crmsync.Errorf(crmsync.EINVALID, d.field, "must not be negative")
		case *d.v == 0:
			*d.v = d.def
		case *d.v < time.Millisecond:
			return c, crmsync.Errorf(crmsync.EINVALID, d.field, "must be at least 1ms")
		}
	}
	if c.SweepBatch < 0 {
		return c, crmsync.Errorf(crmsync.EINVALID, "sweep_batch", "must not be negative")
	}
	if c.SweepBatch == 0 {
		c.SweepBatch = DefaultSweepBatch
	}
	if c.MaxDeleteAttempts < 0 {
		return c, crmsync.Errorf(crmsync.EINVALID, "max_delete_attempts", "must not be negative")
	}
	if c.MaxDeleteAttempts == 0 {
		c.MaxDeleteAttempts = DefaultMaxDeleteAttempts
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// checkWay validates a configured way, naming its config path.
func checkWay(path string, w Way) error {
	switch {
	case w.FlowID != "" && w.QueueID != "":
		return crmsync.Errorf(crmsync.EINVALID, path, "give a flow_id or a queue_id, not both")
	case w.FlowID == "" && w.FallbackQueueID != "":
		return crmsync.Errorf(crmsync.EINVALID, path+".flow_id", "is required with a fallback_queue_id")
	case w.FlowID == "" && len(w.Attributes) > 0:
		return crmsync.Errorf(crmsync.EINVALID, path+".attributes", "are sent only with flow routing (flow_id)")
	}
	_, err := w.request("placeholder", salesforce.Initial, nil, path)
	return err
}

// request builds the route request for a conversation going this way,
// with extra attributes over the configured ones. Errors name fields
// under path ("attributes" for the caller's own).
func (w Way) request(conv string, typ salesforce.RoutingType, extra map[string]string, path string) (salesforce.RouteRequest, error) {
	r := salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: typ, QueueID: w.QueueID}
	if w.FlowID != "" {
		attrs := maps.Clone(w.Attributes)
		if len(extra) > 0 && attrs == nil {
			attrs = map[string]string{}
		}
		maps.Copy(attrs, extra)
		r.Flow = &salesforce.Flow{FlowID: w.FlowID, QueueID: w.FallbackQueueID, RoutingAttributes: attrs}
	}
	if err := r.Check(); err != nil {
		if e, ok := err.(*crmsync.Error); ok {
			return r, crmsync.Errorf(e.Code, fieldName(path, e.Field), "%s", e.Message)
		}
		return r, err
	}
	return r, nil
}

// fieldName maps the vendor's JSON path onto our config's names.
func fieldName(path, vendor string) string {
	join := func(s string) string {
		if path == "" {
			return s
		}
		return path + "." + s
	}
	switch {
	case vendor == "conversationIdentifier":
		return "conversation"
	case vendor == "routingType":
		return "routing_type"
	case vendor == "routingInfo.queueId":
		return join("queue_id")
	case vendor == "routingInfo.flow.flowId":
		return join("flow_id")
	case vendor == "routingInfo.flow.queueId":
		return join("fallback_queue_id")
	case strings.HasPrefix(vendor, "routingInfo.routingAttributes"):
		return join("attributes" + strings.TrimPrefix(vendor, "routingInfo.routingAttributes"))
	}
	if path == "" {
		return vendor
	}
	return path
}

func hasHashTag(key string) bool { _, ok := scriptstore.HashTag(key); return ok }

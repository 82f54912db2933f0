package byoc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/internal/httperr"
	"github.com/crmsync/crmsync/routing"
)

// States of a routing, as Pending shows them.
const (
	StatePending   = "pending"   // Salesforce took it; waiting for a rep
	StateDeleting  = "deleting"  // a DELETE route call is under way
	StateDone      = "done"      // accepted, deleted or cancelled
	StateAbandoned = "abandoned" // its delete failed MaxDeleteAttempts times
)

// Request is a conversation to delegate to Salesforce.
type Request struct {
	// Conversation is Salesforce's conversation identifier.
	Conversation string
	// RoutingType is Initial for a new conversation, Transfer for one
	// being transferred.
	RoutingType salesforce.RoutingType
	// Queue and Channel choose the way (Config.Queues, then
	// Config.Channels, then Config.Default). Optional.
	Queue, Channel string
	// Key tells one routing of the conversation from another, such as the
	// id of the event that asked for a transfer: a repeat with the same
	// key is a duplicate even after the routing finished. Zero: the
	// routing type alone, so a finished Transfer does not block a later
	// one (a finished Initial always does).
	Key string
	// Attributes are added to the way's routing attributes; only with
	// flow routing.
	Attributes map[string]string
}

// Pending is a routing Salesforce took that no rep has taken yet.
type Pending struct {
	Conversation string                 `json:"conversation"`
	RoutingType  salesforce.RoutingType `json:"routing_type"`
	Key          string                 `json:"key,omitempty"`
	Way          string                 `json:"way"`
	State        string                 `json:"state"`
	Since        time.Time              `json:"since"`
	// Due is when it times out, or when its next delete attempt is due.
	Due time.Time `json:"due"`
	// Attempts counts the failed DELETE route calls; LastError is the
	// latest failure.
	Attempts  int    `json:"delete_attempts"`
	LastError string `json:"last_error,omitempty"`
	RequestID string `json:"request_id"`
}

// Stats are the counters since the keys were made, across all Routers.
type Stats struct {
	Routed          int64 `json:"routed"`
	Duplicates      int64 `json:"duplicates"`
	Accepted        int64 `json:"accepted"`
	Deleted         int64 `json:"deleted"`
	DeleteFailed    int64 `json:"delete_failed"`
	DeleteAbandoned int64 `json:"delete_abandoned"`
}

// Router delegates conversations to Salesforce and tracks their pending
// routings. It holds no state of its own; its methods are safe for
// concurrent use.
type Router struct {
	rdb    redis.UniversalClient
	client *salesforce.Client
	cfg    Config
	lease  time.Duration // how long a route or delete call may hold its claim
}

// New returns a Router over rdb and client. It fails only on a bad
// Config or a missing dependency.
func New(rdb redis.UniversalClient, client *salesforce.Client, cfg Config) (*Router, error) {
	if rdb == nil || client == nil {
		return nil, errors.New("byoc: a Redis client and a Salesforce client are required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Longer than any one call can take, with room for Redis.
	lease := 2*client.Timeout() + 5*time.Second
	return &Router{rdb: rdb, client: client, cfg: cfg, lease: lease}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (r *Router) Config() Config { return r.cfg }

func (r *Router) hash(conv string) string { return r.cfg.Prefix + "r:" + conv }
func (r *Router) dueKey() string          { return r.cfg.Prefix + "due" }
func (r *Router) statsKey() string        { return r.cfg.Prefix + "stats" }
func (r *Router) nowMS() int64            { return r.cfg.Now().UnixMilli() }

// Way returns the way a conversation of queue and channel goes.
func (r *Router) Way(queue, channel string) Way {
	if w, ok := r.cfg.Queues[queue]; ok && queue != "" {
		return w
	}
	if w, ok := r.cfg.Channels[channel]; ok && channel != "" {
		return w
	}
	return r.cfg.Default
}

// check validates req and builds its route request.
func (r *Router) check(req Request) (salesforce.RouteRequest, Way, error) {
	if err := checkID("conversation", req.Conversation); err != nil {
		return salesforce.RouteRequest{}, Way{}, err
	}
	if !req.RoutingType.Valid() {
		return salesforce.RouteRequest{}, Way{}, crmsync.Errorf(crmsync.EINVALID, "routing_type", "must be %q or %q", salesforce.Initial, salesforce.Transfer)
	}
	for _, f := range []struct{ name, v string }{{"queue", req.Queue}, {"channel", req.Channel}, {"key", req.Key}} {
		if f.v != "" {
			if err := checkID(f.name, f.v); err != nil {
				return salesforce.RouteRequest{}, Way{}, err
			}
		}
	}
	w := r.Way(req.Queue, req.Channel)
	if len(req.Attributes) > 0 && w.FlowID == "" {
		return salesforce.RouteRequest{}, Way{}, crmsync.Errorf(crmsync.EINVALID, "attributes", "are sent only with flow routing, and this conversation is routed by %s", w.Name())
	}
	if err := salesforce.CheckAttributes("attributes", req.Attributes); err != nil {
		return salesforce.RouteRequest{}, Way{}, err
	}
	sr, err := w.request(req.Conversation, req.RoutingType, req.Attributes, "")
	return sr, w, err
}

// Delegate hands a conversation to Salesforce (POST route) and records
// its pending routing. A repeat of a routing already taken or under way
// changes nothing and calls nothing. ECONFLICT: an Initial for a
// conversation already routed, or another routing of it under way. A
// Salesforce failure that may pass (transport, 429, 5xx) carries
// EUNAVAILABLE; the chain holds the *salesforce.HTTPError or
// *salesforce.TransportError.
func (r *Router) Delegate(ctx context.Context, req Request) error {
	_, err := r.delegate(ctx, req)
	return err
}

// delegate is Delegate, telling whether the call was a duplicate.
func (r *Router) delegate(ctx context.Context, req Request) (dup bool, err error) {
	sr, w, err := r.check(req)
	if err != nil {
		return false, err
	}
	rk := string(req.RoutingType)
	explicit := "0"
	if req.Key != "" {
		rk += ":" + req.Key
		explicit = "1"
	}
	token := newToken()
	now := r.cfg.Now()
	h := r.hash(req.Conversation)
	v, err := claimScript.Run(ctx, r.rdb, []string{h, r.statsKey()},
		rk, string(req.RoutingType), now.UnixMilli(), now.Add(r.lease).UnixMilli(), token, explicit,
		(r.lease + r.cfg.DoneTTL).Milliseconds()).StringSlice()
	if err != nil {
		return false, storeError("claim", err)
	}
	switch v[0] {
	case "go":
	case "dup":
		return true, nil
	case "busy":
		return false, crmsync.Errorf(crmsync.ECONFLICT, "conversation", "another routing of this conversation is under way; try again")
	case "conflict":
		return false, crmsync.Errorf(crmsync.ECONFLICT, "routing_type", "the conversation was already routed (%s); use Transfer", at(v, 1))
	default:
		return false, fmt.Errorf("byoc: claim: unexpected answer %q", v[0])
	}

	res, err := r.client.Route(ctx, sr)
	if err != nil {
		// Release even when ctx is done, so a retry need not wait out the
		// lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := releaseScript.Run(rctx, r.rdb, []string{h}, token, r.cfg.DoneTTL.Milliseconds()).Err(); rerr != nil {
			r.cfg.Logger.Warn("byoc: release claim", "conversation", req.Conversation, "err", rerr)
		}
		return false, routeError("route "+req.Conversation, err)
	}
	due := r.cfg.Now().Add(r.cfg.PendingTimeout).UnixMilli()
	err = commitScript.Run(context.WithoutCancel(ctx), r.rdb, []string{h, r.dueKey(), r.statsKey()},
		req.Conversation, rk, string(req.RoutingType), req.Key, token, r.nowMS(), due, res.RequestID, w.Name()).Err()
	if err != nil {
		// Salesforce has the routing but we could not note it; the claim
		// lapses and a repeat routes again, which Salesforce takes.
		return false, storeError("commit", err)
	}
	return false, nil
}

// Accepted marks a conversation's pending routing done: a rep took it,
// and Salesforce removed it. ENOTFOUND when none was ever recorded (or it
// was forgotten after Config.DoneTTL); a repeat is nil.
func (r *Router) Accepted(ctx context.Context, conv string) error {
	if err := checkID("conversation", conv); err != nil {
		return err
	}
	v, err := acceptedScript.Run(ctx, r.rdb, []string{r.hash(conv), r.dueKey(), r.statsKey()},
		conv, r.nowMS(), r.cfg.DoneTTL.Milliseconds()).StringSlice()
	if err != nil {
		return storeError("accepted", err)
	}
	if v[0] == "notfound" {
		return crmsync.Errorf(crmsync.ENOTFOUND, "conversation", "no routing of this conversation is known")
	}
	return nil
}

// Cancel deletes a conversation's pending routing now (DELETE route).
// ENOTFOUND when none is known; nil when it already finished or another
// Router is deleting it. A failed delete stays pending, to be tried again
// by the next sweep, and is returned (EUNAVAILABLE when it may pass).
func (r *Router) Cancel(ctx context.Context, conv string) error {
	if err := checkID("conversation", conv); err != nil {
		return err
	}
	token := newToken()
	taken, err := r.take(ctx, token, conv, r.cfg.Now())
	if err != nil {
		return err
	}
	if len(taken) != 1 {
		return fmt.Errorf("byoc: cancel: unexpected answer %v", taken)
	}
	switch taken[0] {
	case conv:
	case "!":
		return crmsync.Errorf(crmsync.ENOTFOUND, "conversation", "no routing of this conversation is known")
	default: // done, abandoned, or being deleted
		return nil
	}
	_, err = r.remove(ctx, conv, token, "cancelled")
	return err
}

// take claims routings for deletion: the one named, or those due by
// cutoff.
func (r *Router) take(ctx context.Context, token, conv string, cutoff time.Time) ([]string, error) {
	v, err := takeScript.Run(ctx, r.rdb, []string{r.dueKey()},
		r.cfg.Prefix, cutoff.UnixMilli(), r.cfg.SweepBatch, r.cfg.Now().Add(r.lease).UnixMilli(), token, conv).StringSlice()
	if err != nil {
		return nil, storeError("take", err)
	}
	return v, nil
}

// remove calls DELETE route for a taken routing and records the outcome.
// It reports whether the routing is done.
func (r *Router) remove(ctx context.Context, conv, token, reason string) (bool, error) {
	_, callErr := r.client.DeleteRoute(ctx, conv)
	outcome, next, text := "deleted", int64(0), ""
	if callErr != nil && !salesforce.IsNotFound(callErr) {
		// 404: Salesforce holds no pending routing for it any more (a rep
		// took it); that is what deleting wanted.
		text = httperr.Cut(callErr.Error(), 300)
		outcome = "final"
		if ok, after := salesforce.Retryable(callErr); ok {
			outcome = "retry"
			next = r.cfg.Now().Add(max(after, time.Millisecond)).UnixMilli()
		}
	}
	v, err := finishScript.Run(context.WithoutCancel(ctx), r.rdb, []string{r.hash(conv), r.dueKey(), r.statsKey()},
		conv, token, outcome, r.nowMS(), next, r.cfg.MaxDeleteAttempts, text, r.cfg.DoneTTL.Milliseconds(), reason).Slice()
	if err != nil {
		return false, storeError("finish", err)
	}
	state, _ := v[0].(string)
	attempts, _ := v[1].(int64)
	switch state {
	case "retry":
		if attempts == 1 {
			r.cfg.Logger.Warn("byoc: DELETE route failed; will try again", "conversation", conv, "err", text)
		}
	case "abandoned":
		r.cfg.Logger.Error("byoc: DELETE route given up", "conversation", conv, "attempts", attempts, "err", text)
	}
	if callErr != nil && outcome != "deleted" {
		return false, routeError("delete route "+conv, callErr)
	}
	return state == "done", nil
}

// Pending lists the routings not yet finished, the earliest due first.
func (r *Router) Pending(ctx context.Context) ([]Pending, error) {
	convs, err := r.rdb.ZRange(ctx, r.dueKey(), 0, -1).Result()
	if err != nil {
		return nil, storeError("pending", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(convs))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range convs {
			cmds[i] = p.HGetAll(ctx, r.hash(c))
		}
		return nil
	})
	if err != nil {
		return nil, storeError("pending", err)
	}
	out := make([]Pending, 0, len(convs))
	for i, c := range convs {
		m := cmds[i].Val()
		if m["state"] != StatePending && m["state"] != StateDeleting {
			continue
		}
		out = append(out, Pending{
			Conversation: c,
			RoutingType:  salesforce.RoutingType(m["type"]),
			Key:          m["ukey"],
			Way:          m["way"],
			State:        m["state"],
			Since:        ms(m["since"]),
			Due:          ms(m["due"]),
			Attempts:     int(atoi(m["attempts"])),
			LastError:    m["last_error"],
			RequestID:    m["request_id"],
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due.Before(out[j].Due) })
	return out, nil
}

// Stats returns the counters.
func (r *Router) Stats(ctx context.Context) (Stats, error) {
	m, err := r.rdb.HGetAll(ctx, r.statsKey()).Result()
	if err != nil {
		return Stats{}, storeError("stats", err)
	}
	return Stats{
		Routed: atoi(m["routed"]), Duplicates: atoi(m["duplicates"]), Accepted: atoi(m["accepted"]),
		Deleted: atoi(m["deleted"]), DeleteFailed: atoi(m["delete_failed"]), DeleteAbandoned: atoi(m["delete_abandoned"]),
	}, nil
}

// checkID applies the routing engine's id rule: safe in a key, a URL and
// a log line.
func checkID(field, id string) error {
	if err := routing.ValidateID(id); err != nil {
		return crmsync.Errorf(crmsync.EINVALID, field, "%v", err)
	}
	return nil
}

// routeError marks a Salesforce failure that may pass as EUNAVAILABLE,
// keeping the vendor error in the chain.
func routeError(what string, err error) error {
	var ce *crmsync.Error
	if errors.As(err, &ce) {
		return err
	}
	if ok, _ := salesforce.Retryable(err); ok {
		return fmt.Errorf("byoc: %s: %w", what, errors.Join(
			crmsync.Errorf(crmsync.EUNAVAILABLE, "", "salesforce is unavailable for now; try again"), err))
	}
	return fmt.Errorf("byoc: %s: %w", what, err)
}

// storeFailure is a failed Redis call, told apart from a failed
// Salesforce call.
type storeFailure struct{ error }

func (e *storeFailure) Unwrap() error { return e.error }

func isStoreError(err error) bool {
	var sf *storeFailure
	return errors.As(err, &sf)
}

// storeError marks a failed Redis round trip as EUNAVAILABLE, unless the
// server answered with an error (a fault of ours).
func storeError(op string, err error) error {
	var reply redis.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &reply) {
		return &storeFailure{fmt.Errorf("byoc: %s: %w", op, err)}
	}
	return &storeFailure{fmt.Errorf("byoc: %s: %w", op, errors.Join(crmsync.Errorf(crmsync.EUNAVAILABLE, "", "routing store is unavailable"), err))}
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func at(v []string, i int) string {
	if i < len(v) {
		return v[i]
	}
	return ""
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func ms(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return time.UnixMilli(atoi(s)).UTC()
}

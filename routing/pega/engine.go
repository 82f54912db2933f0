package pega

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// DefaultChannel is the engine channel of Pega's conversations when
// EngineConfig.Channel is empty. Pega delegates chat and messaging only.
const DefaultChannel = "chat"

// SourceName is the routing.NewConversation Source of every conversation
// Pega routes, so the outbox's consumers know to answer Pega.
const SourceName = "pega"

// AttrSource is the conversation attribute that keeps Pega's _source (the
// chat or messaging channel's name, "Facebook"); the engine's channel is
// EngineConfig.Channel whatever Pega's channel is called.
const AttrSource = "pega_source"

// UnknownQueuePolicy says what a queue Pega names and the engine does not
// know gets.
type UnknownQueuePolicy string

const (
	// UnknownQueueNotFound refuses it: a route request answers
	// route_not_found and an event Fail, naming the queue.
	UnknownQueueNotFound UnknownQueuePolicy = "route_not_found"
	// UnknownQueueCreate creates it, serving EngineConfig.Channel with the
	// engine's default settings, and goes on. For a Pega whose queues are
	// not listed in crmsync's config.
	UnknownQueueCreate UnknownQueuePolicy = "create"
)

// EngineConfig is how EngineRouter maps Pega onto the engine. Every field
// has a usable zero value.
type EngineConfig struct {
	// Channel is the engine channel every Pega conversation is routed on;
	// the queues Pega names must serve it. Zero: DefaultChannel.
	Channel string
	// UnknownQueues is what a queue the engine does not know gets. Zero:
	// UnknownQueueNotFound.
	UnknownQueues UnknownQueuePolicy
	// Capacity is what a CSR the engine has not met yet gets, per channel,
	// when Pega first reports its queues (QueuesJoined). CSRs the engine
	// knows keep the capacity they have. Zero: 1 on Channel.
	Capacity map[string]int
}

// withDefaults fills the zero fields and checks the rest.
func (c EngineConfig) withDefaults() (EngineConfig, error) {
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if err := routing.ValidateID(c.Channel); err != nil {
		return c, crmsync.Errorf(crmsync.EINVALID, "channel", "%v", err)
	}
	switch c.UnknownQueues {
	case "":
		c.UnknownQueues = UnknownQueueNotFound
	case UnknownQueueNotFound, UnknownQueueCreate:
	default:
		return c, crmsync.Errorf(crmsync.EINVALID, "unknown_queues", "want %q or %q, got %q",
			UnknownQueueNotFound, UnknownQueueCreate, c.UnknownQueues)
	}
	if len(c.Capacity) == 0 {
		c.Capacity = map[string]int{c.Channel: 1}
	} else {
		c.Capacity = maps.Clone(c.Capacity)
	}
	for _, ch := range slices.Sorted(maps.Keys(c.Capacity)) {
		if err := routing.ValidateID(ch); err != nil {
			return c, crmsync.Errorf(crmsync.EINVALID, "capacity", "channel %q %v", ch, err)
		}
		if c.Capacity[ch] < 0 {
			return c, crmsync.Errorf(crmsync.EINVALID, "capacity."+ch, "must not be negative, got %d", c.Capacity[ch])
		}
	}
	if c.Capacity[c.Channel] == 0 {
		return c, crmsync.Errorf(crmsync.EINVALID, "capacity", "gives channel %s no capacity: new CSRs could take no Pega conversation", c.Channel)
	}
	return c, nil
}

// Validate checks c as NewEngineRouter will take it: an *crmsync.Error
// (EINVALID) naming the field. Call it where the config is loaded.
func (c EngineConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

// EngineRouter is the Router over crmsync's push-mode engine: Pega's calls
// become the engine's operations, and what the engine decides reaches
// Pega through the outbox (connectors/pega). It holds no state; any number
// of them, in any number of processes, may share one engine's Redis.
//
// Pega resends events, and its event names do not always say which of
// several cases it means, so where the protocol is unclear the engine's
// state decides (see each method). A repeat of what was done already is
// taken as done.
type EngineRouter struct {
	e   *routing.Engine
	cfg EngineConfig
	// err is set when the config does not validate; every call fails with
	// it, as a fault of ours rather than Pega's.
	err error
}

var _ Router = (*EngineRouter)(nil)

// NewEngineRouter returns the Router over e. cfg should have passed
// Validate; if it does not, every call fails with an internal error that
// says why.
func NewEngineRouter(e *routing.Engine, cfg EngineConfig) *EngineRouter {
	r := &EngineRouter{e: e}
	var err error
	if r.cfg, err = cfg.withDefaults(); err != nil {
		r.err = fmt.Errorf("pega: engine router config: %v", err) // %v: not Pega's error to see
	}
	if e == nil {
		r.err = errors.New("pega: engine router: no engine")
	}
	return r
}

// Config returns the configuration in effect, defaults filled in.
func (r *EngineRouter) Config() EngineConfig { return r.cfg }

// Route creates the conversation in its queue (Source "pega", preferred
// agent and priority as Pega sent them, Pega's _source kept as the
// attribute pega_source, the extra keys as attributes when they fit the
// engine's limits). A conversation the engine routes already is a repeat:
// the answer is its current state. The position and wait estimate are the
// engine's; a conversation offered at once has neither.
func (r *EngineRouter) Route(ctx context.Context, req RouteRequest) (RouteResult, error) {
	if r.err != nil {
		return RouteResult{}, r.err
	}
	n := routing.NewConversation{
		ID:             req.Conversation,
		Queue:          req.Queue,
		Channel:        r.cfg.Channel,
		Priority:       req.Priority,
		PreferredAgent: req.PreferredAgent,
		Source:         SourceName,
		Session:        sessionOf(req.Conversation),
		Attributes:     attributes(nil, req.Source, req.Extra),
	}
	c, err := r.create(ctx, n)
	if crmsync.ErrorCode(err) == crmsync.ECONFLICT {
		// The one conflict of a create: the id is routed already.
		c, err = r.e.GetConversation(ctx, req.Conversation)
	}
	if err != nil {
		return RouteResult{}, pegaError("route "+req.Conversation, err, convFields)
	}
	return RouteResult{
		Identifying:   !c.State.Terminal(),
		WaitTime:      c.WaitEstimate,
		HasWaitTime:   c.HasWaitEstimate,
		QueuePosition: c.Position,
	}, nil
}

// create is CreateConversation, with the queue created first when the
// policy says so.
func (r *EngineRouter) create(ctx context.Context, n routing.NewConversation) (*routing.Conversation, error) {
	c, err := r.e.CreateConversation(ctx, n)
	if r.cfg.UnknownQueues == UnknownQueueCreate && isError(err, crmsync.ENOTFOUND, "queue") {
		if err := r.createQueues(ctx, []string{n.Queue}); err != nil {
			return nil, err
		}
		c, err = r.e.CreateConversation(ctx, n)
	}
	return c, err
}

// createQueues makes the queues that do not exist, serving the channel.
// Queues that do exist are left as they are, whatever they serve.
func (r *EngineRouter) createQueues(ctx context.Context, ids []string) error {
	for _, id := range ids {
		err := r.e.CreateQueue(ctx, routing.Queue{ID: id, Name: id, Channels: []string{r.cfg.Channel}})
		if err != nil && crmsync.ErrorCode(err) != crmsync.ECONFLICT {
			return err
		}
	}
	return nil
}

// withQueues runs op and, when the policy says so and op failed on an
// unknown queue (a field "queues[i]" or "to_queue"), creates qs and runs
// it once more.
func (r *EngineRouter) withQueues(ctx context.Context, qs []string, op func() error) error {
	err := op()
	if r.cfg.UnknownQueues != UnknownQueueCreate || crmsync.ErrorCode(err) != crmsync.ENOTFOUND {
		return err
	}
	var e *crmsync.Error
	if !errors.As(err, &e) || !(strings.HasPrefix(e.Field, "queues[") || e.Field == "to_queue") {
		return err
	}
	if err := r.createQueues(ctx, qs); err != nil {
		return err
	}
	return op()
}

// SetQueues makes the CSR's queues exactly p.Queues and sets it
// available (with no queues it takes nothing, yet counts as logged in). A
// CSR the engine has not met is created with EngineConfig.Capacity.
func (r *EngineRouter) SetQueues(ctx context.Context, p Presence) error {
	if r.err != nil {
		return r.err
	}
	queues := p.Queues
	if queues == nil {
		queues = []string{}
	}
	op := "queues joined " + p.Agent
	err := r.withQueues(ctx, queues, func() error { return r.e.SetQueues(ctx, p.Agent, queues) })
	if isError(err, crmsync.ENOTFOUND, "id") {
		err = r.withQueues(ctx, queues, func() error {
			return r.e.PutAgent(ctx, routing.AgentSpec{
				ID: p.Agent, Capacity: r.cfg.Capacity, Queues: queues, Presence: routing.Available,
			})
		})
		return pegaError(op, err, agentFields)
	}
	if err != nil {
		return pegaError(op, err, agentFields)
	}
	// After the queues: made available first, the CSR could be offered a
	// conversation from a queue it is leaving.
	return pegaError(op, r.e.SetPresence(ctx, p.Agent, routing.Available), agentFields)
}

// Offer maps what became of an offer. Offered acknowledges an offer the
// engine made (it changes nothing, and fails when the CSR has no such
// offer nor holds the conversation); the others are the engine's Accept,
// Decline and Expire.
func (r *EngineRouter) Offer(ctx context.Context, o Offer) error {
	if r.err != nil {
		return r.err
	}
	op := fmt.Sprintf("offer %s %s to %s", o.Outcome, o.Conversation, o.Agent)
	var err error
	switch o.Outcome {
	case OfferShown:
		err = r.shown(ctx, o.Conversation, o.Agent)
	case OfferAccepted:
		err = r.e.Accept(ctx, o.Conversation, o.Agent)
	case OfferDeclined:
		err = r.e.Decline(ctx, o.Conversation, o.Agent)
	case OfferExpired:
		err = r.e.Expire(ctx, o.Conversation, o.Agent)
	default:
		return fmt.Errorf("pega: %s: no such outcome", op)
	}
	return pegaError(op, err, convFields)
}

func (r *EngineRouter) shown(ctx context.Context, conv, agent string) error {
	c, err := r.e.GetConversation(ctx, conv)
	if err != nil {
		return err
	}
	// Held by the CSR already: the accept overtook the Offered, or this
	// is a repeat.
	if c.OfferedTo == agent || c.State == routing.StateAssigned && c.Agent == agent {
		return nil
	}
	return crmsync.Errorf(crmsync.ECONFLICT, "agent", "conversation %s is not offered to agent %s (it is %s)", conv, agent, c.State)
}

// End finishes the conversation. Pega sends Conversation-Ended whoever
// ended it and whenever, so the engine's state tells the cases apart: a
// conversation no CSR took yet (waiting, or offered) was left by the
// customer and is cancelled; a held one ends, freeing its CSR's capacity.
// A finished one is a repeat.
func (r *EngineRouter) End(ctx context.Context, ref Ref) error {
	if r.err != nil {
		return r.err
	}
	op := "end " + ref.Conversation
	c, err := r.e.GetConversation(ctx, ref.Conversation)
	if err != nil {
		return pegaError(op, err, convFields)
	}
	if c.State == routing.StateWaiting || c.State == routing.StateOffered {
		err = r.e.Cancel(ctx, ref.Conversation)
	} else {
		err = r.e.End(ctx, ref.Conversation)
	}
	return pegaError(op, err, convFields)
}

// LogOff logs the CSR off: offline, its offers back to their queues, and
// its conversations dealt with as routing.Config.LogOff says. A CSR
// already offline with nothing left, or one the engine never met, is
// logged off already: done, nothing written.
func (r *EngineRouter) LogOff(ctx context.Context, ref Ref) error {
	if r.err != nil {
		return r.err
	}
	op := "log off " + ref.Agent
	a, err := r.e.GetAgent(ctx, ref.Agent)
	switch {
	case crmsync.ErrorCode(err) == crmsync.ENOTFOUND:
		return nil
	case err != nil:
		return pegaError(op, err, agentFields)
	case a.Presence == routing.Offline && len(a.Offers) == 0 && len(a.Conversations) == 0:
		return nil
	}
	return pegaError(op, r.e.LogOff(ctx, ref.Agent), agentFields)
}

// Transfer maps a stage of a transfer:
//
//   - initiated: TransferToAgent or TransferToQueue from the CSR that holds
//     it (Ref.Agent, or the _transferred_from_agent). The target queue is
//     _transferred_to_queue, else _queue_name, else the conversation's own
//     queue (Pega's example names none). A conversation the target CSR
//     holds already is a repeat. A repeat after a CSR of the target queue
//     took it is refused (Fail): nothing tells it apart from a transfer the
//     engine never saw.
//   - accepted, declined, expired: Accept, Decline or Expire by the CSR
//     the engine offered it to. Pega's examples name that CSR in
//     _agent_name, or (declined and expired) in _transferred_from_agent
//     with the holder in _agent_name, so the CSR named that has the open
//     offer is the one meant.
//   - abandoned: Cancel; the customer left, the conversation ends.
func (r *EngineRouter) Transfer(ctx context.Context, t Transfer) error {
	if r.err != nil {
		return r.err
	}
	op := fmt.Sprintf("transfer to %s %s %s", t.Target, t.Stage, t.Conversation)
	var err error
	switch t.Stage {
	case StageInitiated:
		err = r.initiate(ctx, t)
	case StageAccepted:
		// Only the CSRs that may be the target: the holder's accept would
		// read as a repeat of its own.
		err = r.answer(ctx, t.Conversation, candidates(t.Agent, t.ToAgent), r.e.Accept)
	case StageDeclined:
		err = r.answer(ctx, t.Conversation, candidates(t.Agent, t.ToAgent, t.FromAgent), r.e.Decline)
	case StageExpired:
		err = r.answer(ctx, t.Conversation, candidates(t.Agent, t.ToAgent, t.FromAgent), r.e.Expire)
	case StageAbandoned:
		err = r.e.Cancel(ctx, t.Conversation)
	default:
		return fmt.Errorf("pega: %s: no such stage", op)
	}
	return pegaError(op, err, convFields)
}

func (r *EngineRouter) initiate(ctx context.Context, t Transfer) error {
	c, err := r.e.GetConversation(ctx, t.Conversation)
	if err != nil {
		return err
	}
	from := t.Agent
	if c.Agent != t.Agent && c.Agent == t.FromAgent {
		from = t.FromAgent
	}
	if t.Target == TargetAgent {
		if c.State == routing.StateAssigned && c.Agent == t.ToAgent {
			return nil // accepted already
		}
		return r.e.TransferToAgent(ctx, t.Conversation, from, t.ToAgent)
	}
	q := t.ToQueue
	if q == "" {
		q = t.Queue
	}
	if q == "" {
		q = c.Queue
	}
	return r.withQueues(ctx, []string{q}, func() error { return r.e.TransferToQueue(ctx, t.Conversation, from, q) })
}

// answer applies op (Accept, Decline or Expire) for the CSR among agents
// that has the conversation's open offer. When none has, one of them
// answered already (the engine takes a repeat as done) or the news does
// not fit: each is tried, and the first conflict is the answer. A try
// that does not fit changes nothing.
func (r *EngineRouter) answer(ctx context.Context, conv string, agents []string, op func(context.Context, string, string) error) error {
	c, err := r.e.GetConversation(ctx, conv)
	if err != nil {
		return err
	}
	if slices.Contains(agents, c.OfferedTo) {
		return op(ctx, conv, c.OfferedTo)
	}
	var first error
	for _, a := range agents {
		err := op(ctx, conv, a)
		if err == nil || crmsync.ErrorCode(err) != crmsync.ECONFLICT {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// candidates are the distinct, non-empty ids, in order.
func candidates(ids ...string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Requeue is the engine's Requeue, or PriorityRequeue to the head of the
// queue. A conversation already waiting stays where it is (a normal
// requeue) or moves to the head (a priority one); a repeat changes
// nothing.
func (r *EngineRouter) Requeue(ctx context.Context, q Requeue) error {
	if r.err != nil {
		return r.err
	}
	var err error
	if q.Priority {
		err = r.e.PriorityRequeue(ctx, q.Conversation)
	} else {
		err = r.e.Requeue(ctx, q.Conversation)
	}
	return pegaError("requeue "+q.Conversation, err, convFields)
}

// Resume routes a long-running conversation again, as a new conversation
// (same id) whose preferred agent is the CSR who had it (Ref.Agent), in
// Ref.Queue or else the queue it had, with the priority and attributes it
// had. A conversation still routed (waiting, offered, or held: the CSR has
// it still) is left as it is: a repeat, or nothing to route.
func (r *EngineRouter) Resume(ctx context.Context, ref Ref) error {
	if r.err != nil {
		return r.err
	}
	op := "resume " + ref.Conversation
	old, err := r.e.GetConversation(ctx, ref.Conversation)
	switch {
	case err == nil && !old.State.Terminal():
		return nil
	case crmsync.ErrorCode(err) == crmsync.ENOTFOUND:
		old = nil // forgotten, or never seen: routed afresh
	case err != nil:
		return pegaError(op, err, convFields)
	}
	n := routing.NewConversation{
		ID:             ref.Conversation,
		Queue:          ref.Queue,
		Channel:        r.cfg.Channel,
		PreferredAgent: ref.Agent,
		Source:         SourceName,
		Session:        sessionOf(ref.Conversation),
	}
	var had map[string]string
	if old != nil {
		had = old.Attributes
		n.Priority = old.Priority
		if n.Queue == "" {
			n.Queue = old.Queue
		}
	}
	if n.Queue == "" {
		return crmsync.Errorf(crmsync.EINVALID, fieldName[fQueue], "is required to route conversation %s again: its queue is not known any more", ref.Conversation)
	}
	n.Attributes = attributes(had, ref.Source, ref.Extra)
	_, err = r.create(ctx, n)
	if crmsync.ErrorCode(err) == crmsync.ECONFLICT {
		return nil // routed again meanwhile, by a concurrent repeat
	}
	return pegaError(op, err, convFields)
}

// convFields and agentFields name the engine's error fields as Pega spells
// them, so a _reason or a 400 points at what Pega sent.
var (
	convFields = map[string]string{
		"id":              fieldName[fConversation],
		"queue":           fieldName[fQueue],
		"channel":         fieldName[fQueue],
		"agent":           fieldName[fAgent],
		"preferred_agent": fieldName[fPreferredAgent],
		"to_agent":        fieldName[fToAgent],
		"to_queue":        fieldName[fToQueue],
	}
	agentFields = map[string]string{
		"id":     fieldName[fAgent],
		"queues": fieldName[fQueue],
	}
)

// pegaError wraps an engine error with op's context. A refusal keeps its
// code and message and gets Pega's field name; a queue that does not serve
// the channel is taken as no such queue for Pega (ENOTFOUND: route_not_found,
// or Fail), since Pega did nothing wrong in naming it.
func pegaError(op string, err error, fields map[string]string) error {
	var e *crmsync.Error
	if err == nil || !errors.As(err, &e) {
		if err == nil {
			return nil
		}
		return fmt.Errorf("pega: %s: %w", op, err)
	}
	switch e.Code {
	case crmsync.EINVALID, crmsync.ENOTFOUND, crmsync.ECONFLICT:
	default:
		return fmt.Errorf("pega: %s: %w", op, err)
	}
	out := *e
	if out.Code == crmsync.EINVALID && (e.Field == "channel" || e.Field == "to_queue") {
		out.Code = crmsync.ENOTFOUND
	}
	field := e.Field
	if i := strings.IndexByte(field, '['); i > 0 {
		field = field[:i]
	}
	if f, ok := fields[field]; ok {
		out.Field = f
	}
	return fmt.Errorf("pega: %s: %w", op, &out)
}

// isError reports whether err is a *crmsync.Error with code and field.
func isError(err error, code, field string) bool {
	var e *crmsync.Error
	return errors.As(err, &e) && e.Code == code && e.Field == field
}

// The engine's limits on attributes (routing/validate.go).
const (
	maxAttributes   = 64
	maxAttrKeyLen   = 128
	maxAttrValueLen = 4096
)

// attributes are a conversation's attributes: had (those it had before),
// then Pega's extra keys, then source as AttrSource. An extra string is
// kept as its text; any other JSON value, or a string with control
// characters, as its JSON. Extras are optional details (a customer's name)
// that must not make routing fail, so those beyond the engine's limits are
// left out rather than refused.
func attributes(had map[string]string, source string, extra map[string]json.RawMessage) map[string]string {
	attrs := make(map[string]string, len(had)+len(extra)+1)
	maps.Copy(attrs, had)
	room := maxAttributes - 1 // AttrSource's place
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if _, ok := attrs[k]; !ok && len(attrs) >= room {
			continue
		}
		if k == "" || k == AttrSource || !cleanText(k, maxAttrKeyLen) {
			continue
		}
		if v, ok := attrValue(extra[k]); ok {
			attrs[k] = v
		}
	}
	if source != "" {
		attrs[AttrSource] = source
	}
	return attrs
}

func attrValue(raw json.RawMessage) (string, bool) {
	if string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && cleanText(s, maxAttrValueLen) {
		return s, true
	}
	if cleanText(string(raw), maxAttrValueLen) {
		return string(raw), true
	}
	return "", false
}

// cleanText is what the engine accepts as an attribute key or value.
func cleanText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// sessionOf is the crmsync session of a Pega conversation: Pega routes
// chats, and its conversation id becomes the chat's id when it fits the
// session id rule (otherwise the conversation is routed without CRM work).
func sessionOf(conversation string) string {
	k := crmsync.SessionKey{Kind: crmsync.KindChat, ID: conversation}
	if crmsync.ValidateID(conversation) != nil {
		return ""
	}
	return k.String()
}

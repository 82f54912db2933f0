package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// source marks the conversations created through this API in the outbox.
const source = "api"

type conversationView struct {
	ID             string            `json:"id"`
	Queue          string            `json:"queue"`
	Channel        string            `json:"channel"`
	Priority       bool              `json:"priority"`
	PreferredAgent string            `json:"preferred_agent,omitempty"`
	Attributes     map[string]string `json:"attributes"`
	Session        string            `json:"session,omitempty"`
	Source         string            `json:"source,omitempty"`
	State          string            `json:"state"`
	Agent          string            `json:"agent,omitempty"`
	OfferedTo      string            `json:"offered_to,omitempty"`
	OfferExpires   *time.Time        `json:"offer_expires,omitempty"`
	Transfer       *transferView     `json:"transfer,omitempty"`
	CreatedAt      *time.Time        `json:"created_at,omitempty"`
	EnqueuedAt     *time.Time        `json:"enqueued_at,omitempty"`
	EndedAt        *time.Time        `json:"ended_at,omitempty"`
	// Position is 0 (left out) unless the conversation waits.
	Position int `json:"position,omitempty"`
	// WaitEstimateSeconds is left out while the engine has no estimate,
	// which is not the same as an estimate of zero.
	WaitEstimateSeconds *int64 `json:"wait_estimate_seconds,omitempty"`
	Seq                 int64  `json:"seq"`
}

type transferView struct {
	ToAgent string `json:"to_agent,omitempty"`
	ToQueue string `json:"to_queue,omitempty"`
}

func viewConversation(c *routing.Conversation) conversationView {
	v := conversationView{
		ID: c.ID, Queue: c.Queue, Channel: c.Channel, Priority: c.Priority, PreferredAgent: c.PreferredAgent,
		Attributes: c.Attributes, Session: c.Session, Source: c.Source,
		State: string(c.State), Agent: c.Agent, OfferedTo: c.OfferedTo, OfferExpires: timePtr(c.OfferExpires),
		CreatedAt: timePtr(c.CreatedAt), EnqueuedAt: timePtr(c.EnqueuedAt), EndedAt: timePtr(c.EndedAt),
		Position: c.Position, Seq: c.Seq,
	}
	if v.Attributes == nil {
		v.Attributes = map[string]string{}
	}
	if c.Transfer != nil {
		v.Transfer = &transferView{ToAgent: c.Transfer.ToAgent, ToQueue: c.Transfer.ToQueue}
	}
	if c.HasWaitEstimate {
		s := seconds(c.WaitEstimate)
		v.WaitEstimateSeconds = &s
	}
	return v
}

// seconds rounds up, so that a wait of a few hundred milliseconds is not
// shown as none.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func (h *Handler) createConversation(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	b := readBody(w, r, false, "id", "queue", "channel", "priority", "preferred_agent", "attributes", "session")
	b.require("id")
	b.require("queue")
	b.require("channel")
	n := routing.NewConversation{
		ID:             b.id("id"),
		Queue:          b.id("queue"),
		Channel:        b.id("channel"),
		Priority:       b.boolean("priority"),
		PreferredAgent: b.id("preferred_agent"),
		Attributes:     b.stringMap("attributes"),
		Session:        b.str("session"),
		Source:         source,
	}
	if b.err != nil {
		return b.err
	}
	c, err := h.engine.CreateConversation(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/routing/conversations/"+c.ID)
	return write(w, http.StatusCreated, viewConversation(c))
}

// conversation reads the path's conversation.
func (h *Handler) conversation(ctx context.Context, id string) (*routing.Conversation, error) {
	c, err := h.engine.GetConversation(ctx, id)
	if err != nil {
		return nil, renamed(err, conversationFields)
	}
	return c, nil
}

// answerConversation reads the conversation back: the answer to every
// change.
func (h *Handler) answerConversation(w http.ResponseWriter, r *http.Request, id string) error {
	c, err := h.conversation(r.Context(), id)
	if err != nil {
		return err
	}
	return write(w, http.StatusOK, viewConversation(c))
}

// getConversation: the system reads any conversation, an agent one that
// is offered to it, held by it or being transferred to it.
func (h *Handler) getConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "conversation")
	if err != nil {
		return err
	}
	if _, _, err := h.whoAmI(r); err != nil {
		return err
	}
	c, err := h.conversation(r.Context(), id)
	if err != nil {
		return err
	}
	var transferTo string
	if c.Transfer != nil {
		transferTo = c.Transfer.ToAgent
	}
	agent, system, err := h.whoAmI(r, c.OfferedTo, c.Agent, transferTo)
	if err != nil {
		return err
	}
	if !system && agent == "" {
		return crmsync.Errorf(crmsync.EFORBIDDEN, "", "conversation %s is neither offered to nor held by the agent of this token", id)
	}
	return write(w, http.StatusOK, viewConversation(c))
}

// actor is the agent a request acts as: the one named in field, whose
// token (or the system's) it must carry; or, when field is left out and
// the token is an agent's, that agent, found among the agents the
// conversation names now. notYours is the state conflict to report when
// the token is none of theirs.
func (h *Handler) actor(r *http.Request, b *body, field string, c *routing.Conversation, notYours string, candidates ...string) (string, error) {
	if named := b.id(field); b.err != nil {
		return "", b.err
	} else if named != "" {
		if _, err := h.asAgent(r, named); err != nil {
			return "", err
		}
		return named, nil
	}
	agent, system, err := h.whoAmI(r, candidates...)
	switch {
	case err != nil:
		return "", err
	case system:
		return "", crmsync.Errorf(crmsync.EINVALID, field, "is required with an API token")
	case agent == "":
		return "", crmsync.Errorf(crmsync.ECONFLICT, field, "conversation %s is not %s the agent of this token; it is %s", c.ID, notYours, c.State)
	}
	return agent, nil
}

// offerAction is accept and decline: the acting agent must hold the
// offer, which the engine checks in the same step as the change.
func (h *Handler) offerAction(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, conv, agent string) error) error {
	id, err := pathID(r, "conversation")
	if err != nil {
		return err
	}
	if _, _, err := h.whoAmI(r); err != nil {
		return err
	}
	b := readBody(w, r, true, "agent")
	if b.err != nil {
		return b.err
	}
	c, err := h.conversation(r.Context(), id)
	if err != nil {
		return err
	}
	agent, err := h.actor(r, b, "agent", c, "offered to", c.OfferedTo, c.Agent)
	if err != nil {
		return err
	}
	if err := do(r.Context(), id, agent); err != nil {
		return renamed(err, conversationFields)
	}
	return h.answerConversation(w, r, id)
}

func (h *Handler) accept(w http.ResponseWriter, r *http.Request) error {
	return h.offerAction(w, r, h.engine.Accept)
}

func (h *Handler) decline(w http.ResponseWriter, r *http.Request) error {
	return h.offerAction(w, r, h.engine.Decline)
}

// transfer starts a transfer by the holder ("from", or the agent of the
// token) to an agent or to a queue.
func (h *Handler) transfer(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "conversation")
	if err != nil {
		return err
	}
	if _, _, err := h.whoAmI(r); err != nil {
		return err
	}
	b := readBody(w, r, false, "from", "to_agent", "to_queue")
	toAgent, toQueue := b.id("to_agent"), b.id("to_queue")
	switch {
	case b.err != nil:
		return b.err
	case toAgent != "" && toQueue != "":
		return crmsync.Errorf(crmsync.EINVALID, "to_queue", "give to_agent or to_queue, not both")
	case toAgent == "" && toQueue == "":
		return crmsync.Errorf(crmsync.EINVALID, "to_agent", "give to_agent or to_queue")
	}
	c, err := h.conversation(r.Context(), id)
	if err != nil {
		return err
	}
	var holder string
	if c.State == routing.StateAssigned {
		holder = c.Agent
	}
	from, err := h.actor(r, b, "from", c, "held by", holder)
	if err != nil {
		return err
	}
	if toAgent != "" {
		err = h.engine.TransferToAgent(r.Context(), id, from, toAgent)
	} else {
		err = h.engine.TransferToQueue(r.Context(), id, from, toQueue)
	}
	if err != nil {
		return renamed(err, map[string]string{"id": "conversation", "agent": "from"})
	}
	return h.answerConversation(w, r, id)
}

// requeue puts the conversation back in its queue; with priority, at the
// head of the line.
func (h *Handler) requeue(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "conversation")
	if err != nil {
		return err
	}
	b := readBody(w, r, true, "priority")
	head := b.boolean("priority")
	if b.err != nil {
		return b.err
	}
	if head {
		err = h.engine.PriorityRequeue(r.Context(), id)
	} else {
		err = h.engine.Requeue(r.Context(), id)
	}
	if err != nil {
		return renamed(err, conversationFields)
	}
	return h.answerConversation(w, r, id)
}

func (h *Handler) end(w http.ResponseWriter, r *http.Request) error {
	return h.finish(w, r, h.engine.End)
}

// cancel: the customer left.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) error {
	return h.finish(w, r, h.engine.Cancel)
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, conv string) error) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "conversation")
	if err != nil {
		return err
	}
	if b := readBody(w, r, true); b.err != nil {
		return b.err
	}
	if err := do(r.Context(), id); err != nil {
		return renamed(err, conversationFields)
	}
	return h.answerConversation(w, r, id)
}

package httpapi

import (
	"net/http"
	"time"

	"github.com/crmsync/crmsync/routing"
)

type agentView struct {
	ID            string         `json:"id"`
	Presence      string         `json:"presence"`
	Queues        []string       `json:"queues"`
	Capacity      map[string]int `json:"capacity"`
	Load          map[string]int `json:"load"`
	LastHeartbeat *time.Time     `json:"last_heartbeat,omitempty"`
	ExpiredInRow  int            `json:"expired_in_row"`
	Offers        []offerView    `json:"offers"`
	Conversations []string       `json:"conversations"`
}

type offerView struct {
	Conversation string    `json:"conversation"`
	Queue        string    `json:"queue"`
	Channel      string    `json:"channel"`
	ExpiresAt    time.Time `json:"expires_at"`
	Transfer     bool      `json:"transfer"`
	FromAgent    string    `json:"from_agent,omitempty"`
}

func viewAgent(a *routing.Agent) agentView {
	v := agentView{
		ID: a.ID, Presence: string(a.Presence), Queues: a.Queues, Capacity: a.Capacity, Load: a.Load,
		LastHeartbeat: timePtr(a.LastHeartbeat), ExpiredInRow: a.ExpiredInRow,
		Offers: make([]offerView, 0, len(a.Offers)), Conversations: a.Conversations,
	}
	for _, o := range a.Offers {
		v.Offers = append(v.Offers, offerView{
			Conversation: o.Conversation, Queue: o.Queue, Channel: o.Channel,
			ExpiresAt: o.ExpiresAt.UTC(), Transfer: o.Transfer, FromAgent: o.FromAgent,
		})
	}
	if v.Queues == nil {
		v.Queues = []string{}
	}
	if v.Conversations == nil {
		v.Conversations = []string{}
	}
	if v.Capacity == nil {
		v.Capacity = map[string]int{}
	}
	if v.Load == nil {
		v.Load = map[string]int{}
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// agentRoute checks the path's agent and the credential for it.
func (h *Handler) agentRoute(r *http.Request) (string, error) {
	id, err := pathID(r, "agent")
	if err != nil {
		return "", err
	}
	if _, err := h.asAgent(r, id); err != nil {
		return "", err
	}
	return id, nil
}

// answerAgent reads the agent back: the answer to every change.
func (h *Handler) answerAgent(w http.ResponseWriter, r *http.Request, id string) error {
	a, err := h.engine.GetAgent(r.Context(), id)
	if err != nil {
		return renamed(err, agentFields)
	}
	return write(w, http.StatusOK, viewAgent(a))
}

func (h *Handler) getAgent(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	return h.answerAgent(w, r, id)
}

func presence(b *body, name string) routing.Presence {
	p := routing.Presence(b.str(name))
	switch p {
	case "", routing.Available, routing.Away, routing.Offline:
	default:
		b.fail(name, "want available, away or offline, got %q", truncate(string(p), 40))
	}
	return p
}

// putAgent creates the agent or replaces its capacities; queues and
// presence change only when given.
func (h *Handler) putAgent(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	b := readBody(w, r, false, "capacity", "queues", "presence")
	b.require("capacity")
	s := routing.AgentSpec{ID: id, Capacity: b.intMap("capacity"), Queues: b.ids("queues"), Presence: presence(b, "presence")}
	if b.err != nil {
		return b.err
	}
	if err := h.engine.PutAgent(r.Context(), s); err != nil {
		return renamed(err, agentFields)
	}
	return h.answerAgent(w, r, id)
}

func (h *Handler) putPresence(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	b := readBody(w, r, false, "presence")
	b.require("presence")
	p := presence(b, "presence")
	if b.err != nil {
		return b.err
	}
	if err := h.engine.SetPresence(r.Context(), id, p); err != nil {
		return renamed(err, agentFields)
	}
	return h.answerAgent(w, r, id)
}

// putCapacity changes the channels named and leaves the others.
func (h *Handler) putCapacity(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	b := readBody(w, r, false, "capacity")
	b.require("capacity")
	c := b.intMap("capacity")
	if b.err == nil && len(c) == 0 {
		b.fail("capacity", "must name at least one channel")
	}
	if b.err != nil {
		return b.err
	}
	if err := h.engine.SetCapacity(r.Context(), id, c); err != nil {
		return renamed(err, agentFields)
	}
	return h.answerAgent(w, r, id)
}

// heartbeat answers 204: a browser sends one every few seconds and needs
// nothing back.
func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	if b := readBody(w, r, true); b.err != nil {
		return b.err
	}
	if err := h.engine.Heartbeat(r.Context(), id); err != nil {
		return renamed(err, agentFields)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) joinQueues(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	b := readBody(w, r, false, "queues")
	b.require("queues")
	qs := b.ids("queues")
	if b.err == nil && len(qs) == 0 {
		b.fail("queues", "must name at least one queue")
	}
	if b.err != nil {
		return b.err
	}
	if err := h.engine.JoinQueues(r.Context(), id, qs...); err != nil {
		return renamed(err, agentFields)
	}
	return h.answerAgent(w, r, id)
}

func (h *Handler) leaveQueue(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	q, err := pathID(r, "queue")
	if err != nil {
		return err
	}
	if err := h.engine.LeaveQueues(r.Context(), id, q); err != nil {
		return renamed(err, map[string]string{"id": "agent", "queues[0]": "queue"})
	}
	return h.answerAgent(w, r, id)
}

func (h *Handler) logOff(w http.ResponseWriter, r *http.Request) error {
	id, err := h.agentRoute(r)
	if err != nil {
		return err
	}
	if b := readBody(w, r, true); b.err != nil {
		return b.err
	}
	if err := h.engine.LogOff(r.Context(), id); err != nil {
		return renamed(err, agentFields)
	}
	return h.answerAgent(w, r, id)
}

// issueToken is the one place an agent's token is shown. The token is
// stateless, so the agent need not exist yet (Pega may create it later);
// the answer must not be cached anywhere on the way.
func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "agent")
	if err != nil {
		return err
	}
	if b := readBody(w, r, true); b.err != nil {
		return b.err
	}
	w.Header().Set("Cache-Control", "no-store")
	return write(w, http.StatusOK, map[string]string{"agent": id, "token": h.tokens.Issue(id)})
}

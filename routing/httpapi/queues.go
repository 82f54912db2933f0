package httpapi

import (
	"net/http"

	"github.com/crmsync/crmsync/routing"
)

// queueView is a queue as answered. Durations are Go duration strings,
// as a PUT takes them.
type queueView struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Priority      int            `json:"priority"`
	OfferTimeout  string         `json:"offer_timeout"`
	MaxWait       string         `json:"max_wait"`
	PreferredWait string         `json:"preferred_wait"`
	Channels      []string       `json:"channels"`
	Waiting       map[string]int `json:"waiting"`
	Agents        int            `json:"agents"`
}

func viewQueue(q *routing.Queue) queueView {
	v := queueView{
		ID: q.ID, Name: q.Name, Priority: q.Priority,
		OfferTimeout: q.OfferTimeout.String(), MaxWait: q.MaxWait.String(), PreferredWait: q.PreferredWait.String(),
		Channels: q.Channels, Waiting: q.Waiting, Agents: q.Agents,
	}
	if v.Channels == nil {
		v.Channels = []string{}
	}
	if v.Waiting == nil {
		v.Waiting = map[string]int{}
	}
	return v
}

func (h *Handler) listQueues(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	qs, err := h.engine.ListQueues(r.Context())
	if err != nil {
		return err
	}
	out := make([]queueView, 0, len(qs))
	for i := range qs {
		out = append(out, viewQueue(&qs[i]))
	}
	return write(w, http.StatusOK, map[string]any{"queues": out})
}

func (h *Handler) getQueue(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "queue")
	if err != nil {
		return err
	}
	q, err := h.engine.GetQueue(r.Context(), id)
	if err != nil {
		return renamed(err, queueFields)
	}
	return write(w, http.StatusOK, viewQueue(q))
}

// putQueue creates the queue or replaces its settings: fields left out
// take their zero value, as the engine documents for each.
func (h *Handler) putQueue(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "queue")
	if err != nil {
		return err
	}
	b := readBody(w, r, false, "name", "priority", "offer_timeout", "max_wait", "preferred_wait", "channels")
	b.require("channels")
	q := routing.Queue{
		ID:            id,
		Name:          b.str("name"),
		Priority:      b.integer("priority"),
		OfferTimeout:  b.duration("offer_timeout"),
		MaxWait:       b.duration("max_wait"),
		PreferredWait: b.duration("preferred_wait"),
		Channels:      b.ids("channels"),
	}
	if b.err != nil {
		return b.err
	}
	if err := h.engine.PutQueue(r.Context(), q); err != nil {
		return renamed(err, queueFields)
	}
	got, err := h.engine.GetQueue(r.Context(), id)
	if err != nil {
		return renamed(err, queueFields)
	}
	return write(w, http.StatusOK, viewQueue(got))
}

func (h *Handler) deleteQueue(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	id, err := pathID(r, "queue")
	if err != nil {
		return err
	}
	if err := h.engine.DeleteQueue(r.Context(), id); err != nil {
		return renamed(err, queueFields)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

// MaxBodyBytes caps every request body; the largest legitimate one is a
// request with its attributes, a few kilobytes.
const MaxBodyBytes = 64 << 10

// Handler is pull mode's HTTP API under /v1/routing. The system (an API
// token) may do anything; an agent's own token may subscribe that agent,
// read the snapshot, changes and requests of the Lists it subscribes to,
// and join, leave and close requests as itself. Managing Lists and
// publishing requests or customer messages take the system's token.
//
// An agent token is signed over its agent's id and does not name it, so
// the handler learns whose it is from what the request names (the path,
// the body's "agent", the "agent" query parameter) or, failing that, by
// trying the agents the request concerns: the subscribers of the List,
// the agents in the request.
//
// Every request is checked whole (path, body, credential) before the
// Store is called, so a 4xx leaves nothing changed.
type Handler struct {
	s    *Store
	auth *access.Authenticator
	log  *slog.Logger
}

// NewHandler returns the API over s. auth tells the system from an agent;
// logger gets the requests that failed on our side (nil discards them).
func NewHandler(s *Store, auth *access.Authenticator, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{s: s, auth: auth, log: logger}
}

// Register hands every route to handle as a Go 1.22 mux pattern.
func (h *Handler) Register(handle func(pattern string, h http.Handler)) {
	route := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		handle(pattern, h.serve(f))
	}
	route("GET /v1/routing/lists", h.listLists)
	route("PUT /v1/routing/lists/{list}", h.putList)
	route("GET /v1/routing/lists/{list}", h.getList)
	route("DELETE /v1/routing/lists/{list}", h.deleteList)
	route("GET /v1/routing/lists/{list}/snapshot", h.snapshot)
	route("GET /v1/routing/lists/{list}/changes", h.changes)
	route("POST /v1/routing/lists/{list}/requests", h.publish)
	route("GET /v1/routing/requests/{id}", h.getRequest)
	route("POST /v1/routing/requests/{id}/messages", h.message)
	route("POST /v1/routing/requests/{id}/join", h.join)
	route("POST /v1/routing/requests/{id}/leave", h.leave)
	route("POST /v1/routing/requests/{id}/close", h.close)
	route("GET /v1/routing/agents/{agent}/lists", h.subscriptions)
	route("PUT /v1/routing/agents/{agent}/lists/{list}", h.subscribe)
	route("DELETE /v1/routing/agents/{agent}/lists/{list}", h.unsubscribe)
}

// serve turns a handler's error into the JSON error answer.
func (h *Handler) serve(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := access.Token(r)
		if tok == "" {
			httpjson.Error(w, r, h.log, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "a bearer token is required"))
			return
		}
		// A token that is neither the system's nor shaped like an agent's
		// is turned away before anything is read.
		if c, err := h.auth.Caller(r, ""); (err != nil || !c.System) && !access.LooksLikeAgentToken(tok) {
			httpjson.Error(w, r, h.log, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here"))
			return
		}
		if err := f(w, r); err != nil {
			httpjson.Error(w, r, h.log, err)
		}
	})
}

// ---------------------------------------------------------------------
// Lists

func (h *Handler) listLists(w http.ResponseWriter, r *http.Request) error {
	if err := h.system(r); err != nil {
		return err
	}
	ls, err := h.s.ListLists(r.Context())
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"lists": ls})
	return nil
}

func (h *Handler) putList(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if err := h.system(r); err != nil {
		return err
	}
	var in struct {
		ID       *string  `json:"id"`
		Name     string   `json:"name"`
		Channels []string `json:"channels"`
	}
	if err := decode(w, r, &in, false); err != nil {
		return err
	}
	if in.ID != nil && *in.ID != id {
		return crmsync.Errorf(crmsync.EINVALID, "id", "is %q, but the path names list %q", *in.ID, id)
	}
	l := List{ID: id, Name: in.Name, Channels: in.Channels}
	if l.Channels == nil {
		l.Channels = []string{}
	}
	created, err := h.s.putList(r.Context(), l)
	if err != nil {
		return renamed(err, listFields)
	}
	got, err := h.s.GetList(r.Context(), id)
	if err != nil {
		return renamed(err, listFields)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpjson.Write(w, status, got)
	return nil
}

func (h *Handler) getList(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if err := h.system(r); err != nil {
		return err
	}
	l, err := h.s.GetList(r.Context(), id)
	if err != nil {
		return renamed(err, listFields)
	}
	httpjson.Write(w, http.StatusOK, l)
	return nil
}

func (h *Handler) deleteList(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if err := h.system(r); err != nil {
		return err
	}
	if err := h.s.DeleteList(r.Context(), id); err != nil {
		return renamed(err, listFields)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) snapshot(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if err := h.reader(r, id); err != nil {
		return err
	}
	snap, err := h.s.Snapshot(r.Context(), id)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, snap)
	return nil
}

func (h *Handler) changes(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "list")
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("after")
	if q == "" {
		return crmsync.Errorf(crmsync.EINVALID, "after", "is required: the seq of the snapshot or change applied last")
	}
	after, err := strconv.ParseInt(q, 10, 64)
	if err != nil || after < 0 {
		return crmsync.Errorf(crmsync.EINVALID, "after", "must be a whole number of 0 or more, got %q", truncate(q, 40))
	}
	if err := h.reader(r, id); err != nil {
		return err
	}
	cs, err := h.s.Changes(r.Context(), id, after)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"list": id, "after": after, "changes": cs})
	return nil
}

// ---------------------------------------------------------------------
// requests

func (h *Handler) publish(w http.ResponseWriter, r *http.Request) error {
	list, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if err := h.system(r); err != nil {
		return err
	}
	var in struct {
		ID         string                     `json:"id"`
		Channel    string                     `json:"channel"`
		Session    string                     `json:"session"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := decode(w, r, &in, false); err != nil {
		return err
	}
	attrs, err := stringMap("attributes", in.Attributes)
	if err != nil {
		return err
	}
	req, created, err := h.s.publish(r.Context(), NewRequest{ID: in.ID, List: list, Channel: in.Channel,
		Session: in.Session, Attributes: attrs}, false)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpjson.Write(w, status, req)
	return nil
}

func (h *Handler) getRequest(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// The request is read first: who may see it depends on its List and
	// its agents. Its existence is all a stranger learns, from the 404.
	req, err := h.s.GetRequest(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := h.actor(r, req, r.URL.Query().Get("agent")); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, req)
	return nil
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := h.system(r); err != nil {
		return err
	}
	var in struct{}
	if err := decode(w, r, &in, true); err != nil {
		return err
	}
	req, err := h.s.Message(r.Context(), id)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, req)
	return nil
}

func (h *Handler) join(w http.ResponseWriter, r *http.Request) error {
	return h.agentAction(w, r, false, func(id, agent string) (*Request, error) {
		return h.s.Join(r.Context(), id, agent)
	})
}

func (h *Handler) leave(w http.ResponseWriter, r *http.Request) error {
	return h.agentAction(w, r, false, func(id, agent string) (*Request, error) {
		return h.s.Leave(r.Context(), id, agent)
	})
}

func (h *Handler) close(w http.ResponseWriter, r *http.Request) error {
	return h.agentAction(w, r, true, func(id, agent string) (*Request, error) {
		return h.s.Close(r.Context(), id, agent)
	})
}

// agentAction reads {"agent": ...} and runs do as that agent. The agent
// may be left out by an agent's token (it acts as itself) and, when
// systemMay, by the system (acting as itself, agent "").
func (h *Handler) agentAction(w http.ResponseWriter, r *http.Request, systemMay bool, do func(id, agent string) (*Request, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Agent string `json:"agent"`
	}
	if err := decode(w, r, &in, true); err != nil {
		return err
	}
	if in.Agent != "" {
		if err := checkID("agent", in.Agent); err != nil {
			return err
		}
		if _, err := h.asAgent(r, in.Agent); err != nil {
			return err
		}
	} else {
		req, err := h.s.GetRequest(r.Context(), id)
		if err != nil {
			return err
		}
		c, err := h.actor(r, req, "")
		if err != nil {
			return err
		}
		if c.System && !systemMay {
			return crmsync.Errorf(crmsync.EINVALID, "agent", "is required: the agent who acts")
		}
		in.Agent = c.Agent
	}
	req, err := do(id, in.Agent)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, req)
	return nil
}

// ---------------------------------------------------------------------
// subscriptions

func (h *Handler) subscriptions(w http.ResponseWriter, r *http.Request) error {
	agent, err := pathID(r, "agent")
	if err != nil {
		return err
	}
	if _, err := h.asAgent(r, agent); err != nil {
		return err
	}
	ls, err := h.s.Subscriptions(r.Context(), agent)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"agent": agent, "lists": ls})
	return nil
}

func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) error {
	return h.subscription(w, r, h.s.Subscribe)
}

func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) error {
	return h.subscription(w, r, h.s.Unsubscribe)
}

func (h *Handler) subscription(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, agent string, lists ...string) error) error {
	agent, err := pathID(r, "agent")
	if err != nil {
		return err
	}
	list, err := pathID(r, "list")
	if err != nil {
		return err
	}
	if _, err := h.asAgent(r, agent); err != nil {
		return err
	}
	if err := do(r.Context(), agent, list); err != nil {
		return renamed(err, map[string]string{"lists[0]": "list"})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---------------------------------------------------------------------
// credentials

// system lets only the system through.
func (h *Handler) system(r *http.Request) error {
	c, err := h.auth.Caller(r, "")
	if err == nil && c.System {
		return nil
	}
	if access.LooksLikeAgentToken(access.Token(r)) {
		return crmsync.Errorf(crmsync.EFORBIDDEN, "", "an agent token may not do this; it needs an API token")
	}
	if err == nil {
		err = crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here")
	}
	return err
}

// asAgent lets through the system and agent's own token.
func (h *Handler) asAgent(r *http.Request, agent string) (access.Caller, error) {
	c, err := h.auth.Caller(r, agent)
	if err == nil && c.MayActAs(agent) {
		return c, nil
	}
	if err == nil || access.LooksLikeAgentToken(access.Token(r)) {
		return access.Caller{}, crmsync.Errorf(crmsync.EFORBIDDEN, "", "the token is not agent %s's", agent)
	}
	return access.Caller{}, err
}

// reader lets through the system and the agents subscribed to list. An
// agent token does not name its agent, so the agent is the one the
// "agent" query parameter names, or else found among the subscribers.
func (h *Handler) reader(r *http.Request, list string) error {
	if c, err := h.auth.Caller(r, ""); err == nil && c.System {
		return nil
	}
	if a := r.URL.Query().Get("agent"); a != "" {
		if err := checkID("agent", a); err != nil {
			return err
		}
		if _, err := h.asAgent(r, a); err != nil {
			return err
		}
		ok, err := h.s.subscribed(r.Context(), a, list)
		if err != nil {
			return err
		}
		if !ok {
			return crmsync.Errorf(crmsync.EFORBIDDEN, "", "agent %s does not subscribe to list %s", a, list)
		}
		return nil
	}
	subs, err := h.s.subscribers(r.Context(), list)
	if err != nil {
		return err
	}
	if _, err := h.whoAmI(r, subs); err != nil {
		return err
	}
	return nil
}

// actor finds who calls about req: the system, or the agent of the
// token, which must be named (the "agent" query parameter, or hint) or be
// one of those the request concerns: the agents in it and its List's
// subscribers.
func (h *Handler) actor(r *http.Request, req *Request, hint string) (access.Caller, error) {
	if c, err := h.auth.Caller(r, ""); err == nil && c.System {
		return c, nil
	}
	if hint != "" {
		if err := checkID("agent", hint); err != nil {
			return access.Caller{}, err
		}
		return h.asAgent(r, hint)
	}
	subs, err := h.s.subscribers(r.Context(), req.List)
	if err != nil {
		return access.Caller{}, err
	}
	a, err := h.whoAmI(r, append(slices.Clone(req.Agents), subs...))
	if err != nil {
		return access.Caller{}, err
	}
	return access.Caller{Agent: a}, nil
}

// whoAmI finds which of candidates holds the request's agent token.
// EFORBIDDEN when a token of an agent's form belongs to none of them;
// EUNAUTHORIZED when the token is no credential at all.
func (h *Handler) whoAmI(r *http.Request, candidates []string) (string, error) {
	for _, a := range candidates {
		if c, err := h.auth.Caller(r, a); err == nil && c.Agent == a {
			return a, nil
		}
	}
	if access.LooksLikeAgentToken(access.Token(r)) {
		return "", crmsync.Errorf(crmsync.EFORBIDDEN, "", "this agent may not do this here")
	}
	return "", crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here")
}

// ---------------------------------------------------------------------
// input

// pathID reads and checks the path parameter name.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if err := routing.ValidateID(id); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, name, "%v", err)
	}
	return id, nil
}

// decode reads r's body, one JSON object with none but v's fields, into
// v. An empty body is an empty object when optional.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return crmsync.Errorf(crmsync.ETOOLARGE, "body", "is larger than %d bytes", MaxBodyBytes)
		}
		return crmsync.Errorf(crmsync.EINVALID, "body", "could not be read")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		if optional {
			return nil
		}
		return crmsync.Errorf(crmsync.EINVALID, "body", "is empty; want a JSON object")
	}
	if raw[0] != '{' {
		return crmsync.Errorf(crmsync.EINVALID, "body", "want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return crmsync.Errorf(crmsync.EINVALID, "body", "holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON (offset %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON (it ends too soon)")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return crmsync.Errorf(crmsync.EINVALID, field, "must not be a JSON %s", te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return crmsync.Errorf(crmsync.EINVALID, name, "is not a known field")
	}
	return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON")
}

// stringMap decodes an object of strings one value at a time, so an
// error names the key (attributes.n) where encoding/json names the map.
func stringMap(field string, raw map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		var v string
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return nil, crmsync.Errorf(crmsync.EINVALID, field+"."+k, "must be a string")
		}
		out[k] = v
	}
	return out, nil
}

// renamed returns err with its field renamed as fields says: the Store
// names its arguments (id), the API its path parameters (list).
func renamed(err error, fields map[string]string) error {
	var e *crmsync.Error
	if !errors.As(err, &e) {
		return err
	}
	if to, ok := fields[e.Field]; ok {
		return &crmsync.Error{Code: e.Code, Field: to, Message: e.Message}
	}
	return err
}

var listFields = map[string]string{"id": "list"}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

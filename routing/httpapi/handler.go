// Package httpapi is the HTTP API of push-mode routing under /v1/routing:
// queues, agents (presence, capacity, queues, heartbeats, tokens) and
// conversations (create, read, accept, decline, transfer, requeue, end,
// cancel), over a *routing.Engine.
//
// Two kinds of caller use it: the system, with an API token, which may do
// anything; and an agent's browser, with that agent's own token, which may
// act only as that agent. Every request is checked completely (path ids,
// body fields, credential) before the engine is called, so a 4xx never
// leaves anything changed.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

// Handler serves the routing API. Build it with NewHandler and add its
// routes to a mux with Register.
type Handler struct {
	engine *routing.Engine
	auth   *access.Authenticator
	tokens *access.AgentTokens
	log    *slog.Logger
}

// NewHandler returns the API over e. auth tells the system from an agent;
// tokens issues agents' tokens (nil turns the token route off). logger
// gets the requests that failed on our side; nil discards them.
func NewHandler(e *routing.Engine, auth *access.Authenticator, tokens *access.AgentTokens, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{engine: e, auth: auth, tokens: tokens, log: logger}
}

// Register hands every route to handle as a Go 1.22 mux pattern.
func (h *Handler) Register(handle func(pattern string, h http.Handler)) {
	route := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		handle(pattern, h.serve(f))
	}
	route("GET /v1/routing/queues", h.listQueues)
	route("GET /v1/routing/queues/{queue}", h.getQueue)
	route("PUT /v1/routing/queues/{queue}", h.putQueue)
	route("DELETE /v1/routing/queues/{queue}", h.deleteQueue)

	route("GET /v1/routing/agents/{agent}", h.getAgent)
	route("PUT /v1/routing/agents/{agent}", h.putAgent)
	route("PUT /v1/routing/agents/{agent}/presence", h.putPresence)
	route("PUT /v1/routing/agents/{agent}/capacity", h.putCapacity)
	route("POST /v1/routing/agents/{agent}/heartbeat", h.heartbeat)
	route("POST /v1/routing/agents/{agent}/queues", h.joinQueues)
	route("DELETE /v1/routing/agents/{agent}/queues/{queue}", h.leaveQueue)
	route("POST /v1/routing/agents/{agent}/logoff", h.logOff)
	if h.tokens != nil {
		route("POST /v1/routing/agents/{agent}/token", h.issueToken)
	}

	route("POST /v1/routing/conversations", h.createConversation)
	route("GET /v1/routing/conversations/{conversation}", h.getConversation)
	route("POST /v1/routing/conversations/{conversation}/accept", h.accept)
	route("POST /v1/routing/conversations/{conversation}/decline", h.decline)
	route("POST /v1/routing/conversations/{conversation}/transfer", h.transfer)
	route("POST /v1/routing/conversations/{conversation}/requeue", h.requeue)
	route("POST /v1/routing/conversations/{conversation}/end", h.end)
	route("POST /v1/routing/conversations/{conversation}/cancel", h.cancel)
}

// serve turns a handler's error into the JSON error answer. Every route
// needs some credential; which one is each route's business.
func (h *Handler) serve(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access.Token(r) == "" {
			httpjson.Error(w, r, h.log, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "a bearer token is required"))
			return
		}
		if err := f(w, r); err != nil {
			httpjson.Error(w, r, h.log, err)
		}
	})
}

// pathID reads and checks the path parameter name.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if err := routing.ValidateID(id); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, name, "%v", err)
	}
	return id, nil
}

// system lets only the system through.
func (h *Handler) system(r *http.Request) error { return h.auth.System(r) }

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

// whoAmI finds which of candidates an agent token belongs to: an agent
// that leaves its id out of a request acts as itself, and the only agents
// it can be are the ones the conversation names. system is true for an
// API token; agent is "" for the system and for an agent token none of
// the candidates holds; err is set only when the token is no credential
// at all.
func (h *Handler) whoAmI(r *http.Request, candidates ...string) (agent string, system bool, err error) {
	if c, err := h.auth.Caller(r, ""); err == nil && c.System {
		return "", true, nil
	}
	for _, a := range candidates {
		if a == "" {
			continue
		}
		if c, err := h.auth.Caller(r, a); err == nil && c.Agent == a {
			return a, false, nil
		}
	}
	if access.LooksLikeAgentToken(access.Token(r)) {
		return "", false, nil
	}
	return "", false, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here")
}

// renamed returns err with its field renamed as fields says: the engine
// names its arguments (id, agent), the API names path parameters and body
// fields (conversation, from).
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

var (
	queueFields        = map[string]string{"id": "queue"}
	agentFields        = map[string]string{"id": "agent"}
	conversationFields = map[string]string{"id": "conversation"}
)

func write(w http.ResponseWriter, status int, v any) error {
	httpjson.Write(w, status, v)
	return nil
}

package byoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/routing/access"
)

// MaxBodyBytes caps a request body: a delegation is a few ids and at most
// salesforce.MaxAttributes attributes.
const MaxBodyBytes = 512 << 10

// Handler serves the BYOC routes over a Router. Every route is for the
// system caller (an API token): delegating and clearing routings is the
// contact center's business, not an agent's.
type Handler struct {
	r    *Router
	auth *access.Authenticator
	log  *slog.Logger
}

// NewHandler returns the routes over r; logger gets the failures of ours
// (nil: slog.Default()).
func NewHandler(r *Router, auth *access.Authenticator, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{r: r, auth: auth, log: logger}
}

// Register adds the routes with Go 1.22 patterns:
//
//	POST   /v1/routing/byoc/routes                          delegate a conversation
//	GET    /v1/routing/byoc/routes                          the pending routings and the counters
//	POST   /v1/routing/byoc/routes/{conversation}/accepted  a rep took it
//	DELETE /v1/routing/byoc/routes/{conversation}           delete its pending routing now
func (h *Handler) Register(handle func(pattern string, h http.Handler)) {
	handle("POST /v1/routing/byoc/routes", h.system(h.delegate))
	handle("GET /v1/routing/byoc/routes", h.system(h.pending))
	handle("POST /v1/routing/byoc/routes/{conversation}/accepted", h.system(h.accepted))
	handle("DELETE /v1/routing/byoc/routes/{conversation}", h.system(h.cancel))
}

// delegateBody is POST /v1/routing/byoc/routes's body.
type delegateBody struct {
	Conversation string                 `json:"conversation"`
	RoutingType  salesforce.RoutingType `json:"routing_type"`
	Queue        string                 `json:"queue"`
	Channel      string                 `json:"channel"`
	Key          string                 `json:"key"`
	Attributes   map[string]string      `json:"attributes"`
}

// delegateAnswer says what was done: duplicate is true when the routing
// was already taken or under way, and Salesforce was not called.
type delegateAnswer struct {
	Conversation string                 `json:"conversation"`
	RoutingType  salesforce.RoutingType `json:"routing_type"`
	Way          string                 `json:"way"`
	Duplicate    bool                   `json:"duplicate"`
}

func (h *Handler) delegate(w http.ResponseWriter, r *http.Request) {
	var b delegateBody
	if err := decode(w, r, &b); err != nil {
		httpjson.Error(w, r, h.log, err)
		return
	}
	req := Request{Conversation: b.Conversation, RoutingType: b.RoutingType, Queue: b.Queue,
		Channel: b.Channel, Key: b.Key, Attributes: b.Attributes}
	dup, err := h.r.delegate(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	httpjson.Write(w, status, delegateAnswer{Conversation: b.Conversation, RoutingType: b.RoutingType,
		Way: h.r.Way(b.Queue, b.Channel).Name(), Duplicate: dup})
}

func (h *Handler) pending(w http.ResponseWriter, r *http.Request) {
	p, err := h.r.Pending(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.r.Stats(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"pending": p, "stats": st})
}

func (h *Handler) accepted(w http.ResponseWriter, r *http.Request) {
	if err := h.r.Accepted(r.Context(), r.PathValue("conversation")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if err := h.r.Cancel(r.Context(), r.PathValue("conversation")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers err; a Salesforce failure that may pass is a 503, logged
// as a warning since it is not a fault of ours.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if crmsync.ErrorCode(err) == crmsync.EUNAVAILABLE {
		h.log.Warn("byoc: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpjson.Error(w, r, h.log, err)
}

// system lets only the system caller through.
func (h *Handler) system(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.auth.System(r); err != nil {
			httpjson.Error(w, r, h.log, err)
			return
		}
		next(w, r)
	})
}

// decode reads one JSON object, capped, refusing unknown fields; errors
// name the field.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return crmsync.Errorf(crmsync.ETOOLARGE, "", "the body is larger than %d bytes", MaxBodyBytes)
		}
		return crmsync.Errorf(crmsync.EINVALID, "", "the body could not be read")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return crmsync.Errorf(crmsync.EINVALID, te.Field, "must be a %s", jsonType(te.Type.Kind().String()))
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return crmsync.Errorf(crmsync.EINVALID, "", "the body is not a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return crmsync.Errorf(crmsync.EINVALID, name, "is not a known field")
		}
		return crmsync.Errorf(crmsync.EINVALID, "", "the body is not valid JSON")
	}
	if dec.More() {
		return crmsync.Errorf(crmsync.EINVALID, "", "the body holds more than one JSON value")
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "map", "struct":
		return "JSON object"
	case "slice", "array":
		return "JSON array"
	}
	return kind
}

package pega

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
)

// DefaultMaxBodyBytes caps a request body when Config.MaxBodyBytes is 0.
// Pega's bodies are a few hundred bytes; its extension points may add some
// details, not kilobytes of them.
const DefaultMaxBodyBytes = 64 << 10

// Suggested mount points; Server.Handler uses them.
const (
	RoutePath  = "/pega/route"
	EventsPath = "/pega/events"
)

// Answers of the protocol.
const (
	statusIdentifying = "_identifying_route"
	statusNotFound    = "route_not_found"
	statusSuccess     = "Success"
	statusFail        = "Fail"
)

// Config is how the endpoints take calls from Pega. Pega's connectors can
// send a bearer token or basic auth; at least one credential is required.
type Config struct {
	// BearerTokens are accepted as "Authorization: Bearer <token>". Empty
	// means no bearer token is accepted.
	BearerTokens []crmsync.Secret
	// Username and Password are accepted as basic auth. An empty Username
	// means basic auth is not accepted.
	Username string
	Password crmsync.Secret
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger gets the requests that failed on our side; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Server holds the two endpoints Pega calls.
type Server struct {
	router Router
	cfg    Config
	log    *slog.Logger
}

// New checks cfg and returns the endpoints over r.
func New(r Router, cfg Config) (*Server, error) {
	if r == nil {
		return nil, errors.New("pega: no router")
	}
	if len(cfg.BearerTokens) == 0 && cfg.Username == "" {
		return nil, crmsync.Errorf(crmsync.EINVALID, "auth", "give bearer tokens or a username and password: Pega's calls must be authenticated")
	}
	for i, t := range cfg.BearerTokens {
		if t.IsZero() {
			return nil, crmsync.Errorf(crmsync.EINVALID, "bearer_tokens["+strconv.Itoa(i)+"]", "is empty")
		}
	}
	if cfg.Username != "" && cfg.Password.IsZero() {
		return nil, crmsync.Errorf(crmsync.EINVALID, "password", "is required with a username")
	}
	if cfg.Username == "" && !cfg.Password.IsZero() {
		return nil, crmsync.Errorf(crmsync.EINVALID, "username", "is required with a password")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, crmsync.Errorf(crmsync.EINVALID, "max_body_bytes", "must not be negative")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{router: r, cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Handler serves RouteHandler at RoutePath and EventsHandler at
// EventsPath.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(RoutePath, s.RouteHandler())
	mux.Handle(EventsPath, s.EventsHandler())
	return mux
}

// routeAnswer is the route request's answer. _wait_time and
// _queue_position are strings, empty when unknown, as the spec's example
// shows.
type routeAnswer struct {
	Status        string `json:"_status"`
	WaitTime      string `json:"_wait_time"`
	QueuePosition string `json:"_queue_position"`
	Reason        string `json:"_reason,omitempty"`
}

// RouteHandler answers Pega's route requests (the "Callback URL for
// incoming Chat requests").
//
//	200 {"_status":"_identifying_route","_wait_time":"45","_queue_position":"3"}
//	200 {"_status":"route_not_found", ...}     the engine has no CSR for it, or no such queue
//	400 {"error":{"code","field","message"}}   malformed JSON, a missing or bad field
//	401, 405, 413                               credential, method, body size
//	409                                         the engine's state does not allow routing it
//	503, 500                                    our side: a dependency is down, or a fault
func (s *Server) RouteHandler() http.Handler {
	return s.endpoint(false, func(w http.ResponseWriter, r *http.Request, body []byte) {
		req, err := DecodeRouteRequest(body)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		res, err := s.router.Route(r.Context(), req)
		switch crmsync.ErrorCode(err) {
		case "":
		case crmsync.ENOTFOUND:
			writeJSON(w, http.StatusOK, routeAnswer{Status: statusNotFound, Reason: reason(err)})
			return
		default:
			s.fail(w, r, err, false)
			return
		}
		a := routeAnswer{Status: statusNotFound}
		if res.Identifying {
			a.Status = statusIdentifying
			if res.HasWaitTime {
				a.WaitTime = strconv.FormatInt(seconds(res.WaitTime), 10)
			}
			if res.QueuePosition > 0 {
				a.QueuePosition = strconv.Itoa(res.QueuePosition)
			}
		}
		writeJSON(w, http.StatusOK, a)
	})
}

// eventAnswer is a routing event's answer.
type eventAnswer struct {
	Status string `json:"_status"`
	Reason string `json:"_reason,omitempty"`
}

// EventsHandler answers Pega's routing events (the "Callback URL for
// CSR-presence updates").
//
//	200 {"_status":"Success"}
//	200 {"_status":"Fail","_reason":"..."}                    the engine refused: ECONFLICT or ENOTFOUND
//	400 {"_status":"Fail","error":{"code","field","message"}} malformed JSON, a missing or bad field, an unknown event
//	401, 405, 413                                             credential, method, body size (with _status Fail)
//	503, 500                                                  our side
//
// Why a refusal is 200 Fail and not 409: the protocol gives an event two
// answers, Success and Fail, and keeps 400 for a bad request. An event the
// engine cannot apply in its current state (an offer that is no longer
// open, a conversation that has ended) is a well-formed request whose
// outcome is Fail; a 4xx would tell Pega its request was wrong, which it
// was not.
func (s *Server) EventsHandler() http.Handler {
	return s.endpoint(true, func(w http.ResponseWriter, r *http.Request, body []byte) {
		ev, err := DecodeEvent(body)
		if err != nil {
			s.fail(w, r, err, true)
			return
		}
		err = Apply(r.Context(), s.router, ev)
		switch crmsync.ErrorCode(err) {
		case "":
			writeJSON(w, http.StatusOK, eventAnswer{Status: statusSuccess})
		case crmsync.ECONFLICT, crmsync.ENOTFOUND:
			writeJSON(w, http.StatusOK, eventAnswer{Status: statusFail, Reason: reason(err)})
		default:
			s.fail(w, r, err, true)
		}
	})
}

// endpoint checks the credential, the method and the body's size before
// handing the body over. Content-Type is not checked: the spec does not
// say what Pega's connectors send, and the body must be JSON whatever it
// is labelled.
func (s *Server) endpoint(events bool, next func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			if len(s.cfg.BearerTokens) > 0 {
				w.Header().Add("WWW-Authenticate", `Bearer realm="crmsync"`)
			}
			if s.cfg.Username != "" {
				w.Header().Add("WWW-Authenticate", `Basic realm="crmsync"`)
			}
			s.fail(w, r, crmsync.Errorf(crmsync.EUNAUTHORIZED, "Authorization", "a valid credential is required"), events)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.fail(w, r, errMethod, events)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = crmsync.Errorf(crmsync.ETOOLARGE, "", "the body is larger than %d bytes", s.cfg.MaxBodyBytes)
			} else {
				err = crmsync.Errorf(crmsync.EINVALID, "", "the body could not be read")
			}
			s.fail(w, r, err, events)
			return
		}
		next(w, r, body)
	})
}

// errMethod has no crmsync code of its own; fail maps it to 405.
var errMethod = crmsync.Errorf("method_not_allowed", "", "use POST")

// authorized compares every configured credential in constant time, so
// neither which one matched nor how much of it did shows in the timing.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	ok := 0
	if tok, isBearer := cutScheme(h, "Bearer"); isBearer && tok != "" {
		for _, t := range s.cfg.BearerTokens {
			ok |= subtle.ConstantTimeCompare([]byte(t.Reveal()), []byte(tok))
		}
	}
	if s.cfg.Username != "" {
		if user, pass, isBasic := r.BasicAuth(); isBasic {
			u := subtle.ConstantTimeCompare([]byte(s.cfg.Username), []byte(user))
			p := subtle.ConstantTimeCompare([]byte(s.cfg.Password.Reveal()), []byte(pass))
			ok |= u & p
		}
	}
	return ok == 1
}

// cutScheme reads "Scheme credentials", the scheme in any case (RFC 9110).
func cutScheme(h, scheme string) (string, bool) {
	if len(h) <= len(scheme) || h[len(scheme)] != ' ' || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme)+1:]), true
}

var statusOf = map[string]int{
	crmsync.EINVALID:      http.StatusBadRequest,
	crmsync.EUNAUTHORIZED: http.StatusUnauthorized,
	crmsync.ENOTFOUND:     http.StatusNotFound,
	crmsync.ECONFLICT:     http.StatusConflict,
	crmsync.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	crmsync.EUNAVAILABLE:  http.StatusServiceUnavailable,
	crmsync.EINTERNAL:     http.StatusInternalServerError,
	errMethod.Code:        http.StatusMethodNotAllowed,
}

// fail writes err with the status of its code. Only errors of ours are
// logged; the rest are the caller's and go back to it. An event's error
// answer also carries "_status":"Fail", so Pega reads it as one whatever
// it makes of the status code.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, events bool) {
	code := crmsync.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	body := map[string]string{"code": code}
	var e *crmsync.Error
	switch {
	case status >= 500 && code == crmsync.EUNAVAILABLE:
		body["message"] = "routing is unavailable for now; try again"
		s.log.Warn("pega: routing unavailable", "path", r.URL.Path, "err", err)
	case status >= 500 || !errors.As(err, &e):
		body["code"], status = crmsync.EINTERNAL, http.StatusInternalServerError
		body["message"] = "internal error"
		s.log.Error("pega: request failed", "path", r.URL.Path, "err", err)
	default:
		body["message"] = e.Message
		if e.Field != "" {
			body["field"] = e.Field
		}
	}
	out := map[string]any{"error": body}
	if events {
		out["_status"] = statusFail
	}
	writeJSON(w, status, out)
}

// reason is the message of a refusal from the engine, for _reason.
func reason(err error) string {
	var e *crmsync.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return crmsync.ErrorCode(err)
}

// seconds rounds d up to whole seconds, so a short wait never reads "0".
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	if d > time.Duration(math.MaxInt64)-time.Second {
		return int64(d / time.Second)
	}
	return int64((d + time.Second - 1) / time.Second)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

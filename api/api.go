// Package api is crmsync's HTTP surface: authentication, the mapping of
// error codes to statuses, health and metrics, the /v1 routes, and the
// mounts of the admin UI and the demo CRM. Handlers decode and validate,
// then hand over to the jobs package; they hold no state of their own.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/jobs"
)

// EventQueue takes validated events.
type EventQueue interface {
	Enqueue(ctx context.Context, events []crmsync.Event) ([]jobs.Accepted, error)
}

// SessionViewer reads a session for display.
type SessionViewer interface {
	View(ctx context.Context, k crmsync.SessionKey) (*jobs.View, error)
}

// OAuthSetup runs the CRM's OAuth authorization-code grant for an admin.
type OAuthSetup interface {
	AuthCodeURL(state string) (string, error)
	Exchange(ctx context.Context, code string) error
}

// Registrar adds its routes (Go ServeMux patterns such as
// "POST /v1/routing/conversations") through handle.
type Registrar interface {
	Register(handle func(pattern string, h http.Handler))
}

// RegistrarFunc adapts a function to Registrar.
type RegistrarFunc func(handle func(pattern string, h http.Handler))

// Register calls f.
func (f RegistrarFunc) Register(handle func(pattern string, h http.Handler)) { f(handle) }

// Server holds what the handlers need. Fields left nil turn their routes off.
type Server struct {
	Events   EventQueue
	Sessions SessionViewer
	// Files takes session files in; nil turns the route off.
	Files FileIntake
	// Ready reports whether the dependencies (Redis) answer.
	Ready func(ctx context.Context) error
	// APITokens guard /v1; AdminTokens guard /admin.
	APITokens   []crmsync.Secret
	AdminTokens []crmsync.Secret
	// MaxBodyBytes caps a request body. Zero means 1 MiB.
	MaxBodyBytes int64
	// Queues is the asynq web UI, mounted at /admin/queues.
	Queues http.Handler
	// OAuth, when set, serves /admin/oauth/start and /admin/oauth/callback.
	OAuth OAuthSetup
	// Mounts are extra handlers by path prefix (the demo CRM), unauthenticated.
	Mounts map[string]http.Handler
	// Routes are handlers that register their own patterns and do their own
	// authentication (the routing API, agents' event streams, Pega's
	// endpoints, the adapter page): their callers are agents' browsers and
	// vendors as well as the contact center.
	Registrars []Registrar
	Logger     *slog.Logger
	Now        func() time.Time

	routes []string
}

// Handler builds the routes.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	}
	mux := http.NewServeMux()
	s.routes = nil
	handle := func(pattern string, h http.Handler) {
		s.routes = append(s.routes, pattern)
		mux.Handle(pattern, h)
	}
	handle("GET /healthz", http.HandlerFunc(s.healthz))
	handle("GET /readyz", http.HandlerFunc(s.readyz))
	handle("GET /metrics", promhttp.Handler())
	if s.Events != nil {
		handle("POST /v1/events", s.bearer(s.APITokens, http.HandlerFunc(s.postEvents)))
	}
	if s.Sessions != nil {
		handle("GET /v1/sessions/{session}", s.bearer(s.APITokens, http.HandlerFunc(s.getSession)))
	}
	if s.Files != nil {
		handle("POST /v1/sessions/{session}/files", s.bearer(s.APITokens, http.HandlerFunc(s.postFile)))
	}
	if s.Queues != nil {
		handle("/admin/queues/", s.admin(s.Queues))
	}
	if s.OAuth != nil {
		handle("GET /admin/oauth/start", s.admin(http.HandlerFunc(s.oauthStart)))
		handle("GET /admin/oauth/callback", s.admin(http.HandlerFunc(s.oauthCallback)))
	}
	for _, r := range s.Registrars {
		r.Register(handle)
	}
	for prefix, h := range s.Mounts {
		handle(prefix+"/", http.StripPrefix(prefix, h))
	}
	return mux
}

// Routes lists the registered patterns, for the OpenAPI check.
func (s *Server) Routes() []string {
	out := append([]string(nil), s.routes...)
	sort.Strings(out)
	return out
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			s.Logger.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "redis does not answer"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "Content-Type", "want application/json, got %q", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.error(w, r, crmsync.Errorf(crmsync.ETOOLARGE, "", "body is larger than %d bytes", s.MaxBodyBytes))
			return
		}
		s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "", "could not read the body"))
		return
	}
	events, err := crmsync.DecodeEvents(body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	accepted, err := s.Events.Enqueue(r.Context(), events)
	if err != nil {
		s.Logger.Error("enqueue failed", "err", err, "accepted", len(accepted))
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": map[string]string{
				"code":    crmsync.EUNAVAILABLE,
				"message": "the queue is unavailable; send the whole request again: events already taken come back as duplicates",
			},
			"accepted": accepted,
		})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": accepted})
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	key, err := crmsync.ParseSessionKey(r.PathValue("session"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	v, err := s.Sessions.View(r.Context(), key)
	if errors.Is(err, jobs.ErrNotFound) {
		s.error(w, r, crmsync.Errorf(crmsync.ENOTFOUND, "session", "no session %s", key))
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// bearer lets a request through when it carries one of tokens.
func (s *Server) bearer(tokens []crmsync.Secret, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !match(tokens, tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmsync"`)
			s.error(w, r, crmsync.Errorf(crmsync.EUNAUTHORIZED, "Authorization", "a valid bearer token is required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admin takes a bearer token, or basic auth with the token as password so
// a browser can open the queue UI.
func (s *Server) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			_, tok, ok = r.BasicAuth()
		}
		if !ok || !match(s.AdminTokens, tok) {
			w.Header().Set("WWW-Authenticate", `Basic realm="crmsync admin"`)
			s.error(w, r, crmsync.Errorf(crmsync.EUNAUTHORIZED, "Authorization", "an admin token is required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func match(tokens []crmsync.Secret, tok string) bool {
	if tok == "" {
		return false
	}
	found := 0
	for _, t := range tokens {
		found |= subtle.ConstantTimeCompare([]byte(t.Reveal()), []byte(tok))
	}
	return found == 1
}

// error writes err with the status of its code; only internal errors are
// logged.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	httpjson.Error(w, r, s.Logger, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

package samplecrm

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options configure a Server. The zero value serves an open API.
type Options struct {
	// BasicUser and BasicPassword, when either is set, make /api and
	// /_control require HTTP basic auth with exactly these.
	BasicUser, BasicPassword string

	// HeaderName and HeaderValue, when HeaderName is set, make /api and
	// /_control require that header with that value.
	HeaderName, HeaderValue string

	// OAuth, when set, enables /oauth/authorize and /oauth/token and makes
	// /api and /_control require a bearer token issued by /oauth/token. Basic
	// auth and OAuth both use the Authorization header: set one of them.
	OAuth *OAuthOptions

	// Logger receives one debug line per request and a line per fault
	// change. Nil discards.
	Logger *slog.Logger

	// BaseURL prefixes the absolute attachment URLs, as in
	// "https://crm.example.com". Empty derives it from each request's Host.
	BaseURL string

	// MaxBodyBytes caps request bodies; 0 means 1 MiB.
	MaxBodyBytes int64

	// MaxAttachmentBytes caps attachment uploads; 0 means 32 MiB.
	MaxAttachmentBytes int64

	// AdapterPath is where the agent desk (/desk) finds crmsync's agent
	// adapter page on the same host. Empty means /agent/adapter.
	AdapterPath string
}

// OAuthOptions configure the OAuth 2.0 authorization server.
type OAuthOptions struct {
	ClientID, ClientSecret string

	// AccessTokenTTL is how long an access token lives; 0 means one hour.
	AccessTokenTTL time.Duration

	// RotateRefreshTokens makes every refresh_token grant return a new
	// refresh token and invalidate the old one. When false the refresh token
	// stays the same.
	RotateRefreshTokens bool
}

// LogValue keeps the secrets out of logs.
func (o Options) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("basic_user", o.BasicUser),
		slog.String("basic_password", redacted(o.BasicPassword)),
		slog.String("header_name", o.HeaderName),
		slog.String("header_value", redacted(o.HeaderValue)),
		slog.String("base_url", o.BaseURL),
	}
	if o.OAuth != nil {
		attrs = append(attrs, slog.Any("oauth", *o.OAuth))
	}
	return slog.GroupValue(attrs...)
}

// LogValue keeps the client secret out of logs.
func (o OAuthOptions) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", o.ClientID),
		slog.String("client_secret", redacted(o.ClientSecret)),
		slog.Duration("access_token_ttl", o.AccessTokenTTL),
		slog.Bool("rotate_refresh_tokens", o.RotateRefreshTokens),
	)
}

const redactedValue = "REDACTED"

func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return redactedValue
}

// Server is the sample CRM. It is an http.Handler; all its methods are safe
// for concurrent use.
type Server struct {
	opts      Options
	log       *slog.Logger
	mux       *http.ServeMux
	maxBody   int64
	maxUpload int64

	store    *store
	oauth    *oauthServer // nil when OAuth is off
	faults   faults
	idem     idempotency
	requests requestRing
}

var _ http.Handler = (*Server)(nil)

// New returns a sample CRM with no data.
func New(opts Options) *Server {
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		maxBody:   opts.MaxBodyBytes,
		maxUpload: opts.MaxAttachmentBytes,
		store:     newStore(),
		oauth:     newOAuthServer(opts.OAuth),
		requests:  requestRing{size: requestLogSize},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.maxUpload <= 0 {
		s.maxUpload = 32 << 20
	}
	s.opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	s.mux = s.routes()
	return s
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	api := func(m methods) http.Handler { return s.requireAuth(s.idempotent(s.methods(m))) }

	mux.Handle("/api/accounts", api(methods{
		http.MethodGet:  s.searchAccounts,
		http.MethodPost: s.createAccount,
	}))
	mux.Handle("/api/accounts/{id}", api(methods{
		http.MethodGet:   s.getAccount,
		http.MethodPut:   s.updateAccount,
		http.MethodPatch: s.updateAccount,
	}))
	mux.Handle("/api/records", api(methods{
		http.MethodGet:  s.searchRecords,
		http.MethodPost: s.createRecord,
	}))
	mux.Handle("/api/records/{id}", api(methods{
		http.MethodGet:   s.getRecord,
		http.MethodPut:   s.updateRecord,
		http.MethodPatch: s.updateRecord,
	}))
	mux.Handle("/api/records/{id}/comments", api(methods{
		http.MethodGet:  s.listComments,
		http.MethodPost: s.createComment,
	}))
	mux.Handle("/api/records/{id}/attachments", api(methods{
		http.MethodGet:  s.listAttachments,
		http.MethodPost: s.createAttachment,
	}))
	mux.Handle("/api/records/{id}/attachments/{aid}", api(methods{
		http.MethodGet: s.downloadAttachment,
	}))
	mux.Handle("/api/", s.requireAuth(s.handle(func(_ http.ResponseWriter, r *http.Request) error {
		return notFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	})))

	mux.Handle("/oauth/token", s.methods(methods{http.MethodPost: s.token}))
	mux.Handle("/oauth/authorize", s.methods(methods{http.MethodGet: s.authorize}))

	control := func(m methods) http.Handler { return s.requireAuth(s.methods(m)) }
	mux.Handle("/_control/fail", control(methods{
		http.MethodGet:    s.getFault,
		http.MethodPost:   s.postFault,
		http.MethodDelete: s.deleteFault,
	}))
	mux.Handle("/_control/requests", control(methods{
		http.MethodGet:    s.getRequests,
		http.MethodDelete: s.deleteRequests,
	}))

	mux.HandleFunc("GET /{$}", s.indexPage)
	mux.HandleFunc("GET /accounts/{id}", s.accountPage)
	mux.HandleFunc("GET /records/{id}", s.recordPage)
	mux.HandleFunc("GET /desk", s.deskPage)
	return mux
}

// ServeHTTP logs the request, applies any fault, and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := RequestLog{
		Time:     time.Now(),
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   s.redactHeader(r.Header),
		Body:     peekBody(r),
	}
	if r.URL.Path == "/oauth/token" {
		entry.Body = redactForm(entry.Body)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		entry.Status = sw.status
		s.requests.add(entry)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "samplecrm: request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("elapsed", time.Since(entry.Time)))
	}()
	defer func() {
		p := recover()
		if p == nil || p == http.ErrAbortHandler {
			if p != nil {
				panic(p)
			}
			return
		}
		s.log.Error("samplecrm: handler panic", slog.String("path", r.URL.Path), slog.Any("panic", p))
		if sw.status == 0 {
			writeJSON(sw, http.StatusInternalServerError, errorBody{Error: "internal error"})
		}
	}()

	if f, ok := s.faults.take(r.URL.Path, time.Now()); ok && s.serveFault(sw, r, f) {
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methods dispatches on the request method; others get a 405.
type methods map[string]handlerFunc

func (s *Server) methods(m methods) http.Handler {
	allow := make([]string, 0, len(m))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m[method] != nil {
			allow = append(allow, method)
		}
	}
	allowed := strings.Join(allow, ", ")
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		h := m[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = m[http.MethodGet]
		}
		if h == nil {
			w.Header().Set("Allow", allowed)
			return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowed)}
		}
		return h(w, r)
	})
}

// handlerFunc is an endpoint: it writes a response or returns an error for
// handle to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// apiError is an error with the HTTP status it should be answered with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error string `json:"error"`
}

// writeError answers an error as {"error": "..."}. Errors that are not the
// client's fault are logged and answered with a bare 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errors.AsType[*apiError](err); ok {
		writeJSON(w, e.status, errorBody{Error: e.msg})
		return
	}
	if e, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body: larger than %d bytes", e.Limit)})
		return
	}
	s.log.Error("samplecrm: internal error", slog.String("path", r.URL.Path), slog.Any("err", err))
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
}

// envelope wraps every successful answer: {"data": ...}.
type envelope struct {
	Data any `json:"data"`
}

// itemList is the data of a search answer: {"data": {"items": [...]}}.
type itemList[T any] struct {
	Items []T `json:"items"`
}

// writeJSON answers v as JSON. HTML is not escaped: comments and
// descriptions often hold markup, and the answers are for programs.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: cannot encode the answer"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeData(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, envelope{Data: v})
}

// authRequired reports whether /api and /_control need credentials.
func (s *Server) authRequired() bool {
	o := s.opts
	return o.BasicUser != "" || o.BasicPassword != "" || o.HeaderName != "" || s.oauth != nil
}

func (s *Server) requireAuth(next http.Handler) http.Handler {
	if !s.authRequired() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if challenge, msg := s.authenticate(r); msg != "" {
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

const realm = `realm="crmsync sample CRM"`

// authenticate checks every configured method. On failure it returns the
// WWW-Authenticate challenge and a message.
func (s *Server) authenticate(r *http.Request) (challenge, msg string) {
	o := s.opts
	if o.BasicUser != "" || o.BasicPassword != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "Basic " + realm, "basic auth required"
		}
		if !secretEqual(user, o.BasicUser) || !secretEqual(pass, o.BasicPassword) {
			return "Basic " + realm, "wrong basic auth user or password"
		}
	}
	if o.HeaderName != "" {
		got := r.Header.Values(o.HeaderName)
		if len(got) == 0 {
			return "", fmt.Sprintf("header %s required", o.HeaderName)
		}
		if len(got) != 1 || !secretEqual(got[0], o.HeaderValue) {
			return "", fmt.Sprintf("wrong value for header %s", o.HeaderName)
		}
	}
	if s.oauth != nil {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "Bearer " + realm, "bearer token required"
		}
		if !s.oauth.accessValid(strings.TrimSpace(token), time.Now()) {
			return `Bearer error="invalid_token"`, "invalid or expired access token"
		}
	}
	return "", ""
}

func secretEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

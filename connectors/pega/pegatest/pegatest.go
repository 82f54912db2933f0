// Package pegatest is a real HTTP server that plays Pega's side of
// PostRoutingEvents for tests: it checks each request exactly (method,
// path, content type, credential, body), records it, and can be told to
// be down, to answer an error status, to hang, or to answer Fail. It also
// serves an OAuth 2.0 token endpoint for the client credentials grant.
package pegatest

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths served, under URL().
const (
	Path      = "/prweb/api/ConversationRouting/V1/PostRoutingEvents"
	TokenPath = "/prweb/PRRestService/oauth2/v1/token"
)

// Config says which credentials the server takes. Each one set is
// accepted; at least one must be.
type Config struct {
	Username, Password string // basic auth
	Token              string // a fixed bearer token
	// ClientID and ClientSecret enable the token endpoint; the tokens it
	// issues are accepted as bearer tokens until they expire.
	ClientID, ClientSecret string
	// TokenTTL is an issued token's life; 0 means an hour.
	TokenTTL time.Duration
	// Now is the server's clock, for token expiry; nil means time.Now.
	Now func() time.Time
}

// FaultMode is how a faulty request is answered.
type FaultMode int

const (
	// FaultStatus answers Fault.Status (503 when 0) with Fault.Body (a
	// JSON error when ""), before any check: a proxy or a restarting
	// instance.
	FaultStatus FaultMode = iota
	// FaultFail answers 200 {"_status":"Fail"} to a request that passes
	// every check.
	FaultFail
	// FaultHang answers nothing until the client gives up.
	FaultHang
)

// Fault makes PostRoutingEvents requests fail. The zero Fault answers 503
// until cleared.
type Fault struct {
	Mode   FaultMode
	Status int
	Body   string
	// RetryAfter, when positive, is sent as Retry-After in seconds.
	RetryAfter int
	// Count is how many requests get the fault; 0 means until ClearFault.
	Count int
}

// Call is one request to PostRoutingEvents, as received and answered.
type Call struct {
	Method      string
	Path        string
	ContentType string
	// Auth is the scheme that was accepted: "basic", "bearer", "oauth2",
	// or "" when the credential was refused or missing.
	Auth         string
	Body         []byte
	Conversation string // _conversation_id, when the body was right
	Agent        string // _agent_id, when the body was right
	Status       int    // the status answered
	// Answer is the _status answered ("Success", "Fail"), or the reason a
	// request was refused.
	Answer string
}

// Assignment is a request answered Success.
type Assignment struct {
	Conversation string
	Agent        string
}

// Server is the fake Pega instance.
type Server struct {
	cfg  Config
	addr string

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	calls    []Call
	fault    *Fault
	left     int                  // requests left for a counted fault
	tokens   map[string]time.Time // issued token -> expiry
	tokenReq int
	hung     chan struct{} // closed by ClearFault and Close, to free hung requests
}

// New starts a server on a loopback port; it is closed when the test ends.
func New(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Username == "" && cfg.Token == "" && cfg.ClientID == "" {
		tb.Fatal("pegatest: configure at least one credential")
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pegatest: listen: %v", err)
	}
	s := &Server{cfg: cfg, addr: ln.Addr().String(), tokens: map[string]time.Time{}, hung: make(chan struct{})}
	s.serve(ln)
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL, to be given as the client's base URL.
func (s *Server) URL() string { return "http://" + s.addr }

// TokenURL is the token endpoint's URL.
func (s *Server) TokenURL() string { return s.URL() + TokenPath }

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the listener and every connection: from now on connections
// are refused, until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start listens again, on the same address, after Stop.
func (s *Server) Start() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("pegatest: listen again on %s: %w", s.addr, err)
	}
	s.serve(ln)
	return nil
}

// Close stops the server for good.
func (s *Server) Close() {
	s.ClearFault()
	s.Stop()
}

// SetFault replaces any fault with f.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.left = &f, f.Count
}

// ClearFault removes the fault and frees requests it holds.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
	close(s.hung)
	s.hung = make(chan struct{})
}

// takeFault returns the fault for this request if it is of a mode in
// modes, counting it.
func (s *Server) takeFault(modes ...FaultMode) (Fault, chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil {
		return Fault{}, nil, false
	}
	f := *s.fault
	match := false
	for _, m := range modes {
		match = match || f.Mode == m
	}
	if !match {
		return Fault{}, nil, false
	}
	if f.Count > 0 {
		s.left--
		if s.left <= 0 {
			s.fault = nil
		}
	}
	return f, s.hung, true
}

// RevokeTokens makes every token issued so far refused (401), as an admin
// revoking them in Pega would.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// IssuedTokens returns the access tokens issued and not revoked.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tokens))
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

// TokenRequests is how many token requests were answered with a token.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReq
}

// Calls returns every PostRoutingEvents request so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Assignments returns the requests answered Success, in order.
func (s *Server) Assignments() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Assignment
	for _, c := range s.calls {
		if c.Answer == "Success" {
			out = append(out, Assignment{c.Conversation, c.Agent})
		}
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case Path:
		s.postRoutingEvents(w, r)
	case TokenPath:
		s.issueToken(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such path " + r.URL.Path})
	}
}

func (s *Server) postRoutingEvents(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	c := Call{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: body}
	answer := func(status int, v any, why string) {
		c.Status, c.Answer = status, why
		s.mu.Lock()
		s.calls = append(s.calls, c)
		s.mu.Unlock()
		writeJSON(w, status, v)
	}
	refuse := func(status int, why string) {
		answer(status, map[string]string{"error": why}, why)
	}

	if f, hung, ok := s.takeFault(FaultStatus, FaultHang); ok {
		if f.Mode == FaultHang {
			select {
			case <-r.Context().Done():
			case <-hung:
			}
			c.Answer = "hung"
			s.mu.Lock()
			s.calls = append(s.calls, c)
			s.mu.Unlock()
			return
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if f.Body != "" {
			c.Status, c.Answer = status, "fault"
			s.mu.Lock()
			s.calls = append(s.calls, c)
			s.mu.Unlock()
			w.WriteHeader(status)
			_, _ = io.WriteString(w, f.Body)
			return
		}
		refuse(status, "fault: "+http.StatusText(status))
		return
	}
	if r.URL.RawQuery != "" {
		refuse(http.StatusBadRequest, "unexpected query")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "method must be POST")
		return
	}
	c.Auth = s.authorized(r)
	if c.Auth == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="prweb"`)
		refuse(http.StatusUnauthorized, "unauthorized")
		return
	}
	if mt, _, err := mime.ParseMediaType(c.ContentType); err != nil || mt != "application/json" {
		refuse(http.StatusUnsupportedMediaType, "content type must be application/json")
		return
	}
	conv, agent, err := parseBody(body)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	c.Conversation, c.Agent = conv, agent
	if _, _, ok := s.takeFault(FaultFail); ok {
		answer(http.StatusOK, map[string]string{"_status": "Fail"}, "Fail")
		return
	}
	answer(http.StatusOK, map[string]string{"_status": "Success"}, "Success")
}

// parseBody wants exactly {"_conversation_id":"...","_agent_id":"..."}:
// both keys, spelt so, once each, non-empty strings, nothing else.
func parseBody(body []byte) (conv, agent string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", errors.New("body must be a JSON object")
	}
	got := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", errors.New("body is not valid JSON")
		}
		key := tok.(string)
		if key != "_conversation_id" && key != "_agent_id" {
			return "", "", fmt.Errorf("unexpected key %q", key)
		}
		if _, dup := got[key]; dup {
			return "", "", fmt.Errorf("key %q given twice", key)
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return "", "", fmt.Errorf("%s must be a string", key)
		}
		if v == "" {
			return "", "", fmt.Errorf("%s is empty", key)
		}
		got[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return "", "", errors.New("body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", "", errors.New("body holds more after the JSON object")
	}
	for _, k := range []string{"_conversation_id", "_agent_id"} {
		if _, ok := got[k]; !ok {
			return "", "", fmt.Errorf("%s is missing", k)
		}
	}
	return got["_conversation_id"], got["_agent_id"], nil
}

// authorized returns the accepted scheme, or "".
func (s *Server) authorized(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && tok != "" {
		if s.cfg.Token != "" && equal(tok, s.cfg.Token) {
			return "bearer"
		}
		s.mu.Lock()
		exp, issued := s.tokens[tok]
		s.mu.Unlock()
		if issued && s.cfg.Now().Before(exp) {
			return "oauth2"
		}
		return ""
	}
	if user, pass, ok := r.BasicAuth(); ok && s.cfg.Username != "" {
		if equal(user, s.cfg.Username) && equal(pass, s.cfg.Password) {
			return "basic"
		}
	}
	return ""
}

// issueToken is the client credentials grant. The client authenticates
// with basic auth or with client_id and client_secret in the form, as RFC
// 6749 allows both.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ClientID == "" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "oauth2 is not configured"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if !equal(id, s.cfg.ClientID) || !equal(secret, s.cfg.ClientSecret) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "pegatest-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = s.cfg.Now().Add(s.cfg.TokenTTL)
	s.tokenReq++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(s.cfg.TokenTTL / time.Second),
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Package sftest is a real HTTP server that plays Salesforce's side of
// the BYOC route API for tests. It checks every request exactly: method,
// path, each header (the JWT's RS256 signature against the connected
// app's public key and its claims, the org id, the authorization context,
// a RequestId that is a GUID never seen before), the content type and the
// body (for POST, one multipart part named "json" holding the route
// payload; for DELETE, a JSON object naming the conversation). It records
// every call, keeps the pending routings a real org would, and can be told
// to answer an error status or to hang.
package sftest

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/crmsync/crmsync/connectors/salesforce"
)

// Path is the route API's path, under URL().
const Path = salesforce.Path

// Config is what the server expects of every request.
type Config struct {
	// PublicKey verifies the JWT's signature. Required.
	PublicKey *rsa.PublicKey
	// OrgID, AuthorizationContext, ClientID (the JWT's iss) and Subject
	// (sub) must match exactly. Required.
	OrgID, AuthorizationContext, ClientID, Subject string
	// Audience is the JWT's aud. Zero: salesforce.DefaultAudience.
	Audience string
	// MaxTokenLifetime refuses a JWT whose exp lies further ahead. Zero:
	// salesforce.MaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// Now is the clock a JWT's exp is checked against. Zero: time.Now.
	Now func() time.Time
}

// FaultMode is how a faulty request is answered.
type FaultMode int

const (
	// FaultStatus answers Fault.Status (503 when 0) before any check, as
	// a proxy or an instance restarting would.
	FaultStatus FaultMode = iota
	// FaultHang answers nothing until the client gives up, or 503 once
	// the fault is cleared.
	FaultHang
	// FaultSlow waits Fault.Delay, then answers as usual.
	FaultSlow
)

// Fault makes requests fail. The zero Fault answers 503 to every request
// until cleared.
type Fault struct {
	Mode   FaultMode
	Status int
	// Method limits the fault to POST or DELETE; "" means both.
	Method string
	// RetryAfter, when positive, is sent as Retry-After in seconds.
	RetryAfter int
	// Count is how many requests get the fault; 0 means until ClearFault.
	Count int
	// Delay is FaultSlow's wait.
	Delay time.Duration
}

// Route is a POST route payload as received.
type Route struct {
	ConversationIdentifier string
	RoutingType            string
	// HasRoutingInfo is false when routingInfo was left out (the
	// channel's own setting).
	HasRoutingInfo    bool
	FlowID            string // routingInfo.flow.flowId
	FallbackQueueID   string // routingInfo.flow.queueId
	QueueID           string // routingInfo.queueId
	RoutingAttributes map[string]string
}

// Way names how Route asks to be routed: "channel", "flow" or "queue".
func (r Route) Way() string {
	switch {
	case r.FlowID != "":
		return "flow"
	case r.QueueID != "":
		return "queue"
	}
	return "channel"
}

// Call is one request, as received and answered.
type Call struct {
	Method      string
	Path        string
	ContentType string
	// The headers, as sent.
	OrgID, AuthorizationContext, RequestID string
	// Claims are the JWT's, when its signature verified.
	Claims *salesforce.Claims
	// Route is the payload of a POST that parsed.
	Route *Route
	// Conversation is the conversation a POST or DELETE named, when the
	// body parsed.
	Conversation string
	Status       int
	// Problem is why the request was refused or failed; "" when taken.
	Problem string
}

// Server is the fake org.
type Server struct {
	cfg  Config
	addr string

	mu      sync.Mutex
	srv     *http.Server
	calls   []Call
	seen    map[string]bool // RequestIds
	pending map[string]Route
	fault   *Fault
	left    int
	hung    chan struct{}
}

// New starts a server on a loopback port; it is closed when the test ends.
func New(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.PublicKey == nil || cfg.OrgID == "" || cfg.AuthorizationContext == "" || cfg.ClientID == "" || cfg.Subject == "" {
		tb.Fatal("sftest: PublicKey, OrgID, AuthorizationContext, ClientID and Subject are required")
	}
	if cfg.Audience == "" {
		cfg.Audience = salesforce.DefaultAudience
	}
	if cfg.MaxTokenLifetime == 0 {
		cfg.MaxTokenLifetime = salesforce.MaxTokenLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sftest: listen: %v", err)
	}
	s := &Server{
		cfg: cfg, addr: ln.Addr().String(),
		seen: map[string]bool{}, pending: map[string]Route{}, hung: make(chan struct{}),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL, to be given as the client's BaseURL.
func (s *Server) URL() string { return "http://" + s.addr }

// Close stops the server.
func (s *Server) Close() {
	s.ClearFault()
	_ = s.srv.Close()
}

// SetFault replaces any fault with f.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.left = &f, f.Count
}

// ClearFault removes the fault and frees the requests it holds.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
	close(s.hung)
	s.hung = make(chan struct{})
}

// Calls returns every request so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Routes returns the POST route requests taken, in order.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Route
	for _, c := range s.calls {
		if c.Method == http.MethodPost && c.Problem == "" {
			out = append(out, *c.Route)
		}
	}
	return out
}

// Deletes returns the conversations of the DELETE route requests taken
// (pending routing deleted), in order.
func (s *Server) Deletes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if c.Method == http.MethodDelete && c.Problem == "" {
			out = append(out, c.Conversation)
		}
	}
	return out
}

// Pending returns the conversations with a pending routing, sorted.
func (s *Server) Pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.pending))
	for c := range s.pending {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Accept plays a rep taking the conversation: its pending routing goes
// away, as Salesforce deletes it. It reports whether there was one.
func (s *Server) Accept(conversation string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[conversation]
	delete(s.pending, conversation)
	return ok
}

func (s *Server) takeFault(method string) (Fault, chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil || (s.fault.Method != "" && s.fault.Method != method) {
		return Fault{}, nil, false
	}
	f := *s.fault
	if f.Count > 0 {
		s.left--
		if s.left <= 0 {
			s.fault = nil
		}
	}
	return f, s.hung, true
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	c := Call{
		Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
		OrgID: r.Header.Get("OrgId"), AuthorizationContext: r.Header.Get("AuthorizationContext"),
		RequestID: r.Header.Get("RequestId"),
	}
	refuse := func(status int, code, why string) {
		c.Status, c.Problem = status, why
		s.record(c)
		writeJSON(w, status, []map[string]string{{"errorCode": code, "message": why}})
	}

	if f, hung, ok := s.takeFault(r.Method); ok {
		switch f.Mode {
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
			s.serveChecked(w, r, c, body)
			return
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-hung:
			}
			// Freed: fail, so a hung call never reads as taken.
			c.Status, c.Problem = http.StatusServiceUnavailable, "fault: hung"
			s.record(c)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		refuse(status, "FAULT", "fault: "+http.StatusText(status))
		return
	}
	s.serveChecked(w, r, c, body)
}

// serveChecked checks a request that no fault stopped, and answers it.
func (s *Server) serveChecked(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	refuse := func(status int, code, why string) {
		c.Status, c.Problem = status, why
		s.record(c)
		writeJSON(w, status, []map[string]string{{"errorCode": code, "message": why}})
	}
	if r.URL.Path != Path {
		refuse(http.StatusNotFound, "NOT_FOUND", "no such path "+r.URL.Path)
		return
	}
	if r.URL.RawQuery != "" {
		refuse(http.StatusBadRequest, "INVALID_REQUEST", "unexpected query")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "POST, DELETE")
		refuse(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method must be POST or DELETE")
		return
	}
	claims, err := s.verifyJWT(r.Header.Get("Authorization"))
	if err != nil {
		refuse(http.StatusUnauthorized, "INVALID_AUTH", "authorization: "+err.Error())
		return
	}
	c.Claims = claims
	if err := s.checkHeaders(r); err != nil {
		refuse(http.StatusBadRequest, "INVALID_HEADER", err.Error())
		return
	}
	if r.Method == http.MethodDelete {
		conv, err := parseDelete(r.Header.Get("Content-Type"), body)
		if err != nil {
			refuse(http.StatusBadRequest, "INVALID_REQUEST", err.Error())
			return
		}
		c.Conversation = conv
		s.mu.Lock()
		_, ok := s.pending[conv]
		delete(s.pending, conv)
		s.mu.Unlock()
		if !ok {
			refuse(http.StatusNotFound, "NOT_FOUND", "no pending routing for the conversation")
			return
		}
		c.Status = http.StatusOK
		s.record(c)
		writeJSON(w, http.StatusOK, map[string]string{"conversationIdentifier": conv})
		return
	}
	route, err := parseRoute(r.Header.Get("Content-Type"), body)
	if err != nil {
		refuse(http.StatusBadRequest, "INVALID_REQUEST", err.Error())
		return
	}
	c.Route, c.Conversation = route, route.ConversationIdentifier
	s.mu.Lock()
	s.pending[route.ConversationIdentifier] = *route
	s.mu.Unlock()
	c.Status = http.StatusOK
	s.record(c)
	writeJSON(w, http.StatusOK, map[string]string{"conversationIdentifier": route.ConversationIdentifier})
}

// checkHeaders checks OrgId, AuthorizationContext and RequestId, and
// remembers the RequestId: a second use is refused.
func (s *Server) checkHeaders(r *http.Request) error {
	for _, h := range []string{"OrgId", "AuthorizationContext", "RequestId"} {
		if n := len(r.Header.Values(h)); n != 1 {
			return fmt.Errorf("header %s given %d times, want once", h, n)
		}
	}
	if got := r.Header.Get("OrgId"); got != s.cfg.OrgID {
		return fmt.Errorf("header OrgId is %q, want %q", got, s.cfg.OrgID)
	}
	if len(s.cfg.OrgID) != 15 {
		return errors.New("header OrgId must be 15 characters")
	}
	if got := r.Header.Get("AuthorizationContext"); got != s.cfg.AuthorizationContext {
		return fmt.Errorf("header AuthorizationContext is %q, want %q", got, s.cfg.AuthorizationContext)
	}
	id := r.Header.Get("RequestId")
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u.String() != strings.ToLower(id) {
		return fmt.Errorf("header RequestId %q is not a GUID", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[id] {
		return fmt.Errorf("header RequestId %s was used before", id)
	}
	s.seen[id] = true
	return nil
}

// verifyJWT checks "Bearer <jwt>": an RS256 signature by the configured
// key, then iss, sub, aud, iat and exp.
func (s *Server) verifyJWT(h string) (*salesforce.Claims, error) {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, errors.New("want a bearer token")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("the token is not a JWT (three parts)")
	}
	var hdr map[string]any
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, fmt.Errorf("jwt header: %w", err)
	}
	if hdr["alg"] != "RS256" {
		return nil, fmt.Errorf("jwt alg is %v, want RS256", hdr["alg"])
	}
	if typ, ok := hdr["typ"]; ok && typ != "JWT" {
		return nil, fmt.Errorf("jwt typ is %v, want JWT", typ)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("jwt signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(s.cfg.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, errors.New("jwt signature does not verify")
	}
	var raw map[string]json.RawMessage
	if err := decodeSegment(parts[1], &raw); err != nil {
		return nil, fmt.Errorf("jwt claims: %w", err)
	}
	var c salesforce.Claims
	for _, k := range []string{"iss", "sub", "aud", "exp"} {
		if _, ok := raw[k]; !ok {
			return nil, fmt.Errorf("jwt claim %s is missing", k)
		}
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return nil, fmt.Errorf("jwt claims: %w", err)
	}
	now := s.cfg.Now()
	switch {
	case c.Issuer != s.cfg.ClientID:
		return nil, fmt.Errorf("jwt iss is %q, want the client id", c.Issuer)
	case c.Subject != s.cfg.Subject:
		return nil, fmt.Errorf("jwt sub is %q, want %q", c.Subject, s.cfg.Subject)
	case c.Audience != s.cfg.Audience:
		return nil, fmt.Errorf("jwt aud is %q, want %q", c.Audience, s.cfg.Audience)
	case c.Expires <= now.Unix():
		return nil, errors.New("jwt expired")
	case time.Unix(c.Expires, 0).Sub(now) > s.cfg.MaxTokenLifetime:
		return nil, fmt.Errorf("jwt lives longer than %v", s.cfg.MaxTokenLifetime)
	case c.IssuedAt > now.Unix():
		return nil, errors.New("jwt iat lies in the future")
	}
	return &c, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// parseRoute wants multipart/form-data with exactly one part, a field
// named "json" of type application/json, holding the route payload.
func parseRoute(contentType string, body []byte) (*Route, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, fmt.Errorf("content type is %q, want multipart/form-data with a boundary", contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var payload []byte
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errors.New("body is not valid multipart")
		}
		if n > 0 || p.FormName() != "json" || p.FileName() != "" {
			return nil, fmt.Errorf("unexpected part %q; want one field named json", p.FormName())
		}
		if pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err != nil || pt != "application/json" {
			return nil, errors.New("part json must be of type application/json")
		}
		if payload, err = io.ReadAll(p); err != nil {
			return nil, errors.New("body is not valid multipart")
		}
	}
	if payload == nil {
		return nil, errors.New("no part named json")
	}
	return decodeRoute(payload)
}

// decodeRoute reads the payload strictly: the spec's keys, each once,
// with the right types, and nothing else.
func decodeRoute(b []byte) (*Route, error) {
	obj, err := object(b, "body")
	if err != nil {
		return nil, err
	}
	r := &Route{}
	for k, v := range obj {
		switch k {
		case "conversationIdentifier":
			if r.ConversationIdentifier, err = nonEmpty(v, k); err != nil {
				return nil, err
			}
		case "routingType":
			if r.RoutingType, err = nonEmpty(v, k); err != nil {
				return nil, err
			}
			if r.RoutingType != "Initial" && r.RoutingType != "Transfer" {
				return nil, fmt.Errorf("routingType is %q, want Initial or Transfer", r.RoutingType)
			}
		case "routingInfo":
			r.HasRoutingInfo = true
			if err := decodeRoutingInfo(v, r); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected key %q", k)
		}
	}
	switch {
	case r.ConversationIdentifier == "":
		return nil, errors.New("conversationIdentifier is missing")
	case r.RoutingType == "":
		return nil, errors.New("routingType is missing")
	}
	return r, nil
}

func decodeRoutingInfo(b []byte, r *Route) error {
	obj, err := object(b, "routingInfo")
	if err != nil {
		return err
	}
	hasFlow := false
	for k, v := range obj {
		switch k {
		case "flow":
			hasFlow = true
			flow, err := object(v, "routingInfo.flow")
			if err != nil {
				return err
			}
			for fk, fv := range flow {
				switch fk {
				case "flowId":
					r.FlowID, err = nonEmpty(fv, "routingInfo.flow.flowId")
				case "queueId":
					r.FallbackQueueID, err = nonEmpty(fv, "routingInfo.flow.queueId")
				default:
					err = fmt.Errorf("unexpected key routingInfo.flow.%s", fk)
				}
				if err != nil {
					return err
				}
			}
			if r.FlowID == "" || r.FallbackQueueID == "" {
				return errors.New("routingInfo.flow needs flowId and queueId")
			}
		case "queueId":
			if r.QueueID, err = nonEmpty(v, "routingInfo.queueId"); err != nil {
				return err
			}
		case "routingAttributes":
			attrs := map[string]string{}
			if err := json.Unmarshal(v, &attrs); err != nil || attrs == nil {
				return errors.New("routingInfo.routingAttributes must be an object of strings")
			}
			r.RoutingAttributes = attrs
		default:
			return fmt.Errorf("unexpected key routingInfo.%s", k)
		}
	}
	switch {
	case hasFlow && r.QueueID != "":
		return errors.New("routingInfo has both flow and queueId")
	case !hasFlow && r.QueueID == "":
		return errors.New("routingInfo has neither flow nor queueId; leave it out to use the channel's setting")
	case r.RoutingAttributes != nil && !hasFlow:
		return errors.New("routingInfo.routingAttributes goes with flow routing")
	}
	return nil
}

// parseDelete wants application/json {"conversationIdentifier":"..."}.
func parseDelete(contentType string, body []byte) (string, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return "", fmt.Errorf("content type is %q, want application/json", contentType)
	}
	obj, err := object(body, "body")
	if err != nil {
		return "", err
	}
	for k := range obj {
		if k != "conversationIdentifier" {
			return "", fmt.Errorf("unexpected key %q", k)
		}
	}
	v, ok := obj["conversationIdentifier"]
	if !ok {
		return "", errors.New("conversationIdentifier is missing")
	}
	return nonEmpty(v, "conversationIdentifier")
}

// object decodes a JSON object, refusing a key given twice and anything
// after it.
func object(b []byte, what string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s must be a JSON object", what)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s is not valid JSON", what)
		}
		key := tok.(string)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s: key %q given twice", what, key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON", what)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON", what)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s holds more after the JSON object", what)
	}
	return out, nil
}

func nonEmpty(v json.RawMessage, name string) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", name)
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

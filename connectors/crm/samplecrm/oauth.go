package samplecrm

import (
	"crypto/rand"
	"math"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// codeTTL is how long an authorization code can be exchanged.
const codeTTL = 10 * time.Minute

// sweepEvery is how many tokens are issued between sweeps of expired ones,
// so a long load test does not keep every token it ever got.
const sweepEvery = 1024

// oauthServer is a minimal OAuth 2.0 authorization server (RFC 6749) for one
// client. Tokens are random strings kept in memory.
type oauthServer struct {
	cfg OAuthOptions

	mu      sync.RWMutex
	access  map[string]time.Time // token -> expiry
	refresh map[string]string    // token -> scope
	codes   map[string]authCode
	issued  int
}

type authCode struct {
	clientID    string // "" for codes from IssueAuthCode
	redirectURI string // "" for codes from IssueAuthCode
	scope       string
	expires     time.Time
}

func newOAuthServer(opts *OAuthOptions) *oauthServer {
	if opts == nil {
		return nil
	}
	cfg := *opts
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = time.Hour
	}
	return &oauthServer{
		cfg:     cfg,
		access:  map[string]time.Time{},
		refresh: map[string]string{},
		codes:   map[string]authCode{},
	}
}

func (o *oauthServer) accessValid(token string, now time.Time) bool {
	o.mu.RLock()
	exp, ok := o.access[token]
	o.mu.RUnlock()
	return ok && now.Before(exp)
}

// tokenResponse is the RFC 6749 section 5.1 answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// issue creates an access token and, when withRefresh, pairs it with
// refreshToken, or a new refresh token when refreshToken is "". The caller
// holds o.mu.
func (o *oauthServer) issue(now time.Time, scope string, withRefresh bool, refreshToken string) tokenResponse {
	o.issued++
	if o.issued%sweepEvery == 0 {
		o.sweep(now)
	}
	tr := tokenResponse{
		AccessToken: rand.Text(),
		TokenType:   "Bearer",
		ExpiresIn:   int64(math.Ceil(o.cfg.AccessTokenTTL.Seconds())),
		Scope:       scope,
	}
	o.access[tr.AccessToken] = now.Add(o.cfg.AccessTokenTTL)
	if withRefresh {
		if refreshToken == "" {
			refreshToken = rand.Text()
			o.refresh[refreshToken] = scope
		}
		tr.RefreshToken = refreshToken
	}
	return tr
}

func (o *oauthServer) sweep(now time.Time) {
	for tok, exp := range o.access {
		if !now.Before(exp) {
			delete(o.access, tok)
		}
	}
	for code, c := range o.codes {
		if !now.Before(c.expires) {
			delete(o.codes, code)
		}
	}
}

func (o *oauthServer) newCode(c authCode) string {
	code := rand.Text()
	o.mu.Lock()
	o.codes[code] = c
	o.mu.Unlock()
	return code
}

// IssueAuthCode returns an authorization code as if a user had approved
// /oauth/authorize, for tests that skip the browser. The code is good for
// any redirect_uri, once, within ten minutes. It returns "" when OAuth is
// off.
func (s *Server) IssueAuthCode() string {
	if s.oauth == nil {
		return ""
	}
	return s.oauth.newCode(authCode{expires: time.Now().Add(codeTTL)})
}

// ExpireAccessTokens invalidates every access token issued so far, so that
// clients have to refresh. Refresh tokens stay valid.
func (s *Server) ExpireAccessTokens() {
	if s.oauth == nil {
		return
	}
	s.oauth.mu.Lock()
	clear(s.oauth.access)
	s.oauth.mu.Unlock()
}

// RefreshTokenValid reports whether tok can still be used in a
// refresh_token grant.
func (s *Server) RefreshTokenValid(tok string) bool {
	if s.oauth == nil {
		return false
	}
	s.oauth.mu.RLock()
	defer s.oauth.mu.RUnlock()
	_, ok := s.oauth.refresh[tok]
	return ok
}

// oauthError is the RFC 6749 section 5.2 error answer.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Basic "+realm)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, oauthError{Error: code, Description: description})
}

// token serves POST /oauth/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	o := s.oauth
	if o == nil {
		return notFound("OAuth is not enabled on this sample CRM")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return nil
	}
	data, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(data))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "bad form encoding")
		return nil
	}
	clientID, secret, basic := r.BasicAuth()
	if !basic {
		clientID, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if clientID == "" {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication required")
		return nil
	}
	if !credentialEqual(clientID, o.cfg.ClientID) || !credentialEqual(secret, o.cfg.ClientSecret) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return nil
	}

	now := time.Now()
	var tr tokenResponse
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
		scope := defaultScope(form.Get("scope"))
		o.mu.Lock()
		tr = o.issue(now, scope, false, "")
		o.mu.Unlock()
	case "authorization_code":
		code := form.Get("code")
		if code == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code is required")
			return nil
		}
		o.mu.Lock()
		c, ok := o.codes[code]
		delete(o.codes, code) // a code is good once, even when the exchange fails
		switch {
		case !ok || !now.Before(c.expires):
			o.mu.Unlock()
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired authorization code")
			return nil
		case c.clientID != "" && c.clientID != clientID,
			c.redirectURI != "" && c.redirectURI != form.Get("redirect_uri"):
			o.mu.Unlock()
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client or redirect_uri")
			return nil
		}
		tr = o.issue(now, defaultScope(c.scope), true, "")
		o.mu.Unlock()
	case "refresh_token":
		old := form.Get("refresh_token")
		if old == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return nil
		}
		o.mu.Lock()
		scope, ok := o.refresh[old]
		if !ok {
			o.mu.Unlock()
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown or revoked refresh token")
			return nil
		}
		keep := old
		if o.cfg.RotateRefreshTokens {
			delete(o.refresh, old)
			keep = ""
		}
		tr = o.issue(now, scope, true, keep)
		o.mu.Unlock()
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return nil
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+grant+" is not supported")
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tr)
	return nil
}

// credentialEqual compares a client credential as sent. RFC 6749 section
// 2.3.1 has clients form-encode it inside HTTP basic auth, and some do not,
// so both spellings are accepted.
func credentialEqual(got, want string) bool {
	if secretEqual(got, want) {
		return true
	}
	unescaped, err := url.QueryUnescape(got)
	return err == nil && secretEqual(unescaped, want)
}

func defaultScope(scope string) string {
	if scope == "" {
		return "crm"
	}
	return scope
}

// authorize serves GET /oauth/authorize: a demo consent screen that approves
// at once and sends the browser back with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	o := s.oauth
	if o == nil {
		return notFound("OAuth is not enabled on this sample CRM")
	}
	q := r.URL.Query()
	if q.Get("client_id") != o.cfg.ClientID {
		return invalid("client_id: unknown client %q", q.Get("client_id"))
	}
	raw := q.Get("redirect_uri")
	redirect, err := url.Parse(raw)
	if raw == "" || err != nil || !redirect.IsAbs() || (redirect.Scheme != "http" && redirect.Scheme != "https") || redirect.Fragment != "" {
		return invalid("redirect_uri: want an absolute http or https URL without a fragment, got %q", raw)
	}
	back := redirect.Query()
	if rt := q.Get("response_type"); rt != "code" {
		back.Set("error", "unsupported_response_type")
		back.Set("error_description", "only response_type=code is supported")
	} else {
		back.Set("code", o.newCode(authCode{
			clientID:    o.cfg.ClientID,
			redirectURI: raw,
			scope:       q.Get("scope"),
			expires:     time.Now().Add(codeTTL),
		}))
	}
	if state := q.Get("state"); state != "" {
		back.Set("state", state)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
	return nil
}

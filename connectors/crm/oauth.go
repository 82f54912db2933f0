package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/crmsync/crmsync/internal/httperr"
)

// endpointToken names token requests in calls, metrics and errors.
const endpointToken = "oauth2_token"

// tokenSource hands out access tokens: the cached one while it is fresh,
// else one another process saved in the store, else a new one from the
// token endpoint. Holding the lock while fetching makes concurrent
// requests wait for one renewal instead of each starting their own.
type tokenSource struct {
	c     *Client
	cfg   *OAuth2
	cc    *clientcredentials.Config // client_credentials grant
	ac    *oauth2.Config            // authorization_code grant
	hc    *http.Client
	store TokenStore
	early time.Duration

	mu       sync.Mutex
	cur      *oauth2.Token
	rejected string // an access token the CRM refused
}

func newTokenSource(c *Client, o *OAuth2, store TokenStore) *tokenSource {
	s := &tokenSource{c: c, cfg: o, store: store, early: o.RefreshBefore}
	if s.early == 0 {
		s.early = DefaultRefreshBefore
	}
	hc := *c.hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &tokenTransport{c: c, base: base}
	s.hc = &hc
	if o.Grant == GrantAuthorizationCode {
		s.ac = &oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{AuthURL: o.AuthURL, TokenURL: o.TokenURL},
			RedirectURL:  o.RedirectURL,
			Scopes:       o.Scopes,
		}
	} else {
		s.cc = &clientcredentials.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret.Reveal(),
			TokenURL:     o.TokenURL,
			Scopes:       o.Scopes,
		}
	}
	return s
}

func (s *tokenSource) fresh(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" || t.AccessToken == s.rejected {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	// Renew early, but never in the first half of a token's life: a CRM
	// that issues one-minute tokens would otherwise be asked for a new
	// token before every request.
	margin := s.early
	if half := time.Duration(t.ExpiresIn) * time.Second / 2; half > 0 && half < margin {
		margin = half
	}
	return s.c.now().Add(margin).Before(t.Expiry)
}

// reject drops a token the CRM answered 401 to, unless it was already
// replaced meanwhile.
func (s *tokenSource) reject(t *oauth2.Token) {
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = t.AccessToken
	if s.cur != nil && s.cur.AccessToken == t.AccessToken {
		s.cur = nil
	}
}

func (s *tokenSource) token(ctx context.Context, endpoint string) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh(s.cur) {
		return s.cur, nil
	}
	stored, err := s.load(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if s.fresh(stored) {
		s.cur = stored
		return stored, nil
	}

	var t *oauth2.Token
	if s.cc != nil {
		t, err = s.fetch(ctx, "")
	} else {
		t, err = s.refresh(ctx, endpoint, stored)
	}
	if err != nil {
		return nil, s.fetchError(endpoint, err)
	}
	s.c.red.addToken(t)
	if t.ExpiresIn == 0 && !t.Expiry.IsZero() {
		t.ExpiresIn = int64(t.Expiry.Sub(time.Now()).Round(time.Second) / time.Second)
	}
	s.cur, s.rejected = t, ""
	s.save(ctx, t)
	return t, nil
}

// refresh renews through the refresh token: the stored one wins over the
// configured one. When the server calls it invalid, another process may
// have rotated it, so the store is read once more; last, the configured
// refresh token is tried, in case an admin replaced a revoked one.
func (s *tokenSource) refresh(ctx context.Context, endpoint string, stored *oauth2.Token) (*oauth2.Token, error) {
	rt := s.refreshCandidate(stored)
	if rt == "" {
		return nil, ErrNotAuthorized
	}
	tried := map[string]bool{rt: true}
	t, err := s.fetch(ctx, rt)
	if err == nil || !invalidGrant(err) {
		return t, err
	}
	again, lerr := s.load(ctx, endpoint)
	if lerr != nil {
		return nil, err
	}
	if s.fresh(again) {
		return again, nil
	}
	for _, cand := range []string{refreshOf(again), s.cfg.RefreshToken.Reveal()} {
		if cand == "" || tried[cand] {
			continue
		}
		tried[cand] = true
		t, err = s.fetch(ctx, cand)
		if err == nil || !invalidGrant(err) {
			return t, err
		}
	}
	return nil, err
}

func (s *tokenSource) refreshCandidate(stored *oauth2.Token) string {
	for _, rt := range []string{refreshOf(stored), refreshOf(s.cur), s.cfg.RefreshToken.Reveal()} {
		if rt != "" {
			return rt
		}
	}
	return ""
}

func refreshOf(t *oauth2.Token) string {
	if t == nil {
		return ""
	}
	return t.RefreshToken
}

func invalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

func (s *tokenSource) fetch(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.hc), s.c.cfg.timeout)
	defer cancel()
	if s.cc != nil {
		return s.cc.Token(ctx)
	}
	return s.ac.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func (s *tokenSource) load(ctx context.Context, endpoint string) (*oauth2.Token, error) {
	t, err := s.store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("crm: %s: load oauth2 token: %s", endpoint, s.c.red.Error(err))
	}
	s.c.red.addToken(t)
	return t, nil
}

// save keeps t for other processes and restarts. A failure is logged, not
// returned: the token is good, and the next renewal saves again.
func (s *tokenSource) save(ctx context.Context, t *oauth2.Token) {
	if err := s.store.Save(ctx, t); err != nil {
		s.c.log.LogAttrs(ctx, slog.LevelWarn, "crm: save oauth2 token", slog.String("err", s.c.red.Error(err)))
	}
}

// fetchError turns a token endpoint failure into the errors the job layer
// classifies, named after the endpoint whose call needed the token.
func (s *tokenSource) fetchError(endpoint string, err error) error {
	red := s.c.red
	var re *oauth2.RetrieveError
	var te *TransportError
	switch {
	case errors.Is(err, ErrNotAuthorized):
		return fmt.Errorf("crm: %s: %w", endpoint, err)
	case errors.As(err, &te):
		return fmt.Errorf("crm: %s: oauth2 token: %w", endpoint, te)
	case errors.As(err, &re) && re.Response != nil && (re.Response.StatusCode < 200 || re.Response.StatusCode > 299):
		return fmt.Errorf("crm: %s: oauth2 token: %w", endpoint, &HTTPError{
			Endpoint:   endpointToken,
			Status:     re.Response.StatusCode,
			RetryAfter: httperr.RetryAfter(re.Response.Header.Get("Retry-After"), s.c.now()),
			Body:       httperr.Cut(red.String(string(re.Body)), maxErrorBody),
		})
	case errors.As(err, &re):
		return fmt.Errorf("crm: %s: oauth2 token: %w", endpoint, &ResponseError{Endpoint: endpointToken, Reason: red.String(re.ErrorCode + " " + re.ErrorDescription)})
	}
	return fmt.Errorf("crm: %s: oauth2 token: %w", endpoint, &ResponseError{Endpoint: endpointToken, Reason: red.Error(err)})
}

// tokenTransport reports token requests like any other CRM call and turns
// failed exchanges into *TransportError.
type tokenTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	call := Call{Endpoint: endpointToken, Method: req.Method, URL: t.c.red.String(req.URL.String()), At: t.c.now(), Attempt: 1}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	call.Duration = time.Since(start)
	if err != nil {
		terr := t.c.transportError(context.WithoutCancel(ctx), ctx, endpointToken, err)
		call.Err = terr.Error()
		t.c.record(ctx, call)
		return nil, terr
	}
	call.Status = resp.StatusCode
	t.c.record(ctx, call)
	return resp, nil
}

// AuthCodeURL is the page an admin opens to grant crmsync access (the
// authorization_code grant). An empty state uses the configured one.
func (c *Client) AuthCodeURL(state string) (string, error) {
	if c.tokens == nil || c.tokens.ac == nil {
		return "", errors.New("crm: auth code url: auth is not oauth2 with the authorization_code grant")
	}
	o := c.tokens.cfg
	if state == "" {
		state = o.State
	}
	var opts []oauth2.AuthCodeOption
	switch o.AccessType {
	case "":
	case "offline":
		opts = append(opts, oauth2.AccessTypeOffline)
	default:
		opts = append(opts, oauth2.SetAuthURLParam("access_type", o.AccessType))
	}
	return c.tokens.ac.AuthCodeURL(state, opts...), nil
}

// Exchange trades the code the authorization page returned for a token,
// and saves it to the TokenStore.
func (c *Client) Exchange(ctx context.Context, code string) error {
	s := c.tokens
	if s == nil || s.ac == nil {
		return errors.New("crm: exchange: auth is not oauth2 with the authorization_code grant")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.hc), c.cfg.timeout)
	defer cancel()
	t, err := s.ac.Exchange(tctx, code)
	if err != nil {
		return s.fetchError("exchange", err)
	}
	c.red.addToken(t)
	s.cur, s.rejected = t, ""
	if err := s.store.Save(ctx, t); err != nil {
		return fmt.Errorf("crm: exchange: save token: %s", c.red.Error(err))
	}
	return nil
}

var _ TokenStore = (*memoryStore)(nil)

// memoryStore is the TokenStore used when none is given.
type memoryStore struct {
	mu sync.Mutex
	t  *oauth2.Token
}

func (m *memoryStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t, nil
}

func (m *memoryStore) Save(_ context.Context, t *oauth2.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = t
	return nil
}

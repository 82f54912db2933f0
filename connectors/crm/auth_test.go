package crm

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
)

func TestBasicAndHeaderAuth(t *testing.T) {
	tests := []struct {
		name  string
		crm   samplecrm.Options
		auth  Auth
		wrong Auth
	}{
		{"basic",
			samplecrm.Options{BasicUser: "crmsync", BasicPassword: "p@ss:word"},
			Auth{Type: AuthBasic, Username: "crmsync", Password: "p@ss:word"},
			Auth{Type: AuthBasic, Username: "crmsync", Password: "guess"}},
		{"header",
			samplecrm.Options{HeaderName: "X-Api-Key", HeaderValue: "k-123"},
			Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-Api-Key", Value: "k-123"}, {Key: "X-Tenant", Value: "acme"}}},
			Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-Api-Key", Value: "k-999"}}}},
		{"header key in any case, and no auth refused",
			samplecrm.Options{HeaderName: "X-Api-Key", HeaderValue: "k-123"},
			Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "x-api-key", Value: "k-123"}}},
			Auth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm, base := startCRM(t, tt.crm)
			cfg := sampleConfig(base)
			cfg.Auth = tt.auth
			c := newClient(t, cfg, Options{})
			res, err := c.FindOrCreateAccount(context.Background(), session(cfg, bond))
			require.NoError(t, err)
			assert.True(t, res.Created)
			assert.Len(t, crm.Accounts(), 1)

			cfg = sampleConfig(base)
			cfg.Auth = tt.wrong
			c = newClient(t, cfg, Options{})
			var rec calls
			_, err = c.FindOrCreateAccount(rec.ctx(context.Background()), session(cfg, bond))
			var he *HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, http.StatusUnauthorized, he.Status)
			assert.Len(t, rec.all(), 1, "a 401 without OAuth is not retried")
		})
	}
}

func oauthConfig(base string, grant string) *Config {
	cfg := sampleConfig(base)
	cfg.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{
		Grant:        grant,
		AuthURL:      base + "/oauth/authorize",
		TokenURL:     base + "/oauth/token",
		ClientID:     "crmsync-app",
		ClientSecret: "client-secret-1",
		Scopes:       []string{"crm"},
		State:        "st-1",
		AccessType:   "offline",
		RedirectURL:  "https://crmsync.example/oauth/callback",
	}}
	return cfg
}

func tokenRequests(crm *samplecrm.Server) int { return len(requestsTo(crm, "POST", "/oauth/token")) }

func TestOAuthClientCredentials(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{OAuth: &samplecrm.OAuthOptions{ClientID: "crmsync-app", ClientSecret: "client-secret-1"}})
	cfg := oauthConfig(base, "")
	store := &memStore{}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	c := newClient(t, cfg, Options{Tokens: store, Now: now})
	ctx := context.Background()

	var rec calls
	v := session(cfg, bond)
	_, err := c.FindOrCreateAccount(rec.ctx(ctx), v)
	require.NoError(t, err)
	_, err = c.FindOrCreateRecord(ctx, v, false)
	require.NoError(t, err)
	assert.Equal(t, 1, tokenRequests(crm), "one token serves many requests")
	assert.Equal(t, []string{endpointToken, EndpointFindAccount, EndpointCreateAccount}, rec.endpoints())
	require.Len(t, store.saved, 1)
	first := store.saved[0].AccessToken

	t.Run("renewed before expiry", func(t *testing.T) {
		offset.Store(int64(time.Hour - 30*time.Second)) // inside the 60s margin of the 1h token
		require.NoError(t, c.UpdateRecord(ctx, v))
		assert.Equal(t, 2, tokenRequests(crm))
		require.Len(t, store.saved, 2)
		assert.NotEqual(t, first, store.saved[1].AccessToken)
		offset.Store(0)
	})

	t.Run("a 401 drops the token and retries once", func(t *testing.T) {
		crm.ExpireAccessTokens()
		var rec calls
		require.NoError(t, c.Comment(rec.ctx(ctx), v, "hello"))
		got := rec.all()
		require.Len(t, got, 3)
		assert.Equal(t, EndpointComment, got[0].Endpoint)
		assert.Equal(t, http.StatusUnauthorized, got[0].Status)
		assert.Equal(t, 1, got[0].Attempt)
		assert.Equal(t, endpointToken, got[1].Endpoint)
		assert.Equal(t, EndpointComment, got[2].Endpoint)
		assert.Equal(t, http.StatusCreated, got[2].Status)
		assert.Equal(t, 2, got[2].Attempt)
	})

	t.Run("a second 401 is returned", func(t *testing.T) {
		// A token server that keeps issuing tokens the API refuses.
		api := fixedCRM(t, http.StatusUnauthorized, `{"error":"no"}`)
		cfg := oauthConfig(base, "")
		cfg.Endpoints.UpdateRecord.URL = api + "/api/records/{RECORD_ID}"
		c := newClient(t, cfg, Options{})
		var rec calls
		err := c.UpdateRecord(rec.ctx(ctx), v)
		var he *HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.Status)
		assert.Equal(t, []string{endpointToken, EndpointUpdateRecord, endpointToken, EndpointUpdateRecord}, rec.endpoints())
	})

	t.Run("a wrong client secret", func(t *testing.T) {
		cfg := oauthConfig(base, "")
		cfg.Auth.OAuth2.ClientSecret = "nope"
		c := newClient(t, cfg, Options{})
		_, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
		var he *HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.Status)
		assert.Equal(t, endpointToken, he.Endpoint)
		assert.ErrorContains(t, err, "crm: find_account: oauth2 token: ")
	})
}

func TestOAuthConcurrentRequestsShareOneToken(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{OAuth: &samplecrm.OAuthOptions{ClientID: "crmsync-app", ClientSecret: "client-secret-1"}})
	cfg := oauthConfig(base, "")
	cfg.Endpoints.FindAccount.Parameters = []Parameter{{Name: "phone", Value: "{PHONE_NUMBER}"}}
	c := newClient(t, cfg, Options{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, _, err := c.find(context.Background(), cfg.Endpoints.FindAccount, session(cfg, bond))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, tokenRequests(crm))
}

func TestOAuthAuthorizationCode(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{OAuth: &samplecrm.OAuthOptions{
		ClientID: "crmsync-app", ClientSecret: "client-secret-1", RotateRefreshTokens: true,
	}})
	cfg := oauthConfig(base, GrantAuthorizationCode)
	store := &memStore{}
	c := newClient(t, cfg, Options{Tokens: store})
	ctx := context.Background()

	_, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
	assert.ErrorIs(t, err, ErrNotAuthorized, "nothing works before an admin authorizes")

	// The admin opens the authorization page; the CRM sends the browser
	// back with a code.
	page, err := c.AuthCodeURL("")
	require.NoError(t, err)
	u, err := url.Parse(page)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "st-1", q.Get("state"))
	assert.Equal(t, "offline", q.Get("access_type"))
	assert.Equal(t, "crm", q.Get("scope"))
	assert.Equal(t, "crmsync-app", q.Get("client_id"))
	assert.Equal(t, cfg.Auth.OAuth2.RedirectURL, q.Get("redirect_uri"))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(page)
	require.NoError(t, err)
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "st-1", back.Query().Get("state"))
	require.NoError(t, c.Exchange(ctx, back.Query().Get("code")))
	stored := store.current(t)
	require.NotNil(t, stored)
	require.NotEmpty(t, stored.RefreshToken)
	firstRefresh := stored.RefreshToken

	v := session(cfg, bond)
	_, err = c.FindOrCreateAccount(ctx, v)
	require.NoError(t, err)
	assert.Equal(t, 1, tokenRequests(crm), "the exchanged token is used as is")

	// The access token expires: a 401, a refresh that rotates the refresh
	// token, and the call again.
	crm.ExpireAccessTokens()
	var rec calls
	_, err = c.FindOrCreateRecord(rec.ctx(ctx), v, false)
	require.NoError(t, err)
	assert.Equal(t, []string{EndpointFindRecord, endpointToken, EndpointFindRecord, EndpointCreateRecord}, rec.endpoints())
	rotated := store.current(t).RefreshToken
	assert.NotEqual(t, firstRefresh, rotated)
	assert.False(t, crm.RefreshTokenValid(firstRefresh))
	assert.True(t, crm.RefreshTokenValid(rotated))

	t.Run("a restart uses the stored token over the configured one", func(t *testing.T) {
		cfg := oauthConfig(base, GrantAuthorizationCode)
		cfg.Auth.OAuth2.RefreshToken = "configured-refresh-token"
		crm.ExpireAccessTokens()
		c2 := newClient(t, cfg, Options{Tokens: store})
		require.NoError(t, c2.UpdateRecord(ctx, v))
		assert.True(t, crm.RefreshTokenValid(store.current(t).RefreshToken))
		assert.NotEqual(t, rotated, store.current(t).RefreshToken)
	})

	t.Run("invalid_grant reloads the store once", func(t *testing.T) {
		// Another process rotated the refresh token just after this one read
		// the store.
		current := store.current(t)
		store.mu.Lock()
		store.stale = &oauth2.Token{AccessToken: "old", RefreshToken: firstRefresh, Expiry: time.Now().Add(-time.Minute)}
		store.mu.Unlock()
		crm.ExpireAccessTokens()
		expired := *current
		expired.Expiry = time.Now().Add(-time.Minute)
		require.NoError(t, store.Save(ctx, &expired))

		c3 := newClient(t, oauthConfig(base, GrantAuthorizationCode), Options{Tokens: store})
		var rec calls
		require.NoError(t, c3.UpdateRecord(rec.ctx(ctx), v))
		// The stale token's refresh fails, then the current one works.
		assert.Equal(t, []string{endpointToken, endpointToken, endpointToken, EndpointUpdateRecord}, rec.endpoints(),
			"the library tries a refused client auth style once more")
		assert.Equal(t, http.StatusBadRequest, rec.all()[0].Status)
		assert.True(t, crm.RefreshTokenValid(store.current(t).RefreshToken))
	})

	t.Run("the configured refresh token seeds a fresh store", func(t *testing.T) {
		seedStore := &memStore{}
		cfg := oauthConfig(base, GrantAuthorizationCode)
		cfg.Auth.OAuth2.RefreshToken = crmsync.Secret(store.current(t).RefreshToken)
		c4 := newClient(t, cfg, Options{Tokens: seedStore})
		require.NoError(t, c4.UpdateRecord(ctx, v))
		require.NotNil(t, seedStore.current(t))
	})

	t.Run("a revoked refresh token", func(t *testing.T) {
		cfg := oauthConfig(base, GrantAuthorizationCode)
		cfg.Auth.OAuth2.RefreshToken = "revoked"
		c5 := newClient(t, cfg, Options{})
		err := c5.UpdateRecord(ctx, v)
		var he *HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusBadRequest, he.Status)
		assert.Contains(t, he.Body, "invalid_grant")
	})

	t.Run("auth code url needs the authorization_code grant", func(t *testing.T) {
		c6 := newClient(t, oauthConfig(base, ""), Options{})
		_, err := c6.AuthCodeURL("x")
		assert.Error(t, err)
		assert.Error(t, c6.Exchange(ctx, "code"))
	})
}

func TestOAuthTokenTTLShorterThanMargin(t *testing.T) {
	// A CRM with one-minute tokens and the default 60s margin: the token is
	// still reused for half its life rather than renewed before every call.
	crm, base := startCRM(t, samplecrm.Options{OAuth: &samplecrm.OAuthOptions{
		ClientID: "crmsync-app", ClientSecret: "client-secret-1", AccessTokenTTL: time.Minute,
	}})
	cfg := oauthConfig(base, "")
	c := newClient(t, cfg, Options{})
	for range 3 {
		_, _, err := c.find(context.Background(), cfg.Endpoints.FindAccount, session(cfg, bond))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, tokenRequests(crm))
}

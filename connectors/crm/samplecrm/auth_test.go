package samplecrm

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestOpenWhenNoAuthConfigured(t *testing.T) {
	c := start(t, Options{})
	assert.Equal(t, http.StatusCreated, c.call(t, http.MethodPost, "/api/accounts", `{"name":"A"}`).Status)
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/_control/fail", nil).Status)
	assert.Equal(t, http.StatusNotFound, c.call(t, http.MethodPost, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}).Status)
	assert.Empty(t, c.IssueAuthCode())
}

func TestBasicAuth(t *testing.T) {
	c := start(t, Options{BasicUser: "crmsync", BasicPassword: "s3cret:+"})
	tests := []struct {
		name   string
		opts   []option
		status int
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"wrong password", []option{withBasic("crmsync", "nope")}, http.StatusUnauthorized},
		{"wrong user", []option{withBasic("root", "s3cret:+")}, http.StatusUnauthorized},
		{"bearer instead", []option{withBearer("s3cret:+")}, http.StatusUnauthorized},
		{"right", []option{withBasic("crmsync", "s3cret:+")}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/accounts?id=1", "/_control/fail"} {
				r := c.call(t, http.MethodGet, path, nil, tt.opts...)
				assert.Equal(t, tt.status, r.Status, "%s: %s", path, r.Body)
				if tt.status == http.StatusUnauthorized {
					assert.Equal(t, `Basic realm="crmsync sample CRM"`, r.Header.Get("WWW-Authenticate"))
					assert.NotEmpty(t, r.errorText(t))
				}
			}
		})
	}
	// The human pages stay open.
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/", nil).Status)
}

func TestHeaderAuth(t *testing.T) {
	c := start(t, Options{HeaderName: "X-Api-Key", HeaderValue: "k-123"})
	tests := []struct {
		name   string
		opts   []option
		status int
		msg    string
	}{
		{"missing", nil, http.StatusUnauthorized, "header X-Api-Key required"},
		{"wrong", []option{withHeader("X-Api-Key", "k-124")}, http.StatusUnauthorized, "wrong value for header X-Api-Key"},
		{"right, any case of name", []option{withHeader("x-api-key", "k-123")}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.call(t, http.MethodPost, "/api/accounts", `{"name":"A"}`, tt.opts...)
			if tt.status == http.StatusOK {
				assert.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
				return
			}
			assert.Equal(t, tt.status, r.Status)
			assert.Equal(t, tt.msg, r.errorText(t))
			r = c.call(t, http.MethodDelete, "/_control/fail", nil, tt.opts...)
			assert.Equal(t, tt.status, r.Status)
		})
	}
}

const (
	testClientID     = "crmsync-client"
	testClientSecret = "top secret+/="
)

func oauthCRM(t *testing.T, rotate bool, ttl time.Duration) (*crm, oauth2.Config) {
	t.Helper()
	c := start(t, Options{OAuth: &OAuthOptions{
		ClientID: testClientID, ClientSecret: testClientSecret,
		AccessTokenTTL: ttl, RotateRefreshTokens: rotate,
	}})
	return c, oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.url + "/oauth/authorize", TokenURL: c.url + "/oauth/token"},
		RedirectURL:  "https://app.example.com/callback",
		Scopes:       []string{"crm.read", "crm.write"},
	}
}

// tokenRequest posts a grant to /oauth/token with the client in the form.
func (c *crm) tokenRequest(t *testing.T, form url.Values) reply {
	t.Helper()
	form.Set("client_id", testClientID)
	form.Set("client_secret", testClientSecret)
	return c.call(t, http.MethodPost, "/oauth/token", form)
}

func TestOAuthClientCredentials(t *testing.T) {
	c, _ := oauthCRM(t, false, 0)
	ctx := context.Background()

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{
			ClientID: testClientID, ClientSecret: testClientSecret,
			TokenURL: c.url + "/oauth/token", AuthStyle: style,
		}
		tok, err := cc.Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, "Bearer", tok.TokenType)
		assert.Empty(t, tok.RefreshToken, "client_credentials issues no refresh token")
		assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute)

		resp, err := cc.Client(ctx).Get(c.url + "/api/accounts?id=1")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}

	r := c.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"crm"}})
	require.Equal(t, http.StatusOK, r.Status)
	body := r.object(t)
	assert.Equal(t, "crm", body["scope"])
	assert.Equal(t, float64(3600), body["expires_in"])
	assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))

	bad := clientcredentials.Config{ClientID: testClientID, ClientSecret: "wrong", TokenURL: c.url + "/oauth/token"}
	_, err := bad.Token(ctx)
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
}

func TestOAuthBearerRequired(t *testing.T) {
	c, _ := oauthCRM(t, false, 0)

	r := c.call(t, http.MethodGet, "/api/accounts?id=1", nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Equal(t, `Bearer realm="crmsync sample CRM"`, r.Header.Get("WWW-Authenticate"))

	r = c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer("made-up"))
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Equal(t, `Bearer error="invalid_token"`, r.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "invalid or expired access token", r.errorText(t))

	r = c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBasic(testClientID, testClientSecret))
	assert.Equal(t, http.StatusUnauthorized, r.Status)

	r = c.call(t, http.MethodGet, "/_control/fail", nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status)
}

func TestOAuthAuthorizationCode(t *testing.T) {
	c, cfg := oauthCRM(t, false, 0)
	ctx := context.Background()

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(cfg.AuthCodeURL("xyz-state", oauth2.AccessTypeOffline))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "app.example.com", loc.Host)
	assert.Equal(t, "xyz-state", loc.Query().Get("state"))
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)

	tok, err := cfg.Exchange(ctx, code)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken)
	assert.True(t, c.RefreshTokenValid(tok.RefreshToken))
	assert.Equal(t, "crm.read crm.write", tok.Extra("scope"))

	r := c.call(t, http.MethodPost, "/api/accounts", `{"name":"A"}`, withBearer(tok.AccessToken))
	assert.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

	// A code is good once.
	_, err = cfg.Exchange(ctx, code)
	assertGrantError(t, err, "invalid_grant")

	// The redirect_uri must match the one the code was issued for.
	resp, err = noRedirect.Get(cfg.AuthCodeURL("s2"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	other := cfg
	other.RedirectURL = "https://evil.example.com/callback"
	_, err = other.Exchange(ctx, loc.Query().Get("code"))
	assertGrantError(t, err, "invalid_grant")

	// A code from IssueAuthCode skips the browser.
	tok, err = cfg.Exchange(ctx, c.IssueAuthCode())
	require.NoError(t, err)
	assert.NotEmpty(t, tok.RefreshToken)

	_, err = cfg.Exchange(ctx, "made-up")
	assertGrantError(t, err, "invalid_grant")
}

func TestOAuthAuthorizeErrors(t *testing.T) {
	c, cfg := oauthCRM(t, false, 0)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := noRedirect.Get(c.url + "/oauth/authorize?" + q.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	good := url.Values{"response_type": {"code"}, "client_id": {testClientID}, "redirect_uri": {cfg.RedirectURL}, "state": {"s"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, vals := range good {
			q[key] = vals
		}
		q.Set(k, v)
		return q
	}
	assert.Equal(t, http.StatusBadRequest, get(with("client_id", "someone-else")).StatusCode)
	assert.Equal(t, http.StatusBadRequest, get(with("redirect_uri", "/relative")).StatusCode)
	assert.Equal(t, http.StatusBadRequest, get(with("redirect_uri", "javascript:alert(1)")).StatusCode)

	resp := get(with("response_type", "token"))
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	assert.Equal(t, "unsupported_response_type", loc.Query().Get("error"))
	assert.Equal(t, "s", loc.Query().Get("state"))
	assert.Empty(t, loc.Query().Get("code"))
}

func assertGrantError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "want a RetrieveError, got %v", err)
	assert.Equal(t, code, re.ErrorCode)
}

func TestOAuthRefresh(t *testing.T) {
	t.Run("without rotation", func(t *testing.T) {
		c, _ := oauthCRM(t, false, 0)
		code := c.IssueAuthCode()
		first := c.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}}).object(t)
		refresh := first["refresh_token"].(string)

		r := c.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		second := r.object(t)
		assert.Equal(t, refresh, second["refresh_token"])
		assert.NotEqual(t, first["access_token"], second["access_token"])
		assert.True(t, c.RefreshTokenValid(refresh))
	})

	t.Run("with rotation", func(t *testing.T) {
		c, cfg := oauthCRM(t, true, 0)
		ctx := context.Background()
		tok, err := cfg.Exchange(ctx, c.IssueAuthCode())
		require.NoError(t, err)
		old := tok.RefreshToken

		r := c.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		rotated := r.object(t)["refresh_token"].(string)
		assert.NotEqual(t, old, rotated)
		assert.False(t, c.RefreshTokenValid(old))
		assert.True(t, c.RefreshTokenValid(rotated))

		r = c.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}})
		assert.Equal(t, http.StatusBadRequest, r.Status)
		assert.Equal(t, "invalid_grant", r.object(t)["error"])

		// The oauth2 package refreshes through the same endpoint.
		expired := &oauth2.Token{RefreshToken: rotated, Expiry: time.Now().Add(-time.Minute)}
		fresh, err := cfg.TokenSource(ctx, expired).Token()
		require.NoError(t, err)
		assert.NotEqual(t, rotated, fresh.RefreshToken)
		assert.False(t, c.RefreshTokenValid(rotated))
	})
}

func TestOAuthExpiry(t *testing.T) {
	t.Run("ExpireAccessTokens", func(t *testing.T) {
		c, cfg := oauthCRM(t, false, 0)
		tok, err := cfg.Exchange(context.Background(), c.IssueAuthCode())
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer(tok.AccessToken)).Status)

		c.ExpireAccessTokens()
		r := c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer(tok.AccessToken))
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Contains(t, r.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		assert.True(t, c.RefreshTokenValid(tok.RefreshToken), "refresh tokens survive")

		r = c.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		require.Equal(t, http.StatusOK, r.Status)
		access := r.object(t)["access_token"].(string)
		assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer(access)).Status)
	})

	t.Run("TTL", func(t *testing.T) {
		c, _ := oauthCRM(t, false, 50*time.Millisecond)
		r := c.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}})
		require.Equal(t, http.StatusOK, r.Status)
		body := r.object(t)
		assert.Equal(t, float64(1), body["expires_in"], "rounded up to whole seconds")
		access := body["access_token"].(string)
		assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer(access)).Status)
		time.Sleep(80 * time.Millisecond)
		assert.Equal(t, http.StatusUnauthorized, c.call(t, http.MethodGet, "/api/accounts?id=1", nil, withBearer(access)).Status)
	})
}

func TestOAuthTokenErrors(t *testing.T) {
	c, _ := oauthCRM(t, false, 0)
	tests := []struct {
		name   string
		form   url.Values
		client bool // add the client credentials
		status int
		code   string
	}{
		{"no client", url.Values{"grant_type": {"client_credentials"}}, false, 401, "invalid_client"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"x"}}, false, 401, "invalid_client"},
		{"no grant type", url.Values{}, true, 400, "invalid_request"},
		{"unknown grant type", url.Values{"grant_type": {"password"}}, true, 400, "unsupported_grant_type"},
		{"code missing", url.Values{"grant_type": {"authorization_code"}}, true, 400, "invalid_request"},
		{"refresh token missing", url.Values{"grant_type": {"refresh_token"}}, true, 400, "invalid_request"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, true, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.client {
				r = c.tokenRequest(t, tt.form)
			} else {
				r = c.call(t, http.MethodPost, "/oauth/token", tt.form)
			}
			assert.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Equal(t, tt.code, r.object(t)["error"])
		})
	}

	r := c.call(t, http.MethodPost, "/oauth/token", `{"grant_type":"client_credentials"}`)
	assert.Equal(t, http.StatusBadRequest, r.Status)
	assert.Equal(t, "invalid_request", r.object(t)["error"])

	r = c.call(t, http.MethodGet, "/oauth/token", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, r.Status)

	// The secret never reaches the request log.
	for _, e := range c.Requests() {
		assert.NotContains(t, e.Body, url.QueryEscape(testClientSecret))
		assert.False(t, strings.Contains(e.Body, "top secret"))
	}
}

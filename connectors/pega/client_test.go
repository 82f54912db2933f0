package pega_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/pega"
	"github.com/crmsync/crmsync/connectors/pega/pegatest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	user         = "crmsync-router"
	password     = "basic-pass-7c1e9a"
	token        = "static-token-4d2b88"
	clientID     = "crmsync-client"
	clientSecret = "client-secret-90fa3d"

	conv  = "3bc1c3b45ea911ea88f277fee9bcd8c0"
	laura = "laura@pegasystems.com"
)

var secrets = []string{password, token, clientSecret}

// peer is a pegatest server taking every scheme.
func peer(tb testing.TB) *pegatest.Server {
	tb.Helper()
	return pegatest.New(tb, pegatest.Config{
		Username: user, Password: password, Token: token,
		ClientID: clientID, ClientSecret: clientSecret,
	})
}

func newClient(tb testing.TB, cfg pega.Config) *pega.Client {
	tb.Helper()
	c, err := pega.New(cfg)
	require.NoError(tb, err)
	return c
}

func basic(base string) pega.Config {
	return pega.Config{BaseURL: base, Auth: pega.Auth{Username: user, Password: password}}
}

// assertNoSecret checks an error's text holds none of the test secrets.
func assertNoSecret(tb testing.TB, err error, extra ...string) {
	tb.Helper()
	require.Error(tb, err)
	for _, s := range append(secrets, extra...) {
		assert.NotContains(tb, err.Error(), s)
		assert.NotContains(tb, fmt.Sprintf("%+v", err), s)
	}
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

func TestAssignSpecExample(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	require.NoError(t, c.Assign(context.Background(), conv, laura))

	calls := srv.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodPost, calls[0].Method)
	assert.Equal(t, pega.Path, calls[0].Path)
	assert.Equal(t, "application/json", calls[0].ContentType)
	assert.Equal(t, "basic", calls[0].Auth)
	assert.JSONEq(t, string(readFile(t, "request.json")), string(calls[0].Body), "the body is the spec's example request")
	assert.Equal(t, []pegatest.Assignment{{Conversation: conv, Agent: laura}}, srv.Assignments())
}

func TestAssignReadsSpecAnswer(t *testing.T) {
	// The spec's example answer, served as is, is a Success.
	srv := peer(t)
	srv.SetFault(pegatest.Fault{Status: http.StatusOK, Body: string(readFile(t, "response.json")), Count: 1})
	c := newClient(t, basic(srv.URL()))
	assert.NoError(t, c.Assign(context.Background(), conv, laura))
}

func TestAuthSchemes(t *testing.T) {
	srv := peer(t)
	tests := []struct {
		name string
		auth pega.Auth
		want string
	}{
		{"basic", pega.Auth{Username: user, Password: password}, "basic"},
		{"bearer", pega.Auth{Token: token}, "bearer"},
		{"oauth2", pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret}}, "oauth2"},
		{"oauth2 with token url", pega.Auth{OAuth2: &pega.OAuth2{TokenURL: srv.TokenURL(), ClientID: clientID, ClientSecret: clientSecret, Scopes: []string{"routing"}}}, "oauth2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Calls())
			c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: tt.auth})
			require.NoError(t, c.Assign(context.Background(), conv, laura))
			calls := srv.Calls()[before:]
			require.Len(t, calls, 1)
			assert.Equal(t, tt.want, calls[0].Auth)
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := peer(t)
	tests := []struct {
		name     string
		auth     pega.Auth
		endpoint string
		wrong    string
	}{
		{"basic", pega.Auth{Username: user, Password: "wrong-pass-1"}, pega.EndpointPostRoutingEvents, "wrong-pass-1"},
		{"bearer", pega.Auth{Token: "wrong-token-2"}, pega.EndpointPostRoutingEvents, "wrong-token-2"},
		{"oauth2 client secret", pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: "wrong-secret-3"}}, pega.EndpointToken, "wrong-secret-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: tt.auth})
			err := c.Assign(context.Background(), conv, laura)
			var he *pega.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, http.StatusUnauthorized, he.Status)
			assert.Equal(t, tt.endpoint, he.Endpoint)
			ok, _ := pega.Retryable(err)
			assert.False(t, ok, "a wrong credential does not clear by itself")
			assertNoSecret(t, err, tt.wrong)
		})
	}
	assert.Empty(t, srv.Assignments())
}

func TestOAuth2Token(t *testing.T) {
	srv := peer(t)
	c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret}}})
	ctx := context.Background()

	t.Run("one token for many calls", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.Assign(ctx, fmt.Sprintf("conv-%d", i), laura)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			assert.NoError(t, err)
		}
		assert.Equal(t, 1, srv.TokenRequests())
		assert.Len(t, srv.Assignments(), 16)
	})

	t.Run("revoked token is replaced", func(t *testing.T) {
		srv.RevokeTokens()
		before := len(srv.Calls())
		require.NoError(t, c.Assign(ctx, conv, laura))
		assert.Equal(t, 2, srv.TokenRequests())
		calls := srv.Calls()[before:]
		require.Len(t, calls, 2, "the 401, then the call with the new token")
		assert.Equal(t, http.StatusUnauthorized, calls[0].Status)
		assert.Equal(t, "Success", calls[1].Answer)
	})
}

func TestOAuth2TokenExpiry(t *testing.T) {
	// The server's clock jumps past the token's expiry: the client, whose
	// own clock still finds the token fresh, learns it from the 401 and
	// fetches another.
	var mu sync.Mutex
	skew := time.Duration(0)
	srv := pegatest.New(t, pegatest.Config{ClientID: clientID, ClientSecret: clientSecret, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(skew)
	}})
	c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret}}})
	require.NoError(t, c.Assign(context.Background(), conv, laura))
	mu.Lock()
	skew = 2 * time.Hour
	mu.Unlock()
	require.NoError(t, c.Assign(context.Background(), conv, laura))
	assert.Equal(t, 2, srv.TokenRequests())
	assert.Len(t, srv.Assignments(), 2)
}

func TestOAuth2RenewsOnce(t *testing.T) {
	// Every token is expired by the time the server checks it (its clock
	// moves two hours on every reading): the client renews once, then
	// reports the 401 instead of looping.
	var mu sync.Mutex
	now := time.Now()
	srv := pegatest.New(t, pegatest.Config{ClientID: clientID, ClientSecret: clientSecret, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(2 * time.Hour)
		return now
	}})
	c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret}}})
	err := c.Assign(context.Background(), conv, laura)
	var he *pega.HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusUnauthorized, he.Status)
	assert.Equal(t, 2, srv.TokenRequests())
	assert.Len(t, srv.Calls(), 2)
	assertNoSecret(t, err)
}

func TestFail(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	srv.SetFault(pegatest.Fault{Mode: pegatest.FaultFail, Count: 1})
	err := c.Assign(context.Background(), conv, laura)
	require.ErrorIs(t, err, pega.ErrFail)
	assert.Contains(t, err.Error(), conv)
	ok, _ := pega.Retryable(err)
	assert.False(t, ok, "a Fail means route again, not send again")
	assert.Empty(t, srv.Assignments())

	require.NoError(t, c.Assign(context.Background(), conv, laura), "the fault was for one request")
	assert.Len(t, srv.Assignments(), 1)
}

func TestStatuses(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter int
		retryable  bool
	}{
		{http.StatusServiceUnavailable, 7, true},
		{http.StatusTooManyRequests, 30, true},
		{http.StatusInternalServerError, 0, true},
		{http.StatusBadGateway, 0, true},
		{http.StatusGatewayTimeout, 0, true},
		{http.StatusBadRequest, 0, false},
		{http.StatusForbidden, 0, false},
		{http.StatusNotFound, 0, false},
		{http.StatusConflict, 0, false},
	}
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	for _, tt := range tests {
		t.Run(strconv(tt.status), func(t *testing.T) {
			srv.SetFault(pegatest.Fault{Status: tt.status, RetryAfter: tt.retryAfter, Count: 1})
			err := c.Assign(context.Background(), conv, laura)
			var he *pega.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tt.status, he.Status)
			assert.Equal(t, time.Duration(tt.retryAfter)*time.Second, he.RetryAfter)
			ok, after := pega.Retryable(err)
			assert.Equal(t, tt.retryable, ok)
			assert.Equal(t, he.RetryAfter, after)
			assert.Equal(t, tt.retryable, he.Temporary())
			assert.NotErrorIs(t, err, pega.ErrFail)
		})
	}
}

func strconv(n int) string { return fmt.Sprint(n) }

func TestDownThenUp(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	require.NoError(t, c.Assign(context.Background(), conv, laura), "a kept-alive connection exists")

	srv.Stop()
	err := c.Assign(context.Background(), conv, laura)
	var te *pega.TransportError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Timeout)
	ok, _ := pega.Retryable(err)
	assert.True(t, ok)
	assertNoSecret(t, err)

	require.NoError(t, srv.Start())
	require.NoError(t, c.Assign(context.Background(), conv, laura))
	assert.Len(t, srv.Assignments(), 2)
}

func TestUnavailableForAWhile(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	srv.SetFault(pegatest.Fault{Status: http.StatusServiceUnavailable, Count: 3})
	var results []bool
	for range 4 {
		err := c.Assign(context.Background(), conv, laura)
		ok, _ := pega.Retryable(err)
		results = append(results, err == nil || ok)
		if err == nil {
			break
		}
	}
	assert.Equal(t, []bool{true, true, true, true}, results)
	assert.Len(t, srv.Calls(), 4)
	assert.Len(t, srv.Assignments(), 1)
}

func TestTimeout(t *testing.T) {
	srv := peer(t)
	cfg := basic(srv.URL())
	cfg.Timeout = 50 * time.Millisecond
	c := newClient(t, cfg)
	srv.SetFault(pegatest.Fault{Mode: pegatest.FaultHang})
	err := c.Assign(context.Background(), conv, laura)
	var te *pega.TransportError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Timeout)
	ok, _ := pega.Retryable(err)
	assert.True(t, ok)
	srv.ClearFault()
	assert.NoError(t, c.Assign(context.Background(), conv, laura))
}

func TestCancelled(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Assign(ctx, conv, laura)
	require.ErrorIs(t, err, context.Canceled)
	ok, _ := pega.Retryable(err)
	assert.True(t, ok, "the job was stopped, not refused")
	assert.Empty(t, srv.Calls())
}

func TestUnreadableAnswers(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason string
	}{
		{"html", "<html>login</html>", "not a JSON object"},
		{"no status", `{"result":"ok"}`, "no _status"},
		{"status not a string", `{"_status":true}`, "not a string"},
		{"unknown status", `{"_status":"Pending"}`, `"pending"`},
		{"too large", `{"_status":"Success","pad":"` + strings.Repeat("x", pega.MaxResponseBytes) + `"}`, "larger than"},
	}
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetFault(pegatest.Fault{Status: http.StatusOK, Body: tt.body, Count: 1})
			err := c.Assign(context.Background(), conv, laura)
			var re *pega.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, re.Reason, tt.reason)
			ok, _ := pega.Retryable(err)
			assert.False(t, ok)
		})
	}
}

func TestAnswerKeysWithStraySpaces(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	srv.SetFault(pegatest.Fault{Status: http.StatusOK, Body: `{"_status ":" fail"}`, Count: 1})
	assert.ErrorIs(t, c.Assign(context.Background(), conv, laura), pega.ErrFail)
	srv.SetFault(pegatest.Fault{Status: http.StatusOK, Body: `{"_Status":"SUCCESS"}`, Count: 1})
	assert.NoError(t, c.Assign(context.Background(), conv, laura))
}

func TestSecretsEchoedAreRedacted(t *testing.T) {
	// A misbehaving proxy that echoes what it got must not put the
	// client's credential into an error.
	srv := peer(t)
	basicHeader := "Y3Jtc3luYy1yb3V0ZXI6YmFzaWMtcGFzcy03YzFlOWE=" // user:password
	tests := []struct {
		name   string
		auth   pega.Auth
		echoed []string
	}{
		{"basic", pega.Auth{Username: user, Password: password}, []string{"Basic " + basicHeader, "password=" + password}},
		{"bearer", pega.Auth{Token: token}, []string{"Bearer " + token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: tt.auth})
			srv.SetFault(pegatest.Fault{Status: http.StatusBadGateway, Count: 1,
				Body: "upstream refused " + strings.Join(tt.echoed, " ")})
			err := c.Assign(context.Background(), conv, laura)
			var he *pega.HTTPError
			require.ErrorAs(t, err, &he)
			assertNoSecret(t, err, basicHeader)
			assert.Contains(t, err.Error(), "[REDACTED]")
		})
	}
}

func TestOAuth2TokenRedacted(t *testing.T) {
	// The access token the client was issued is a secret too.
	srv := peer(t)
	c := newClient(t, pega.Config{BaseURL: srv.URL(), Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret}}})
	require.NoError(t, c.Assign(context.Background(), conv, laura))
	sent := srv.Calls()[0]
	require.Equal(t, "oauth2", sent.Auth)
	issued := srv.IssuedTokens()
	require.Len(t, issued, 1)
	srv.SetFault(pegatest.Fault{Status: http.StatusServiceUnavailable, Count: 1, Body: "token " + issued[0] + " secret " + clientSecret})
	err := c.Assign(context.Background(), conv, laura)
	assertNoSecret(t, err, issued[0])
}

func TestBadArguments(t *testing.T) {
	srv := peer(t)
	c := newClient(t, basic(srv.URL()))
	tests := []struct {
		conv, agent, field string
	}{
		{"", laura, "_conversation_id"},
		{" ", laura, "_conversation_id"},
		{conv, "", "_agent_id"},
		{conv, "laura\n", "_agent_id"},
		{strings.Repeat("c", 129), laura, "_conversation_id"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			err := c.Assign(context.Background(), tt.conv, tt.agent)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tt.field, e.Field)
			ok, _ := pega.Retryable(err)
			assert.False(t, ok)
		})
	}
	assert.Empty(t, srv.Calls(), "nothing was sent")
}

func TestNewChecksConfig(t *testing.T) {
	auth := pega.Auth{Token: token}
	tests := []struct {
		name  string
		cfg   pega.Config
		field string
	}{
		{"no base url", pega.Config{Auth: auth}, "base_url"},
		{"not http", pega.Config{BaseURL: "ftp://pega.example.com", Auth: auth}, "base_url"},
		{"no host", pega.Config{BaseURL: "http:///x", Auth: auth}, "base_url"},
		{"credentials in url", pega.Config{BaseURL: "https://u:" + password + "@pega.example.com", Auth: auth}, "base_url"},
		{"query", pega.Config{BaseURL: "https://pega.example.com?key=" + token, Auth: auth}, "base_url"},
		{"fragment", pega.Config{BaseURL: "https://pega.example.com#x", Auth: auth}, "base_url"},
		{"instance url", pega.Config{BaseURL: "http://10.225.93.236:9080/prweb/app/", Auth: auth}, "base_url"},
		{"negative timeout", pega.Config{BaseURL: "https://pega.example.com", Timeout: -1, Auth: auth}, "timeout"},
		{"no auth", pega.Config{BaseURL: "https://pega.example.com"}, "auth"},
		{"two schemes", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{Token: token, Username: user, Password: password}}, "auth"},
		{"password without user", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{Password: password}}, "auth.username"},
		{"user without password", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{Username: user}}, "auth.password"},
		{"colon in user", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{Username: "a:b", Password: password}}, "auth.username"},
		{"oauth2 without id", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientSecret: clientSecret}}}, "auth.oauth2.client_id"},
		{"oauth2 without secret", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{OAuth2: &pega.OAuth2{ClientID: clientID}}}, "auth.oauth2.client_secret"},
		{"oauth2 bad token url", pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{OAuth2: &pega.OAuth2{TokenURL: "https://x:" + clientSecret + "@idp", ClientID: clientID, ClientSecret: clientSecret}}}, "auth.oauth2.token_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pega.New(tt.cfg)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.field, e.Field)
			assertNoSecret(t, err)
		})
	}
	for _, base := range []string{"http://10.225.93.236:9080", "https://pega.example.com/", "https://gw.example.com/pega"} {
		_, err := pega.New(pega.Config{BaseURL: base, Auth: auth})
		assert.NoError(t, err, base)
	}
}

func TestProxyPathPrefix(t *testing.T) {
	// A base URL with a path keeps it in front of /prweb; pegatest serves
	// only the bare path, so the 404 shows where the request went.
	srv := peer(t)
	c := newClient(t, basic(srv.URL()+"/gateway"))
	err := c.Assign(context.Background(), conv, laura)
	var he *pega.HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusNotFound, he.Status)
	assert.Contains(t, he.Body, "/gateway"+pega.Path)
}

func TestConfigRedacts(t *testing.T) {
	cfg := pega.Config{BaseURL: "https://pega.example.com", Auth: pega.Auth{
		Username: user, Password: password, Token: token,
		OAuth2: &pega.OAuth2{ClientID: clientID, ClientSecret: clientSecret},
	}}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%+v", *cfg.Auth.OAuth2)} {
		for _, secret := range secrets {
			assert.NotContains(t, s, secret)
		}
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	for _, secret := range secrets {
		assert.NotContains(t, string(b), secret)
	}
}

func TestRetryableOther(t *testing.T) {
	ok, _ := pega.Retryable(nil)
	assert.False(t, ok)
	ok, _ = pega.Retryable(errors.New("something else"))
	assert.False(t, ok)
	ok, _ = pega.Retryable(fmt.Errorf("wrapped: %w", context.DeadlineExceeded))
	assert.True(t, ok)
}

package byoc_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/routing/access"
	"github.com/crmsync/crmsync/routing/byoc"
)

// TestNoSecretInLogsOrErrors drives every failure path that logs or
// returns text (Salesforce down, refusing, echoing the request's headers;
// deletes failing until given up) and searches all of it for the private
// key and the JWT.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	f := newFixture(t, func(c *byoc.Config) { c.MaxDeleteAttempts = 2 })
	var (
		mu   sync.Mutex
		seen []string // Authorization headers the echoing proxy got
	)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("refused; headers were: Authorization=" + r.Header.Get("Authorization")))
	}))
	defer echo.Close()
	cfg := f.sf.ClientConfig(t, f.clock.Now)
	cfg.BaseURL = echo.URL
	echoClient, err := salesforce.New(cfg)
	require.NoError(t, err)
	rc := f.baseConfig()
	rc.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	echoRouter, err := byoc.New(f.rdb, echoClient, rc)
	require.NoError(t, err)

	auth := &access.Authenticator{APITokens: []crmsync.Secret{apiToken}}
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	var errs []string
	f.sf.SetFault(sftest.Fault{Status: 503, Count: 1}) // for f.r; the echoing proxy refuses by itself
	for _, r := range []*byoc.Router{f.r, echoRouter} {
		mux := http.NewServeMux()
		byoc.NewHandler(r, auth, logger).Register(func(p string, h http.Handler) { mux.Handle(p, h) })
		srv := httptest.NewServer(mux)
		req, err := http.NewRequest("POST", srv.URL+"/v1/routing/byoc/routes", strings.NewReader(`{"conversation":"c-echo","routing_type":"Initial"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.GreaterOrEqual(t, resp.StatusCode, 500)
		srv.Close()
	}
	err = echoRouter.Delegate(f.ctx, byoc.Request{Conversation: "c-echo-2", RoutingType: salesforce.Initial})
	require.Error(t, err)
	errs = append(errs, err.Error())

	// Deletes that fail, are retried and given up.
	f.delegate("c-del", salesforce.Initial)
	f.clock.Advance(byoc.DefaultPendingTimeout)
	f.sf.SetFault(sftest.Fault{Status: 503, Method: http.MethodDelete})
	for range 3 {
		_, err := f.r.Sweep(f.ctx)
		require.NoError(t, err)
		f.clock.Advance(time.Second)
	}
	err = f.r.Cancel(f.ctx, "c-del")
	require.NoError(t, err)
	f.delegate("c-del-2", salesforce.Initial)
	err = f.r.Cancel(f.ctx, "c-del-2")
	require.Error(t, err)
	errs = append(errs, err.Error())
	logger.Info("config", "salesforce", cfg, "byoc", rc)

	out := f.logs.String() + strings.Join(errs, "\n")
	require.Contains(t, out, "DELETE route given up", "the failure paths ran")
	require.Contains(t, out, "Authorization=Bearer [REDACTED]", "the echoed header was logged, redacted")
	_, pemKey := sftest.Key(t)
	for _, line := range strings.Split(pemKey, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			require.NotContains(t, out, line)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, h := range seen {
		tok := strings.TrimPrefix(h, "Bearer ")
		require.NotEmpty(t, tok)
		require.NotContains(t, out, tok)
		require.NotContains(t, out, tok[strings.LastIndexByte(tok, '.')+1:], "nor the JWT's signature")
	}
}

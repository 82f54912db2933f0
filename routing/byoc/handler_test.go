package byoc_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing/access"
	"github.com/crmsync/crmsync/routing/byoc"
)

const apiToken = "system-token-8f3a2c91"

type api struct {
	*fixture
	url    string
	agents *access.AgentTokens
}

func newAPI(t *testing.T) *api {
	t.Helper()
	f := newFixture(t)
	agents, err := access.NewAgentTokens("agent-secret-0123456789")
	require.NoError(t, err)
	auth := &access.Authenticator{APITokens: []crmsync.Secret{apiToken}, Agents: agents}
	mux := http.NewServeMux()
	byoc.NewHandler(f.r, auth, slog.New(slog.NewTextHandler(f.logs, nil))).Register(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &api{fixture: f, url: srv.URL, agents: agents}
}

// call sends a request with the system token (or tok when given) and
// returns the status and the decoded JSON answer (nil when empty).
func (a *api) call(method, path, body string, tok ...string) (int, map[string]any) {
	a.tb.Helper()
	t := apiToken
	if len(tok) > 0 {
		t = tok[0]
	}
	ans := routingtest.Do(a.tb, http.DefaultClient, routingtest.Request(a.tb, method, a.url+path, strings.NewReader(body), t))
	return ans.Status, ans.Body
}

func TestHandlerDelegateAcceptCancelList(t *testing.T) {
	a := newAPI(t)
	status, out := a.call("POST", "/v1/routing/byoc/routes",
		`{"conversation":"conv-1","routing_type":"Initial","queue":"billing","attributes":{"Lang":"fr"}}`)
	require.Equal(t, http.StatusCreated, status, out)
	assert.Equal(t, "flow", out["way"])
	assert.Equal(t, false, out["duplicate"])
	status, out = a.call("POST", "/v1/routing/byoc/routes", `{"conversation":"conv-1","routing_type":"Initial","queue":"billing","attributes":{"Lang":"fr"}}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, out["duplicate"])
	require.Len(t, a.sf.Routes(), 1)
	assert.Equal(t, map[string]string{"Team": "billing", "Lang": "fr"}, a.sf.Routes()[0].RoutingAttributes)

	_, _ = a.call("POST", "/v1/routing/byoc/routes", `{"conversation":"conv-2","routing_type":"Transfer","channel":"voice"}`)
	status, out = a.call("GET", "/v1/routing/byoc/routes", "")
	require.Equal(t, http.StatusOK, status)
	list, _ := out["pending"].([]any)
	require.Len(t, list, 2)
	first, _ := list[0].(map[string]any)
	assert.Equal(t, "conv-1", first["conversation"])
	assert.Equal(t, "Initial", first["routing_type"])
	assert.Equal(t, "pending", first["state"])

	status, _ = a.call("POST", "/v1/routing/byoc/routes/conv-1/accepted", "")
	assert.Equal(t, http.StatusNoContent, status)
	status, _ = a.call("DELETE", "/v1/routing/byoc/routes/conv-2", "")
	assert.Equal(t, http.StatusNoContent, status)
	assert.Equal(t, []string{"conv-2"}, a.sf.Deletes())
	_, out = a.call("GET", "/v1/routing/byoc/routes", "")
	assert.Empty(t, out["pending"])

	status, _ = a.call("POST", "/v1/routing/byoc/routes/conv-9/accepted", "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = a.call("DELETE", "/v1/routing/byoc/routes/conv-9", "")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestHandlerRefusesBadInput(t *testing.T) {
	a := newAPI(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"unknown field", "POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial","priority":true}`, 400, "priority"},
		{"wrong type", "POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":5}`, 400, "routing_type"},
		{"attributes not strings", "POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial","queue":"billing","attributes":{"a":1}}`, 400, "attributes"},
		{"not json", "POST", "/v1/routing/byoc/routes", `conversation=c1`, 400, ""},
		{"two objects", "POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial"}{}`, 400, ""},
		{"empty", "POST", "/v1/routing/byoc/routes", ``, 400, ""},
		{"missing conversation", "POST", "/v1/routing/byoc/routes", `{"routing_type":"Initial"}`, 400, "conversation"},
		{"bad routing type", "POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"initial"}`, 400, "routing_type"},
		{"too large", "POST", "/v1/routing/byoc/routes", `{"conversation":"` + strings.Repeat("x", byoc.MaxBodyBytes) + `"}`, 413, ""},
		{"bad path id", "POST", "/v1/routing/byoc/routes/-x/accepted", ``, 400, "conversation"},
		{"bad path id delete", "DELETE", "/v1/routing/byoc/routes/a%7Bb", ``, 400, "conversation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := a.call(tc.method, tc.path, tc.body)
			assert.Equal(t, tc.status, status, out)
			assert.Equal(t, tc.field, routingtest.ErrField(out))
		})
	}
	assert.Empty(t, a.sf.Calls())
	assert.Zero(t, a.keys())
}

func TestHandlerIsForTheSystemOnly(t *testing.T) {
	a := newAPI(t)
	agentTok := a.agents.Issue("laura")
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial"}`},
		{"GET", "/v1/routing/byoc/routes", ""},
		{"POST", "/v1/routing/byoc/routes/c1/accepted", ""},
		{"DELETE", "/v1/routing/byoc/routes/c1", ""},
	} {
		status, _ := a.call(r.method, r.path, r.body, "")
		assert.Equal(t, http.StatusUnauthorized, status, "%s %s without a token", r.method, r.path)
		status, _ = a.call(r.method, r.path, r.body, "wrong-token")
		assert.Equal(t, http.StatusUnauthorized, status)
		// An agent's token is a credential, but none of these routes is
		// an agent's: 403, as on the rest of /v1/routing.
		status, _ = a.call(r.method, r.path, r.body, agentTok)
		assert.Equal(t, http.StatusForbidden, status, "%s %s with an agent token", r.method, r.path)
	}
	assert.Empty(t, a.sf.Calls())
}

func TestHandlerSalesforceDownIs503(t *testing.T) {
	a := newAPI(t)
	a.sf.SetFault(sftest.Fault{Status: 503, Count: 1})
	status, out := a.call("POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial"}`)
	assert.Equal(t, http.StatusServiceUnavailable, status, out)
	status, _ = a.call("POST", "/v1/routing/byoc/routes", `{"conversation":"c1","routing_type":"Initial"}`)
	assert.Equal(t, http.StatusCreated, status, "it recovered, and the first failure left nothing behind")
}

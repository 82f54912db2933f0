package pull

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing/access"
)

const sysToken = "system-token-for-tests"

type api struct {
	*fixture
	srv      *httptest.Server
	tokens   *access.AgentTokens
	patterns []string
}

func newAPI(tb testing.TB) *api {
	tb.Helper()
	f := newFixture(tb)
	tokens, err := access.NewAgentTokens("agent-token-secret-for-tests")
	require.NoError(tb, err)
	auth := &access.Authenticator{APITokens: []crmsync.Secret{sysToken}, Agents: tokens}
	a := &api{fixture: f, tokens: tokens}
	mux := http.NewServeMux()
	NewHandler(f.s, auth, nil).Register(func(p string, h http.Handler) {
		a.patterns = append(a.patterns, p)
		mux.Handle(p, h)
	})
	a.srv = httptest.NewServer(mux)
	tb.Cleanup(a.srv.Close)
	return a
}

// call sends a request as who ("" none, "system", or an agent id, whose
// own token is used) and decodes the JSON answer.
func (a *api) call(method, path, who, body string) (int, map[string]any) {
	a.tb.Helper()
	var token string
	switch who {
	case "":
	case "system":
		token = sysToken
	case "bogus":
		token = "not-a-token"
	default:
		token = a.tokens.Issue(who)
	}
	ans := routingtest.Do(a.tb, http.DefaultClient, routingtest.Request(a.tb, method, a.srv.URL+path, strings.NewReader(body), token))
	return ans.Status, ans.Body
}

// state is everything a refused request must leave alone.
func (a *api) state() string {
	a.tb.Helper()
	ls, err := a.s.ListLists(a.ctx)
	require.NoError(a.tb, err)
	out := []any{ls}
	for _, l := range ls {
		snap, err := a.s.Snapshot(a.ctx, l.ID)
		require.NoError(a.tb, err)
		out = append(out, snap)
	}
	for _, ag := range []string{"a1", "a2"} {
		subs, err := a.s.Subscriptions(a.ctx, ag)
		require.NoError(a.tb, err)
		n, err := a.rdb.XLen(a.ctx, a.stream(ag)).Result()
		require.NoError(a.tb, err)
		out = append(out, subs, n)
	}
	r, err := a.s.GetRequest(a.ctx, "c1")
	require.NoError(a.tb, err)
	out = append(out, r)
	b, err := json.Marshal(out)
	require.NoError(a.tb, err)
	return string(b)
}

func TestHTTPFlow(t *testing.T) {
	a := newAPI(t)
	assert.Len(t, a.patterns, 15)

	st, body := a.call("PUT", "/v1/routing/lists/L1", "system", `{"name":"Facebook comments","channels":["fb"]}`)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	assert.Equal(t, "L1", body["id"])
	assert.Equal(t, []any{"fb"}, body["channels"])
	st, _ = a.call("PUT", "/v1/routing/lists/L1", "system", `{"id":"L1","name":"FB","channels":["fb","fb2"]}`)
	assert.Equal(t, http.StatusOK, st)
	st, body = a.call("GET", "/v1/routing/lists", "system", "")
	require.Equal(t, http.StatusOK, st)
	require.Len(t, body["lists"], 1)
	st, body = a.call("GET", "/v1/routing/lists/L1", "system", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "FB", body["name"])

	// Agents subscribe themselves; the system may subscribe anyone.
	st, _ = a.call("PUT", "/v1/routing/agents/a1/lists/L1", "a1", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, _ = a.call("PUT", "/v1/routing/agents/a2/lists/L1", "system", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, body = a.call("GET", "/v1/routing/agents/a1/lists", "a1", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, []any{"L1"}, body["lists"])

	st, body = a.call("POST", "/v1/routing/lists/L1/requests", "system",
		`{"id":"c1","channel":"fb","session":"chat-c1","attributes":{"page":"acme"}}`)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	assert.Equal(t, "UNREAD", body["state"])
	assert.Contains(t, body, "created_at", "snake_case fields")
	st, _ = a.call("POST", "/v1/routing/lists/L1/requests", "system", `{"id":"c1","channel":"fb"}`)
	assert.Equal(t, http.StatusOK, st, "a repeat is no new request")
	assert.Equal(t, []string{"List_Request UNREAD"}, a.told("a1"))

	// a1 joins naming itself; a2 joins without naming itself, found among
	// the subscribers by its token.
	st, body = a.call("POST", "/v1/routing/requests/c1/join", "a1", `{"agent":"a1"}`)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "ACTIVE", body["state"])
	st, body = a.call("POST", "/v1/routing/requests/c1/join", "a2", "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, []any{"a1", "a2"}, body["agents"])

	st, body = a.call("POST", "/v1/routing/requests/c1/messages", "system", "{}")
	require.Equal(t, http.StatusOK, st, "%v", body)
	a.skip("a1")
	st, _ = a.call("POST", "/v1/routing/requests/c1/leave", "a1", "")
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, []string{"Agent_Left ACTIVE"}, a.told("a1"))

	st, body = a.call("GET", "/v1/routing/lists/L1/snapshot", "a1", "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	seq := body["seq"].(float64)
	assert.Len(t, body["requests"], 1)
	st, _ = a.call("GET", "/v1/routing/lists/L1/snapshot?agent=a2", "a2", "")
	assert.Equal(t, http.StatusOK, st)
	st, body = a.call("GET", "/v1/routing/lists/L1/changes?after=1", "a2", "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	cs := body["changes"].([]any)
	require.Len(t, cs, int(seq)-1)
	assert.Equal(t, "Agent_Joined", cs[0].(map[string]any)["type"])

	st, body = a.call("GET", "/v1/routing/requests/c1", "a2", "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "chat-c1", body["session"])
	assert.Equal(t, map[string]any{"page": "acme"}, body["attributes"])

	st, body = a.call("POST", "/v1/routing/requests/c1/close", "a2", "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "CLOSED", body["state"])
	assert.Equal(t, "a2", body["closed_by"])

	st, _ = a.call("DELETE", "/v1/routing/agents/a1/lists/L1", "a1", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, _ = a.call("DELETE", "/v1/routing/lists/L1", "system", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, _ = a.call("GET", "/v1/routing/lists/L1", "system", "")
	assert.Equal(t, http.StatusNotFound, st)
}

func TestHTTPRefusals(t *testing.T) {
	a := newAPI(t)
	a.list("L1", "fb")
	a.list("L2", "tw")
	a.subscribe("a1", "L1")
	a.publish("c1", "L1")
	a.join("c1", "a1")
	a.publish("c9", "L2")
	_, err := a.s.Close(a.ctx, "c9", "")
	require.NoError(t, err)

	big := `{"id":"c2","attributes":{"x":"` + strings.Repeat("y", MaxBodyBytes) + `"}}`
	cases := []struct {
		name         string
		method, path string
		who, body    string
		status       int
		field        string
	}{
		{"no token", "GET", "/v1/routing/lists", "", "", 401, ""},
		{"unknown token", "GET", "/v1/routing/lists", "bogus", "", 401, ""},
		{"unknown token joins", "POST", "/v1/routing/requests/c1/join", "bogus", `{"agent":"a1"}`, 401, ""},
		{"agent token on list admin", "PUT", "/v1/routing/lists/L3", "a1", `{"name":"x"}`, 403, ""},
		{"agent token publishes", "POST", "/v1/routing/lists/L1/requests", "a1", `{"id":"c2"}`, 403, ""},
		{"agent acts as another", "POST", "/v1/routing/requests/c1/leave", "a2", `{"agent":"a1"}`, 403, ""},
		{"agent closes as another", "POST", "/v1/routing/requests/c1/close", "a2", `{"agent":"a1"}`, 403, ""},
		{"agent reads another's lists", "GET", "/v1/routing/agents/a1/lists", "a2", "", 403, ""},
		{"agent subscribes another", "PUT", "/v1/routing/agents/a1/lists/L2", "a2", "", 403, ""},
		{"unsubscribed agent reads a snapshot", "GET", "/v1/routing/lists/L1/snapshot", "a2", "", 403, ""},
		{"unsubscribed agent names itself", "GET", "/v1/routing/lists/L1/changes?after=0&agent=a2", "a2", "", 403, ""},
		{"subscriber of another List", "GET", "/v1/routing/lists/L2/snapshot", "a1", "", 403, ""},
		{"stranger joins unnamed", "POST", "/v1/routing/requests/c1/join", "a3", "", 403, ""},

		{"unknown field", "PUT", "/v1/routing/lists/L3", "system", `{"name":"x","colour":"red"}`, 400, "colour"},
		{"malformed JSON", "PUT", "/v1/routing/lists/L3", "system", `{"name":`, 400, "body"},
		{"not an object", "PUT", "/v1/routing/lists/L3", "system", `["x"]`, 400, "body"},
		{"channels not a list", "PUT", "/v1/routing/lists/L3", "system", `{"channels":"fb"}`, 400, "channels"},
		{"bad channel", "PUT", "/v1/routing/lists/L3", "system", `{"channels":["ok","no way"]}`, 400, "channels[1]"},
		{"id differs from the path", "PUT", "/v1/routing/lists/L3", "system", `{"id":"L4"}`, 400, "id"},
		{"bad list in the path", "PUT", "/v1/routing/lists/-L3", "system", `{}`, 400, "list"},
		{"empty body", "PUT", "/v1/routing/lists/L3", "system", ``, 400, "body"},
		{"request without id", "POST", "/v1/routing/lists/L1/requests", "system", `{"channel":"fb"}`, 400, "id"},
		{"attribute not a string", "POST", "/v1/routing/lists/L1/requests", "system", `{"id":"c2","attributes":{"n":1}}`, 400, "attributes.n"},
		{"bad session", "POST", "/v1/routing/lists/L1/requests", "system", `{"id":"c2","session":"c2"}`, 400, "session"},
		{"body too large", "POST", "/v1/routing/lists/L1/requests", "system", big, 413, "body"},
		{"system joins nobody", "POST", "/v1/routing/requests/c1/join", "system", `{}`, 400, "agent"},
		{"bad agent", "POST", "/v1/routing/requests/c1/join", "system", `{"agent":"a 1"}`, 400, "agent"},
		{"agent not a string", "POST", "/v1/routing/requests/c1/join", "system", `{"agent":7}`, 400, "agent"},
		{"unknown field in a join", "POST", "/v1/routing/requests/c1/join", "a1", `{"agent":"a1","force":true}`, 400, "force"},
		{"message with a body", "POST", "/v1/routing/requests/c1/messages", "system", `{"text":"hi"}`, 400, "text"},
		{"changes without after", "GET", "/v1/routing/lists/L1/changes", "system", "", 400, "after"},
		{"changes after a word", "GET", "/v1/routing/lists/L1/changes?after=abc", "system", "", 400, "after"},
		{"changes after a negative", "GET", "/v1/routing/lists/L1/changes?after=-1", "system", "", 400, "after"},

		{"unknown list", "GET", "/v1/routing/lists/L9", "system", "", 404, "list"},
		{"snapshot of an unknown list", "GET", "/v1/routing/lists/L9/snapshot", "system", "", 404, "list"},
		{"publish to an unknown list", "POST", "/v1/routing/lists/L9/requests", "system", `{"id":"c2"}`, 404, "list"},
		{"join an unknown request", "POST", "/v1/routing/requests/c7/join", "system", `{"agent":"a1"}`, 404, "id"},
		{"subscribe to an unknown list", "PUT", "/v1/routing/agents/a1/lists/L9", "a1", "", 404, "list"},

		{"channel taken", "PUT", "/v1/routing/lists/L3", "system", `{"channels":["fb"]}`, 409, "channels[0]"},
		{"delete a List with open requests", "DELETE", "/v1/routing/lists/L1", "system", "", 409, "list"},
		{"join a closed request", "POST", "/v1/routing/requests/c9/join", "system", `{"agent":"a2"}`, 409, "id"},
		{"leave without having joined", "POST", "/v1/routing/requests/c1/leave", "system", `{"agent":"a2"}`, 409, "agent"},
		{"publish an id open elsewhere", "POST", "/v1/routing/lists/L2/requests", "system", `{"id":"c1"}`, 409, "id"},
		{"changes ahead of the List", "GET", "/v1/routing/lists/L1/changes?after=99", "system", "", 409, "after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := a.state()
			st, body := a.call(tc.method, tc.path, tc.who, tc.body)
			assert.Equal(t, tc.status, st, "%v", body)
			assert.Equal(t, tc.field, routingtest.ErrField(body), "%v", body)
			e, _ := body["error"].(map[string]any)
			assert.NotEmpty(t, e["message"], "the answer says why")
			assert.NotContains(t, e["message"], sysToken)
			assert.Equal(t, before, a.state(), "a refused request changes nothing")
		})
	}
}

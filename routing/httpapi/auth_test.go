package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authState is the state every auth case starts from: queues q1 and q2
// (empty), agents sara and bob in q1, c1 (voice) offered to sara, c2
// (chat) held by sara.
func authState(tb testing.TB) *fixture {
	tb.Helper()
	f := newFixture(tb)
	f.setup()
	f.ok(200, "PUT", "/v1/routing/queues/q2", apiToken, map[string]any{"channels": []string{"voice"}})
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c1", "queue": "q1", "channel": "voice"})
	f.ok(201, "POST", "/v1/routing/conversations", apiToken, map[string]any{"id": "c2", "queue": "q1", "channel": "chat"})
	f.ok(200, "POST", "/v1/routing/conversations/c2/accept", f.token("sara"), nil)
	require.Equal(tb, "sara", f.conv("c1").OfferedTo)
	require.Equal(tb, "sara", f.conv("c2").Agent)
	return f
}

// Who calls, in the auth table.
const (
	nobody    = ""
	wrong     = "wrong"      // a token of no kind
	system    = "system"     // the API token
	asSara    = "sara"       // sara's token
	asBob     = "bob"        // bob's token
	saraQuery = "sara-query" // sara's token in access_token
	forged    = "forged"     // shaped like an agent token, signed by no one
)

// TestAuth sends every route with every kind of credential. Refusals
// change nothing and never echo the token.
func TestAuth(t *testing.T) {
	type tc struct {
		route  string // the pattern, to check that every route is covered
		path   string
		caller string
		body   any
		want   int
	}
	var cases []tc
	// add puts a route's cases in the table: want per caller; callers not
	// named get 401 (no or a wrong token) or deny (an agent's token).
	add := func(route, path string, body any, deny int, want map[string]int) {
		for _, caller := range []string{nobody, wrong, system, asSara, asBob, saraQuery, forged} {
			w, ok := want[caller]
			switch {
			case ok:
			case caller == nobody || caller == wrong:
				w = 401
			case caller == saraQuery:
				w = want[asSara]
				if w == 0 {
					w = deny
				}
			default:
				w = deny
			}
			cases = append(cases, tc{route: route, path: path, caller: caller, body: body, want: w})
		}
	}
	systemOnly := func(route, path string, body any, status int) {
		add(route, path, body, 403, map[string]int{system: status})
	}
	saraOrSystem := func(route, path string, body any, status int) {
		add(route, path, body, 403, map[string]int{system: status, asSara: status})
	}
	queueBody := map[string]any{"channels": []string{"voice"}}
	systemOnly("GET /v1/routing/queues", "/v1/routing/queues", nil, 200)
	systemOnly("GET /v1/routing/queues/{queue}", "/v1/routing/queues/q1", nil, 200)
	systemOnly("PUT /v1/routing/queues/{queue}", "/v1/routing/queues/q3", queueBody, 200)
	systemOnly("DELETE /v1/routing/queues/{queue}", "/v1/routing/queues/q2", nil, 204)
	systemOnly("POST /v1/routing/agents/{agent}/token", "/v1/routing/agents/sara/token", nil, 200)
	systemOnly("POST /v1/routing/conversations", "/v1/routing/conversations", map[string]any{"id": "c9", "queue": "q1", "channel": "voice"}, 201)
	systemOnly("POST /v1/routing/conversations/{conversation}/requeue", "/v1/routing/conversations/c1/requeue", nil, 200)
	systemOnly("POST /v1/routing/conversations/{conversation}/end", "/v1/routing/conversations/c2/end", nil, 200)
	systemOnly("POST /v1/routing/conversations/{conversation}/cancel", "/v1/routing/conversations/c1/cancel", nil, 200)

	saraOrSystem("GET /v1/routing/agents/{agent}", "/v1/routing/agents/sara", nil, 200)
	saraOrSystem("PUT /v1/routing/agents/{agent}", "/v1/routing/agents/sara", map[string]any{"capacity": map[string]int{"voice": 1, "chat": 3}}, 200)
	saraOrSystem("PUT /v1/routing/agents/{agent}/presence", "/v1/routing/agents/sara/presence", map[string]any{"presence": "away"}, 200)
	saraOrSystem("PUT /v1/routing/agents/{agent}/capacity", "/v1/routing/agents/sara/capacity", map[string]any{"capacity": map[string]int{"chat": 4}}, 200)
	saraOrSystem("POST /v1/routing/agents/{agent}/heartbeat", "/v1/routing/agents/sara/heartbeat", nil, 204)
	saraOrSystem("POST /v1/routing/agents/{agent}/queues", "/v1/routing/agents/sara/queues", map[string]any{"queues": []string{"q2"}}, 200)
	saraOrSystem("DELETE /v1/routing/agents/{agent}/queues/{queue}", "/v1/routing/agents/sara/queues/q1", nil, 200)
	saraOrSystem("POST /v1/routing/agents/{agent}/logoff", "/v1/routing/agents/sara/logoff", nil, 200)

	// Conversation routes: the token's agent is found among the agents
	// the conversation names.
	add("GET /v1/routing/conversations/{conversation}", "/v1/routing/conversations/c1", nil, 403,
		map[string]int{system: 200, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/accept", "/v1/routing/conversations/c1/accept", nil, 409,
		map[string]int{system: 400, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/accept", "/v1/routing/conversations/c1/accept", map[string]any{"agent": "sara"}, 403,
		map[string]int{system: 200, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/decline", "/v1/routing/conversations/c1/decline", nil, 409,
		map[string]int{system: 400, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/decline", "/v1/routing/conversations/c1/decline", map[string]any{"agent": "sara"}, 403,
		map[string]int{system: 200, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/transfer", "/v1/routing/conversations/c2/transfer", map[string]any{"to_agent": "bob"}, 409,
		map[string]int{system: 400, asSara: 200})
	add("POST /v1/routing/conversations/{conversation}/transfer", "/v1/routing/conversations/c2/transfer", map[string]any{"from": "sara", "to_agent": "bob"}, 403,
		map[string]int{system: 200, asSara: 200})

	f := newFixture(t)
	var covered []string
	for _, c := range cases {
		covered = append(covered, c.route)
	}
	for _, r := range f.routes {
		assert.Contains(t, covered, r, "route %s has no auth cases", r)
	}
	for _, c := range cases {
		name := strings.ReplaceAll(c.path, "/", "_") + "_" + strings.Fields(c.route)[0] + "_" + c.caller
		if c.body != nil {
			name += "_with_body"
		}
		t.Run(name, func(t *testing.T) {
			f := authState(t)
			tok := ""
			switch c.caller {
			case wrong:
				tok = "not-a-token"
			case system:
				tok = apiToken
			case asSara, saraQuery:
				tok = f.token("sara")
			case asBob:
				tok = f.token("bob")
			case forged:
				tok = "agt_" + strings.Repeat("A", 43)
			}
			path := c.path
			if c.caller == saraQuery {
				path += "?access_token=" + tok
				tok = ""
			}
			method := strings.Fields(c.route)[0]
			before := f.dump()
			a := f.call(method, path, tok, c.body)
			require.Equal(t, c.want, a.Status, a.Raw)
			if c.want >= 400 {
				assert.Equal(t, before, f.dump(), "a refusal changes nothing")
				assert.NotEmpty(t, a.ErrMessage())
			}
			if c.want == 401 {
				assert.NotEmpty(t, a.Header.Get("WWW-Authenticate"))
			}
			if tok != "" && c.route != "POST /v1/routing/agents/{agent}/token" {
				assert.NotContains(t, a.Raw, tok, "a token is shown only where it is issued")
			}
		})
	}
}

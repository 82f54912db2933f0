package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInput: each bad request is answered 4xx naming the field, and
// leaves every key as it was.
func TestBadInput(t *testing.T) {
	f := authState(t)
	sara := f.token("sara")
	big := `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `","channels":["voice"]}`
	cases := []struct {
		name   string
		method string
		path   string
		token  string // default: the API token
		body   any
		status int
		field  string
	}{
		// Queues.
		{"queue id", "PUT", "/v1/routing/queues/bad..id", "", map[string]any{"channels": []string{"voice"}}, 400, "queue"},
		{"queue id leading dot", "GET", "/v1/routing/queues/.q", "", nil, 400, "queue"},
		{"no body", "PUT", "/v1/routing/queues/q3", "", nil, 400, "body"},
		{"not JSON", "PUT", "/v1/routing/queues/q3", "", `{"channels":`, 400, "body"},
		{"not an object", "PUT", "/v1/routing/queues/q3", "", `["voice"]`, 400, "body"},
		{"two values", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"]} {}`, 400, "body"},
		{"unknown field", "PUT", "/v1/routing/queues/q3", "", map[string]any{"channels": []string{"voice"}, "colour": "red"}, 400, "colour"},
		{"channels missing", "PUT", "/v1/routing/queues/q3", "", map[string]any{"name": "x"}, 400, "channels"},
		{"channels empty", "PUT", "/v1/routing/queues/q3", "", map[string]any{"channels": []string{}}, 400, "channels"},
		{"channel twice", "PUT", "/v1/routing/queues/q3", "", map[string]any{"channels": []string{"voice", "voice"}}, 400, "channels[1]"},
		{"channel not a string", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice",7]}`, 400, "channels[1]"},
		{"channel bad id", "PUT", "/v1/routing/queues/q3", "", map[string]any{"channels": []string{"vo ice"}}, 400, "channels[0]"},
		{"priority a string", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"priority":"high"}`, 400, "priority"},
		{"priority a fraction", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"priority":1.5}`, 400, "priority"},
		{"priority out of range", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"priority":2000000}`, 400, "priority"},
		{"offer timeout a number", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"offer_timeout":30}`, 400, "offer_timeout"},
		{"offer timeout no unit", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"offer_timeout":"30"}`, 400, "offer_timeout"},
		{"max wait negative", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"max_wait":"-1s"}`, 400, "max_wait"},
		{"preferred wait too long", "PUT", "/v1/routing/queues/q3", "", `{"channels":["voice"],"preferred_wait":"200h"}`, 400, "preferred_wait"},
		{"name with a control character", "PUT", "/v1/routing/queues/q3", "", map[string]any{"channels": []string{"voice"}, "name": "a\nb"}, 400, "name"},
		{"body too large", "PUT", "/v1/routing/queues/q3", "", big, 413, "body"},

		// Agents.
		{"agent id", "GET", "/v1/routing/agents/sara%20x", "", nil, 400, "agent"},
		{"unknown agent", "GET", "/v1/routing/agents/nobody", "", nil, 404, "agent"},
		{"capacity missing", "PUT", "/v1/routing/agents/sara", sara, map[string]any{"presence": "away"}, 400, "capacity"},
		{"capacity not a number", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"voice":1,"chat":"two"}}`, 400, "capacity.chat"},
		{"capacity negative", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"chat":-1}}`, 400, "capacity.chat"},
		{"capacity too large", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"chat":5000}}`, 400, "capacity.chat"},
		{"capacity an array", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":[1]}`, 400, "capacity"},
		{"capacity below load", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"voice":1,"chat":0}}`, 409, "capacity.chat"},
		{"presence unknown", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"voice":1,"chat":2},"presence":"busy"}`, 400, "presence"},
		{"queue unknown", "PUT", "/v1/routing/agents/sara", sara, `{"capacity":{"voice":1,"chat":2},"queues":["q1","nope"]}`, 404, "queues[1]"},
		{"presence missing", "PUT", "/v1/routing/agents/sara/presence", sara, `{}`, 400, "presence"},
		{"presence a number", "PUT", "/v1/routing/agents/sara/presence", sara, `{"presence":1}`, 400, "presence"},
		{"capacity empty", "PUT", "/v1/routing/agents/sara/capacity", sara, `{"capacity":{}}`, 400, "capacity"},
		{"capacity channel bad id", "PUT", "/v1/routing/agents/sara/capacity", sara, `{"capacity":{"a b":1}}`, 400, "capacity"},
		{"join nothing", "POST", "/v1/routing/agents/sara/queues", sara, `{"queues":[]}`, 400, "queues"},
		{"join an unknown queue", "POST", "/v1/routing/agents/sara/queues", sara, `{"queues":["nope"]}`, 404, "queues[0]"},
		{"leave a bad queue id", "DELETE", "/v1/routing/agents/sara/queues/a..b", sara, nil, 400, "queue"},
		{"heartbeat with a field", "POST", "/v1/routing/agents/sara/heartbeat", sara, `{"at":1}`, 400, "at"},
		{"token for a bad id", "POST", "/v1/routing/agents/-x/token", "", nil, 400, "agent"},

		// Conversations.
		{"create without id", "POST", "/v1/routing/conversations", "", map[string]any{"queue": "q1", "channel": "voice"}, 400, "id"},
		{"create with a bad id", "POST", "/v1/routing/conversations", "", map[string]any{"id": "c/1", "queue": "q1", "channel": "voice"}, 400, "id"},
		{"create without queue", "POST", "/v1/routing/conversations", "", map[string]any{"id": "c9", "channel": "voice"}, 400, "queue"},
		{"create in an unknown queue", "POST", "/v1/routing/conversations", "", map[string]any{"id": "c9", "queue": "nope", "channel": "voice"}, 404, "queue"},
		{"create on a channel not served", "POST", "/v1/routing/conversations", "", map[string]any{"id": "c9", "queue": "q2", "channel": "chat"}, 400, "channel"},
		{"create with priority a string", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","priority":"yes"}`, 400, "priority"},
		{"create with a bad preferred agent", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","preferred_agent":"a b"}`, 400, "preferred_agent"},
		{"create with a number attribute", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","attributes":{"lang":"en","vip":true}}`, 400, "attributes.vip"},
		{"create with a control character attribute", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","attributes":{"lang":"e\u0000n"}}`, 400, "attributes.lang"},
		{"create with a bad session", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","session":"fax-1"}`, 400, "session"},
		{"create a conversation still routed", "POST", "/v1/routing/conversations", "", `{"id":"c1","queue":"q1","channel":"voice"}`, 409, "id"},
		{"create with source", "POST", "/v1/routing/conversations", "", `{"id":"c9","queue":"q1","channel":"voice","source":"x"}`, 400, "source"},
		{"conversation id", "GET", "/v1/routing/conversations/c..1", "", nil, 400, "conversation"},
		{"unknown conversation", "GET", "/v1/routing/conversations/c404", "", nil, 404, "conversation"},
		{"accept with agent a number", "POST", "/v1/routing/conversations/c1/accept", "", `{"agent":5}`, 400, "agent"},
		{"accept with a bad agent id", "POST", "/v1/routing/conversations/c1/accept", "", `{"agent":"s ara"}`, 400, "agent"},
		{"accept by the system for nobody", "POST", "/v1/routing/conversations/c1/accept", "", nil, 400, "agent"},
		{"accept with an unknown field", "POST", "/v1/routing/conversations/c1/accept", sara, `{"agnet":"sara"}`, 400, "agnet"},
		{"accept an unknown conversation", "POST", "/v1/routing/conversations/c404/accept", sara, nil, 404, "conversation"},
		{"transfer to nowhere", "POST", "/v1/routing/conversations/c2/transfer", sara, `{}`, 400, "to_agent"},
		{"transfer to both", "POST", "/v1/routing/conversations/c2/transfer", sara, `{"to_agent":"bob","to_queue":"q1"}`, 400, "to_queue"},
		{"transfer to a bad agent id", "POST", "/v1/routing/conversations/c2/transfer", sara, `{"to_agent":"b@@ b"}`, 400, "to_agent"},
		{"transfer to an unknown queue", "POST", "/v1/routing/conversations/c2/transfer", sara, `{"to_queue":"nope"}`, 404, "to_queue"},
		{"transfer to oneself", "POST", "/v1/routing/conversations/c2/transfer", sara, `{"to_agent":"sara"}`, 400, "to_agent"},
		{"transfer from a non-holder", "POST", "/v1/routing/conversations/c2/transfer", "", `{"from":"bob","to_agent":"sara"}`, 409, "from"},
		{"transfer what is only offered", "POST", "/v1/routing/conversations/c1/transfer", sara, `{"to_agent":"bob"}`, 409, "from"},
		{"requeue with priority a string", "POST", "/v1/routing/conversations/c1/requeue", "", `{"priority":"yes"}`, 400, "priority"},
		{"end with a field", "POST", "/v1/routing/conversations/c1/end", "", `{"reason":"x"}`, 400, "reason"},
		{"cancel a bad id", "POST", "/v1/routing/conversations/-c/cancel", "", nil, 400, "conversation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token
			if tok == "" {
				tok = apiToken
			}
			before := f.dump()
			a := f.call(tc.method, tc.path, tok, tc.body)
			require.Equal(t, tc.status, a.Status, a.Raw)
			assert.Equal(t, tc.field, a.ErrField(), a.Raw)
			assert.NotEmpty(t, a.ErrMessage())
			assert.Equal(t, before, f.dump(), "a refused request changes nothing")
		})
	}
}

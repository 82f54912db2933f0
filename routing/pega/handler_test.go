package pega_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing/pega"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// routerCall is the Router method each kind calls, with the detail that
// tells the kinds apart (the package comment's table).
var routerCall = map[pega.Kind]string{
	pega.QueuesJoined:             "SetQueues",
	pega.Offered:                  "Offer shown",
	pega.AgentAccepted:            "Offer accepted",
	pega.AgentDeclined:            "Offer declined",
	pega.Expired:                  "Offer expired",
	pega.ConversationEnded:        "End",
	pega.AgentLoggedOff:           "LogOff",
	pega.TransferToAgentInitiated: "Transfer agent initiated",
	pega.TransferToAgentAccepted:  "Transfer agent accepted",
	pega.TransferToAgentDeclined:  "Transfer agent declined",
	pega.TransferToAgentExpired:   "Transfer agent expired",
	pega.TransferToAgentAbandoned: "Transfer agent abandoned",
	pega.TransferToQueueInitiated: "Transfer queue initiated",
	pega.TransferToQueueAccepted:  "Transfer queue accepted",
	pega.TransferToQueueDeclined:  "Transfer queue declined",
	pega.TransferToQueueExpired:   "Transfer queue expired",
	pega.TransferToQueueAbandoned: "Transfer queue abandoned",
	pega.LongRunningInteraction:   "Resume",
	pega.Requeuing:                "Requeue normal",
	pega.PriorityRequeuing:        "Requeue priority",
}

// describe names a recorded call the way routerCall does.
func describe(c call) string {
	switch a := c.Arg.(type) {
	case pega.Offer:
		return "Offer " + a.Outcome.String()
	case pega.Transfer:
		return fmt.Sprintf("Transfer %v %v", a.Target, a.Stage)
	case pega.Requeue:
		if a.Priority {
			return "Requeue priority"
		}
		return "Requeue normal"
	}
	return c.Method
}

// refOf is the Ref an event's Router call should carry.
func refOf(e pega.Event) pega.Ref {
	return pega.Ref{Conversation: e.Conversation, Agent: e.Agent, Queue: e.Queue, Source: e.Source, Extra: e.Extra}
}

func TestEventsHandlerSpecExamples(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	want := example(t, "events/response.json")
	for _, name := range eventExamples(t) {
		t.Run(name, func(t *testing.T) {
			before := len(ts.router.Calls())
			a := ts.post(t, pega.EventsPath, example(t, filepath.Join("events", name)))
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.JSONEq(t, string(want), a.Raw, "the answer is the spec's example answer")
			assert.Equal(t, "application/json", a.Header.Get("Content-Type"))

			calls := ts.router.Calls()[before:]
			require.Len(t, calls, 1)
			e := specEvents[name]
			assert.Equal(t, routerCall[e.Kind], describe(calls[0]))
		})
	}
}

func TestEventsHandlerRouterArguments(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	tests := []struct {
		file string
		want call
	}{
		{"01-queues-joined.json", call{"SetQueues", pega.Presence{Agent: "sara@pegasystems.com", Queues: []string{"Billing", "Technical"}}}},
		{"02-queues-joined-empty.json", call{"SetQueues", pega.Presence{Agent: "sara@pegasystems.com", Queues: []string{}}}},
		{"06-expired.json", call{"Offer", pega.Offer{Ref: refOf(specEvents["06-expired.json"]), Outcome: pega.OfferExpired}}},
		{"12-agent-logged-off.json", call{"LogOff", refOf(specEvents["12-agent-logged-off.json"])}},
		{"13-transfer-to-agent-initiated.json", call{"Transfer", pega.Transfer{
			Ref:    pega.Ref{Conversation: "724f0bb25dfa11eaaf242fbec29fb4c5", Agent: sara, Queue: "Billing", Source: "chat"},
			Target: pega.TargetAgent, Stage: pega.StageInitiated,
			FromAgent: sara, ToAgent: "Laura", FromQueue: "Billing", ToQueue: "Technical"}}},
		{"18-transfer-to-queue-initiated.json", call{"Transfer", pega.Transfer{
			Ref:    pega.Ref{Conversation: "c8f9cbfa5d4b11eaae27dbc8263ea31f", Agent: sara, Queue: "Billing", Source: "chat"},
			Target: pega.TargetQueue, Stage: pega.StageInitiated, FromAgent: sara}}},
		{"20-transfer-to-queue-declined.json", call{"Transfer", pega.Transfer{
			Ref:    pega.Ref{Conversation: "486bd29a5ddb11ea8fe5e72406874e0e", Agent: sara, Queue: "Billing", Source: "chat"},
			Target: pega.TargetQueue, Stage: pega.StageDeclined,
			FromAgent: "Laura", ToAgent: sara, FromQueue: "Technical", ToQueue: "Billing"}}},
		{"27-long-running-interaction.json", call{"Resume", pega.Ref{Conversation: bot39, Agent: "Sarah", Queue: "Billing", Source: "Facebook"}}},
		{"29-priority-requeuing.json", call{"Requeue", pega.Requeue{
			Ref: pega.Ref{Conversation: bot39, Agent: "sarah", Queue: "Billing", Source: "Facebook"}, Priority: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			before := len(ts.router.Calls())
			a := ts.post(t, pega.EventsPath, example(t, filepath.Join("events", tt.file)))
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			calls := ts.router.Calls()[before:]
			require.Len(t, calls, 1)
			assert.Equal(t, tt.want, calls[0])
		})
	}
}

func TestRouteHandlerSpecExample(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	a := ts.post(t, pega.RoutePath, example(t, "route/request.json"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.JSONEq(t, string(example(t, "route/response.json")), a.Raw, "unknown wait and position answer as the spec's example")
	assert.Equal(t, []call{{"Route", pega.RouteRequest{
		Conversation: "3bc1c3b45ea911ea88f277fee9bcd8c0", Queue: "Billing", Source: "Facebook", Priority: true,
	}}}, ts.router.Calls())
}

func TestRouteHandlerAnswers(t *testing.T) {
	body := example(t, "route/request.json")
	tests := []struct {
		name   string
		result pega.RouteResult
		err    error
		status int
		want   string
	}{
		{"identifying, all known", pega.RouteResult{Identifying: true, WaitTime: 44200 * time.Millisecond, HasWaitTime: true, QueuePosition: 3}, nil,
			http.StatusOK, `{"_status":"_identifying_route","_wait_time":"45","_queue_position":"3"}`},
		{"identifying, no wait", pega.RouteResult{Identifying: true, HasWaitTime: true, QueuePosition: 1}, nil,
			http.StatusOK, `{"_status":"_identifying_route","_wait_time":"0","_queue_position":"1"}`},
		{"no CSR", pega.RouteResult{}, nil,
			http.StatusOK, `{"_status":"route_not_found","_wait_time":"","_queue_position":""}`},
		{"unknown queue", pega.RouteResult{}, crmsync.Errorf(crmsync.ENOTFOUND, "queue", "no queue Billing"),
			http.StatusOK, `{"_status":"route_not_found","_wait_time":"","_queue_position":"","_reason":"queue: no queue Billing"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, pega.Config{})
			ts.router.route = tt.result
			ts.router.setErr("Route", tt.err)
			a := ts.post(t, pega.RoutePath, body)
			assert.Equal(t, tt.status, a.Status)
			assert.JSONEq(t, tt.want, a.Raw)
		})
	}
}

func TestRouterErrors(t *testing.T) {
	route := example(t, "route/request.json")
	event := example(t, "events/03-offered.json")
	tests := []struct {
		name     string
		method   string
		path     string
		body     []byte
		err      error
		status   int
		pegaStat string // the answer's _status
		logged   bool
	}{
		{"event conflict is Fail", "Offer", pega.EventsPath, event,
			crmsync.Errorf(crmsync.ECONFLICT, "", "the offer is no longer open"), http.StatusOK, "Fail", false},
		{"event on unknown conversation is Fail", "Offer", pega.EventsPath, event,
			crmsync.Errorf(crmsync.ENOTFOUND, "conversation", "no such conversation"), http.StatusOK, "Fail", false},
		{"event refused value is 400", "Offer", pega.EventsPath, event,
			crmsync.Errorf(crmsync.EINVALID, "queue", "not a queue of the agent"), http.StatusBadRequest, "Fail", false},
		{"event with routing down is 503", "Offer", pega.EventsPath, event,
			crmsync.Errorf(crmsync.EUNAVAILABLE, "", "redis: connection refused"), http.StatusServiceUnavailable, "Fail", true},
		{"event fault is 500", "Offer", pega.EventsPath, event,
			errors.New("script bug"), http.StatusInternalServerError, "Fail", true},
		{"route conflict is 409", "Route", pega.RoutePath, route,
			crmsync.Errorf(crmsync.ECONFLICT, "", "the conversation is held by an agent"), http.StatusConflict, "", false},
		{"route refused value is 400", "Route", pega.RoutePath, route,
			crmsync.Errorf(crmsync.EINVALID, "source", "no such channel"), http.StatusBadRequest, "", false},
		{"route fault is 500", "Route", pega.RoutePath, route,
			errors.New("script bug"), http.StatusInternalServerError, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, pega.Config{})
			ts.router.setErr(tt.method, tt.err)
			a := ts.post(t, tt.path, tt.body)
			assert.Equal(t, tt.status, a.Status, "%s", a.Raw)
			if tt.pegaStat != "" {
				assert.Equal(t, tt.pegaStat, a.Body["_status"])
			}
			if tt.status == http.StatusOK {
				assert.Equal(t, tt.err.Error(), a.Body["_reason"], "a refusal says why")
			}
			if tt.status == http.StatusInternalServerError {
				assert.Equal(t, "internal error", a.ErrMessage(), "a fault's detail stays in the log")
				assert.NotContains(t, a.Raw, "script bug")
			}
			if tt.logged {
				assert.Contains(t, ts.logs.String(), tt.err.Error())
			} else {
				assert.Empty(t, ts.logs.String())
			}
		})
	}
}

func TestHandlersRefuseBadInput(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	for _, c := range []struct {
		path   string
		inputs []badInput
	}{{pega.EventsPath, badEvents}, {pega.RoutePath, badRoutes}} {
		for _, tt := range c.inputs {
			t.Run(c.path+"/"+tt.name, func(t *testing.T) {
				a := ts.post(t, c.path, tt.body)
				assert.Equal(t, http.StatusBadRequest, a.Status, "%s", a.Raw)
				assert.Equal(t, tt.field, a.ErrField())
				assert.Contains(t, a.ErrMessage(), tt.message)
				if c.path == pega.EventsPath {
					assert.Equal(t, "Fail", a.Body["_status"])
				}
			})
		}
	}
	assert.Empty(t, ts.router.Calls(), "nothing reaches the engine")
	assert.Empty(t, ts.logs.String(), "a client's mistake is not logged")
}

func TestHandlersLimitBodies(t *testing.T) {
	ts := newTestServer(t, pega.Config{BearerTokens: []crmsync.Secret{testToken}, MaxBodyBytes: 1024})
	pad := strings.Repeat("x", 1024)
	for _, path := range []string{pega.EventsPath, pega.RoutePath} {
		t.Run(path, func(t *testing.T) {
			body := []byte(`{"_conversation_id":"c1","_agent_name":"Sara","_event_name":"Offered","_queue_name":"Billing","_source":"chat","_priority_queuing":"true","note":"` + pad + `"}`)
			a := ts.post(t, path, body)
			assert.Equal(t, http.StatusRequestEntityTooLarge, a.Status)
			assert.Contains(t, a.ErrMessage(), "larger than 1024 bytes")
		})
	}
	t.Run("default limit", func(t *testing.T) {
		ts := newTestServer(t, pega.Config{})
		big := bytes.Repeat([]byte(" "), pega.DefaultMaxBodyBytes+1)
		a := ts.post(t, pega.EventsPath, big)
		assert.Equal(t, http.StatusRequestEntityTooLarge, a.Status)
	})
	assert.Empty(t, ts.router.Calls())
}

func TestHandlersAuth(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	body := example(t, "events/03-offered.json")
	tests := []struct {
		name   string
		auth   func(*http.Request)
		status int
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, http.StatusOK},
		{"bearer, scheme in lower case", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testToken) }, http.StatusOK},
		{"basic", func(r *http.Request) { r.SetBasicAuth(testUser, testPassword) }, http.StatusOK},
		{"nothing", nil, http.StatusUnauthorized},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken+"x") }, http.StatusUnauthorized},
		{"bearer prefix only", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken[:5]) }, http.StatusUnauthorized},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, http.StatusUnauthorized},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth(testUser, "nope") }, http.StatusUnauthorized},
		{"wrong user", func(r *http.Request) { r.SetBasicAuth("admin", testPassword) }, http.StatusUnauthorized},
		{"token as basic password", func(r *http.Request) { r.SetBasicAuth(testUser, testToken) }, http.StatusUnauthorized},
		{"password as bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testPassword) }, http.StatusUnauthorized},
	}
	for _, path := range []string{pega.EventsPath, pega.RoutePath} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				b := body
				if path == pega.RoutePath {
					b = example(t, "route/request.json")
				}
				a := ts.do(t, http.MethodPost, path, b, tt.auth)
				assert.Equal(t, tt.status, a.Status, "%s", a.Raw)
				if tt.status == http.StatusUnauthorized {
					assert.Equal(t, "Authorization", a.ErrField())
					assert.ElementsMatch(t, []string{`Bearer realm="crmsync"`, `Basic realm="crmsync"`}, a.Header.Values("WWW-Authenticate"))
					assert.NotContains(t, a.Raw, testToken)
					assert.NotContains(t, a.Raw, testPassword)
				}
			})
		}
	}
}

func TestHandlersMethod(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	for _, path := range []string{pega.EventsPath, pega.RoutePath} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			t.Run(path+"/"+method, func(t *testing.T) {
				a := ts.do(t, method, path, example(t, "events/03-offered.json"), func(r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+testToken)
				})
				assert.Equal(t, http.StatusMethodNotAllowed, a.Status)
				assert.Equal(t, http.MethodPost, a.Header.Get("Allow"))
			})
		}
	}
	assert.Empty(t, ts.router.Calls())
}

func TestHandlersIgnoreContentType(t *testing.T) {
	ts := newTestServer(t, pega.Config{})
	for _, ct := range []string{"", "text/plain", "application/json; charset=utf-8"} {
		t.Run(ct, func(t *testing.T) {
			a := ts.do(t, http.MethodPost, pega.EventsPath, example(t, "events/03-offered.json"), func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+testToken)
				r.Header.Set("Content-Type", ct)
			})
			assert.Equal(t, http.StatusOK, a.Status)
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	r := newRecorder()
	tests := []struct {
		name  string
		cfg   pega.Config
		field string
	}{
		{"no credential", pega.Config{}, "auth"},
		{"empty token", pega.Config{BearerTokens: []crmsync.Secret{""}}, "bearer_tokens[0]"},
		{"user without password", pega.Config{Username: "pega"}, "password"},
		{"password without user", pega.Config{BearerTokens: []crmsync.Secret{"t"}, Password: "p"}, "username"},
		{"negative limit", pega.Config{BearerTokens: []crmsync.Secret{"t"}, MaxBodyBytes: -1}, "max_body_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pega.New(r, tt.cfg)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.field, e.Field)
		})
	}
	_, err := pega.New(nil, pega.Config{BearerTokens: []crmsync.Secret{"t"}})
	assert.Error(t, err)
}

func TestConfigRedactsSecrets(t *testing.T) {
	cfg := pega.Config{BearerTokens: []crmsync.Secret{testToken}, Username: testUser, Password: testPassword}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		assert.NotContains(t, s, testToken)
		assert.NotContains(t, s, testPassword)
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(b), testToken)
	assert.NotContains(t, string(b), testPassword)
}

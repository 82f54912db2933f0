package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/pega/pegatest"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/internal/redistest"
)

// demo is a crmsync process on the demo config, its logs and its storage
// folder.
type demo struct {
	*Main
	logs    *logtest.Buffer
	storage string
}

// demoMain runs the demo config on the tests' Redis, with its own keys,
// queue and folders; edit may change the config before the process
// starts.
func demoMain(t *testing.T, edit func(*configs.Config)) *demo {
	t.Helper()
	addr := freeAddr(t)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	storeDir, spoolDir := t.TempDir(), t.TempDir()
	cfg, err := configs.Parse("demo.yaml", configs.Demo, func(k string) (string, bool) {
		switch k {
		case "CRMSYNC_LISTEN":
			return addr, true
		case "REDIS_URL":
			return redistest.URL(t), true
		case "CRMSYNC_STORAGE":
			return storeDir, true
		case "CRMSYNC_SPOOL":
			return spoolDir, true
		}
		return "", false
	})
	require.NoError(t, err)
	cfg.Redis.KeyPrefix = prefix
	cfg.Worker.Queue = redistest.Queue(t, rdb)
	if edit != nil {
		edit(cfg)
	}
	logs := &logtest.Buffer{}
	m := &Main{Config: cfg, Logger: newLogger(configs.Log{Level: "info", Format: "json"}, logs), API: true, Worker: true}
	require.NoError(t, m.Run(context.Background()))
	t.Cleanup(func() {
		_ = m.Close()
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return &demo{Main: m, logs: logs, storage: storeDir}
}

// Every route the fully wired server registers is in docs/openapi.yaml,
// with its method.
func TestEveryRouteIsInOpenAPI(t *testing.T) {
	sf := sftest.Start(t, nil)
	m := demoMain(t, func(c *configs.Config) {
		c.Pega = configs.Pega{
			Enabled: true, Channel: "chat", Capacity: 1,
			Inbound: configs.PegaInbound{BearerTokens: []crmsync.Secret{"pega-inbound-token"}},
			Service: configs.PegaService{BaseURL: "http://127.0.0.1:9", Token: "pega-service-token"},
		}
		sc := sf.ClientConfig(t, nil)
		c.Salesforce = configs.Salesforce{
			Enabled: true, BaseURL: sc.BaseURL, OrgID: sc.OrgID, AuthorizationContext: sc.AuthorizationContext,
			ClientID: sc.ClientID, Subject: sc.Subject, Audience: sc.Audience, PrivateKey: sc.PrivateKey,
		}
	})
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))

	routes := m.api.Routes()
	for _, want := range []string{"POST /pega/route", "GET /v1/agents/{id}/events", "POST /v1/routing/byoc/routes", "PUT /v1/routing/lists/{list}", "GET /agent/adapter"} {
		assert.Contains(t, routes, want, "the fully wired server should register it")
	}
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			method, path = "GET", r
		}
		ops, found := doc.Paths[path]
		if assert.True(t, found, "route %q is not in docs/openapi.yaml", r) {
			_, has := ops[strings.ToLower(method)]
			assert.True(t, has, "route %q: method missing in docs/openapi.yaml", r)
		}
	}
}

// A whole Pega conversation through the real server: Pega asks for a
// route, crmsync picks a CSR and tells Pega's service, the CSR declines, a
// second one accepts, the conversation is transferred to a queue and taken
// there, then ends. Along the way the CRM account and record are made and
// commented, and the CSR holding it gets the record popped.
func TestPegaConversationEndToEnd(t *testing.T) {
	pg := pegatest.New(t, pegatest.Config{Token: "pega-service-token"})
	m := demoMain(t, func(c *configs.Config) {
		c.Routing.Queues = append(c.Routing.Queues, configs.RoutingQueue{ID: "billing", Name: "Billing", Channels: []string{"chat"}})
		c.Pega = configs.Pega{
			Enabled: true, Channel: "chat", Capacity: 1,
			Inbound: configs.PegaInbound{BearerTokens: []crmsync.Secret{"pega-inbound-token"}},
			Service: configs.PegaService{BaseURL: pg.URL(), Token: "pega-service-token"},
		}
	})
	base := "http://" + m.Addr
	ctx := context.Background()

	pega := func(path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer pega-inbound-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.Equal(t, 200, resp.StatusCode, "%s %s: %v", path, body, out)
		return out
	}
	event := func(name, agent string, extra string) {
		t.Helper()
		out := pega("/pega/events", `{"_conversation_id":"pegae2e01","_agent_name ":"`+agent+`","_ event_name":"`+name+`","_queue_name ":"support","_source":"chat"`+extra+`}`)
		require.Equal(t, "Success", out["_status"], "%s by %s: %v", name, agent, out)
	}
	assigned := func(agent string) {
		t.Helper()
		require.Eventually(t, func() bool {
			return slices.Contains(pg.Assignments(), pegatest.Assignment{Conversation: "pegae2e01", Agent: agent})
		}, 30*time.Second, 20*time.Millisecond, "PostRoutingEvents never named %s; calls: %+v", agent, pg.Calls())
	}

	// Three CSRs log in; sara has waited longest.
	for _, a := range []struct{ agent, queues string }{{"sara", ";support;"}, {"bob", ";support;"}, {"laura", ";billing;"}} {
		out := pega("/pega/events", `{"_conversation_id":"","_agent_name ":"`+a.agent+`","_ event_name":"QueuesJoined","_queue_name":"`+a.queues+`"}`)
		require.Equal(t, "Success", out["_status"], "%v", out)
		time.Sleep(5 * time.Millisecond) // distinct idle times
	}

	out := pega("/pega/route", `{"_conversation_id":"pegae2e01","_queue_name":"support","_source":"chat","_preferred_agent":"","_priority_queuing":"false",
		"end_user_name":"Jane Doe","end_user_email":"jane@example.com","end_user_phone":"+1 222 333 4444"}`)
	assert.Equal(t, "_identifying_route", out["_status"])

	assigned("sara")
	event("Offered", "sara", "")
	event("Agent-Declined", "sara", "")
	assigned("bob")
	event("Offered", "bob", "")
	event("Agent-Accepted", "bob", "")

	// The CRM flow runs for the session and pops the record to bob.
	view := waitSession(t, base, "chat-pegae2e01", func(v sessionView) bool { return v.CRM.RecordURL != "" })
	require.Eventually(t, func() bool {
		evs, err := m.routing.streams.Read(ctx, "bob", "", 500)
		require.NoError(t, err)
		for _, ev := range evs {
			if ev.Type == "CRM_Record_Pop" && strings.Contains(string(ev.Data), view.CRM.RecordURL) {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "bob never got CRM_Record_Pop for %s", view.CRM.RecordURL)

	// Bob transfers it to the billing queue; laura takes it there.
	event("Transfer-To-Queue-Initiated", "bob", `,"_transferred_from_agent":"bob","_transferred_to_queue ":"billing"`)
	assigned("laura")
	out = pega("/pega/events", `{"_conversation_id":"pegae2e01","_agent_name ":"laura","_ event_name":"Transfer-To-Queue-Accepted","_queue_name ":"billing","_source":"chat",
		"_transferred_from_agent":"bob","_transferred_to_agent":"laura","_transferred_from_queue":"support","_transferred_to_queue ":"billing"}`)
	require.Equal(t, "Success", out["_status"], "%v", out)
	c, err := m.routing.engine.GetConversation(ctx, "pegae2e01")
	require.NoError(t, err)
	assert.Equal(t, "laura", c.Agent)

	out = pega("/pega/events", `{"_conversation_id":"pegae2e01","_agent_name ":"laura","_ event_name":"Conversation-Ended","_queue_name ":"billing","_source":"chat"}`)
	require.Equal(t, "Success", out["_status"], "%v", out)
	c, err = m.routing.engine.GetConversation(ctx, "pegae2e01")
	require.NoError(t, err)
	assert.Equal(t, "ended", string(c.State))

	// One account and one record; the record has the start, transfer and
	// end comments. PostRoutingEvents named each CSR once.
	var comments struct {
		Data struct {
			Items []struct {
				Comment string `json:"comment"`
			} `json:"items"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/sample-crm/api/records/" + view.CRM.RecordID + "/comments")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&comments))
		return len(comments.Data.Items) >= 3
	}, 30*time.Second, 50*time.Millisecond, "comments: %+v", comments)
	assert.Len(t, comments.Data.Items, 3, "start, transfer, end: %+v", comments)
	assert.Equal(t, []pegatest.Assignment{{Conversation: "pegae2e01", Agent: "sara"}, {Conversation: "pegae2e01", Agent: "bob"}, {Conversation: "pegae2e01", Agent: "laura"}}, pg.Assignments())
}

type sessionView struct {
	CRM struct {
		AccountID string `json:"account_id"`
		RecordID  string `json:"record_id"`
		RecordURL string `json:"record_url"`
	} `json:"crm"`
}

// waitSession polls the session view until ok says it is there.
func waitSession(t *testing.T, base, session string, ok func(sessionView) bool) sessionView {
	t.Helper()
	var v sessionView
	var last []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+"/v1/sessions/"+session, nil)
		req.Header.Set("Authorization", "Bearer demo-token-change-me")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		last, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			require.NoError(t, json.Unmarshal(last, &v))
			if ok(v) {
				return v
			}
		}
		require.True(t, time.Now().Before(deadline), "session %s not ready after 30s:\n%s", session, last)
		time.Sleep(50 * time.Millisecond)
	}
}

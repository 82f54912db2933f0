package pega_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing/pega"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	sara  = "sarah@pegasystems.com"
	bot19 = "BotAgenta3256c9e885f48819dade129c245f2c9_1426819"
	bot98 = "BotAgenta3256c9e885f48819dade129c245f2c9_1449198"
	bot39 = "BotAgenta3256c9e885f48819dade129c245f2c9_1427039"
)

// ended is a Conversation-Ended example's event.
func ended(conv string) pega.Event {
	return pega.Event{Kind: pega.ConversationEnded, Name: "Conversation-Ended", Conversation: conv,
		Agent: sara, Queue: "Billing", Source: "chat"}
}

// specEvents is every routing event example of the spec (testdata/events,
// copied verbatim) and what it decodes to.
var specEvents = map[string]pega.Event{
	"request.json": {Kind: pega.TransferToAgentAccepted, Name: "Transfer-to-agent-accepted",
		Conversation: "3bc1c3b45ea911ea88f277fee9bcd8c0", Agent: "Sara", Queue: "Billing", Source: "chat",
		TransferredFromAgent: "lara@pegasystems.com", TransferredToAgent: "Sara",
		TransferredToQueue: "Technical", TransferredFromQueue: "Billing"},
	"01-queues-joined.json": {Kind: pega.QueuesJoined, Name: "QueuesJoined",
		Agent: "sara@pegasystems.com", Queues: []string{"Billing", "Technical"}},
	"02-queues-joined-empty.json": {Kind: pega.QueuesJoined, Name: "QueuesJoined",
		Agent: "sara@pegasystems.com", Queues: []string{}},
	"03-offered.json": {Kind: pega.Offered, Name: "Offered", Conversation: bot19,
		Agent: "Sarah", Queue: "Billing", Source: "Facebook"},
	"04-agent-accepted.json": {Kind: pega.AgentAccepted, Name: "Agent-Accepted",
		Conversation: "f04439e85ea411ea9c3583173b58cc69", Agent: sara, Queue: "Billing", Source: "chat"},
	"05-agent-declined.json": {Kind: pega.AgentDeclined, Name: "Agent-Declined", Conversation: bot98,
		Agent: "Sarah", Queue: "Billing", Source: "Facebook"},
	"06-expired.json": {Kind: pega.Expired, Name: "ValidatePublish",
		Conversation: "84c5e3e85ed011ea8bddc75183dd79c8", Agent: "Sarah", Queue: "Billing", Source: "chat"},
	"07-conversation-ended-before-csr.json":  ended("4aea63d05df211ea96270b756ec8016c"),
	"08-conversation-ended-tab-closed.json":  ended("8sdf21r12df211ea96270b756ec2091s"),
	"09-conversation-ended-wrap-up.json":     ended("2awe23f04df312ea96230b756ec1786d"),
	"10-conversation-ended-by-csr.json":      ended("4beb27s06ed2013a43270b756ec6210c"),
	"11-conversation-ended-by-customer.json": ended("4aea63d05df211ea96270b756ec8016c"),
	"23-customer-network-disconnected.json":  ended("3fhl14e04wr514ea96140b756ec3290b"),
	"24-customer-abandoned.json":             ended("b3f24b585eac11eaa746b7b5cb19d100"),
	"25-agent-network-disconnect.json":       ended("c9f880e65eae11ea8fa4ab34045c802b"),
	"26-agent-browser-close.json":            ended("c9f880e65eae11ea8fa4ab34045c802b"),
	"12-agent-logged-off.json": {Kind: pega.AgentLoggedOff, Name: "Agent-LoggedOff",
		Conversation: "a9affee25e1611eaae862f3fa01a2a93", Agent: sara, Queue: "Billing", Source: "chat"},
	"13-transfer-to-agent-initiated.json": {Kind: pega.TransferToAgentInitiated, Name: "TransferredtoAgent",
		Conversation: "724f0bb25dfa11eaaf242fbec29fb4c5", Agent: sara, Queue: "Billing", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"14-transfer-to-agent-accepted.json": {Kind: pega.TransferToAgentAccepted, Name: "Transfer-To-Agent-Accepted",
		Conversation: "781e788e5d5011eaa0b93f49ea39efd3", Agent: "Laura", Queue: "Technical", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"15-transfer-to-agent-declined.json": {Kind: pega.TransferToAgentDeclined, Name: "Transfer-To-Agent-Declined",
		Conversation: "781e788e5d5011eaa0b93f49ea39efd3", Agent: sara, Queue: "Billing", Source: "chat",
		TransferredFromAgent: "Laura", TransferredFromQueue: "Technical"},
	"16-transfer-to-agent-expired.json": {Kind: pega.TransferToAgentExpired, Name: "Transfer-To-Agent-Expired",
		Conversation: "3656a4345eaa11ea9f11571826868be0", Agent: "Laura", Queue: "Technical", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"17-transfer-to-agent-abandoned.json": {Kind: pega.TransferToAgentAbandoned, Name: "Transfer-To-Agent-Abandoned",
		Conversation: "3bc1c3b45ea911ea88f277fee9bcd8c0", Agent: "Laura", Queue: "Technical", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"18-transfer-to-queue-initiated.json": {Kind: pega.TransferToQueueInitiated, Name: "Transfer-To-Queue-Initiated",
		Conversation: "c8f9cbfa5d4b11eaae27dbc8263ea31f", Agent: sara, Queue: "Billing", Source: "chat",
		TransferredFromAgent: sara},
	"19-transfer-to-queue-accepted.json": {Kind: pega.TransferToQueueAccepted, Name: "Transfer-To-Queue-Accepted",
		Conversation: "486bd29a5ddb11ea8fe5e72406874e0e", Agent: "Laura", Queue: "Technical", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"20-transfer-to-queue-declined.json": {Kind: pega.TransferToQueueDeclined, Name: "Transfer-To-Queue-Declined",
		Conversation: "486bd29a5ddb11ea8fe5e72406874e0e", Agent: sara, Queue: "Billing", Source: "chat",
		TransferredFromAgent: "Laura", TransferredToAgent: sara, TransferredFromQueue: "Technical", TransferredToQueue: "Billing"},
	"21-transfer-to-queue-expired.json": {Kind: pega.TransferToQueueExpired, Name: "Transfer-To-Queue-Expired",
		Conversation: "486bd29a5ddb11ea8fe5e72406874e0e", Agent: sara, Queue: "Billing", Source: "chat",
		TransferredFromAgent: "Laura", TransferredToAgent: sara, TransferredFromQueue: "Technical", TransferredToQueue: "Billing"},
	"22-transfer-to-queue-abandoned.json": {Kind: pega.TransferToQueueAbandoned, Name: "Transfer-To-Queue-Abandoned",
		Conversation: "3b00aab05eab11eaba2b9b6b99bd5233", Agent: "Laura", Queue: "Technical", Source: "chat",
		TransferredFromAgent: sara, TransferredToAgent: "Laura", TransferredFromQueue: "Billing", TransferredToQueue: "Technical"},
	"27-long-running-interaction.json": {Kind: pega.LongRunningInteraction, Name: "LongRunning-Interaction",
		Conversation: bot39, Agent: "Sarah", Queue: "Billing", Source: "Facebook"},
	"28-requeuing.json": {Kind: pega.Requeuing, Name: "Requeuing",
		Conversation: bot39, Agent: "Sarah", Queue: "Billing", Source: "Facebook"},
	"29-priority-requeuing.json": {Kind: pega.PriorityRequeuing, Name: "Priority-Requeuing",
		Conversation: bot39, Agent: "sarah", Queue: "Billing", Source: "Facebook"},
}

// eventExamples lists testdata/events' request bodies (not the answer).
func eventExamples(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	require.NoError(tb, err)
	var out []string
	for _, n := range names {
		if filepath.Base(n) != "response.json" {
			out = append(out, filepath.Base(n))
		}
	}
	return out
}

func TestDecodeEventSpecExamples(t *testing.T) {
	files := eventExamples(t)
	require.Len(t, files, len(specEvents), "every example has an expected event, and every expected event an example")
	kinds := map[pega.Kind]bool{}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			want, ok := specEvents[name]
			require.True(t, ok, "no expected event for %s", name)
			got, err := pega.DecodeEvent(example(t, filepath.Join("events", name)))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			kinds[got.Kind] = true
		})
	}
	for _, k := range pega.Kinds() {
		assert.True(t, kinds[k], "no spec example decodes to %v", k)
	}
}

func TestDecodeRouteRequestSpecExample(t *testing.T) {
	got, err := pega.DecodeRouteRequest(example(t, "route/request.json"))
	require.NoError(t, err)
	assert.Equal(t, pega.RouteRequest{
		Conversation: "3bc1c3b45ea911ea88f277fee9bcd8c0",
		Queue:        "Billing",
		Source:       "Facebook",
		Priority:     true,
	}, got)
}

func TestDecodeRouteRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want pega.RouteRequest
	}{
		{"priority false", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":"false"}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat"}},
		{"priority any case", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":" TRUE "}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat", Priority: true}},
		{"priority boolean", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":true}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat", Priority: true}},
		{"priority empty", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":""}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat"}},
		{"preferred agent, stray spaces in keys", `{"_conversation_id ":"c1","_ queue_name":"Billing","_source":"chat","_preferred_agent ":"sara@pegasystems.com","_priority_queuing":"true"}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat", PreferredAgent: "sara@pegasystems.com", Priority: true}},
		{"source with spaces", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"Apple Business Chat","_priority_queuing":"false"}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "Apple Business Chat"}},
		{"null preferred agent", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_preferred_agent":null,"_priority_queuing":"false"}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat"}},
		{"extension fields kept", `{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":"false","CustomerName":"Ann Lee","policy":{"no":42}}`,
			pega.RouteRequest{Conversation: "c1", Queue: "Billing", Source: "chat", Extra: map[string]json.RawMessage{
				"CustomerName": json.RawMessage(`"Ann Lee"`), "policy": json.RawMessage(`{"no":42}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pega.DecodeRouteRequest([]byte(tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// ev builds an event body from key/value pairs, keeping their order and
// spelling.
func ev(kv ...string) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[i])
		b.Write(k)
		b.WriteByte(':')
		if strings.HasPrefix(kv[i+1], "raw:") {
			b.WriteString(strings.TrimPrefix(kv[i+1], "raw:"))
			continue
		}
		v, _ := json.Marshal(kv[i+1])
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestDecodeEventNormalizes(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want pega.Event
	}{
		{"same field twice, same value", ev("_conversation_id", "c1", "_agent_name", "Sara", "_agent_name ", "Sara", "_event_name", "Offered"),
			pega.Event{Kind: pega.Offered, Name: "Offered", Conversation: "c1", Agent: "Sara"}},
		{"empty gives way to a value", ev("_conversation_id", "c1", "_agent_name", "Laura", "_event_name", "Transfer-To-Agent-Initiated",
			"_transferred_to_agent", "", "TransferToAgentID", "Maya"),
			pega.Event{Kind: pega.TransferToAgentInitiated, Name: "Transfer-To-Agent-Initiated", Conversation: "c1", Agent: "Laura", TransferredToAgent: "Maya"}},
		{"value kept over a later empty", ev("_conversation_id", "c1", "_agent_name", "Laura", "_event_name", "Transfer-To-Queue-Initiated",
			"_transferred_to_queue", "Technical", "_transferred_to_queue ", ""),
			pega.Event{Kind: pega.TransferToQueueInitiated, Name: "Transfer-To-Queue-Initiated", Conversation: "c1", Agent: "Laura", TransferredToQueue: "Technical"}},
		{"event name in other case and spacing", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "  priority_requeuing "),
			pega.Event{Kind: pega.PriorityRequeuing, Name: "priority_requeuing", Conversation: "c1", Agent: "Sara"}},
		{"table name QueueJoined", ev("_agent_name", "Sara", "_event_name", "QueueJoined", "_queue_name", "Billing;Billing; Technical "),
			pega.Event{Kind: pega.QueuesJoined, Name: "QueueJoined", Agent: "Sara", Queues: []string{"Billing", "Technical"}}},
		{"QueuesJoined without queue key", ev("_agent_name", "Sara", "_event_name", "QueuesJoined"),
			pega.Event{Kind: pega.QueuesJoined, Name: "QueuesJoined", Agent: "Sara", Queues: []string{}}},
		{"logged off without conversation", ev("_conversation_id", "", "_agent_name", "Sara", "_event_name", "Agent-LoggedOff"),
			pega.Event{Kind: pega.AgentLoggedOff, Name: "Agent-LoggedOff", Agent: "Sara"}},
		{"null values are empty", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "_source", "raw:null"),
			pega.Event{Kind: pega.Offered, Name: "Offered", Conversation: "c1", Agent: "Sara"}},
		{"to-agent differing only in case", ev("_conversation_id", "c1", "_agent_name", "sarah", "_event_name", "Transfer-To-Agent-Accepted", "_transferred_to_agent", "Sarah"),
			pega.Event{Kind: pega.TransferToAgentAccepted, Name: "Transfer-To-Agent-Accepted", Conversation: "c1", Agent: "sarah", TransferredToAgent: "Sarah"}},
		{"extension fields kept", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Agent-Declined", "TransferReason", "busy", "ts", "raw:1733130000"),
			pega.Event{Kind: pega.AgentDeclined, Name: "Agent-Declined", Conversation: "c1", Agent: "Sara",
				Extra: map[string]json.RawMessage{"TransferReason": json.RawMessage(`"busy"`), "ts": json.RawMessage(`1733130000`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pega.DecodeEvent(tt.body)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// badInputs are bodies each decoder must refuse, with the field the error
// names ("" for the body as a whole) and a piece of its message.
type badInput struct {
	name    string
	body    []byte
	field   string
	message string
}

var badEvents = []badInput{
	{"empty body", []byte(""), "", "empty"},
	{"malformed JSON", []byte(`{"_agent_name":"Sara",`), "", "not valid JSON"},
	{"broken value", []byte(`{"_agent_name":"Sara" "x"}`), "", "not valid JSON"},
	{"an array", []byte(`[{"_agent_name":"Sara"}]`), "", "must be a JSON object"},
	{"a string", []byte(`"hello"`), "", "must be a JSON object"},
	{"two values", []byte(`{"_agent_name":"Sara","_event_name":"QueuesJoined"}{}`), "", "more after the JSON object"},
	{"agent a number", ev("_agent_name ", "raw:5", "_event_name", "QueuesJoined"), "_agent_name ", "must be a string, not a number"},
	{"event an object", ev("_agent_name", "Sara", "_ event_name", "raw:{}"), "_ event_name", "must be a string, not an object"},
	{"queue an array", ev("_agent_name", "Sara", "_event_name", "QueuesJoined", "_queue_name", `raw:["Billing"]`), "_queue_name", "must be a string, not an array"},
	{"priority-like boolean elsewhere", ev("_agent_name", "Sara", "_event_name", "QueuesJoined", "_source", "raw:true"), "_source", "must be a string, not a boolean"},
	{"agent missing", ev("_conversation_id", "c1", "_event_name", "Offered"), "_agent_name", "is required"},
	{"agent empty", ev("_conversation_id", "c1", "_agent_name ", " ", "_event_name", "Offered"), "_agent_name ", "must not be empty"},
	{"event missing", ev("_conversation_id", "c1", "_agent_name", "Sara"), "_event_name", "is required"},
	{"event empty", ev("_conversation_id", "c1", "_agent_name", "Sara", "_ event_name", ""), "_ event_name", "must not be empty"},
	{"unknown event", ev("_conversation_id", "c1", "_agent_name", "Sara", "_ event_name", "Agent-Teleported"), "_ event_name", `"Agent-Teleported" is not a routing event`},
	{"conversation missing", ev("_agent_name", "Sara", "_event_name", "Offered"), "_conversation_id", "is required"},
	{"conversation empty", ev("_conversation_id", "", "_agent_name", "Sara", "_event_name", "Conversation-Ended"), "_conversation_id", "must not be empty"},
	{"transfer target missing", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "TransferredtoAgent", "_transferred_to_agent", ""), "_transferred_to_agent", "must not be empty"},
	{"two agents under two spellings", ev("_conversation_id", "c1", "_agent_name", "Sara", "_agent_name ", "Laura", "_event_name", "Offered"), "_agent_name ", `is "Laura" but "_agent_name", the same field, is "Sara"`},
	{"one key twice", ev("_conversation_id", "c1", "_agent_name", "Sara", "_agent_name", "Laura", "_event_name", "Offered"), "_agent_name", "the same field"},
	{"two events", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "_ event_name", "Agent-Accepted"), "_ event_name", "the same field"},
	{"two transfer targets", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "TransferredtoAgent", "_transferred_to_agent", "Laura", "TransferToAgentID", "Maya"), "TransferToAgentID", "the same field"},
	{"two from-queues, one misspelt", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Conversation-Ended", "_transferred_from_queue", "Billing", "_transferred_afrom_queue", "Technical"), "_transferred_afrom_queue", "the same field"},
	{"extension key twice", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "Reason", "a", "Reason", "b"), "Reason", "given twice"},
	{"answering CSR is not the target", ev("_conversation_id", "c1", "_agent_name", "Laura", "_event_name", "Transfer-To-Queue-Accepted", "_transferred_to_agent", "Maya"), "_transferred_to_agent", "which CSR is meant"},
	{"agent with ..", ev("_agent_name", "sara..lee@pegasystems.com", "_event_name", "QueuesJoined"), "_agent_name", `".."`},
	{"agent with a space", ev("_agent_name", "Sara Lee", "_event_name", "QueuesJoined"), "_agent_name", `holds " "`},
	{"agent starting with a dot", ev("_agent_name", ".sara", "_event_name", "QueuesJoined"), "_agent_name", "must start with a letter or a digit"},
	{"agent not ASCII", ev("_agent_name", "Sára", "_event_name", "QueuesJoined"), "_agent_name", `holds "á"`},
	{"agent too long", ev("_agent_name", strings.Repeat("a", 129), "_event_name", "QueuesJoined"), "_agent_name", "more than 128"},
	{"conversation with a slash", ev("_conversation_id", "c1/x", "_agent_name", "Sara", "_event_name", "Offered"), "_conversation_id", `holds "/"`},
	{"bad queue in the list", ev("_agent_name", "Sara", "_event_name", "QueuesJoined", "_queue_name ", ";Billing;Tech nical;"), "_queue_name ", `queue "Tech nical"`},
	{"bad queue", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "_queue_name", "Billing;Technical"), "_queue_name", `holds ";"`},
	{"bad transfer agent", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "TransferFromAgentID", "lara:x"), "TransferFromAgentID", `holds ":"`},
	{"bad source", ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", "Offered", "_source", "chat\x00"), "_source", `holds "\x00"`},
}

var badRoutes = []badInput{
	{"empty body", []byte("  "), "", "empty"},
	{"malformed JSON", []byte(`{"_conversation_id":}`), "", "not valid JSON"},
	{"not an object", []byte(`null`), "", "must be a JSON object"},
	{"conversation missing", []byte(`{"_queue_name":"Billing","_source":"chat","_priority_queuing":"true"}`), "_conversation_id", "is required"},
	{"queue missing", []byte(`{"_conversation_id":"c1","_source":"chat","_priority_queuing":"true"}`), "_queue_name", "is required"},
	{"queue empty", []byte(`{"_conversation_id":"c1","_queue_name ":"","_source":"chat","_priority_queuing":"true"}`), "_queue_name ", "must not be empty"},
	{"source missing", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_priority_queuing":"true"}`), "_source", "is required"},
	{"priority missing", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat"}`), "_priority_queuing", "is required"},
	{"priority unclear", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":"maybe"}`), "_priority_queuing", `is "maybe"`},
	{"priority a number", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_priority_queuing":1}`), "_priority_queuing", "must be a string, not a number"},
	{"conversation a number", []byte(`{"_conversation_id":42,"_queue_name":"Billing","_source":"chat","_priority_queuing":"true"}`), "_conversation_id", "must be a string"},
	{"bad conversation", []byte(`{"_conversation_id":"c1%2F","_queue_name":"Billing","_source":"chat","_priority_queuing":"true"}`), "_conversation_id", `holds "%"`},
	{"bad preferred agent", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_source":"chat","_preferred_agent":"lara#x","_priority_queuing":"true"}`), "_preferred_agent", `holds "#"`},
	{"two queues", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_queue_name ":"Technical","_source":"chat","_priority_queuing":"true"}`), "_queue_name ", "the same field"},
	{"bad queue", []byte(`{"_conversation_id":"c1","_queue_name":"-Billing","_source":"chat","_priority_queuing":"true"}`), "_queue_name", "must start with a letter"},
	{"source with two spaces", []byte(`{"_conversation_id":"c1","_queue_name":"Billing","_source":"Web  chat","_priority_queuing":"true"}`), "_source", "two spaces"},
}

func TestDecodeEventRefuses(t *testing.T) {
	for _, tt := range badEvents {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pega.DecodeEvent(tt.body)
			assertInvalid(t, err, tt.field, tt.message)
		})
	}
}

func TestDecodeRouteRequestRefuses(t *testing.T) {
	for _, tt := range badRoutes {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pega.DecodeRouteRequest(tt.body)
			assertInvalid(t, err, tt.field, tt.message)
		})
	}
}

func assertInvalid(tb testing.TB, err error, field, message string) {
	tb.Helper()
	var e *crmsync.Error
	require.True(tb, errors.As(err, &e), "want a *crmsync.Error, got %v", err)
	assert.Equal(tb, crmsync.EINVALID, e.Code)
	assert.Equal(tb, field, e.Field)
	assert.Contains(tb, e.Message, message)
}

func TestKinds(t *testing.T) {
	kinds := pega.Kinds()
	require.Len(t, kinds, 20)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			// The table name decodes to its own kind.
			got, err := pega.DecodeEvent(ev("_conversation_id", "c1", "_agent_name", "Sara", "_event_name", k.String(),
				"_transferred_to_agent", "Sara"))
			require.NoError(t, err)
			assert.Equal(t, k, got.Kind)
			text, err := k.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, k.String(), string(text))
		})
	}
	_, err := pega.Kind(0).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "Kind(99)", pega.Kind(99).String())
}

func TestValidateID(t *testing.T) {
	good := []string{"sara@pegasystems.com", "Sarah", "sarah", bot19, "3bc1c3b45ea911ea88f277fee9bcd8c0",
		"a", "9", "first.last+tag@example.co.uk", "queue-1_b", strings.Repeat("x", 128)}
	for _, id := range good {
		assert.NoError(t, pega.ValidateID(id), id)
	}
	bad := map[string]string{
		"":                       "must not be empty",
		strings.Repeat("x", 129): "more than 128",
		"_sara":                  "must start with a letter or a digit",
		"@sara":                  "must start with a letter or a digit",
		"sara..x":                `".."`,
		"sara x":                 `holds " "`,
		"sara/x":                 `holds "/"`,
		"sara:x":                 `holds ":"`,
		"sara{x}":                `holds "{"`,
		"sara\nx":                `holds "\n"`,
		"sára":                   `holds "á"`,
		"s\xffx":                 `holds "\xff"`,
	}
	for id, msg := range bad {
		err := pega.ValidateID(id)
		if assert.Error(t, err, "%q", id) {
			assert.Contains(t, err.Error(), msg, "%q", id)
		}
	}
}

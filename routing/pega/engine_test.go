package pega_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/pega"
)

// Agents and conversations of the spec's examples.
const (
	saraMail  = "sara@pegasystems.com"
	sarahMail = "sarah@pegasystems.com"
	sarah     = "Sarah"
	laura     = "Laura"
)

// state describes conversations ("c1") and agents ("@Sarah") in one line
// each.
func (f *engineFixture) state(ids ...string) map[string]string {
	f.tb.Helper()
	out := map[string]string{}
	for _, id := range ids {
		if a, ok := strings.CutPrefix(id, "@"); ok {
			out[id] = f.agentLine(a)
		} else {
			out[id] = f.convLine(id)
		}
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Setups of the spec's examples: the engine in the state each example
// presumes.

// heldBy: queues Billing and Technical, agent holds conv in Billing.
func heldBy(conv, agent string) func(f *engineFixture) {
	return func(f *engineFixture) {
		f.queue("Billing")
		f.queue("Technical")
		f.agent(agent, "Billing")
		f.held(conv, "Billing", agent)
	}
}

// offeredTo: queue Billing, conv offered to agent.
func offeredTo(conv, agent string) func(f *engineFixture) {
	return func(f *engineFixture) {
		f.queue("Billing")
		f.agent(agent, "Billing")
		f.offered(conv, "Billing", agent)
	}
}

// xferAgent: from holds conv in Billing and transfers it to the agent to
// (in Technical).
func xferAgent(conv, from, to string) func(f *engineFixture) {
	return func(f *engineFixture) {
		heldBy(conv, from)(f)
		f.agent(to, "Technical")
		require.NoError(f.tb, f.e.TransferToAgent(f.ctx, conv, from, to))
	}
}

// xferQueue: sarah@ holds conv in Billing and transfers it to Technical,
// where Laura is offered it.
func xferQueue(conv string) func(f *engineFixture) {
	return func(f *engineFixture) {
		heldBy(conv, sarahMail)(f)
		f.agent(laura, "Technical")
		require.NoError(f.tb, f.e.TransferToQueue(f.ctx, conv, sarahMail, "Technical"))
		require.Equal(f.tb, laura, f.getConv(conv).OfferedTo)
	}
}

// TestEngineRouterSpecEvents posts every routing event example of the
// spec, verbatim, to the endpoint backed by a real engine in the state the
// example presumes, then reads the engine back: the conversation's and
// the agents' states, and the outbox. Each is then posted again: a repeat
// answers Success and changes nothing.
func TestEngineRouterSpecEvents(t *testing.T) {
	const (
		c03 = "BotAgenta3256c9e885f48819dade129c245f2c9_1426819"
		c04 = "f04439e85ea411ea9c3583173b58cc69"
		c05 = "BotAgenta3256c9e885f48819dade129c245f2c9_1449198"
		c06 = "84c5e3e85ed011ea8bddc75183dd79c8"
		c07 = "4aea63d05df211ea96270b756ec8016c"
		c08 = "8sdf21r12df211ea96270b756ec2091s"
		c09 = "2awe23f04df312ea96230b756ec1786d"
		c10 = "4beb27s06ed2013a43270b756ec6210c"
		c12 = "a9affee25e1611eaae862f3fa01a2a93"
		c13 = "724f0bb25dfa11eaaf242fbec29fb4c5"
		c14 = "781e788e5d5011eaa0b93f49ea39efd3"
		c16 = "3656a4345eaa11ea9f11571826868be0"
		c17 = "3bc1c3b45ea911ea88f277fee9bcd8c0"
		c18 = "c8f9cbfa5d4b11eaae27dbc8263ea31f"
		c19 = "486bd29a5ddb11ea8fe5e72406874e0e"
		c22 = "3b00aab05eab11eaba2b9b6b99bd5233"
		c23 = "3fhl14e04wr514ea96140b756ec3290b"
		c24 = "b3f24b585eac11eaa746b7b5cb19d100"
		c25 = "c9f880e65eae11ea8fa4ab34045c802b"
		c27 = "BotAgenta3256c9e885f48819dade129c245f2c9_1427039"
	)
	type tc struct {
		setup  func(f *engineFixture)
		after  map[string]string // "conv" or "@agent": its line
		outbox []string
		check  func(t *testing.T, f *engineFixture)
	}
	endedHeld := func(conv string) tc {
		return tc{
			setup:  heldBy(conv, sarahMail),
			after:  map[string]string{conv: "ended " + sarahMail + " @Billing", "@" + sarahMail: "available chat 0/1 [Billing]"},
			outbox: []string{"ended " + conv + " " + sarahMail + " ended"},
		}
	}
	cancelledOffer := func(conv string) tc {
		return tc{
			setup:  offeredTo(conv, sarahMail),
			after:  map[string]string{conv: "cancelled @Billing", "@" + sarahMail: "available chat 0/1 [Billing]"},
			outbox: []string{"cancelled " + conv + " " + sarahMail + " customer_left"},
		}
	}
	queueAnswered := func(conv, outcome string) tc {
		return tc{
			setup: xferQueue(conv),
			after: map[string]string{
				conv:            "assigned " + sarahMail + " xfer q:Technical waiting 1 @Billing",
				"@" + sarahMail: "available chat 1/1 [Billing]",
				"@" + laura:     "available chat 0/1 [Technical]",
			},
			outbox: []string{"transfer_" + outcome + " " + conv + " " + laura},
		}
	}
	agentAnswered := func(conv, outcome string) tc {
		return tc{
			setup: xferAgent(conv, sarahMail, laura),
			after: map[string]string{
				conv:            "assigned " + sarahMail + " @Billing",
				"@" + sarahMail: "available chat 1/1 [Billing]",
				"@" + laura:     "available chat 0/1 [Technical]",
			},
			outbox: []string{"transfer_" + outcome + " " + conv + " " + laura},
		}
	}
	tests := map[string]tc{
		"01-queues-joined.json": {
			setup: func(f *engineFixture) { f.queue("Billing"); f.queue("Technical") },
			after: map[string]string{"@" + saraMail: "available chat 0/1 [Billing Technical]"},
		},
		"02-queues-joined-empty.json": {
			setup: func(f *engineFixture) {
				f.queue("Billing")
				f.agent(saraMail, "Billing")
				require.NoError(t, f.e.SetPresence(f.ctx, saraMail, routing.Away))
			},
			after: map[string]string{"@" + saraMail: "available chat 0/1 []"},
		},
		"03-offered.json": {
			setup: offeredTo(c03, sarah),
			after: map[string]string{c03: "offered Sarah @Billing", "@Sarah": "available chat 1/1 [Billing]"},
		},
		"04-agent-accepted.json": {
			setup:  offeredTo(c04, sarahMail),
			after:  map[string]string{c04: "assigned " + sarahMail + " @Billing", "@" + sarahMail: "available chat 1/1 [Billing]"},
			outbox: []string{"accepted " + c04 + " " + sarahMail},
		},
		"05-agent-declined.json": {
			setup:  offeredTo(c05, sarah),
			after:  map[string]string{c05: "waiting 1 @Billing", "@Sarah": "available chat 0/1 [Billing]"},
			outbox: []string{"declined " + c05 + " Sarah"},
		},
		"06-expired.json": {
			setup:  offeredTo(c06, sarah),
			after:  map[string]string{c06: "waiting 1 @Billing", "@Sarah": "available chat 0/1 [Billing]"},
			outbox: []string{"expired " + c06 + " Sarah"},
		},
		"07-conversation-ended-before-csr.json":  cancelledOffer(c07),
		"08-conversation-ended-tab-closed.json":  cancelledOffer(c08),
		"09-conversation-ended-wrap-up.json":     endedHeld(c09),
		"10-conversation-ended-by-csr.json":      endedHeld(c10),
		"11-conversation-ended-by-customer.json": endedHeld(c07),
		"12-agent-logged-off.json": {
			setup:  heldBy(c12, sarahMail),
			after:  map[string]string{c12: "waiting 1 @Billing", "@" + sarahMail: "offline chat 0/1 [Billing]"},
			outbox: []string{"requeued " + c12 + " " + sarahMail + " logged_off", "logged_off - " + sarahMail},
		},
		"13-transfer-to-agent-initiated.json": {
			setup: func(f *engineFixture) { heldBy(c13, sarahMail)(f); f.agent(laura, "Technical") },
			after: map[string]string{
				c13:         "assigned " + sarahMail + " xfer Laura offered Laura @Billing",
				"@" + laura: "available chat 1/1 [Technical]",
			},
			outbox: []string{"transfer_initiated " + c13 + " " + sarahMail, "offered " + c13 + " Laura"},
		},
		"14-transfer-to-agent-accepted.json": {
			setup: xferAgent(c14, sarahMail, laura),
			after: map[string]string{
				c14:             "assigned Laura @Billing",
				"@" + sarahMail: "available chat 0/1 [Billing]",
				"@" + laura:     "available chat 1/1 [Technical]",
			},
			outbox: []string{"transferred " + c14 + " Laura"},
		},
		// Pega names the holder in _agent_name and the declining CSR in
		// _transferred_from_agent here; the engine's open offer tells.
		"15-transfer-to-agent-declined.json": agentAnswered(c14, "declined"),
		"16-transfer-to-agent-expired.json":  agentAnswered(c16, "expired"),
		"17-transfer-to-agent-abandoned.json": {
			setup: xferAgent(c17, sarahMail, laura),
			after: map[string]string{
				c17:             "ended " + sarahMail + " @Billing",
				"@" + sarahMail: "available chat 0/1 [Billing]",
				"@" + laura:     "available chat 0/1 [Technical]",
			},
			outbox: []string{"transfer_abandoned " + c17 + " Laura customer_left", "ended " + c17 + " " + sarahMail + " customer_left"},
		},
		// The example names no target queue: the _queue_name is taken.
		"18-transfer-to-queue-initiated.json": {
			setup: func(f *engineFixture) { heldBy(c18, sarahMail)(f); f.agent(laura, "Billing") },
			after: map[string]string{
				c18:         "assigned " + sarahMail + " xfer q:Billing offered Laura @Billing",
				"@" + laura: "available chat 1/1 [Billing]",
			},
			outbox: []string{"transfer_initiated " + c18 + " " + sarahMail, "offered " + c18 + " Laura"},
		},
		"19-transfer-to-queue-accepted.json": {
			setup: xferQueue(c19),
			after: map[string]string{
				c19:             "assigned Laura @Technical",
				"@" + sarahMail: "available chat 0/1 [Billing]",
				"@" + laura:     "available chat 1/1 [Technical]",
			},
			outbox: []string{"transferred " + c19 + " Laura"},
		},
		"20-transfer-to-queue-declined.json": queueAnswered(c19, "declined"),
		"21-transfer-to-queue-expired.json":  queueAnswered(c19, "expired"),
		"22-transfer-to-queue-abandoned.json": {
			setup: xferQueue(c22),
			after: map[string]string{
				c22:             "ended " + sarahMail + " @Billing",
				"@" + sarahMail: "available chat 0/1 [Billing]",
				"@" + laura:     "available chat 0/1 [Technical]",
			},
			outbox: []string{"transfer_abandoned " + c22 + " Laura customer_left", "ended " + c22 + " " + sarahMail + " customer_left"},
		},
		"23-customer-network-disconnected.json": endedHeld(c23),
		"24-customer-abandoned.json":            endedHeld(c24),
		"25-agent-network-disconnect.json":      endedHeld(c25),
		"26-agent-browser-close.json":           endedHeld(c25),
		// The CSR closed the interaction (ended); the customer wrote again.
		"27-long-running-interaction.json": {
			setup: func(f *engineFixture) {
				heldBy(c27, sarah)(f)
				require.NoError(t, f.e.End(f.ctx, c27))
			},
			after:  map[string]string{c27: "offered Sarah @Billing", "@Sarah": "available chat 1/1 [Billing]"},
			outbox: []string{"offered " + c27 + " Sarah"},
			check: func(t *testing.T, f *engineFixture) {
				c := f.getConv(c27)
				assert.Equal(t, sarah, c.PreferredAgent)
				assert.Equal(t, pega.SourceName, c.Source)
				assert.Equal(t, map[string]string{pega.AttrSource: "Facebook"}, c.Attributes)
			},
		},
		// Sarah is in the conversation's cooldown after requeuing it.
		"28-requeuing.json": {
			setup:  heldBy(c27, sarah),
			after:  map[string]string{c27: "waiting 1 @Billing", "@Sarah": "available chat 0/1 [Billing]"},
			outbox: []string{"requeued " + c27 + " Sarah requeue"},
		},
		// To the head of the line, ahead of o2 that waited longer; Sarah,
		// in its cooldown, takes o1.
		"29-priority-requeuing.json": {
			setup: func(f *engineFixture) {
				heldBy(c27, sarah)(f)
				f.conv("o1", "Billing")
				f.conv("o2", "Billing")
			},
			after:  map[string]string{c27: "waiting 1 @Billing", "o1": "offered Sarah @Billing", "o2": "waiting 2 @Billing"},
			outbox: []string{"requeued " + c27 + " Sarah priority_requeue", "offered o1 Sarah"},
		},
		"request.json": {
			setup: xferAgent(c17, "lara@pegasystems.com", "Sara"),
			after: map[string]string{
				c17:                     "assigned Sara @Billing",
				"@lara@pegasystems.com": "available chat 0/1 [Billing]",
				"@Sara":                 "available chat 1/1 [Technical]",
			},
			outbox: []string{"transferred " + c17 + " Sara"},
		},
	}
	files := eventExamples(t)
	require.Len(t, files, len(tests), "a case for every example")
	success := string(example(t, "events/response.json"))
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			tt, ok := tests[name]
			require.True(t, ok, "no case for %s", name)
			f := newEngineFixture(t, pega.EngineConfig{})
			tt.setup(f)
			f.outbox()
			body := example(t, filepath.Join("events", name))

			a := f.event(body)
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.JSONEq(t, success, a.Raw)
			assert.Equal(t, tt.after, f.state(keys(tt.after)...))
			assert.Equal(t, tt.outbox, f.outbox())
			if tt.check != nil {
				tt.check(t, f)
			}

			before := f.dump()
			a = f.event(body)
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.JSONEq(t, success, a.Raw, "a repeat is done")
			assert.Equal(t, before, f.dump(), "a repeat changes nothing")
			assert.Empty(t, f.logs.String())
		})
	}
}

// TestEngineRouterSpecRoute posts the spec's route request, verbatim: a
// free CSR is offered it at once, so the answer is the spec's example
// answer, with no wait and no position; the request again answers the
// same, and changes nothing.
func TestEngineRouterSpecRoute(t *testing.T) {
	const conv = "3bc1c3b45ea911ea88f277fee9bcd8c0"
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.agent(saraMail, "Billing")
	f.outbox()
	want := string(example(t, "route/response.json"))

	a := f.route(example(t, "route/request.json"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.JSONEq(t, want, a.Raw)
	c := f.getConv(conv)
	assert.Equal(t, routing.StateOffered, c.State)
	assert.Equal(t, saraMail, c.OfferedTo)
	assert.Equal(t, "Billing", c.Queue)
	assert.Equal(t, "chat", c.Channel)
	assert.True(t, c.Priority)
	assert.Empty(t, c.PreferredAgent)
	assert.Equal(t, pega.SourceName, c.Source)
	assert.Equal(t, map[string]string{pega.AttrSource: "Facebook"}, c.Attributes)
	assert.Equal(t, []string{"offered " + conv + " " + saraMail}, f.outbox())

	before := f.dump()
	a = f.route(example(t, "route/request.json"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.JSONEq(t, want, a.Raw)
	assert.Equal(t, before, f.dump())
}

// routeBody is a route request for conv in queue; kv adds keys or
// replaces the defaults.
func routeBody(conv, queue string, kv ...string) []byte {
	return ev(merge([]string{"_conversation_id", conv, "_queue_name", queue, "_source", "chat", "_priority_queuing", "false"}, kv)...)
}

// eventBody is a routing event of name for conv and agent; kv adds keys
// or replaces the defaults.
func eventBody(name, conv, agent string, kv ...string) []byte {
	return ev(merge([]string{"_event_name", name, "_conversation_id", conv, "_agent_name", agent, "_source", "chat"}, kv)...)
}

// merge sets each key of kv in base, in place or at the end.
func merge(base, kv []string) []string {
	out := slices.Clone(base)
next:
	for i := 0; i+1 < len(kv); i += 2 {
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == kv[i] {
				out[j+1] = kv[i+1]
				continue next
			}
		}
		out = append(out, kv[i], kv[i+1])
	}
	return out
}

// TestEngineRouterConversation takes one conversation through the
// endpoints from the route request to its end: waiting with a position,
// offered to A, declined, offered to B, accepted, transferred to a queue
// where C takes it, ended.
func TestEngineRouterConversation(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.queue("Technical")
	success := func(body []byte) {
		t.Helper()
		a := f.event(body)
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
		require.JSONEq(t, `{"_status":"Success"}`, a.Raw)
	}

	// No CSR yet: the conversation waits, first in line.
	a := f.route(routeBody("c1", "Billing"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.JSONEq(t, `{"_status":"_identifying_route","_wait_time":"","_queue_position":"1"}`, a.Raw)
	assert.Equal(t, []string{"queued c1 -"}, f.outbox())
	f.clock.Advance(time.Second)

	// A logs in to Billing and is offered it at once; B and C log in.
	success(eventBody("QueuesJoined", "", "A", "_queue_name", "Billing"))
	assert.Equal(t, []string{"offered c1 A"}, f.outbox())
	assert.Equal(t, map[string]string{"c1": "offered A @Billing", "@A": "available chat 1/1 [Billing]"}, f.state("c1", "@A"))
	f.clock.Advance(time.Second)
	success(eventBody("QueuesJoined", "", "B", "_queue_name", "Billing"))
	success(eventBody("QueuesJoined", "", "C", "_queue_name", "Technical"))
	assert.Empty(t, f.outbox())

	// A sees it and declines: B is offered it.
	success(eventBody("Offered", "c1", "A", "_queue_name", "Billing"))
	assert.Empty(t, f.outbox())
	success(eventBody("Agent-Declined", "c1", "A", "_queue_name", "Billing"))
	assert.Equal(t, []string{"declined c1 A", "offered c1 B"}, f.outbox())
	assert.Equal(t, map[string]string{
		"c1": "offered B @Billing", "@A": "available chat 0/1 [Billing]", "@B": "available chat 1/1 [Billing]",
	}, f.state("c1", "@A", "@B"))

	// B sees it and accepts.
	success(eventBody("Offered", "c1", "B", "_queue_name", "Billing"))
	f.clock.Advance(time.Second)
	success(eventBody("Agent-Accepted", "c1", "B", "_queue_name", "Billing"))
	assert.Equal(t, []string{"accepted c1 B"}, f.outbox())
	assert.Equal(t, map[string]string{"c1": "assigned B @Billing", "@B": "available chat 1/1 [Billing]"}, f.state("c1", "@B"))

	// B transfers it to Technical, where C is offered it and accepts.
	success(eventBody("Transfer-To-Queue-Initiated", "c1", "B", "_queue_name", "Billing",
		"_transferred_from_agent", "B", "_transferred_from_queue", "Billing", "_transferred_to_queue", "Technical"))
	assert.Equal(t, []string{"transfer_initiated c1 B", "offered c1 C"}, f.outbox())
	assert.Equal(t, map[string]string{
		"c1": "assigned B xfer q:Technical offered C @Billing", "@B": "available chat 1/1 [Billing]", "@C": "available chat 1/1 [Technical]",
	}, f.state("c1", "@B", "@C"))
	success(eventBody("Transfer-To-Queue-Accepted", "c1", "C", "_queue_name", "Technical",
		"_transferred_from_agent", "B", "_transferred_to_agent", "C", "_transferred_from_queue", "Billing", "_transferred_to_queue", "Technical"))
	assert.Equal(t, []string{"transferred c1 C"}, f.outbox())
	assert.Equal(t, map[string]string{
		"c1": "assigned C @Technical", "@B": "available chat 0/1 [Billing]", "@C": "available chat 1/1 [Technical]",
	}, f.state("c1", "@B", "@C"))

	// It ends: every CSR's capacity is free again.
	success(eventBody("Conversation-Ended", "c1", "C", "_queue_name", "Technical"))
	assert.Equal(t, []string{"ended c1 C ended"}, f.outbox())
	assert.Equal(t, map[string]string{
		"c1": "ended C @Technical",
		"@A": "available chat 0/1 [Billing]", "@B": "available chat 0/1 [Billing]", "@C": "available chat 0/1 [Technical]",
	}, f.state("c1", "@A", "@B", "@C"))
	assert.Empty(t, f.logs.String())
}

// TestEngineRouterRouteAnswers: positions, priority, the wait estimate
// once the queue has seen an assignment, a repeat's current state, and the
// queues that answer route_not_found.
func TestEngineRouterRouteAnswers(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.queue("Voice", "voice")
	route := func(body []byte) string {
		t.Helper()
		a := f.route(body)
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
		return fmt.Sprintf("%s wait=%q pos=%q", a.Body["_status"], a.Body["_wait_time"], a.Body["_queue_position"])
	}
	assert.Equal(t, `_identifying_route wait="" pos="1"`, route(routeBody("r1", "Billing")))
	assert.Equal(t, `_identifying_route wait="" pos="2"`, route(routeBody("r2", "Billing")))
	assert.Equal(t, `_identifying_route wait="" pos="1"`, route(routeBody("r3", "Billing", "_priority_queuing", "true")),
		"a priority conversation goes ahead")
	assert.Equal(t, `_identifying_route wait="" pos="2"`, route(routeBody("r1", "Billing")), "a repeat answers the current state")

	// A CSR takes r3 after 20 s: the queue now has a wait estimate.
	f.clock.Advance(20 * time.Second)
	require.Equal(t, http.StatusOK, f.event(eventBody("QueuesJoined", "", "A", "_queue_name", "Billing")).Status)
	require.Equal(t, "offered A @Billing", f.convLine("r3"))
	require.Equal(t, http.StatusOK, f.event(eventBody("Agent-Accepted", "r3", "A")).Status)
	assert.Equal(t, `_identifying_route wait="20" pos="3"`, route(routeBody("r4", "Billing")))
	assert.Equal(t, `_identifying_route wait="" pos=""`, route(routeBody("r3", "Billing")), "held already")

	for _, tt := range []struct{ name, queue, reason string }{
		{"unknown queue", "Nope", "_queue_name: queue Nope does not exist"},
		{"queue without chat", "Voice", "_queue_name: queue Voice does not serve channel chat"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			a := f.route(routeBody("r9", tt.queue))
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.Equal(t, "route_not_found", a.Body["_status"])
			assert.Equal(t, tt.reason, a.Body["_reason"])
			assert.Equal(t, before, f.dump(), "nothing changed")
		})
	}
}

// TestEngineRouterAttributes: Pega's _source and its extension fields
// travel with the conversation, within the engine's limits.
func TestEngineRouterAttributes(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	long := strings.Repeat("x", 5000)
	a := f.route(routeBody("c1", "Billing", "_source", "Apple Business Chat",
		"CustomerName", "Ann Lee", "policy", `raw:{"no":42}`, "note", "two\nlines", "blank", "raw:null",
		"pega_source", "spoof", "long", long))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.Equal(t, map[string]string{
		pega.AttrSource: "Apple Business Chat",
		"CustomerName":  "Ann Lee",
		"policy":        `{"no":42}`,
		"note":          `"two\nlines"`,
	}, f.getConv("c1").Attributes)
}

// TestEngineRouterQueuesJoined: a new CSR gets the configured capacity, a
// known one keeps its own; the queues become exactly those listed, and
// the CSR available.
func TestEngineRouterQueuesJoined(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{Capacity: map[string]int{"chat": 2, "voice": 1}})
	f.queue("Billing")
	f.queue("Technical")
	join := func(agent, queues string) {
		t.Helper()
		a := f.event(eventBody("QueuesJoined", "", agent, "_queue_name", queues))
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
		require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
	}
	join("new", "Billing;Technical")
	n := f.getAgent("new")
	assert.Equal(t, map[string]int{"chat": 2, "voice": 1}, n.Capacity)
	assert.Equal(t, []string{"Billing", "Technical"}, n.Queues)
	assert.Equal(t, routing.Available, n.Presence)

	require.NoError(t, f.e.PutAgent(f.ctx, routing.AgentSpec{ID: "known", Capacity: map[string]int{"chat": 5}, Queues: []string{"Billing"}, Presence: routing.Away}))
	join("known", ";Technical;")
	k := f.getAgent("known")
	assert.Equal(t, map[string]int{"chat": 5}, k.Capacity, "a known CSR keeps its capacity")
	assert.Equal(t, []string{"Technical"}, k.Queues)
	assert.Equal(t, routing.Available, k.Presence)

	join("known", "")
	assert.Equal(t, "available chat 0/5 []", f.agentLine("known"))
}

// TestEngineRouterCreatesQueues: with UnknownQueueCreate, the queues Pega
// names are made on the way, serving the configured channel.
func TestEngineRouterCreatesQueues(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{Channel: "messaging", UnknownQueues: pega.UnknownQueueCreate})
	a := f.event(eventBody("QueuesJoined", "", "A", "_queue_name", "Support;Sales"))
	require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
	assert.Equal(t, []string{"Sales", "Support"}, f.getAgent("A").Queues)
	assert.Equal(t, map[string]int{"messaging": 1}, f.getAgent("A").Capacity)

	a = f.route(routeBody("c1", "Returns"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.Equal(t, "_identifying_route", a.Body["_status"])
	q, err := f.e.GetQueue(f.ctx, "Returns")
	require.NoError(t, err)
	assert.Equal(t, []string{"messaging"}, q.Channels)
	assert.Equal(t, "messaging", f.getConv("c1").Channel)

	a = f.route(routeBody("c2", "Sales"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.Equal(t, "offered A @Sales", f.convLine("c2"))
	a = f.event(eventBody("Agent-Accepted", "c2", "A"))
	require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
	a = f.event(eventBody("Transfer-To-Queue-Initiated", "c2", "A", "_transferred_to_queue", "Escalations"))
	require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
	assert.Equal(t, "assigned A xfer q:Escalations waiting 1 @Sales", f.convLine("c2"))
}

// TestEngineRouterRefusals: what the engine's state does not allow is a
// Fail that names the field as Pega spells it, and changes nothing.
func TestEngineRouterRefusals(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.queue("Technical")
	f.agent(sarahMail, "Billing")
	f.held("c1", "Billing", sarahMail)
	f.agent(laura, "Technical")
	require.NoError(t, f.e.SetPresence(f.ctx, laura, routing.Away))
	f.conv("c3", "Billing")
	require.NoError(t, f.e.End(f.ctx, "c3"))
	f.outbox()

	tests := []struct {
		name   string
		body   []byte
		reason string
	}{
		{"accept of an unknown conversation", eventBody("Agent-Accepted", "nope", sarahMail),
			"_conversation_id: conversation nope does not exist"},
		{"accept by a CSR it was not offered to", eventBody("Agent-Accepted", "c1", laura),
			"_agent_name: conversation c1 is not offered to agent Laura"},
		{"decline of a held conversation", eventBody("Agent-Declined", "c1", sarahMail),
			"_agent_name: conversation c1 is not offered to agent " + sarahMail},
		{"offered to a CSR without the offer", eventBody("Offered", "c1", laura),
			"_agent_name: conversation c1 is not offered to agent Laura (it is assigned)"},
		{"unknown queue joined", eventBody("QueuesJoined", "", "newbie", "_queue_name", "Billing;Nope"),
			"_queue_name: queue Nope does not exist"},
		{"transfer to a CSR who is away", eventBody("TransferredtoAgent", "c1", sarahMail, "_transferred_to_agent", laura),
			"_transferred_to_agent: agent Laura is away"},
		{"transfer to an unknown queue", eventBody("Transfer-To-Queue-Initiated", "c1", sarahMail, "_transferred_to_queue", "Nope"),
			"_transferred_to_queue: queue Nope does not exist"},
		{"transfer by a CSR who does not hold it", eventBody("Transfer-To-Queue-Initiated", "c1", laura, "_transferred_to_queue", "Technical"),
			"_agent_name: conversation c1 is not held by agent Laura"},
		{"transfer answer without a transfer", eventBody("Transfer-To-Agent-Accepted", "c1", laura),
			"_agent_name: conversation c1 is not offered to agent Laura"},
		{"requeue of an ended conversation", eventBody("Requeuing", "c3", sarahMail),
			"_conversation_id: conversation c3 is ended"},
		{"end of an unknown conversation", eventBody("Conversation-Ended", "nope", sarahMail),
			"_conversation_id: conversation nope does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			a := f.event(tt.body)
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.Equal(t, "Fail", a.Body["_status"])
			assert.Equal(t, tt.reason, a.Body["_reason"])
			assert.Equal(t, before, f.dump(), "nothing changed")
		})
	}

	t.Run("resume with no queue known", func(t *testing.T) {
		before := f.dump()
		a := f.event(eventBody("LongRunning-Interaction", "gone", sarahMail))
		require.Equal(t, http.StatusBadRequest, a.Status, "%s", a.Raw)
		assert.Equal(t, "_queue_name", a.ErrField())
		assert.Contains(t, a.ErrMessage(), "conversation gone")
		assert.Equal(t, before, f.dump())
	})
	assert.Empty(t, f.logs.String(), "refusals are not our faults")
}

// TestEngineRouterDoneAlready: events whose outcome holds already answer
// Success and write nothing.
func TestEngineRouterDoneAlready(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.agent(sarahMail, "Billing")
	f.held("c1", "Billing", sarahMail)
	f.outbox()
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"log off of a CSR never seen", eventBody("Agent-LoggedOff", "", "stranger")},
		{"resume of a conversation its CSR holds", eventBody("LongRunning-Interaction", "c1", sarahMail, "_queue_name", "Billing")},
		{"offered after the accept", eventBody("Offered", "c1", sarahMail)},
		{"accept again", eventBody("Agent-Accepted", "c1", sarahMail)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			a := f.event(tt.body)
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
			assert.Equal(t, before, f.dump())
		})
	}

	t.Run("log off twice", func(t *testing.T) {
		a := f.event(eventBody("Agent-LoggedOff", "c1", sarahMail))
		require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
		require.Equal(t, "offline chat 0/1 [Billing]", f.agentLine(sarahMail))
		before := f.dump()
		a = f.event(eventBody("Agent-LoggedOff", "c1", sarahMail))
		require.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
		assert.Equal(t, before, f.dump())
	})
}

// TestEngineRouterUnavailable: a Redis that cannot be reached is a 503,
// logged, for both endpoints.
func TestEngineRouterUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	e, err := routing.New(rdb, routing.Config{Prefix: "t:{routing}:"})
	require.NoError(t, err)
	ts := serveRouter(t, pega.NewEngineRouter(e, pega.EngineConfig{}))

	a := ts.post(t, pega.RoutePath, routeBody("c1", "Billing"))
	assert.Equal(t, http.StatusServiceUnavailable, a.Status, "%s", a.Raw)
	a = ts.post(t, pega.EventsPath, eventBody("Agent-Accepted", "c1", "A"))
	assert.Equal(t, http.StatusServiceUnavailable, a.Status, "%s", a.Raw)
	assert.Equal(t, "Fail", a.Body["_status"])
	assert.Contains(t, ts.logs.String(), "routing unavailable")
	assert.NotContains(t, ts.logs.String(), testToken)
}

// TestEngineRouterMisconfigured: a config that does not validate fails
// every call as our fault (500, logged), never as Pega's.
func TestEngineRouterMisconfigured(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	ts := serveRouter(t, pega.NewEngineRouter(f.e, pega.EngineConfig{Channel: "web chat"}))
	a := ts.post(t, pega.RoutePath, routeBody("c1", "Billing"))
	assert.Equal(t, http.StatusInternalServerError, a.Status, "%s", a.Raw)
	a = ts.post(t, pega.EventsPath, eventBody("QueuesJoined", "", "A", "_queue_name", "Billing"))
	assert.Equal(t, http.StatusInternalServerError, a.Status, "%s", a.Raw)
	assert.Contains(t, ts.logs.String(), "engine router config")
	assert.Empty(t, f.dump(), "nothing written")
}

// serveRouter is the endpoints over r on a real HTTP server.
func serveRouter(tb testing.TB, r pega.Router) *testServer {
	tb.Helper()
	ts := &testServer{logs: &logtest.Buffer{}}
	s, err := pega.New(r, pega.Config{
		BearerTokens: []crmsync.Secret{testToken},
		Logger:       slog.New(slog.NewTextHandler(ts.logs, nil)),
	})
	require.NoError(tb, err)
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(hs.Close)
	ts.URL = hs.URL
	return ts
}

func TestEngineConfig(t *testing.T) {
	r := pega.NewEngineRouter(nil, pega.EngineConfig{})
	assert.Equal(t, pega.EngineConfig{Channel: "chat", UnknownQueues: pega.UnknownQueueNotFound, Capacity: map[string]int{"chat": 1}},
		r.Config(), "the defaults")

	tests := []struct {
		name  string
		cfg   pega.EngineConfig
		field string
	}{
		{"zero", pega.EngineConfig{}, ""},
		{"all set", pega.EngineConfig{Channel: "messaging", UnknownQueues: pega.UnknownQueueCreate,
			Capacity: map[string]int{"messaging": 3, "voice": 0}}, ""},
		{"bad channel", pega.EngineConfig{Channel: "web chat"}, "channel"},
		{"bad policy", pega.EngineConfig{UnknownQueues: "ignore"}, "unknown_queues"},
		{"negative capacity", pega.EngineConfig{Capacity: map[string]int{"chat": -1}}, "capacity.chat"},
		{"bad capacity channel", pega.EngineConfig{Capacity: map[string]int{"chat": 1, "a b": 1}}, "capacity"},
		{"no capacity on the channel", pega.EngineConfig{Capacity: map[string]int{"voice": 1}}, "capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tt.field, e.Field)
		})
	}
}

// TestEngineRouterPreferredAgent: _preferred_agent gets the conversation
// before a CSR idle for longer.
func TestEngineRouterPreferredAgent(t *testing.T) {
	f := newEngineFixture(t, pega.EngineConfig{})
	f.queue("Billing")
	f.agent("A", "Billing")
	f.agent("B", "Billing")
	a := f.route(routeBody("c1", "Billing", "_preferred_agent", "B"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.Equal(t, "offered B @Billing", f.convLine("c1"))
	assert.Equal(t, "B", f.getConv("c1").PreferredAgent)
	a = f.route(routeBody("c2", "Billing"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	assert.Equal(t, "offered A @Billing", f.convLine("c2"), "without a preference, the longest idle")
}

// TestEngineRouterTransferNames: whichever of its fields Pega names the
// CSRs in, the transfer reaches the engine as meant, and a repeat after
// the fact is done.
func TestEngineRouterTransferNames(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *engineFixture)
		body  []byte
		after string
	}{
		{"initiated, the target in _agent_name and the holder in the from field",
			func(f *engineFixture) { heldBy("c1", sarahMail)(f); f.agent(laura, "Technical") },
			eventBody("TransferredtoAgent", "c1", laura, "_transferred_from_agent", sarahMail, "_transferred_to_agent", laura),
			"assigned " + sarahMail + " xfer Laura offered Laura @Billing"},
		{"initiated again after the target took it",
			func(f *engineFixture) {
				xferAgent("c1", sarahMail, laura)(f)
				require.NoError(t, f.e.Accept(f.ctx, "c1", laura))
			},
			eventBody("TransferredtoAgent", "c1", sarahMail, "_transferred_to_agent", laura),
			"assigned Laura @Billing"},
		{"declined, the decliner in _agent_name",
			xferAgent("c1", sarahMail, laura),
			eventBody("Transfer-To-Agent-Declined", "c1", laura, "_transferred_from_agent", sarahMail),
			"assigned " + sarahMail + " @Billing"},
		{"expired, the holder in _agent_name and the CSR in the from field",
			xferQueue("c1"),
			eventBody("Transfer-To-Queue-Expired", "c1", sarahMail, "_transferred_to_agent", sarahMail, "_transferred_from_agent", laura),
			"assigned " + sarahMail + " xfer q:Technical waiting 1 @Billing"},
		{"to a queue named only in _queue_name",
			func(f *engineFixture) { heldBy("c1", sarahMail)(f); f.agent(laura, "Technical") },
			eventBody("Transfer-To-Queue-Initiated", "c1", sarahMail, "_queue_name", "Technical"),
			"assigned " + sarahMail + " xfer q:Technical offered Laura @Billing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEngineFixture(t, pega.EngineConfig{})
			tt.setup(f)
			a := f.event(tt.body)
			require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
			assert.Equal(t, "Success", a.Body["_status"], "%s", a.Raw)
			assert.Equal(t, tt.after, f.convLine("c1"))
		})
	}
}

package pega

import (
	"strings"
	"unicode"
)

// This file is the one place where what Pega really sends is mapped onto
// the protocol's names. Pega's own examples carry slips (keys with stray
// spaces, a misspelt key, keys from another naming scheme, event names that
// differ from its event table or in case), and real traffic looks like
// them. Every rule below absorbs a slip seen in the vendor's examples; a new
// slip seen in the field gets a line here, with its comment, and nowhere
// else.
//
// Three steps, in order:
//
//  1. Keys are compared in canonical form: every whitespace character
//     removed and ASCII letters lowered. That absorbs "_agent_name ",
//     "_ event_name", "_queue_name ", "_transferred_to_queue " (examples)
//     and "_ transferred_to_agent" (the request table), and any other key
//     that gets the same treatment. The canonical form is then looked up in
//     routeKeys or eventKeys, which also list the misspelt keys.
//  2. String values are trimmed of surrounding whitespace (" LongRunning-
//     Interaction" in the examples; ids never hold spaces).
//  3. Event names are compared in canonical form: whitespace, '-' and '_'
//     removed and letters lowered ("Transfer-to-agent-accepted" and
//     "Transfer-To-Agent-Accepted" are one event), then looked up in
//     eventNames, which also lists the names Pega sends instead of the
//     table's.
//
// Anything that still does not match is left to the caller: an unknown key
// is kept as an extra attribute (Pega's extension points add fields such as
// a customer name), an unknown event name is refused.

// field is a protocol field, whatever spelling carried it.
type field int

const (
	fConversation field = iota + 1
	fQueue
	fSource
	fPreferredAgent
	fPriority
	fAgent
	fEventName
	fFromAgent
	fToAgent
	fFromQueue
	fToQueue
)

// fieldName is each field's name as the protocol's tables spell it; errors
// about a missing field use it.
var fieldName = map[field]string{
	fConversation:   "_conversation_id",
	fQueue:          "_queue_name",
	fSource:         "_source",
	fPreferredAgent: "_preferred_agent",
	fPriority:       "_priority_queuing",
	fAgent:          "_agent_name",
	fEventName:      "_event_name",
	fFromAgent:      "_transferred_from_agent",
	fToAgent:        "_transferred_to_agent",
	fFromQueue:      "_transferred_from_queue",
	fToQueue:        "_transferred_to_queue",
}

// routeKeys are the keys of the route request (cyFetchExternalRoute), in
// canonical form. Its one example has no slips.
var routeKeys = map[string]field{
	"_conversation_id":  fConversation,
	"_queue_name":       fQueue,
	"_source":           fSource,
	"_preferred_agent":  fPreferredAgent,
	"_priority_queuing": fPriority,
}

// eventKeys are the keys of the routing events (cyPostRoutingEvents), in
// canonical form.
var eventKeys = map[string]field{
	"_conversation_id":        fConversation,
	"_agent_name":             fAgent,
	"_event_name":             fEventName,
	"_queue_name":             fQueue,
	"_source":                 fSource,
	"_transferred_from_agent": fFromAgent,
	"_transferred_to_agent":   fToAgent,
	"_transferred_from_queue": fFromQueue,
	"_transferred_to_queue":   fToQueue,

	// The second Conversation-Ended example (customer closes the
	// interaction tab) spells the key with a stray "a".
	"_transferred_afrom_queue": fFromQueue,
	// The Transfer-To-Queue-Initiated example uses these two keys, from
	// another naming scheme, instead of the _transferred_* ones (and sends
	// no queue keys at all).
	"transferfromagentid": fFromAgent,
	"transfertoagentid":   fToAgent,
}

// eventNames maps event names, in canonical form, to their Kind.
var eventNames = map[string]Kind{
	// The table says QueueJoined, both examples send QueuesJoined.
	"queuesjoined": QueuesJoined,
	"queuejoined":  QueuesJoined,

	"offered":       Offered,
	"agentaccepted": AgentAccepted,
	"agentdeclined": AgentDeclined,

	"expired": Expired,
	// The Expired example sends ValidatePublish.
	"validatepublish": Expired,

	"conversationended": ConversationEnded,
	// The negative cases' table names the agent-side scenarios
	// Agent-NeworkDisconnect (sic) and Agent-BrowserClose; their examples
	// send Conversation-Ended. Taken as that, should Pega send the
	// scenario's name.
	"agentneworkdisconnect": ConversationEnded,
	"agentbrowserclose":     ConversationEnded,

	"agentloggedoff": AgentLoggedOff,

	"transfertoagentinitiated": TransferToAgentInitiated,
	// The Transfer-To-Agent-Initiated example sends TransferredtoAgent.
	"transferredtoagent": TransferToAgentInitiated,
	// The Transfer-To-Agent-Accepted request example sends
	// "Transfer-to-agent-accepted"; case folding absorbs it.
	"transfertoagentaccepted":  TransferToAgentAccepted,
	"transfertoagentdeclined":  TransferToAgentDeclined,
	"transfertoagentexpired":   TransferToAgentExpired,
	"transfertoagentabandoned": TransferToAgentAbandoned,

	"transfertoqueueinitiated": TransferToQueueInitiated,
	"transfertoqueueaccepted":  TransferToQueueAccepted,
	"transfertoqueuedeclined":  TransferToQueueDeclined,
	"transfertoqueueexpired":   TransferToQueueExpired,
	"transfertoqueueabandoned": TransferToQueueAbandoned,

	// The example sends " LongRunning-Interaction"; trimming absorbs the
	// leading space.
	"longrunninginteraction": LongRunningInteraction,

	"requeuing":         Requeuing,
	"priorityrequeuing": PriorityRequeuing,
}

// canonicalKey is a JSON key with whitespace removed and ASCII letters
// lowered (step 1).
func canonicalKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return -1
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, k)
}

// normalizeValue is step 2.
func normalizeValue(v string) string { return strings.TrimSpace(v) }

// canonicalEvent is an event name with whitespace, '-' and '_' removed and
// ASCII letters lowered (step 3).
func canonicalEvent(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), r == '-', r == '_':
			return -1
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, name)
}

// lookupEvent finds the Kind of an event name as Pega sent it.
func lookupEvent(name string) (Kind, bool) {
	k, ok := eventNames[canonicalEvent(name)]
	return k, ok
}

// parsePriority reads _priority_queuing. The spec gives priority when the
// value is "true"; the example sends the string. "false", an empty string
// and JSON booleans are taken too; anything else is neither yes nor no and
// is refused.
func parsePriority(s string) (priority, ok bool) {
	switch strings.ToLower(normalizeValue(s)) {
	case "true":
		return true, true
	case "false", "":
		return false, true
	}
	return false, false
}

// splitQueues reads QueuesJoined's _queue_name: ids separated by ';', with
// empty items (";Billing;;Technical;" in the example) skipped and repeats
// dropped. An empty list means the CSR is logged in but available in no
// queue.
func splitQueues(s string) []string {
	out := []string{}
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ";") {
		item = normalizeValue(item)
		if item == "" || seen[item] {
			continue
		}
		seen[item] = true
		out = append(out, item)
	}
	return out
}

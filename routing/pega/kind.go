package pega

import "fmt"

// Kind is a routing event's meaning, whatever name Pega sent it under.
type Kind int

// The events of cyPostRoutingEvents. The zero Kind is no event.
const (
	// QueuesJoined: the CSR logged in and is available in the queues of
	// Event.Queues; an empty list means logged in but unavailable.
	QueuesJoined Kind = iota + 1
	// Offered: the conversation pops up for the CSR the router chose.
	Offered
	// AgentAccepted: the CSR accepted the offer.
	AgentAccepted
	// AgentDeclined: the CSR declined the offer.
	AgentDeclined
	// Expired: the offer timed out without an answer.
	Expired
	// ConversationEnded: the customer or the CSR ended the conversation,
	// or either side's connection or browser went away.
	ConversationEnded
	// AgentLoggedOff: the CSR logged off.
	AgentLoggedOff

	TransferToAgentInitiated
	TransferToAgentAccepted
	TransferToAgentDeclined
	TransferToAgentExpired
	TransferToAgentAbandoned

	TransferToQueueInitiated
	TransferToQueueAccepted
	TransferToQueueDeclined
	TransferToQueueExpired
	TransferToQueueAbandoned

	// LongRunningInteraction: the CSR closed an asynchronous conversation
	// but the customer wrote again.
	LongRunningInteraction
	// Requeuing: the conversation goes back to its queue.
	Requeuing
	// PriorityRequeuing: the conversation goes back to the head of its
	// queue.
	PriorityRequeuing

	kindEnd // one past the last Kind
)

// kindNames are the names of the protocol's event tables.
var kindNames = [...]string{
	QueuesJoined:             "QueuesJoined",
	Offered:                  "Offered",
	AgentAccepted:            "Agent-Accepted",
	AgentDeclined:            "Agent-Declined",
	Expired:                  "Expired",
	ConversationEnded:        "Conversation-Ended",
	AgentLoggedOff:           "Agent-LoggedOff",
	TransferToAgentInitiated: "Transfer-To-Agent-Initiated",
	TransferToAgentAccepted:  "Transfer-To-Agent-Accepted",
	TransferToAgentDeclined:  "Transfer-To-Agent-Declined",
	TransferToAgentExpired:   "Transfer-To-Agent-Expired",
	TransferToAgentAbandoned: "Transfer-To-Agent-Abandoned",
	TransferToQueueInitiated: "Transfer-To-Queue-Initiated",
	TransferToQueueAccepted:  "Transfer-To-Queue-Accepted",
	TransferToQueueDeclined:  "Transfer-To-Queue-Declined",
	TransferToQueueExpired:   "Transfer-To-Queue-Expired",
	TransferToQueueAbandoned: "Transfer-To-Queue-Abandoned",
	LongRunningInteraction:   "LongRunning-Interaction",
	Requeuing:                "Requeuing",
	PriorityRequeuing:        "Priority-Requeuing",
}

// Kinds lists every Kind, in declaration order.
func Kinds() []Kind {
	out := make([]Kind, 0, kindEnd-1)
	for k := QueuesJoined; k < kindEnd; k++ {
		out = append(out, k)
	}
	return out
}

// String is the event's name in the protocol's tables.
func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText writes the table name, so a Kind reads well in JSON and logs.
func (k Kind) MarshalText() ([]byte, error) {
	if k <= 0 || k >= kindEnd {
		return nil, fmt.Errorf("pega: no such event kind %d", int(k))
	}
	return []byte(kindNames[k]), nil
}

// transfer tells a transfer event's target and stage; ok is false for the
// other kinds.
func (k Kind) transfer() (TransferTarget, TransferStage, bool) {
	switch {
	case k >= TransferToAgentInitiated && k <= TransferToAgentAbandoned:
		return TargetAgent, TransferStage(k-TransferToAgentInitiated) + StageInitiated, true
	case k >= TransferToQueueInitiated && k <= TransferToQueueAbandoned:
		return TargetQueue, TransferStage(k-TransferToQueueInitiated) + StageInitiated, true
	}
	return 0, 0, false
}

package pega

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Router is what the endpoints need from the routing engine, one method
// per kind of action. The package comment's table says which Pega event
// calls which method.
//
// Errors tell the endpoints what to answer; give them a *crmsync.Error
// code: ECONFLICT when the engine's state does not allow the action (the
// offer is no longer open, the conversation is held by someone else) and
// ENOTFOUND when it does not know the conversation, agent or queue; both
// answer an event with Fail. EINVALID is a value the engine refuses (400),
// EUNAVAILABLE a dependency that is down (503). Any other error is a fault
// of ours (500, logged).
//
// Pega may send an event again; the engine should take a repeat of what it
// already did as done, not as a conflict.
type Router interface {
	// Route takes a new conversation into a queue (cyFetchExternalRoute)
	// and looks for a CSR. Once one is found the engine tells Pega through
	// PostRoutingEvents (connectors/pega). A request for a conversation the
	// engine already routes answers its current state. ENOTFOUND (an
	// unknown queue) answers route_not_found.
	Route(ctx context.Context, req RouteRequest) (RouteResult, error)

	// SetQueues sets the queues a CSR is available in (QueuesJoined),
	// replacing the previous set. An empty list means logged in but
	// available in no queue.
	SetQueues(ctx context.Context, p Presence) error

	// Offer reports what became of an offer the engine made: shown to the
	// CSR, accepted, declined, or expired. On a decline or an expiry the
	// engine routes the conversation again.
	Offer(ctx context.Context, o Offer) error

	// End closes a conversation, whoever ended it; the CSR's capacity is
	// freed.
	End(ctx context.Context, r Ref) error

	// LogOff takes a CSR out of every queue. Ref.Conversation, when given,
	// is the conversation the CSR held; the engine decides what becomes of
	// the rest of the CSR's conversations.
	LogOff(ctx context.Context, r Ref) error

	// Transfer reports a stage of a transfer to a CSR or to a queue.
	Transfer(ctx context.Context, t Transfer) error

	// Requeue puts a conversation back in its queue, at the head when
	// Priority is set.
	Requeue(ctx context.Context, q Requeue) error

	// Resume routes a long-running (asynchronous) conversation again: the
	// CSR closed the interaction and the customer wrote again. Ref.Agent is
	// the CSR who had it, the natural preferred agent.
	Resume(ctx context.Context, r Ref) error
}

// RouteResult is the engine's answer to a route request.
type RouteResult struct {
	// Identifying is true when the engine took the conversation and is
	// looking for a CSR (_identifying_route); false answers route_not_found
	// (no CSR can take it).
	Identifying bool
	// WaitTime is the expected wait, when HasWaitTime; sent as whole
	// seconds.
	WaitTime    time.Duration
	HasWaitTime bool
	// QueuePosition is the conversation's place in its queue, from 1; 0
	// means unknown.
	QueuePosition int
}

// Ref says which conversation and CSR an event is about. Fields Pega left
// empty are "".
type Ref struct {
	Conversation string
	Agent        string
	Queue        string
	Source       string // the channel, as in RouteRequest.Source
	// Extra holds the keys the protocol does not define, as sent.
	Extra map[string]json.RawMessage
}

// Presence is a CSR's queue membership.
type Presence struct {
	Agent  string
	Queues []string // empty: logged in, available in no queue
	Extra  map[string]json.RawMessage
}

// OfferOutcome is what became of an offer.
type OfferOutcome int

const (
	OfferShown    OfferOutcome = iota + 1 // Offered: the CSR sees the pop-up
	OfferAccepted                         // Agent-Accepted
	OfferDeclined                         // Agent-Declined
	OfferExpired                          // Expired (sent as ValidatePublish)
)

func (o OfferOutcome) String() string {
	switch o {
	case OfferShown:
		return "shown"
	case OfferAccepted:
		return "accepted"
	case OfferDeclined:
		return "declined"
	case OfferExpired:
		return "expired"
	}
	return fmt.Sprintf("OfferOutcome(%d)", int(o))
}

// Offer is news of an offer: Ref.Agent is the CSR it was made to.
type Offer struct {
	Ref
	Outcome OfferOutcome
}

// TransferTarget is where a transfer goes.
type TransferTarget int

const (
	TargetAgent TransferTarget = iota + 1 // Transfer-To-Agent-*
	TargetQueue                           // Transfer-To-Queue-*
)

func (t TransferTarget) String() string {
	switch t {
	case TargetAgent:
		return "agent"
	case TargetQueue:
		return "queue"
	}
	return fmt.Sprintf("TransferTarget(%d)", int(t))
}

// TransferStage is how far a transfer got.
type TransferStage int

const (
	// StageInitiated: a CSR started the transfer. Ref.Agent is that CSR.
	StageInitiated TransferStage = iota + 1
	// StageAccepted: the receiving CSR accepted it. Ref.Agent is that CSR,
	// here and in the stages below.
	StageAccepted
	// StageDeclined: the receiving CSR declined it.
	StageDeclined
	// StageExpired: the receiving CSR did not answer in time.
	StageExpired
	// StageAbandoned: the customer left before the receiving CSR answered.
	StageAbandoned
)

func (s TransferStage) String() string {
	switch s {
	case StageInitiated:
		return "initiated"
	case StageAccepted:
		return "accepted"
	case StageDeclined:
		return "declined"
	case StageExpired:
		return "expired"
	case StageAbandoned:
		return "abandoned"
	}
	return fmt.Sprintf("TransferStage(%d)", int(s))
}

// Transfer is news of a transfer. FromAgent, ToAgent, FromQueue and ToQueue
// are the _transferred_* fields as Pega sent them, "" when empty. ToAgent is
// always set for an initiated transfer to a CSR. ToQueue may be "" even for
// a transfer to a queue: Pega's Transfer-To-Queue-Initiated example names
// no queue, and the accepting event that follows does.
type Transfer struct {
	Ref
	Target    TransferTarget
	Stage     TransferStage
	FromAgent string
	ToAgent   string
	FromQueue string
	ToQueue   string
}

// Requeue asks for a conversation to go back to its queue.
type Requeue struct {
	Ref
	Priority bool // Priority-Requeuing: to the head of the queue
}

// Apply hands a decoded event to r: the one place where Pega's events meet
// the engine's operations (the package comment's table).
func Apply(ctx context.Context, r Router, ev Event) error {
	ref := Ref{
		Conversation: ev.Conversation,
		Agent:        ev.Agent,
		Queue:        ev.Queue,
		Source:       ev.Source,
		Extra:        ev.Extra,
	}
	if target, stage, ok := ev.Kind.transfer(); ok {
		return r.Transfer(ctx, Transfer{
			Ref:       ref,
			Target:    target,
			Stage:     stage,
			FromAgent: ev.TransferredFromAgent,
			ToAgent:   ev.TransferredToAgent,
			FromQueue: ev.TransferredFromQueue,
			ToQueue:   ev.TransferredToQueue,
		})
	}
	switch ev.Kind {
	case QueuesJoined:
		queues := ev.Queues
		if queues == nil {
			queues = []string{}
		}
		return r.SetQueues(ctx, Presence{Agent: ev.Agent, Queues: queues, Extra: ev.Extra})
	case Offered:
		return r.Offer(ctx, Offer{Ref: ref, Outcome: OfferShown})
	case AgentAccepted:
		return r.Offer(ctx, Offer{Ref: ref, Outcome: OfferAccepted})
	case AgentDeclined:
		return r.Offer(ctx, Offer{Ref: ref, Outcome: OfferDeclined})
	case Expired:
		return r.Offer(ctx, Offer{Ref: ref, Outcome: OfferExpired})
	case ConversationEnded:
		return r.End(ctx, ref)
	case AgentLoggedOff:
		return r.LogOff(ctx, ref)
	case Requeuing:
		return r.Requeue(ctx, Requeue{Ref: ref})
	case PriorityRequeuing:
		return r.Requeue(ctx, Requeue{Ref: ref, Priority: true})
	case LongRunningInteraction:
		return r.Resume(ctx, ref)
	}
	return fmt.Errorf("pega: apply: event kind %v has no router call", ev.Kind)
}

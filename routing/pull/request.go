package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/crmsync/crmsync"
)

// State is where a request stands.
type State string

// The four states of a request.
const (
	StateUnread   State = "UNREAD"   // no agent has joined yet
	StateActive   State = "ACTIVE"   // at least one agent is in it
	StateInactive State = "INACTIVE" // agents joined, and all of them left without closing it
	StateClosed   State = "CLOSED"   // closed; gone from the List
)

// Event types written to the agents' streams.
const (
	EventListRequest     = "List_Request"
	EventListUpdate      = "List_Update"
	EventAgentJoined     = "Agent_Joined"
	EventAgentLeft       = "Agent_Left"
	EventCustomerMessage = "Customer_Message"
)

// NewRequest is a customer conversation to put on a List.
type NewRequest struct {
	// ID is the conversation's id; publishing it again is harmless.
	ID string `json:"id"`
	// List takes the request. PublishChannel finds it from Channel.
	List string `json:"list"`
	// Channel the conversation came in on.
	Channel string `json:"channel"`
	// Session is the crmsync session (call-123, chat-456), when known.
	Session string `json:"session"`
	// Attributes travel with the request to whoever reads it.
	Attributes map[string]string `json:"attributes"`
}

func (n *NewRequest) check(byChannel bool) error {
	if err := checkID("id", n.ID); err != nil {
		return err
	}
	if !byChannel || n.List != "" {
		if err := checkID("list", n.List); err != nil {
			return err
		}
	}
	if byChannel || n.Channel != "" {
		if err := checkID("channel", n.Channel); err != nil {
			return err
		}
	}
	if n.Session != "" {
		if _, err := crmsync.ParseSessionKey(n.Session); err != nil {
			return err
		}
	}
	if len(n.Attributes) > maxAttributes {
		return crmsync.Errorf(crmsync.EINVALID, "attributes", "has %d entries, more than %d", len(n.Attributes), maxAttributes)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Attributes)) {
		if k == "" {
			return crmsync.Errorf(crmsync.EINVALID, "attributes", "a key is empty")
		}
		if err := checkText("attributes", k, maxAttrKeyLen); err != nil {
			return crmsync.Errorf(crmsync.EINVALID, "attributes", "a key %s", err.(*crmsync.Error).Message)
		}
		if err := checkText("attributes."+k, n.Attributes[k], maxAttrValueLen); err != nil {
			return err
		}
	}
	return nil
}

// Request is a conversation on a List, as read.
type Request struct {
	ID         string            `json:"id"`
	List       string            `json:"list"`
	Channel    string            `json:"channel,omitempty"`
	Session    string            `json:"session,omitempty"`
	Attributes map[string]string `json:"attributes"`
	State      State             `json:"state"`
	// Agents are in the conversation now, by id; for a closed request,
	// the ones that were in it when it closed.
	Agents []string `json:"agents"`
	// Seq is the List's seq of the request's latest change.
	Seq       int64     `json:"seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ClosedAt and ClosedBy are set once closed; ClosedBy is empty when
	// the system closed it.
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	ClosedBy string     `json:"closed_by,omitempty"`
}

// requestFields is how many values the script gives per request.
const requestFields = 12

func parseRequest(v []any) (*Request, error) {
	if len(v) < requestFields {
		return nil, fmt.Errorf("pull: malformed request from the script")
	}
	r := &Request{
		ID: str(v[0]), List: str(v[1]), Channel: str(v[2]), Session: str(v[3]),
		State: State(str(v[5])), CreatedAt: msTime(str(v[6])), UpdatedAt: msTime(str(v[7])),
		ClosedBy: str(v[9]), Seq: num(v[10]), Agents: split(str(v[11])),
	}
	if err := json.Unmarshal([]byte(str(v[4])), &r.Attributes); err != nil {
		return nil, fmt.Errorf("pull: request %s: attributes: %w", r.ID, err)
	}
	if r.Attributes == nil {
		r.Attributes = map[string]string{}
	}
	if t := msTime(str(v[8])); !t.IsZero() {
		r.ClosedAt = &t
	}
	return r, nil
}

// request runs a request operation: the script answers a flag (did it
// change anything) and the request.
func (s *Store) request(ctx context.Context, op string, args ...any) (*Request, bool, error) {
	v, err := s.run(ctx, op, args...)
	if err != nil {
		return nil, false, err
	}
	if len(v) != 1+requestFields {
		return nil, false, fmt.Errorf("pull: %s: malformed answer from the script", op)
	}
	r, err := parseRequest(v[1:])
	if err != nil {
		return nil, false, err
	}
	return r, num(v[0]) > 0, nil
}

// Publish puts a new request on n.List, UNREAD, and tells the List's
// subscribers (List_Request). Publishing an id that is already open on
// that List returns it unchanged and tells no one again; an id open on
// another List, or closed (until Config.ClosedTTL drops it), is
// ECONFLICT (field id). ENOTFOUND (field list) when the List does not
// exist.
func (s *Store) Publish(ctx context.Context, n NewRequest) (*Request, error) {
	r, _, err := s.publish(ctx, n, false)
	return r, err
}

// PublishChannel is Publish onto the List that n.Channel publishes to;
// ENOTFOUND (field channel) when no List takes it. n.List may be empty;
// when set it must be that List (EINVALID otherwise).
func (s *Store) PublishChannel(ctx context.Context, n NewRequest) (*Request, error) {
	r, _, err := s.publish(ctx, n, true)
	return r, err
}

func (s *Store) publish(ctx context.Context, n NewRequest, byChannel bool) (*Request, bool, error) {
	if err := n.check(byChannel); err != nil {
		return nil, false, err
	}
	attrs := n.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	j, err := json.Marshal(attrs)
	if err != nil {
		return nil, false, fmt.Errorf("pull: publish: %w", err)
	}
	flag := "0"
	if byChannel {
		flag = "1"
	}
	return s.request(ctx, "publish", n.ID, n.List, n.Channel, n.Session, string(j), flag)
}

// Message records that the customer wrote in request id. What follows
// depends on the state: ACTIVE tells the agents in it
// (Customer_Message); UNREAD and INACTIVE tell no one, the request being
// on the List already; CLOSED is ECONFLICT. Nothing about the request
// changes.
func (s *Store) Message(ctx context.Context, id string) (*Request, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	r, _, err := s.request(ctx, "message", id)
	return r, err
}

// Join puts agent in request id, which becomes ACTIVE. Several agents
// may be in one request. Joining again changes nothing and tells no one;
// a CLOSED request is ECONFLICT, a missing one ENOTFOUND.
func (s *Store) Join(ctx context.Context, id, agent string) (*Request, error) {
	r, _, err := s.agentOp(ctx, "join", id, agent)
	return r, err
}

// Leave takes agent out of request id; when it was the last one in, the
// request becomes INACTIVE. An agent that never joined gets ECONFLICT
// (field agent); one that already left, or was in it when it closed,
// gets the request back unchanged.
func (s *Store) Leave(ctx context.Context, id, agent string) (*Request, error) {
	r, _, err := s.agentOp(ctx, "leave", id, agent)
	return r, err
}

func (s *Store) agentOp(ctx context.Context, op, id, agent string) (*Request, bool, error) {
	if err := checkID("id", id); err != nil {
		return nil, false, err
	}
	if err := checkID("agent", agent); err != nil {
		return nil, false, err
	}
	return s.request(ctx, op, id, agent)
}

// Close closes request id: it leaves its List, everyone concerned is
// told (List_Update, CLOSED), and it stays readable for
// Config.ClosedTTL. agent must be in the request (ECONFLICT otherwise);
// "" is the system, which may close any request. Closing again changes
// nothing.
func (s *Store) Close(ctx context.Context, id, agent string) (*Request, error) {
	r, _, err := s.close(ctx, id, agent)
	return r, err
}

func (s *Store) close(ctx context.Context, id, agent string) (*Request, bool, error) {
	if err := checkID("id", id); err != nil {
		return nil, false, err
	}
	if agent != "" {
		if err := checkID("agent", agent); err != nil {
			return nil, false, err
		}
	}
	return s.request(ctx, "close", id, agent)
}

// GetRequest reads request id; ENOTFOUND when there is none (or a closed
// one has expired).
func (s *Store) GetRequest(ctx context.Context, id string) (*Request, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	r, _, err := s.request(ctx, "get", id)
	return r, err
}

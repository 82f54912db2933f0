package pega

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/crmsync/crmsync"
)

// RouteRequest is what Pega sends to the "Callback URL for incoming Chat
// requests" (connector cyFetchExternalRoute): a conversation to route.
type RouteRequest struct {
	Conversation string // _conversation_id
	Queue        string // _queue_name
	// Source is _source: the chat or messaging channel's name ("chat",
	// "Facebook"). It may hold spaces; map it onto an engine channel before
	// using it in a key.
	Source string
	// PreferredAgent is _preferred_agent: the CSR who had the conversation
	// before, on an asynchronous channel; "" when none.
	PreferredAgent string
	Priority       bool // _priority_queuing is "true"
	// Extra holds the keys the protocol does not define, as sent (Pega's
	// cyParseConversationRequest extension adds details such as a
	// customer's name); nil when there are none.
	Extra map[string]json.RawMessage
}

// Event is what Pega sends to the "Callback URL for CSR-presence updates"
// (connector cyPostRoutingEvents), normalized.
type Event struct {
	Kind Kind
	// Name is _event_name as Pega sent it, trimmed ("ValidatePublish" for
	// an Expired).
	Name         string
	Conversation string // _conversation_id; "" only for QueuesJoined and Agent-LoggedOff
	Agent        string // _agent_name: the CSR the event is about
	// Queue is _queue_name; Queues holds it split instead for
	// QueuesJoined, where it is a ';'-separated list (empty: available in
	// no queue) and Queue is "".
	Queue  string
	Queues []string
	Source string // _source

	TransferredFromAgent string // _transferred_from_agent or TransferFromAgentID
	TransferredToAgent   string // _transferred_to_agent or TransferToAgentID
	TransferredFromQueue string // _transferred_from_queue
	TransferredToQueue   string // _transferred_to_queue

	// Extra holds the keys the protocol does not define, as sent (Pega's
	// cyParseEventsRequestExtn extension adds details such as a reason for
	// a transfer); nil when there are none.
	Extra map[string]json.RawMessage
}

// value is one field as read from the body.
type value struct {
	key string // the key as Pega spelled it
	raw json.RawMessage
	s   string // the normalized string
}

// object is a decoded body: the protocol's fields, and the rest.
type object struct {
	fields map[field]value
	extra  map[string]json.RawMessage
}

// decodeObject reads a JSON object, resolving each key through keys. A
// field given twice (under one spelling or two) must agree: an empty value
// gives way to a non-empty one, since Pega sends "" for "not given", but
// two different non-empty values are refused as ambiguous.
func decodeObject(body []byte, keys map[string]field) (*object, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, crmsync.Errorf(crmsync.EINVALID, "", "the body is empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, crmsync.Errorf(crmsync.EINVALID, "", "the body must be a JSON object, not %s", jsonKindOf(tok))
	}
	o := &object{fields: map[field]value{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		f, known := keys[canonicalKey(key)]
		if !known {
			if err := o.addExtra(key, raw); err != nil {
				return nil, err
			}
			continue
		}
		v, err := stringValue(f, key, raw)
		if err != nil {
			return nil, err
		}
		if err := o.add(f, v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, crmsync.Errorf(crmsync.EINVALID, "", "the body holds more after the JSON object")
	}
	return o, nil
}

func (o *object) add(f field, v value) error {
	old, dup := o.fields[f]
	switch {
	case !dup, old.s == "":
		o.fields[f] = v
	case v.s == "", v.s == old.s:
		// Agrees with, or adds nothing to, what came first.
	default:
		return crmsync.Errorf(crmsync.EINVALID, v.key, "is %q but %q, the same field, is %q: which one is meant is unclear", v.s, old.key, old.s)
	}
	return nil
}

func (o *object) addExtra(key string, raw json.RawMessage) error {
	if old, dup := o.extra[key]; dup {
		if !bytes.Equal(compact(old), compact(raw)) {
			return crmsync.Errorf(crmsync.EINVALID, key, "is given twice with different values")
		}
		return nil
	}
	if o.extra == nil {
		o.extra = map[string]json.RawMessage{}
	}
	o.extra[key] = compact(raw)
	return nil
}

// get returns a field's normalized value and the key it came under (the
// protocol's name when absent).
func (o *object) get(f field) (string, string, bool) {
	v, ok := o.fields[f]
	if !ok {
		return "", fieldName[f], false
	}
	return v.s, v.key, true
}

// required returns a field that must be present and not empty.
func (o *object) required(f field) (string, string, error) {
	s, key, ok := o.get(f)
	switch {
	case !ok:
		return "", key, crmsync.Errorf(crmsync.EINVALID, key, "is required")
	case s == "":
		return "", key, crmsync.Errorf(crmsync.EINVALID, key, "must not be empty")
	}
	return s, key, nil
}

// id returns an optional id field, checked when not empty.
func (o *object) id(f field) (string, error) {
	s, key, _ := o.get(f)
	if s == "" {
		return "", nil
	}
	if err := ValidateID(s); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, key, "%v", err)
	}
	return s, nil
}

// requiredID returns an id field that must be present.
func (o *object) requiredID(f field) (string, error) {
	s, key, err := o.required(f)
	if err != nil {
		return "", err
	}
	if err := ValidateID(s); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, key, "%v", err)
	}
	return s, nil
}

func (o *object) source(required bool) (string, error) {
	s, key, _ := o.get(fSource)
	if required {
		if _, _, err := o.required(fSource); err != nil {
			return "", err
		}
	}
	if s == "" {
		return "", nil
	}
	if err := validateSource(s); err != nil {
		return "", crmsync.Errorf(crmsync.EINVALID, key, "%v", err)
	}
	return s, nil
}

// stringValue reads a field's value: a JSON string, or null for "not
// given". _priority_queuing may also be a JSON boolean.
func stringValue(f field, key string, raw json.RawMessage) (value, error) {
	v := value{key: key, raw: raw}
	switch c := firstByte(raw); {
	case c == 'n':
		return v, nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return v, crmsync.Errorf(crmsync.EINVALID, key, "is not a valid JSON string")
		}
		v.s = normalizeValue(s)
		return v, nil
	case f == fPriority && (c == 't' || c == 'f'):
		v.s = string(raw)
		return v, nil
	}
	return v, crmsync.Errorf(crmsync.EINVALID, key, "must be a string, not %s", jsonKindOfRaw(raw))
}

// DecodeRouteRequest decodes and checks a route request body. An error is
// a *crmsync.Error (EINVALID) naming the field as Pega spelled it.
func DecodeRouteRequest(body []byte) (RouteRequest, error) {
	o, err := decodeObject(body, routeKeys)
	if err != nil {
		return RouteRequest{}, err
	}
	var req RouteRequest
	if req.Conversation, err = o.requiredID(fConversation); err != nil {
		return RouteRequest{}, err
	}
	if req.Queue, err = o.requiredID(fQueue); err != nil {
		return RouteRequest{}, err
	}
	if req.Source, err = o.source(true); err != nil {
		return RouteRequest{}, err
	}
	if req.PreferredAgent, err = o.id(fPreferredAgent); err != nil {
		return RouteRequest{}, err
	}
	p, key, ok := o.get(fPriority)
	if !ok {
		return RouteRequest{}, crmsync.Errorf(crmsync.EINVALID, key, `is required ("true" or "false")`)
	}
	if req.Priority, ok = parsePriority(p); !ok {
		return RouteRequest{}, crmsync.Errorf(crmsync.EINVALID, key, `is %q; want "true" or "false"`, p)
	}
	req.Extra = o.extra
	return req, nil
}

// DecodeEvent decodes and checks a routing event body. An error is a
// *crmsync.Error (EINVALID) naming the field as Pega spelled it.
//
// What each event needs: _agent_name and _event_name always;
// _conversation_id for all but QueuesJoined and Agent-LoggedOff;
// _transferred_to_agent for Transfer-To-Agent-Initiated. On the other
// transfer stages _agent_name is the CSR who answered the transfer, so a
// _transferred_to_agent naming someone else is refused as ambiguous. Every
// id given is checked, even where it is not needed.
func DecodeEvent(body []byte) (Event, error) {
	o, err := decodeObject(body, eventKeys)
	if err != nil {
		return Event{}, err
	}
	var ev Event
	name, nameKey, err := o.required(fEventName)
	if err != nil {
		return Event{}, err
	}
	kind, ok := lookupEvent(name)
	if !ok {
		return Event{}, crmsync.Errorf(crmsync.EINVALID, nameKey, "%q is not a routing event this service knows", name)
	}
	ev.Kind, ev.Name = kind, name

	if ev.Agent, err = o.requiredID(fAgent); err != nil {
		return Event{}, err
	}
	if kind == QueuesJoined || kind == AgentLoggedOff {
		ev.Conversation, err = o.id(fConversation)
	} else {
		ev.Conversation, err = o.requiredID(fConversation)
	}
	if err != nil {
		return Event{}, err
	}
	if kind == QueuesJoined {
		if ev.Queues, err = o.queueList(); err != nil {
			return Event{}, err
		}
	} else if ev.Queue, err = o.id(fQueue); err != nil {
		return Event{}, err
	}
	if ev.Source, err = o.source(false); err != nil {
		return Event{}, err
	}
	for _, t := range []struct {
		f   field
		dst *string
	}{
		{fFromAgent, &ev.TransferredFromAgent},
		{fToAgent, &ev.TransferredToAgent},
		{fFromQueue, &ev.TransferredFromQueue},
		{fToQueue, &ev.TransferredToQueue},
	} {
		if *t.dst, err = o.id(t.f); err != nil {
			return Event{}, err
		}
	}
	if target, stage, ok := kind.transfer(); ok {
		switch {
		case target == TargetAgent && stage == StageInitiated:
			if _, _, err := o.required(fToAgent); err != nil {
				return Event{}, err
			}
		case stage != StageInitiated && ev.TransferredToAgent != "" && !strings.EqualFold(ev.TransferredToAgent, ev.Agent):
			_, key, _ := o.get(fToAgent)
			_, agentKey, _ := o.get(fAgent)
			return Event{}, crmsync.Errorf(crmsync.EINVALID, key,
				"is %q but %q, the CSR answering the transfer, is %q: which CSR is meant is unclear",
				ev.TransferredToAgent, agentKey, ev.Agent)
		}
	}
	ev.Extra = o.extra
	return ev, nil
}

// queueList reads QueuesJoined's list of queues.
func (o *object) queueList() ([]string, error) {
	s, key, _ := o.get(fQueue)
	queues := splitQueues(s)
	for _, q := range queues {
		if err := ValidateID(q); err != nil {
			return nil, crmsync.Errorf(crmsync.EINVALID, key, "queue %q %v", q, err)
		}
	}
	return queues, nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return crmsync.Errorf(crmsync.EINVALID, "", "the body is not valid JSON at byte %d: %v", se.Offset, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return crmsync.Errorf(crmsync.EINVALID, "", "the body is not valid JSON: it ends too soon")
	}
	return crmsync.Errorf(crmsync.EINVALID, "", "the body is not valid JSON: %v", err)
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func jsonKindOfRaw(raw json.RawMessage) string {
	switch c := firstByte(raw); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	}
	return "that"
}

func jsonKindOf(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

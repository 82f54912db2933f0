package crmsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Session kinds: every session is a call or a chat, named kind-id
// (call-103646, chat-73522) everywhere: Redis keys, the HTTP API, file names.
const (
	KindCall = "call"
	KindChat = "chat"
)

// SessionKey names one session.
type SessionKey struct {
	Kind string
	ID   string
}

func (k SessionKey) String() string {
	if k.IsZero() {
		return ""
	}
	return k.Kind + "-" + k.ID
}

// IsZero reports whether the key names no session.
func (k SessionKey) IsZero() bool { return k.Kind == "" && k.ID == "" }

// ParseSessionKey parses "call-103646" or "chat-73522".
func ParseSessionKey(s string) (SessionKey, error) {
	kind, id, ok := strings.Cut(s, "-")
	if !ok || (kind != KindCall && kind != KindChat) {
		return SessionKey{}, Errorf(EINVALID, "session", "want call-{id} or chat-{id}, got %q", truncate(s, 80))
	}
	if err := ValidateID(id); err != nil {
		return SessionKey{}, Errorf(EINVALID, "session", "%v", err)
	}
	return SessionKey{Kind: kind, ID: id}, nil
}

// MaxIDLength bounds every id that comes from outside.
const MaxIDLength = 64

// ValidateID accepts the ids that may become part of a Redis key, a URL or
// a file name: letters, digits, '-' and '_', starting with a letter or a
// digit. That rules out "..", slashes, NUL and control characters at once.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("longer than %d characters", MaxIDLength)
	}
	for i, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return fmt.Errorf("%q is not allowed in an id (letters, digits, '-' and '_' only)", r)
		}
	}
	return nil
}

// Action is what crmsync does with an event.
type Action string

const (
	ActionStart    Action = "start"    // find or create account and record, comment
	ActionTransfer Action = "transfer" // comment
	ActionRating   Action = "rating"   // comment and record update
	ActionEnd      Action = "end"      // comment and record update
	ActionRecord   Action = "record"   // kept in the session, no CRM call
	ActionNone     Action = "none"     // accepted, belongs to no session
)

type eventSpec struct {
	kind   string // KindCall, KindChat, "" for either, "-" for no session
	action Action
}

// The adapter events of the contact center, plus CSAT_Rating, which carries
// a rating or feedback left after the session.
var eventSpecs = map[string]eventSpec{
	"Agent_Login":               {"-", ActionNone},
	"New_Call":                  {KindCall, ActionStart},
	"End_Call":                  {KindCall, ActionEnd},
	"New_Chat":                  {KindChat, ActionStart},
	"Active_Chat":               {KindChat, ActionRecord},
	"Chat_Inbound_Message":      {KindChat, ActionRecord},
	"Chat_Outbound_Message":     {KindChat, ActionRecord},
	"End_Chat":                  {KindChat, ActionEnd},
	"Dismissed_Chat":            {KindChat, ActionRecord},
	"Transfer":                  {"", ActionTransfer},
	"Add_Party":                 {"", ActionRecord},
	"Agent_Connects_To_Session": {"", ActionRecord},
	"Cobrowse_Session_Started":  {"", ActionRecord},
	"Cobrowse_Session_Remote_Control_Changed": {"", ActionRecord},
	"Cobrowse_Session_Full_Device_Changed":    {"", ActionRecord},
	"Cobrowse_Session_Ended":                  {"", ActionRecord},
	"Agent_Assist_Started":                    {"-", ActionNone},
	"CSAT_Rating":                             {"", ActionRating},
}

// EventTypes lists the accepted event types, sorted.
func EventTypes() []string {
	out := make([]string, 0, len(eventSpecs))
	for t := range eventSpecs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Event is one contact-center event, decoded and validated.
type Event struct {
	// ID makes a re-sent event a duplicate: the client's "id" when given,
	// otherwise a digest of the type and data.
	ID      string     `json:"id"`
	Type    string     `json:"type"`
	Action  Action     `json:"action"`
	Session SessionKey `json:"-"`
	Data    EventData  `json:"data"`
}

// EventData holds the fields crmsync uses. The adapter's own fields keep the
// spec's names; the end-user fields are what the CRM variables need.
type EventData struct {
	CallID        string `json:"call_id,omitempty"`
	ChatID        string `json:"chat_id,omitempty"`
	SessionType   string `json:"session_type,omitempty"`
	AgentID       string `json:"agent_id,omitempty"`
	AgentCustomID string `json:"agent_custom_id,omitempty"`
	AgentEmail    string `json:"agent_email,omitempty"`
	QueueID       string `json:"queue_id,omitempty"`
	QueuePath     string `json:"queue_path,omitempty"`
	CampaignID    string `json:"campaign_id,omitempty"`
	CampaignName  string `json:"campaign_name,omitempty"`

	FromAgentID    string `json:"from_agent_id,omitempty"`
	ToAgentID      string `json:"to_agent_id,omitempty"`
	FromAgentEmail string `json:"from_agent_email,omitempty"`
	ToAgentEmail   string `json:"to_agent_email,omitempty"`
	FromQueueID    string `json:"from_queue_id,omitempty"`
	ToQueueID      string `json:"to_queue_id,omitempty"`
	FromQueuePath  string `json:"from_queue_path,omitempty"`
	ToQueuePath    string `json:"to_queue_path,omitempty"`

	EndUserID            string   `json:"end_user_id,omitempty"`
	EndUserName          string   `json:"end_user_name,omitempty"`
	EndUserEmail         string   `json:"end_user_email,omitempty"`
	EndUserPhone         string   `json:"end_user_phone,omitempty"`
	CustomUserID         string   `json:"custom_user_id,omitempty"`
	Lang                 string   `json:"lang,omitempty"`
	OutboundPhoneNumber  string   `json:"outbound_phone_number,omitempty"`
	MenuPath             string   `json:"menu_path,omitempty"`
	MenuID               string   `json:"menu_id,omitempty"`
	QueueName            string   `json:"queue_name,omitempty"`
	SmartActionSessionID string   `json:"smart_action_session_id,omitempty"`
	Rating               int      `json:"rating,omitempty"`
	Feedback             string   `json:"feedback,omitempty"`
	CallDuration         *float64 `json:"call_duration,omitempty"` // seconds
	HoldTime             *float64 `json:"hold_time,omitempty"`     // seconds
	WaitTime             *float64 `json:"wait_time,omitempty"`     // seconds
	DeviceType           string   `json:"device_type,omitempty"`
	DisconnectedBy       string   `json:"disconnected_by,omitempty"`
	Channel              string   `json:"channel,omitempty"`
	Message              string   `json:"message,omitempty"`
	CRMAccountID         string   `json:"crm_account_id,omitempty"` // a known CRM account, for find-by-ID
	OccurredAt           string   `json:"occurred_at,omitempty"`    // RFC 3339
}

// Limits on what one request may carry.
const (
	MaxEventsPerRequest = 100
	maxStringLength     = 4096
	maxMessageLength    = 64 << 10
)

// DecodeEvents decodes one event object or an array of them, exactly as the
// adapter posts them ({"type":"New_Call","data":{...}}), and validates every
// one. It returns an *Error naming the first offending field; on error no
// event is returned, so nothing is half-taken.
func DecodeEvents(body []byte) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, Errorf(EINVALID, "", "empty body: want an event object or an array of events")
	}
	if body[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, jsonError("", err)
		}
		if len(raws) == 0 {
			return nil, Errorf(EINVALID, "", "empty array: want at least one event")
		}
		if len(raws) > MaxEventsPerRequest {
			return nil, Errorf(EINVALID, "", "%d events in one request; at most %d", len(raws), MaxEventsPerRequest)
		}
		out := make([]Event, 0, len(raws))
		for i, raw := range raws {
			ev, err := decodeEvent(raw, fmt.Sprintf("[%d].", i))
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		return out, nil
	}
	ev, err := decodeEvent(body, "")
	if err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func decodeEvent(raw []byte, prefix string) (Event, error) {
	var env struct {
		ID   json.RawMessage `json:"id"`
		Type json.RawMessage `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Event{}, jsonError(strings.TrimSuffix(prefix, "."), err)
	}
	if dec.More() {
		return Event{}, Errorf(EINVALID, strings.TrimSuffix(prefix, "."), "trailing data after the event")
	}
	var ev Event
	var err error
	if ev.Type, err = stringField(env.Type, prefix+"type"); err != nil {
		return Event{}, err
	}
	if ev.Type == "" {
		return Event{}, Errorf(EINVALID, prefix+"type", "required")
	}
	spec, ok := eventSpecs[ev.Type]
	if !ok {
		return Event{}, Errorf(EINVALID, prefix+"type", "unknown event type %q; known types: %s", truncate(ev.Type, 80), strings.Join(EventTypes(), ", "))
	}
	ev.Action = spec.action
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return Event{}, Errorf(EINVALID, prefix+"data", "required")
	}
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(env.Data, &fields); err != nil {
		return Event{}, Errorf(EINVALID, prefix+"data", "must be an object")
	}
	if ev.Data, err = decodeData(fields, prefix+"data."); err != nil {
		return Event{}, err
	}
	if ev.Session, err = sessionOf(ev.Type, spec, ev.Data, prefix+"data."); err != nil {
		return Event{}, err
	}
	if len(env.ID) > 0 && string(env.ID) != "null" {
		if ev.ID, err = idField(env.ID, prefix+"id"); err != nil {
			return Event{}, err
		}
	}
	if ev.ID == "" {
		ev.ID = digest(ev.Type, env.Data)
	}
	return ev, nil
}

func sessionOf(typ string, spec eventSpec, d EventData, prefix string) (SessionKey, error) {
	switch spec.kind {
	case "-":
		return SessionKey{}, nil
	case KindCall:
		if d.CallID == "" {
			return SessionKey{}, Errorf(EINVALID, prefix+"call_id", "required for %s", typ)
		}
		return SessionKey{Kind: KindCall, ID: d.CallID}, nil
	case KindChat:
		if d.ChatID == "" {
			return SessionKey{}, Errorf(EINVALID, prefix+"chat_id", "required for %s", typ)
		}
		return SessionKey{Kind: KindChat, ID: d.ChatID}, nil
	}
	switch {
	case d.CallID != "" && d.ChatID != "":
		return SessionKey{}, Errorf(EINVALID, prefix+"chat_id", "give call_id or chat_id, not both")
	case d.CallID != "":
		return SessionKey{Kind: KindCall, ID: d.CallID}, nil
	case d.ChatID != "":
		return SessionKey{Kind: KindChat, ID: d.ChatID}, nil
	case spec.action == ActionRecord && strings.HasPrefix(typ, "Cobrowse_"):
		// The spec's co-browse examples may name no session at all.
		return SessionKey{}, nil
	}
	return SessionKey{}, Errorf(EINVALID, prefix+"call_id", "call_id or chat_id is required for %s", typ)
}

// decodeData picks the known fields out of data, each with its own type
// check so an error names the exact field. Unknown fields are allowed: the
// adapter sends many optional ones (custom data, SIP headers...).
func decodeData(f map[string]json.RawMessage, p string) (EventData, error) {
	var d EventData
	ids := []struct {
		name string
		dst  *string
	}{
		{"call_id", &d.CallID}, {"chat_id", &d.ChatID}, {"agent_id", &d.AgentID},
		{"queue_id", &d.QueueID}, {"campaign_id", &d.CampaignID},
		{"from_agent_id", &d.FromAgentID}, {"to_agent_id", &d.ToAgentID},
		{"from_queue_id", &d.FromQueueID}, {"to_queue_id", &d.ToQueueID},
		{"end_user_id", &d.EndUserID}, {"menu_id", &d.MenuID},
	}
	for _, x := range ids {
		v, err := idField(f[x.name], p+x.name)
		if err != nil {
			return d, err
		}
		*x.dst = v
	}
	strs := []struct {
		name string
		dst  *string
		max  int
	}{
		{"session_type", &d.SessionType, 256}, {"agent_custom_id", &d.AgentCustomID, 256},
		{"agent_email", &d.AgentEmail, 320}, {"queue_path", &d.QueuePath, 1024},
		{"campaign_name", &d.CampaignName, 256}, {"from_agent_email", &d.FromAgentEmail, 320},
		{"to_agent_email", &d.ToAgentEmail, 320}, {"from_queue_path", &d.FromQueuePath, 1024},
		{"to_queue_path", &d.ToQueuePath, 1024}, {"end_user_name", &d.EndUserName, 256},
		{"end_user_email", &d.EndUserEmail, 320}, {"end_user_phone", &d.EndUserPhone, 64},
		{"custom_user_id", &d.CustomUserID, 256}, {"lang", &d.Lang, 35},
		{"outbound_phone_number", &d.OutboundPhoneNumber, 64}, {"menu_path", &d.MenuPath, 1024},
		{"queue_name", &d.QueueName, 256}, {"smart_action_session_id", &d.SmartActionSessionID, 256},
		{"feedback", &d.Feedback, maxStringLength}, {"device_type", &d.DeviceType, 64},
		{"disconnected_by", &d.DisconnectedBy, 64}, {"channel", &d.Channel, 64},
		{"message", &d.Message, maxMessageLength}, {"crm_account_id", &d.CRMAccountID, 256},
		{"occurred_at", &d.OccurredAt, 64},
	}
	for _, x := range strs {
		v, err := stringField(f[x.name], p+x.name)
		if err != nil {
			return d, err
		}
		if utf8.RuneCountInString(v) > x.max {
			return d, Errorf(EINVALID, p+x.name, "longer than %d characters", x.max)
		}
		*x.dst = v
	}
	for _, x := range []struct {
		name string
		val  string
	}{{"agent_email", d.AgentEmail}, {"end_user_email", d.EndUserEmail}, {"from_agent_email", d.FromAgentEmail}, {"to_agent_email", d.ToAgentEmail}} {
		if x.val == "" {
			continue
		}
		if a, err := mail.ParseAddress(x.val); err != nil || a.Address != x.val {
			return d, Errorf(EINVALID, p+x.name, "not an email address")
		}
	}
	if d.OccurredAt != "" {
		if _, err := time.Parse(time.RFC3339, d.OccurredAt); err != nil {
			return d, Errorf(EINVALID, p+"occurred_at", "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
	}
	if raw := f["rating"]; len(raw) > 0 && string(raw) != "null" {
		n, err := numberField(raw, p+"rating")
		if err != nil {
			return d, err
		}
		if n != math.Trunc(n) || n < 1 || n > 5 {
			return d, Errorf(EINVALID, p+"rating", "must be a whole number from 1 to 5")
		}
		d.Rating = int(n)
	}
	for _, x := range []struct {
		name string
		dst  **float64
	}{{"call_duration", &d.CallDuration}, {"hold_time", &d.HoldTime}, {"wait_time", &d.WaitTime}} {
		raw := f[x.name]
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		n, err := numberField(raw, p+x.name)
		if err != nil {
			return d, err
		}
		if n < 0 || n > 366*24*3600 {
			return d, Errorf(EINVALID, p+x.name, "must be a number of seconds from 0 to one year")
		}
		*x.dst = &n
	}
	return d, nil
}

// idField accepts a JSON string or a whole number (the spec shows both
// call_id: 103646 and queue_id: "65") and validates it as an id.
func idField(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", Errorf(EINVALID, field, "not a valid JSON string")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 0 {
			return "", Errorf(EINVALID, field, "must be a string or a non-negative whole number")
		}
		s = strconv.FormatInt(n, 10)
	default:
		return "", Errorf(EINVALID, field, "must be a string or a whole number, got %s", jsonKind(raw))
	}
	if err := ValidateID(s); err != nil {
		return "", Errorf(EINVALID, field, "%v", err)
	}
	return s, nil
}

func stringField(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] != '"' {
		return "", Errorf(EINVALID, field, "must be a string, got %s", jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", Errorf(EINVALID, field, "not a valid JSON string")
	}
	if strings.ContainsRune(s, 0) {
		return "", Errorf(EINVALID, field, "must not contain NUL")
	}
	return s, nil
}

func numberField(raw json.RawMessage, field string) (float64, error) {
	var n float64
	if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
		return 0, Errorf(EINVALID, field, "must be a number, got %s", jsonKind(raw))
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, Errorf(EINVALID, field, "must be a number")
	}
	return n, nil
}

func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func jsonError(field string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return Errorf(EINVALID, field, "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		f := field
		if te.Field != "" {
			f = strings.TrimPrefix(field+"."+te.Field, ".")
		}
		return Errorf(EINVALID, f, "must be %s, got a JSON %s", goKind(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Errorf(EINVALID, strings.TrimPrefix(field+"."+name, "."), "unknown field; an event has id, type and data")
	}
	return Errorf(EINVALID, field, "malformed JSON: %v", err)
}

func goKind(k string) string {
	switch k {
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// digest names an event by its content, so the same event posted twice is
// taken once.
func digest(typ string, data json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		buf.Reset()
		buf.Write(data)
	}
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write(buf.Bytes())
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

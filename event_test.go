package crmsync

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The spec's examples, as the adapter posts them.
var specExamples = map[string]string{
	"New_Call":                             `{"type":"New_Call","data":{"agent_id":1,"agent_custom_id":"007","agent_email":"james.bond@agents.co","queue_id":8469,"queue_path":"Developers / James","campaign_id":1432,"campaign_name":"Survey Movie","call_id":103646,"session_type":"Voice Campaign (UJET)"}}`,
	"End_Call":                             `{"type":"End_Call","data":{"agent_id":1,"agent_custom_id":"007","agent_email":"demo+zdco+qa@ujet.co","queue_id":8469,"queue_path":"Developers / James","campaign_id":1432,"campaign_name":"Survey Movie","call_id":103646,"session_type":"Voice Campaign (UJET)"}}`,
	"New_Chat":                             `{"type":"New_Chat","data":{"chat_id":73522,"session_type":"messaging inbound (web chat)","agent_id":1,"agent_email":"james.bond@agents.co","queue_id":7678,"queue_path":"HB TEAM / Edvards"}}`,
	"End_Chat":                             `{"type":"End_Chat","data":{"chat_id":73522,"session_type":"Messaging Inbound (Web Chat)","agent_id":1,"agent_email":"james.bond@agents.co","queue_id":null,"queue_path":null,"agent_custom_id":null}}`,
	"Active_Chat":                          `{"type":"Active_Chat","data":{"chat_id":73521,"session_type":"messaging inbound (web chat)","agent_id":1,"agent_email":"james.bond@agents.co","queue_id":7678,"queue_path":"HB TEAM / Edvards"}}`,
	"Dismissed_Chat":                       `{"type":"Dismissed_Chat","data":{"chat_id":73522,"session_type":"Messaging Inbound (Web Chat)","agent_id":1,"agent_email":"james.bond@agents.co"}}`,
	"Agent_Login":                          `{"type":"Agent_Login","data":{"agent_id":1,"agent_custom_id":"007","agent_email":"james.bond@agents.co"}}`,
	"Cobrowse_Session_Started":             `{"type":"Cobrowse_Session_Started","data":{"agent_id":5,"chat_id":791,"cobrowse_session_id":"Y1zYY6XIYX4oapqpEz3qHw","cobrowse_session_requested_by":"agent","cobrowse_session_remote_control":"off","cobrowse_session_full_device":"off"}}`,
	"Cobrowse_Session_Full_Device_Changed": `{"type":"Cobrowse_Session_Full_Device_Changed","data":{"agent_id":5,"cobrowse_session_id":"9-Kshrag-gn6ZSuIxoMtWQ","cobrowse_session_full_device":"rejected"}}`,
	"Agent_Assist_Started":                 `{"type":"Agent_Assist_Started","data":{"conversation_id":"12345","queue_id":"65","agent_id":"1","session_id":"78534G4RT4284","queue_language_id":"en","timestamp":"12:45:15"}}`,
}

func TestDecodeSpecExamples(t *testing.T) {
	for name, body := range specExamples {
		t.Run(name, func(t *testing.T) {
			evs, err := DecodeEvents([]byte(body))
			require.NoError(t, err)
			require.Len(t, evs, 1)
			assert.Equal(t, name, evs[0].Type)
			assert.NotEmpty(t, evs[0].ID)
		})
	}
	evs, err := DecodeEvents([]byte(specExamples["New_Call"]))
	require.NoError(t, err)
	ev := evs[0]
	assert.Equal(t, SessionKey{Kind: KindCall, ID: "103646"}, ev.Session)
	assert.Equal(t, ActionStart, ev.Action)
	assert.Equal(t, "1", ev.Data.AgentID)
	assert.Equal(t, "8469", ev.Data.QueueID)
	assert.Equal(t, "Developers / James", ev.Data.QueuePath)
	assert.Equal(t, "Voice Campaign (UJET)", ev.Data.SessionType)
}

func TestDecodeArrayAndIDs(t *testing.T) {
	body := `[` + specExamples["New_Call"] + `,` + specExamples["End_Call"] + `]`
	evs, err := DecodeEvents([]byte(body))
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.NotEqual(t, evs[0].ID, evs[1].ID)

	again, err := DecodeEvents([]byte(specExamples["New_Call"]))
	require.NoError(t, err)
	assert.Equal(t, evs[0].ID, again[0].ID, "the same event gets the same id")

	withID, err := DecodeEvents([]byte(`{"id":"ev-1","type":"New_Call","data":{"call_id":"c1"}}`))
	require.NoError(t, err)
	assert.Equal(t, "ev-1", withID[0].ID)
}

func TestDecodeEndUserFields(t *testing.T) {
	evs, err := DecodeEvents([]byte(`{"type":"End_Call","data":{"call_id":7,"end_user_name":"Zoë O'Brien & \"Sons\"","end_user_email":"z@example.com","end_user_phone":"+1 222 333 4444","rating":5,"feedback":"great","call_duration":303.5,"hold_time":20,"wait_time":40,"disconnected_by":"end_user"}}`))
	require.NoError(t, err)
	d := evs[0].Data
	assert.Equal(t, `Zoë O'Brien & "Sons"`, d.EndUserName)
	assert.Equal(t, 5, d.Rating)
	require.NotNil(t, d.CallDuration)
	assert.InDelta(t, 303.5, *d.CallDuration, 0.001)
}

func TestDecodeBadInput(t *testing.T) {
	cases := []struct {
		name, body, field, msg string
	}{
		{"empty", ``, "", "empty body"},
		{"malformed", `{"type":"New_Call",`, "", "malformed JSON"},
		{"not an object", `"New_Call"`, "", "must be"},
		{"empty array", `[]`, "", "empty array"},
		{"unknown type", `{"type":"New_Fax","data":{"call_id":1}}`, "type", "unknown event type"},
		{"missing type", `{"data":{"call_id":1}}`, "type", "required"},
		{"type not string", `{"type":5,"data":{"call_id":1}}`, "type", "must be a string"},
		{"missing data", `{"type":"New_Call"}`, "data", "required"},
		{"data not object", `{"type":"New_Call","data":[1]}`, "data", "must be an object"},
		{"missing call_id", `{"type":"New_Call","data":{"agent_id":1}}`, "data.call_id", "required"},
		{"chat needs chat_id", `{"type":"New_Chat","data":{"call_id":1}}`, "data.chat_id", "required"},
		{"dot dot", `{"type":"New_Call","data":{"call_id":"../etc"}}`, "data.call_id", "not allowed"},
		{"slash", `{"type":"New_Call","data":{"call_id":"a/b"}}`, "data.call_id", "not allowed"},
		{"nul", `{"type":"New_Call","data":{"call_id":"a\u0000b"}}`, "data.call_id", "not allowed"},
		{"newline", `{"type":"New_Call","data":{"call_id":"a\nb"}}`, "data.call_id", "not allowed"},
		{"float id", `{"type":"New_Call","data":{"call_id":1.5}}`, "data.call_id", "whole number"},
		{"bool id", `{"type":"New_Call","data":{"call_id":true}}`, "data.call_id", "a boolean"},
		{"long id", `{"type":"New_Call","data":{"call_id":"` + strings.Repeat("a", 65) + `"}}`, "data.call_id", "longer than"},
		{"wrong type string", `{"type":"New_Call","data":{"call_id":1,"agent_email":5}}`, "data.agent_email", "must be a string"},
		{"bad email", `{"type":"New_Call","data":{"call_id":1,"end_user_email":"not-an-email"}}`, "data.end_user_email", "not an email"},
		{"rating range", `{"type":"CSAT_Rating","data":{"call_id":1,"rating":6}}`, "data.rating", "1 to 5"},
		{"rating type", `{"type":"CSAT_Rating","data":{"call_id":1,"rating":"five"}}`, "data.rating", "must be a number"},
		{"negative duration", `{"type":"End_Call","data":{"call_id":1,"call_duration":-1}}`, "data.call_duration", "seconds"},
		{"unknown top field", `{"type":"New_Call","data":{"call_id":1},"extra":1}`, "extra", "unknown field"},
		{"second in array bad", `[{"type":"New_Call","data":{"call_id":1}},{"type":"Nope","data":{}}]`, "[1].type", "unknown event type"},
		{"both ids", `{"type":"Transfer","data":{"call_id":1,"chat_id":2}}`, "data.chat_id", "not both"},
		{"bad id field", `{"id":"../x","type":"New_Call","data":{"call_id":1}}`, "id", "not allowed"},
		{"trailing", `{"type":"New_Call","data":{"call_id":1}} {}`, "", "trailing"},
		{"bad time", `{"type":"New_Call","data":{"call_id":1,"occurred_at":"yesterday"}}`, "data.occurred_at", "RFC 3339"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := DecodeEvents([]byte(c.body))
			require.Error(t, err)
			assert.Nil(t, evs)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, EINVALID, e.Code)
			assert.Equal(t, c.field, e.Field)
			assert.Contains(t, e.Message, c.msg)
		})
	}
}

func TestTooManyEvents(t *testing.T) {
	one := `{"type":"New_Call","data":{"call_id":1}}`
	body := "[" + strings.Repeat(one+",", MaxEventsPerRequest) + one + "]"
	_, err := DecodeEvents([]byte(body))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at most")
}

func TestParseSessionKey(t *testing.T) {
	k, err := ParseSessionKey("call-103646")
	require.NoError(t, err)
	assert.Equal(t, "call-103646", k.String())
	k, err = ParseSessionKey("chat-a-b_c")
	require.NoError(t, err)
	assert.Equal(t, "a-b_c", k.ID)
	for _, bad := range []string{"", "call", "call-", "fax-1", "call-../x", "call-a/b", "call-%2e%2e", "chat-\x00"} {
		_, err := ParseSessionKey(bad)
		assert.Error(t, err, bad)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2-very-secret")
	for _, out := range []string{s.String(), s.GoString(), sprint(s), sprintV(s)} {
		assert.NotContains(t, out, "hunter2")
	}
	b, err := s.MarshalJSON()
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2")
	assert.Equal(t, "hunter2-very-secret", s.Reveal())
}

func FuzzDecodeEvents(f *testing.F) {
	for _, body := range specExamples {
		f.Add([]byte(body))
	}
	f.Add([]byte(`[{"type":"New_Call","data":{"call_id":"1"}}]`))
	f.Add([]byte(`{"type":"End_Call","data":{"call_id":1,"rating":3,"call_duration":1e308}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeEvents(body)
		if err != nil {
			var e *Error
			if !errorsAs(err, &e) || e.Code != EINVALID {
				t.Fatalf("error is not an EINVALID *Error: %v", err)
			}
			if evs != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		for _, ev := range evs {
			if ev.Session.IsZero() {
				continue
			}
			if _, err := ParseSessionKey(ev.Session.String()); err != nil {
				t.Fatalf("accepted a session that does not parse back: %q", ev.Session)
			}
		}
	})
}

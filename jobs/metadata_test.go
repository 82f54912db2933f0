package jobs

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
)

func metadataSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("../docs/session-metadata.schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("session-metadata.schema.json", doc))
	s, err := c.Compile("session-metadata.schema.json")
	require.NoError(t, err)
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, m any) error {
	b, err := json.Marshal(m)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return s.Validate(inst)
}

// A rich session's metadata, built from real events through the worker,
// matches docs/session-metadata.schema.json and carries the 20+ data points.
func TestMetadataMatchesSchema(t *testing.T) {
	schema := metadataSchema(t)
	pol := Policy{InitialDelay: 10 * time.Millisecond, Factor: 2, MaxDelay: 20 * time.Millisecond, Window: time.Minute, Statuses: DefaultPolicy().Statuses}
	e := newEnv(t, envOpts{policy: &pol})
	e.crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultStatus, Status: 503, Count: 1})
	e.post(`{"type":"New_Call","data":{"call_id":501,"agent_id":1,"agent_custom_id":"007","agent_email":"james.bond@agents.co","queue_id":8469,"queue_path":"Developers / James","campaign_id":1432,"campaign_name":"Survey Movie","session_type":"Voice Campaign (UJET)","end_user_id":77,"end_user_name":"Jane Doe","end_user_phone":"+1 222 333 4444","end_user_email":"jane@example.com","lang":"en","device_type":"ios","menu_path":"Sales/Cars","menu_id":12}}`)
	e.drain(20 * time.Second)
	e.post(`{"type":"Transfer","data":{"call_id":501,"from_agent_id":1,"to_agent_id":2,"to_agent_email":"q@agents.co","from_queue_id":8469,"to_queue_id":8470}}`,
		`{"type":"CSAT_Rating","data":{"call_id":501,"rating":5,"feedback":"great"}}`,
		`{"type":"End_Call","data":{"call_id":501,"agent_id":2,"call_duration":303,"hold_time":20,"wait_time":41,"disconnected_by":"end_user"}}`)
	e.drain(20 * time.Second)

	v := e.view("call-501")
	files := []FileEntry{{Kind: "call_recordings", Name: "ujet-voice-recordings/call-501.mp3", Size: 1234,
		SHA256: "aa3b0c2f8c1d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef0", StorageURL: "file:///data/ujet-voice-recordings/call-501.mp3"}}
	m := BuildMetadata(v, files, time.Now())
	require.NoError(t, validate(t, schema, m))

	assert.Equal(t, "call-501", m.Session)
	assert.Equal(t, "Voice Campaign (UJET)", m.SessionType)
	assert.Equal(t, "8469", m.Queue.ID)
	assert.Equal(t, "Sales/Cars", m.Queue.MenuPath)
	assert.Equal(t, "Survey Movie", m.Campaign.Name)
	require.Len(t, m.Agents, 2)
	assert.Equal(t, "007", m.Agents[0].CustomID)
	assert.Equal(t, "q@agents.co", m.Agents[1].Email)
	assert.Len(t, m.Participants, 3)
	assert.Equal(t, "Jane Doe", m.EndUser.Name)
	require.NotNil(t, m.Times.AnsweredAt)
	require.NotNil(t, m.Times.QueuedAt)
	assert.Equal(t, 41*time.Second, m.Times.AnsweredAt.Sub(*m.Times.QueuedAt))
	require.NotNil(t, m.Times.EndedAt)
	assert.InDelta(t, 303, *m.Durations.CallSeconds, 0.001)
	assert.Equal(t, 1, m.Transfers.Count)
	assert.Equal(t, "8470", m.Transfers.Log[0].ToQueueID)
	require.NotNil(t, m.Rating)
	assert.Equal(t, 5, *m.Rating)
	assert.Equal(t, "end_user", m.DisconnectedBy)
	assert.NotEmpty(t, m.CRM.RecordID)
	assert.Equal(t, "en", m.Language)
	assert.Equal(t, "ios", m.DeviceType)
	assert.Positive(t, m.Diagnostics.CRMCalls)
	assert.Equal(t, 1, m.Diagnostics.CRMFailures, "the one 503")
	assert.Equal(t, 1, m.Diagnostics.JobRetries)
	assert.Len(t, m.Files, 1)
}

func TestSchemaRejectsBadMetadata(t *testing.T) {
	schema := metadataSchema(t)
	m := BuildMetadata(&View{Session: "chat-1", Kind: "chat", ID: "1"}, nil, time.Now())
	require.NoError(t, validate(t, schema, m), "a bare session is valid")
	bad := m
	bad.Session = "fax-1"
	assert.Error(t, validate(t, schema, bad))
	r := 9
	bad = m
	bad.Rating = &r
	assert.Error(t, validate(t, schema, bad))
	bad = m
	bad.Files = []FileEntry{{Kind: "faxes", Name: "x", Size: 1}}
	assert.Error(t, validate(t, schema, bad))
	var generic map[string]any
	b, _ := json.Marshal(m)
	require.NoError(t, json.Unmarshal(b, &generic))
	delete(generic, "times")
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, generic)))
	assert.Error(t, schema.Validate(inst))
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

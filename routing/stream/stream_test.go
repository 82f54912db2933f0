package stream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
)

func TestNewConfig(t *testing.T) {
	rdb := redistest.Client(t)
	tests := []struct {
		name string
		cfg  Config
		want string // error text, "" for none
	}{
		{"zero", Config{}, ""},
		{"prefix with a tag", Config{Prefix: "x:{r}:"}, ""},
		{"prefix without a tag", Config{Prefix: "x:routing:"}, "hash tag"},
		{"empty tag", Config{Prefix: "x:{}:"}, "hash tag"},
		{"negative max len", Config{MaxLen: -1}, "max_len"},
		{"negative heartbeat", Config{Heartbeat: -1}, "heartbeat"},
		{"negative per agent", Config{MaxPerAgent: -1}, "max_per_agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(rdb, tt.cfg)
			if tt.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				return
			}
			require.NoError(t, err)
			assert.NotEmpty(t, s.cfg.Prefix)
			assert.EqualValues(t, DefaultMaxLen, s.cfg.MaxLen)
			assert.Equal(t, DefaultHeartbeat, s.cfg.Heartbeat)
			assert.Equal(t, DefaultMaxPerAgent, s.cfg.MaxPerAgent)
		})
	}
	_, err := New(nil, Config{})
	assert.Error(t, err)
}

func TestPublishRead(t *testing.T) {
	f := newFixture(t)
	type pop struct {
		RecordURL string `json:"recordUrl"`
	}
	ids := []string{
		f.publish("sara@example.com", "CRM_Record_Pop", pop{RecordURL: "https://crm.example.com/records/42?a=1&b=<2>"}),
		f.publish("sara@example.com", "Offer", map[string]any{"conversation": "c1", "transfer": false}),
		f.publish("sara@example.com", "New_Call", json.RawMessage("{\n  \"call_id\": 103646\n}")),
		f.publish("sara@example.com", "Presence", nil),
		f.luaPublish("sara@example.com", "Assigned", `{"conversation":"c1","queue":"q1","channel":"voice"}`),
		f.publish("sara@example.com", "Custom_Lookup_URL", []byte(`{"url":"https://x.example/a"}`)),
	}

	evs, err := f.s.Read(f.ctx, "sara@example.com", "", 0)
	require.NoError(t, err)
	var got []string
	for i, e := range evs {
		assert.Equal(t, ids[i], e.ID)
		got = append(got, e.Type+" "+string(e.Data))
	}
	assert.Equal(t, []string{
		`CRM_Record_Pop {"recordUrl":"https://crm.example.com/records/42?a=1&b=<2>"}`,
		`Offer {"conversation":"c1","transfer":false}`,
		`New_Call {"call_id":103646}`,
		`Presence {}`,
		`Assigned {"conversation":"c1","queue":"q1","channel":"voice"}`,
		`Custom_Lookup_URL {"url":"https://x.example/a"}`,
	}, got)

	t.Run("after an id", func(t *testing.T) {
		evs, err := f.s.Read(f.ctx, "sara@example.com", ids[3], 0)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		assert.Equal(t, ids[4], evs[0].ID)
		assert.Equal(t, ids[5], evs[1].ID)
	})
	t.Run("count", func(t *testing.T) {
		evs, err := f.s.Read(f.ctx, "sara@example.com", "", 2)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		assert.Equal(t, ids[1], evs[1].ID)
	})
	t.Run("only new", func(t *testing.T) {
		evs, err := f.s.Read(f.ctx, "sara@example.com", "$", 0)
		require.NoError(t, err)
		assert.Empty(t, evs)
	})
	t.Run("other agent", func(t *testing.T) {
		evs, err := f.s.Read(f.ctx, "bob", "", 0)
		require.NoError(t, err)
		assert.Empty(t, evs)
	})
	t.Run("keys", func(t *testing.T) {
		n, err := f.rdb.XLen(f.ctx, f.prefix+"agent:sara@example.com:events").Result()
		require.NoError(t, err)
		assert.EqualValues(t, len(ids), n)
		assert.Equal(t, f.prefix+"agent:sara@example.com:events", f.s.Key("sara@example.com"))
		assert.Equal(t, f.prefix+"agent-events", WakeChannel(f.prefix))
	})
}

// Entries written by hand (a script with a bug, an operator) must not
// break the readers.
func TestReadRepairsEntries(t *testing.T) {
	f := newFixture(t)
	key := f.s.Key("sara")
	require.NoError(t, f.rdb.XAdd(f.ctx, &redis.XAddArgs{Stream: key, Values: []any{"t", "Offer", "d", "not json"}}).Err())
	require.NoError(t, f.rdb.XAdd(f.ctx, &redis.XAddArgs{Stream: key, Values: []any{"t", "Offer"}}).Err())
	evs, err := f.s.Read(f.ctx, "sara", "", 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.JSONEq(t, `"not json"`, string(evs[0].Data))
	assert.JSONEq(t, `{}`, string(evs[1].Data))
}

func TestPublishBadInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, agent, typ string
		data             any
		code, field      string
	}{
		{"empty agent", "", "Offer", nil, crmsync.EINVALID, "agent"},
		{"agent with a space", "sa ra", "Offer", nil, crmsync.EINVALID, "agent"},
		{"agent with dots", "a..b", "Offer", nil, crmsync.EINVALID, "agent"},
		{"empty type", "sara", "", nil, crmsync.EINVALID, "type"},
		{"type with a newline", "sara", "Offer\nx", nil, crmsync.EINVALID, "type"},
		{"type too long", "sara", strings.Repeat("A", MaxTypeLen+1), nil, crmsync.EINVALID, "type"},
		{"raw data not JSON", "sara", "Offer", json.RawMessage(`{"a":`), crmsync.EINVALID, "data"},
		{"data that cannot be encoded", "sara", "Offer", map[string]any{"c": make(chan int)}, crmsync.EINVALID, "data"},
		{"data too large", "sara", "Offer", map[string]string{"x": strings.Repeat("a", MaxDataSize)}, crmsync.ETOOLARGE, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.Publish(f.ctx, tt.agent, tt.typ, tt.data)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.field, e.Field)
		})
	}
	keys, err := f.rdb.Keys(f.ctx, f.prefix+"*").Result()
	require.NoError(t, err)
	assert.Empty(t, keys, "nothing written")
}

func TestReadBadInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ name, agent, after, field string }{
		{"bad agent", "-x", "", "agent"},
		{"word", "sara", "abc", "afterID"},
		{"three parts", "sara", "1-2-3", "afterID"},
		{"no sequence", "sara", "1733130000000", "afterID"},
		{"negative", "sara", "-1-0", "afterID"},
		{"sign", "sara", "+1-0", "afterID"},
		{"range syntax", "sara", "(1-0", "afterID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.Read(f.ctx, tt.agent, tt.after, 0)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tt.field, e.Field)
		})
	}
}

package jobs

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stdEntryJSON is the entry as encoding/json writes it with HTML escaping
// off.
func stdEntryJSON(tb testing.TB, e Entry) string {
	tb.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(tb, enc.Encode(e))
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestEntryJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 4, 5, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		e    Entry
	}{
		{"zero", Entry{}},
		{"job", Entry{At: at, Kind: "job", Event: "End_Call", EventID: "e1", Attempt: 2, Outcome: "retry in 1m0s", Error: `crm: comment: HTTP 503: "down" <b>&</b>`}},
		{"crm call", Entry{At: at, Kind: "crm", Event: "New_Call", EventID: "ab12", Endpoint: "find_account", Method: "GET",
			URL: "http://127.0.0.1:1/api/accounts?q=%28Phone%3Aequals%3A%2A415%2A200%2A0001%29", Status: 200, Duration: 1.234, Attempt: 1}},
		{"unicode and controls", Entry{At: at.In(time.FixedZone("x", 3600)), Kind: "crm", Error: "Zoë 日本\n\t\x00 \xff \u2028"}},
		{"whole milliseconds", Entry{At: at.Truncate(time.Second), Kind: "crm", Duration: 12}},
		{"tiny duration", Entry{Kind: "crm", Duration: 1e-7}},
		{"huge duration", Entry{Kind: "crm", Duration: 2.5e21}},
		{"negative", Entry{Kind: "crm", Duration: -0.5, Status: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.True(t, tc.e.marshalable())
			assert.Equal(t, stdEntryJSON(t, tc.e), string(tc.e.appendJSON(nil)))
		})
	}
}

func TestEntryJSONLeavesRefusalsToEncodingJSON(t *testing.T) {
	for _, e := range []Entry{
		{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Duration: math.NaN()},
		{Duration: math.Inf(1)},
	} {
		assert.False(t, e.marshalable())
		_, err := json.Marshal(e)
		assert.Error(t, err)
	}
}

func FuzzEntryJSON(f *testing.F) {
	f.Add(int64(0), "crm", "find_account", "http://x/?a=b&c=<d>", "err \xff", 200, 1.5)
	f.Fuzz(func(t *testing.T, unixNano int64, kind, endpoint, url, errText string, status int, dur float64) {
		e := Entry{At: time.Unix(0, unixNano).UTC(), Kind: kind, Endpoint: endpoint, URL: url, Error: errText, Status: status, Duration: dur}
		if !e.marshalable() {
			return
		}
		if got, want := string(e.appendJSON(nil)), stdEntryJSON(t, e); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

func BenchmarkEntryJSON(b *testing.B) {
	e := Entry{At: time.Now().UTC(), Kind: "crm", Event: "New_Call", EventID: "0123456789abcdef", Endpoint: "create_record",
		Method: "POST", URL: "http://127.0.0.1:8080/sample-crm/api/records", Status: 201, Duration: 1.234, Attempt: 1}
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = e.appendJSON(buf[:0])
		}
	})
	b.Run("baseline-json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
}

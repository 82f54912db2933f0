package jobs

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm"
)

// The whole week of a 400 that never clears, with the default policy.
func TestDefaultScheduleCoversAWeek(t *testing.T) {
	p := DefaultPolicy()
	s := p.Schedule()
	for _, r := range s {
		t.Logf("retry %2d after %-10s at +%s", r.N, r.Delay, r.At)
	}
	want := []time.Duration{
		30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, 64 * time.Minute, 128 * time.Minute, 256 * time.Minute,
		512 * time.Minute, 12 * time.Hour,
	}
	require.Greater(t, len(s), len(want))
	for i, d := range want {
		assert.Equal(t, d, s[i].Delay, "retry %d", i+1)
	}
	var at time.Duration
	for i, r := range s {
		at += r.Delay
		assert.Equal(t, at, r.At)
		assert.Equal(t, i+1, r.N)
		if i > 0 {
			assert.GreaterOrEqual(t, r.Delay, s[i-1].Delay, "delays never shrink")
		}
		assert.LessOrEqual(t, r.Delay, 12*time.Hour)
	}
	last := s[len(s)-1]
	assert.LessOrEqual(t, last.At, 7*24*time.Hour, "no retry after the week")
	assert.Greater(t, last.At+12*time.Hour, 7*24*time.Hour, "retries go on until the week is over")
	assert.Len(t, s, 23)
	assert.Equal(t, "161h3m30s", last.At.String())
}

func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		err     error
		n       int
		now     time.Time
		delay   time.Duration
		archive bool
	}{
		{"400 first failure", &crm.HTTPError{Status: 400}, 0, first, 30 * time.Second, false},
		{"400 fifth", &crm.HTTPError{Status: 400}, 4, first.Add(time.Hour), 8 * time.Minute, false},
		{"400 past the week", &crm.HTTPError{Status: 400}, 23, first.Add(166 * time.Hour), 0, true},
		{"404 archived at once", &crm.HTTPError{Status: 404}, 0, first, 0, true},
		{"500 archived at once", &crm.HTTPError{Status: 500}, 0, first, 0, true},
		{"401 archived", &crm.HTTPError{Status: 401}, 0, first, 0, true},
		{"503 retried", &crm.HTTPError{Status: 503}, 1, first, time.Minute, false},
		{"502 retried", &crm.HTTPError{Status: 502}, 0, first, 30 * time.Second, false},
		{"504 retried", &crm.HTTPError{Status: 504}, 0, first, 30 * time.Second, false},
		{"429 with Retry-After", &crm.HTTPError{Status: 429, RetryAfter: 90 * time.Second}, 0, first, 90 * time.Second, false},
		{"429 without", &crm.HTTPError{Status: 429}, 2, first, 2 * time.Minute, false},
		{"transport", &crm.TransportError{Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, 0, first, 30 * time.Second, false},
		{"timeout", &crm.TransportError{Timeout: true, Err: errors.New("timeout")}, 0, first, 30 * time.Second, false},
		{"config problem", &crm.ResponseError{Endpoint: "create_account", Reason: "no id"}, 0, first, 0, true},
		{"wrapped 400", fmt.Errorf("step: %w", &crm.HTTPError{Status: 400}), 0, first, 30 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, giveUp := p.Decide(c.err, c.n, first, c.now)
			if c.archive {
				assert.Error(t, giveUp)
				return
			}
			require.NoError(t, giveUp)
			assert.Equal(t, c.delay, d)
		})
	}
}

func TestCompressedSchedule(t *testing.T) {
	p := Policy{InitialDelay: 10 * time.Millisecond, Factor: 2, MaxDelay: 80 * time.Millisecond, Window: time.Second, Statuses: map[int]bool{400: true}}
	s := p.Schedule()
	require.NotEmpty(t, s)
	assert.Equal(t, []time.Duration{10, 20, 40, 80, 80}, func() []time.Duration {
		var out []time.Duration
		for _, r := range s[:5] {
			out = append(out, r.Delay/time.Millisecond)
		}
		return out
	}())
	assert.LessOrEqual(t, s[len(s)-1].At, time.Second)
}

package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/crmsync/crmsync/connectors/crm"
)

// Policy is crmsync's one retry policy. A retryable failure (the CRM's 400,
// as the spec asks, plus 429, 502, 503, 504, timeouts and transport errors)
// is retried after InitialDelay, then after a delay Factor times longer each
// time up to MaxDelay: an exponential ramp down in frequency. Retries stop
// Window after the first attempt; the job is then archived. Any other
// failure is archived at once.
type Policy struct {
	InitialDelay time.Duration
	Factor       float64
	MaxDelay     time.Duration
	Window       time.Duration
	// Statuses are the retried HTTP statuses.
	Statuses map[int]bool
}

// DefaultPolicy is the spec's rule with the defaults of the config file.
func DefaultPolicy() Policy {
	return Policy{
		InitialDelay: 30 * time.Second,
		Factor:       2,
		MaxDelay:     12 * time.Hour,
		Window:       7 * 24 * time.Hour,
		Statuses:     map[int]bool{400: true, 429: true, 502: true, 503: true, 504: true},
	}
}

// Delay is the wait before retry number n+1 (n retries already done).
func (p Policy) Delay(n int) time.Duration {
	d := float64(p.InitialDelay) * math.Pow(p.Factor, float64(n))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// Retry is one planned retry.
type Retry struct {
	N     int           // 1 for the first retry
	Delay time.Duration // wait before it
	At    time.Duration // its offset from the first attempt
}

// Schedule lists every retry of a failure that never clears.
func (p Policy) Schedule() []Retry {
	var out []Retry
	var at time.Duration
	for n := 0; ; n++ {
		d := p.Delay(n)
		if at+d > p.Window {
			return out
		}
		at += d
		out = append(out, Retry{N: n + 1, Delay: d, At: at})
	}
}

// Retryable reports whether err may clear by itself, and how long the
// server asked us to wait (zero when it did not say).
func (p Policy) Retryable(err error) (ok bool, after time.Duration) {
	var he *crm.HTTPError
	var te *crm.TransportError
	switch {
	case errors.As(err, &he):
		if he.Status == http.StatusTooManyRequests {
			return p.Statuses[he.Status], he.RetryAfter
		}
		return p.Statuses[he.Status], 0
	case errors.As(err, &te):
		return true, 0
	case errors.Is(err, context.DeadlineExceeded):
		return true, 0
	}
	var tr interface{ Temporary() bool }
	if errors.As(err, &tr) && tr.Temporary() {
		return true, 0
	}
	return false, 0
}

// Decide says what to do after the n-th retry of a job (n=0: the first
// attempt) failed with err, first being the time of the first attempt. It
// returns the delay before the next attempt, or a non-nil reason to give up.
func (p Policy) Decide(err error, n int, first, now time.Time) (time.Duration, error) {
	ok, after := p.Retryable(err)
	if !ok {
		return 0, fmt.Errorf("not retryable: %w", err)
	}
	d := p.Delay(n)
	if after > 0 {
		d = min(after, p.MaxDelay)
	}
	if now.Add(d).After(first.Add(p.Window)) {
		return 0, fmt.Errorf("still failing %s after the first attempt: %w", p.Window, err)
	}
	return d, nil
}

package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Operations, as errors name them.
const (
	OpRoute       = "POST route"
	OpDeleteRoute = "DELETE route"
)

// HTTPError is an answer with a status outside 2xx.
type HTTPError struct {
	Op     string
	Status int
	// RequestID is the RequestId the call carried, to find it on
	// Salesforce's side.
	RequestID string
	// RetryAfter is the Retry-After header (seconds or an HTTP date); zero
	// when absent.
	RetryAfter time.Duration
	// Body is the start of the answer, the token redacted.
	Body string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("salesforce: %s: status %d", e.Op, e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + strings.ToLower(t)
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	if b := strings.Join(strings.Fields(cut(e.Body, 200)), " "); b != "" {
		s += ": " + b
	}
	return s
}

// Temporary reports whether the status may clear by itself: 429 and 5xx.
func (e *HTTPError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// TransportError is a call that got no complete answer: connection
// refused, reset or dropped, or a timeout.
type TransportError struct {
	Op        string
	RequestID string
	Err       error
	Timeout   bool
}

func (e *TransportError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("salesforce: %s (request %s): timeout: %v", e.Op, e.RequestID, e.Err)
	}
	return fmt.Sprintf("salesforce: %s (request %s): %v", e.Op, e.RequestID, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Temporary is always true: the peer may come back.
func (e *TransportError) Temporary() bool { return true }

// Retryable classifies err for a retry policy: true for transport errors,
// timeouts, 429 and 5xx (with the wait the server asked for, zero when it
// did not say); false for other 4xx (the request or the credentials are
// wrong, and sending it again changes nothing), a bad argument and
// anything else.
//
// A retry after a timeout may repeat a route Salesforce already took; the
// caller's bookkeeping (routing/byoc) makes that harmless.
func Retryable(err error) (ok bool, after time.Duration) {
	var he *HTTPError
	var te *TransportError
	switch {
	case err == nil:
		return false, 0
	case errors.As(err, &he):
		if he.Temporary() {
			return true, he.RetryAfter
		}
		return false, 0
	case errors.As(err, &te):
		return true, 0
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true, 0
	}
	return false, 0
}

// IsNotFound reports whether Salesforce answered 404: for DELETE route,
// there was no pending routing left to delete.
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// redactedError shows a redacted message but keeps the original error in
// the chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

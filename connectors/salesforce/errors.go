package salesforce

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/crmsync/crmsync/internal/httperr"
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
	return httperr.StatusMessage("salesforce", e.Op, e.Status, e.RequestID, e.Body)
}

// Temporary reports whether the status may clear by itself: 429 and 5xx.
func (e *HTTPError) Temporary() bool { return httperr.Temporary(e.Status) }

// TransportError is a call that got no complete answer: connection
// refused, reset or dropped, or a timeout.
type TransportError struct {
	Op        string
	RequestID string
	Err       error
	Timeout   bool
}

func (e *TransportError) Error() string {
	name := e.Op + " (request " + e.RequestID + ")"
	return httperr.TransportMessage("salesforce", name, e.Timeout, e.Err)
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

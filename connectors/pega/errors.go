package pega

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmsync/crmsync/internal/httperr"
)

// Endpoints, as errors name them.
const (
	EndpointPostRoutingEvents = "PostRoutingEvents"
	EndpointToken             = "oauth2_token"
)

// ErrFail is Pega answering Fail: it refused the assignment (the CSR is no
// longer available, the conversation is gone or taken). Sending it again
// does not help; the caller should route the conversation again.
var ErrFail = errors.New("pega: PostRoutingEvents answered Fail")

// HTTPError is an answer with a status outside 2xx.
type HTTPError struct {
	Endpoint string
	Status   int
	// RetryAfter is the Retry-After header (seconds or an HTTP date); zero
	// when absent.
	RetryAfter time.Duration
	// Body is the start of the answer, secrets redacted.
	Body string
}

func (e *HTTPError) Error() string {
	return httperr.StatusMessage("pega", e.Endpoint, e.Status, "", e.Body)
}

// Temporary reports whether the status may clear by itself: 429 and 5xx.
func (e *HTTPError) Temporary() bool { return httperr.Temporary(e.Status) }

// TransportError is a call that got no complete answer: connection
// refused, reset or dropped, or a timeout.
type TransportError struct {
	Endpoint string
	Err      error
	Timeout  bool
}

func (e *TransportError) Error() string {
	return httperr.TransportMessage("pega", e.Endpoint, e.Timeout, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Temporary is always true: the peer may come back.
func (e *TransportError) Temporary() bool { return true }

// ResponseError is a 2xx answer that cannot be read: not JSON, too large,
// or without a _status of Success or Fail. Something other than Pega's
// service answered (a proxy's page, a wrong path), so retrying does not
// help.
type ResponseError struct {
	Endpoint string
	Reason   string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("pega: %s: unreadable answer: %s", e.Endpoint, e.Reason)
}

// Retryable classifies err for a retry policy: true for transport errors,
// timeouts, 429 and 5xx (with the wait the server asked for, zero when it
// did not say); false for ErrFail (route again instead), other 4xx, an
// unreadable answer, a bad argument and anything else.
//
// A retry after a 5xx or a timeout may repeat an assignment Pega already
// took; Pega then answers Fail or Success for the same CSR, and both are
// safe to act on.
func Retryable(err error) (ok bool, after time.Duration) {
	var he *HTTPError
	var te *TransportError
	switch {
	case err == nil, errors.Is(err, ErrFail):
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

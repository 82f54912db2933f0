package crm

import (
	"errors"
	"fmt"
	"time"

	"github.com/crmsync/crmsync/internal/httperr"
)

// ErrNotConfigured is returned when the step needs an endpoint (or a file
// kind) the config leaves out.
var ErrNotConfigured = errors.New("crm: endpoint not configured")

// ErrIncompleteURL is returned when a variable in an endpoint URL's path
// renders empty, e.g. update_record before RECORD_ID is known. Retrying
// does not help.
var ErrIncompleteURL = errors.New("crm: a variable in the url path is empty")

// ErrNotAuthorized is returned under the authorization_code grant until an
// admin has authorized crmsync (AuthCodeURL, then Exchange) or a refresh
// token is configured.
var ErrNotAuthorized = errors.New("crm: oauth2: not authorized yet: no refresh token")

// HTTPError is a response with a status outside 2xx.
type HTTPError struct {
	Endpoint string
	Status   int
	// RetryAfter is the Retry-After header, in seconds or as an HTTP date;
	// zero when absent.
	RetryAfter time.Duration
	// Body is the start of the response body, secrets redacted.
	Body string
}

func (e *HTTPError) Error() string {
	return httperr.StatusMessage("crm", e.Endpoint, e.Status, "", e.Body)
}

// TransportError is a request that got no complete answer: connection
// refused, reset or dropped, or a timeout.
type TransportError struct {
	Endpoint string
	Err      error
	Timeout  bool
}

func (e *TransportError) Error() string {
	return httperr.TransportMessage("crm", e.Endpoint, e.Timeout, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// ResponseError is a 2xx response the config cannot read: not JSON, or
// without the configured data location or id. It is a config problem, so
// retrying does not help.
type ResponseError struct {
	Endpoint string
	Reason   string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("crm: %s: response: %s", e.Endpoint, e.Reason)
}

// Package httperr holds what the HTTP connectors (crm, pega, salesforce)
// share in their errors: the wording of a status outside 2xx and of a call
// that got no complete answer, the Retry-After header, and the shortening
// of answer bodies. Each connector keeps its own exported error types, so
// callers match them with errors.As as before; only the plumbing lives
// here.
package httperr

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxMessageBody bounds the body an error message quotes: enough to read
// the peer's own complaint, short enough to keep a log line a line.
const maxMessageBody = 200

// StatusMessage words an answer with a status outside 2xx as
// "<peer>: <name>: status N <text> (request <id>): <body start>". The
// status text, the request part and the body part are left out when empty;
// the body's whitespace is folded so that the message stays on one line.
func StatusMessage(peer, name string, status int, requestID, body string) string {
	s := fmt.Sprintf("%s: %s: status %d", peer, name, status)
	if t := http.StatusText(status); t != "" {
		s += " " + strings.ToLower(t)
	}
	if requestID != "" {
		s += " (request " + requestID + ")"
	}
	if b := strings.Join(strings.Fields(Cut(body, maxMessageBody)), " "); b != "" {
		s += ": " + b
	}
	return s
}

// TransportMessage words a call that got no complete answer as
// "<peer>: <name>: [timeout: ]<err>".
func TransportMessage(peer, name string, timeout bool, err error) string {
	if timeout {
		return fmt.Sprintf("%s: %s: timeout: %v", peer, name, err)
	}
	return fmt.Sprintf("%s: %s: %v", peer, name, err)
}

// Temporary reports whether a status may clear by itself: 429 and 5xx.
func Temporary(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// RetryAfter reads a Retry-After header, in seconds or as an HTTP date, as
// the wait from now. It is zero when the header is absent, unreadable,
// negative or already past, so that a peer's bad header never stalls a
// retry.
func RetryAfter(h string, now time.Time) time.Duration {
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

// Cut shortens s to at most n bytes without splitting a UTF-8 sequence, so
// that a quoted body stays valid text.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Redacted returns an error that shows msg, a redacted form of err's
// message, but keeps err in the chain for errors.Is and errors.As.
func Redacted(msg string, err error) error {
	return redactedError{msg, err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

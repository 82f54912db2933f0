package samplecrm

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// requestLogSize is how many requests the log keeps; older ones drop out.
	requestLogSize = 10_000
	// logBodyMax is how much of each request body the log keeps.
	logBodyMax = 64 << 10
)

// RequestLog is one request as the server saw it. Credentials are redacted:
// the values of Authorization, Proxy-Authorization and the configured auth
// header, and client_secret, code and refresh_token sent to /oauth/token.
type RequestLog struct {
	Time     time.Time   `json:"time"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query,omitempty"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body,omitempty"` // the first 64 KiB
	Status   int         `json:"status"`         // 0 when the connection was dropped or the client left
}

// requestRing keeps the last size entries.
type requestRing struct {
	mu   sync.Mutex
	size int
	buf  []RequestLog
	next int // where the next entry goes once buf is full
}

func (rr *requestRing) add(e RequestLog) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.buf) < rr.size {
		rr.buf = append(rr.buf, e)
		return
	}
	rr.buf[rr.next] = e
	rr.next = (rr.next + 1) % rr.size
}

func (rr *requestRing) list() []RequestLog {
	rr.mu.Lock()
	out := make([]RequestLog, 0, len(rr.buf))
	out = append(out, rr.buf[rr.next:]...)
	out = append(out, rr.buf[:rr.next]...)
	rr.mu.Unlock()
	for i := range out {
		out[i].Header = out[i].Header.Clone()
	}
	return out
}

func (rr *requestRing) reset() {
	rr.mu.Lock()
	rr.buf, rr.next = nil, 0
	rr.mu.Unlock()
}

// Requests returns a copy of the logged requests, oldest first: the last
// 10,000 served.
func (s *Server) Requests() []RequestLog { return s.requests.list() }

// ResetRequests empties the request log.
func (s *Server) ResetRequests() { s.requests.reset() }

// peekBody reads the start of the body for the log and puts it back in front
// of the rest, so handlers still see the whole body.
func peekBody(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, logBodyMax))
	rest := io.Reader(r.Body)
	if err != nil {
		rest = errReader{err}
	}
	r.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(head), rest), Closer: r.Body}
	return string(head)
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// redactHeader returns the header to log. Without credentials in it, that
// is the request's own header, which nothing changes once it is read (and
// Requests hands out copies); only a header with something to hide is
// copied.
func (s *Server) redactHeader(h http.Header) http.Header {
	var out http.Header
	for _, name := range []string{"Authorization", "Proxy-Authorization", s.opts.HeaderName} {
		if name == "" {
			continue
		}
		if v := h.Values(name); len(v) > 0 {
			if out == nil {
				out = h.Clone()
			}
			out[http.CanonicalHeaderKey(name)] = redactAll(len(v))
		}
	}
	if out == nil {
		return h
	}
	return out
}

func redactAll(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = redactedValue
	}
	return out
}

// redactForm hides the secrets in a token request body.
func redactForm(body string) string {
	if body == "" {
		return body
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return redactedValue
	}
	changed := false
	for _, k := range []string{"client_secret", "code", "refresh_token", "password"} {
		if v, ok := form[k]; ok {
			form[k] = redactAll(len(v))
			changed = true
		}
	}
	if !changed {
		return body
	}
	return form.Encode()
}

func (s *Server) getRequests(w http.ResponseWriter, _ *http.Request) error {
	writeData(w, http.StatusOK, itemList[RequestLog]{Items: s.Requests()})
	return nil
}

func (s *Server) deleteRequests(w http.ResponseWriter, _ *http.Request) error {
	s.ResetRequests()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

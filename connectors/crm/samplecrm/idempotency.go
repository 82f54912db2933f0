package samplecrm

import (
	"bytes"
	"net/http"
	"sync"
)

// idempotencyKeep is how many answered keys are remembered; older ones are
// forgotten first.
const idempotencyKeep = 100_000

// idempotency remembers the answer to each POST that carried an
// Idempotency-Key header. Keys are per path, so one key cannot return an
// account where a comment was asked for.
type idempotency struct {
	mu      sync.Mutex
	entries map[string]*idemEntry
	order   []string // answered keys, a ring of idempotencyKeep
	next    int
}

type idemEntry struct {
	done chan struct{} // closed when the first request has finished

	// Set before done is closed; ok is false when the first request failed
	// and the key is free again.
	ok          bool
	status      int
	contentType string
	location    string
	body        []byte
}

// claim returns the entry for key and whether the caller owns it and must
// run the request.
func (id *idempotency) claim(key string) (*idemEntry, bool) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if e, ok := id.entries[key]; ok {
		return e, false
	}
	if id.entries == nil {
		id.entries = map[string]*idemEntry{}
	}
	e := &idemEntry{done: make(chan struct{})}
	id.entries[key] = e
	return e, true
}

// finish records the answer. Only a 2xx is kept: a request that failed can
// be retried with the same key.
func (id *idempotency) finish(key string, e *idemEntry, rec *recorder) {
	id.mu.Lock()
	defer id.mu.Unlock()
	defer close(e.done)
	if rec.status < 200 || rec.status > 299 {
		delete(id.entries, key)
		return
	}
	e.ok = true
	e.status = rec.status
	e.contentType = rec.Header().Get("Content-Type")
	e.location = rec.Header().Get("Location")
	e.body = rec.body.Bytes()
	if len(id.order) < idempotencyKeep {
		id.order = append(id.order, key)
		return
	}
	delete(id.entries, id.order[id.next])
	id.order[id.next] = key
	id.next = (id.next + 1) % idempotencyKeep
}

// idempotent replays the first answer to a POST with a known
// Idempotency-Key. A request that arrives while the first is still running
// waits for it.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		key = r.URL.Path + "\x00" + key
		for {
			e, owner := s.idem.claim(key)
			if owner {
				rec := &recorder{ResponseWriter: w}
				defer s.idem.finish(key, e, rec)
				next.ServeHTTP(rec, r)
				return
			}
			select {
			case <-e.done:
			case <-r.Context().Done():
				return
			}
			if e.ok {
				h := w.Header()
				h.Set("Content-Type", e.contentType)
				if e.location != "" {
					h.Set("Location", e.location)
				}
				h.Set("Idempotent-Replayed", "true")
				w.WriteHeader(e.status)
				_, _ = w.Write(e.body)
				return
			}
		}
	})
}

// recorder passes a response through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

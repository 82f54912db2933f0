package samplecrm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FaultMode is how a faulty request fails.
type FaultMode string

const (
	// FaultStatus answers Status with a JSON error body. It is what the
	// empty mode means.
	FaultStatus FaultMode = "status"
	// FaultSlow waits Delay, or until the request is cancelled, and then
	// serves the request normally.
	FaultSlow FaultMode = "slow"
	// FaultDrop closes the connection without answering.
	FaultDrop FaultMode = "drop"
)

// Fault makes matching requests fail. The zero value answers every /api
// request with a 503 until cleared.
type Fault struct {
	Mode FaultMode // "" means FaultStatus

	// Status is the status FaultStatus answers; 0 means 503.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header in seconds,
	// as a 429 or 503 would.
	RetryAfter int
	// Delay is how long FaultSlow waits.
	Delay time.Duration

	// PathPrefix limits the fault to paths that start with it; "" means every
	// /api request. /_control is never faulted, so a fault can always be
	// cleared.
	PathPrefix string
	// Count is how many matching requests get the fault; 0 means no limit.
	Count int
	// Until ends the fault at that time; zero means no time limit.
	Until time.Time
}

// faults holds the current fault. active lets requests skip the mutex when
// there is none, which is nearly always.
type faults struct {
	active atomic.Bool
	mu     sync.Mutex
	f      Fault
	left   int // requests left when f.Count > 0
}

// SetFault replaces any current fault with f.
func (s *Server) SetFault(f Fault) {
	if f.Mode == "" {
		f.Mode = FaultStatus
	}
	if f.Mode == FaultStatus && f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	s.faults.mu.Lock()
	s.faults.f, s.faults.left = f, f.Count
	s.faults.active.Store(true)
	s.faults.mu.Unlock()
	s.log.Info("samplecrm: fault set", slog.String("mode", string(f.Mode)), slog.Int("status", f.Status),
		slog.String("path_prefix", f.PathPrefix), slog.Int("count", f.Count))
}

// ClearFault removes the current fault, if any.
func (s *Server) ClearFault() {
	s.faults.mu.Lock()
	s.faults.f, s.faults.left = Fault{}, 0
	s.faults.active.Store(false)
	s.faults.mu.Unlock()
	s.log.Info("samplecrm: fault cleared")
}

// current returns the fault in force and how many requests it has left.
func (fs *faults) current(now time.Time) (Fault, int, bool) {
	if !fs.active.Load() {
		return Fault{}, 0, false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.active.Load() {
		return Fault{}, 0, false
	}
	if !fs.f.Until.IsZero() && !now.Before(fs.f.Until) {
		fs.clearLocked()
		return Fault{}, 0, false
	}
	return fs.f, fs.left, true
}

// take reports whether a request for path gets the fault, counting it.
func (fs *faults) take(path string, now time.Time) (Fault, bool) {
	if !fs.active.Load() || strings.HasPrefix(path, "/_control") {
		return Fault{}, false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.active.Load() {
		return Fault{}, false
	}
	f := fs.f
	if !f.Until.IsZero() && !now.Before(f.Until) {
		fs.clearLocked()
		return Fault{}, false
	}
	if f.PathPrefix == "" {
		if path != "/api" && !strings.HasPrefix(path, "/api/") {
			return Fault{}, false
		}
	} else if !strings.HasPrefix(path, f.PathPrefix) {
		return Fault{}, false
	}
	if f.Count > 0 {
		fs.left--
		if fs.left <= 0 {
			fs.clearLocked()
		}
	}
	return f, true
}

func (fs *faults) clearLocked() {
	fs.f, fs.left = Fault{}, 0
	fs.active.Store(false)
}

// serveFault applies f to the request. It reports whether the request is
// finished; a slow fault that ran its course is not.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Mode {
	case FaultSlow:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case FaultDrop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// HTTP/2 cannot hijack; aborting resets the stream instead.
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
		return true
	default:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		writeJSON(w, status, errorBody{Error: fmt.Sprintf("sample CRM: injected fault, status %d", status)})
		return true
	}
}

// faultJSON is a fault on the /_control/fail endpoint.
type faultJSON struct {
	Mode       FaultMode  `json:"mode"`
	Status     int        `json:"status,omitempty"`
	RetryAfter int        `json:"retry_after,omitempty"`
	DelayMS    int64      `json:"delay_ms,omitempty"`
	PathPrefix string     `json:"path_prefix,omitempty"`
	Count      int        `json:"count,omitempty"`
	ForMS      int64      `json:"for_ms,omitempty"`
	Until      *time.Time `json:"until,omitempty"` // answers only
	Left       int        `json:"left,omitempty"`  // answers only: requests left of Count
}

func (s *Server) getFault(w http.ResponseWriter, _ *http.Request) error {
	f, left, ok := s.faults.current(time.Now())
	if !ok {
		writeData(w, http.StatusOK, nil)
		return nil
	}
	writeData(w, http.StatusOK, faultView(f, left))
	return nil
}

func faultView(f Fault, left int) faultJSON {
	v := faultJSON{
		Mode:       f.Mode,
		Status:     f.Status,
		RetryAfter: f.RetryAfter,
		DelayMS:    f.Delay.Milliseconds(),
		PathPrefix: f.PathPrefix,
		Count:      f.Count,
	}
	if f.Count > 0 {
		v.Left = left
	}
	if !f.Until.IsZero() {
		until := f.Until.UTC()
		v.Until = &until
	}
	return v
}

// postFault serves POST /_control/fail, e.g.
//
//	{"mode":"status","status":503,"count":5,"path_prefix":"/api/records"}
func (s *Server) postFault(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var req faultJSON
	if err := dec.Decode(&req); err != nil {
		return invalid("body: %v", err)
	}
	if req.Until != nil || req.Left != 0 {
		return invalid("body: until and left are read-only; use for_ms")
	}
	f := Fault{
		Mode:       req.Mode,
		Status:     req.Status,
		RetryAfter: req.RetryAfter,
		Delay:      time.Duration(req.DelayMS) * time.Millisecond,
		PathPrefix: req.PathPrefix,
		Count:      req.Count,
	}
	switch f.Mode {
	case "", FaultStatus, FaultSlow, FaultDrop:
	default:
		return invalid("mode: want status, slow or drop, got %q", f.Mode)
	}
	switch {
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return invalid("status: want an HTTP status from 200 to 599, got %d", f.Status)
	case req.RetryAfter < 0:
		return invalid("retry_after: must not be negative")
	case req.DelayMS < 0:
		return invalid("delay_ms: must not be negative")
	case req.Count < 0:
		return invalid("count: must not be negative")
	case req.ForMS < 0:
		return invalid("for_ms: must not be negative")
	case f.Mode == FaultSlow && req.DelayMS == 0:
		return invalid("delay_ms: required for mode slow")
	}
	if req.ForMS > 0 {
		f.Until = time.Now().Add(time.Duration(req.ForMS) * time.Millisecond)
	}
	s.SetFault(f)
	cur, left, _ := s.faults.current(time.Now())
	writeData(w, http.StatusOK, faultView(cur, left))
	return nil
}

func (s *Server) deleteFault(w http.ResponseWriter, _ *http.Request) error {
	s.ClearFault()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

// retryMillis is what a browser waits before reconnecting a dropped
// stream.
const retryMillis = 2000

// readBatch is how many entries one read of a live connection takes.
const readBatch = 100

// Handler serves GET /v1/agents/{id}/events, the agent's stream as
// Server-Sent Events; the caller registers it under a pattern with {id}.
// The caller must be the system or the agent itself, with its token in
// the Authorization header or the access_token query parameter (a
// browser's EventSource cannot set headers).
//
// The stream starts after the Last-Event-ID header or the last_event_id
// query parameter when either is given; otherwise with new events only,
// or with everything kept when since=start. A client resuming from an
// entry that was trimmed away first gets a Stream_Gap event.
func (s *Streams) Handler(auth *access.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, auth) })
}

// start is where a connection begins reading.
type start struct {
	after  string // entry id, or "" for new events only
	resume bool   // after came from the client: check for a gap
}

func (s *Streams) serve(w http.ResponseWriter, r *http.Request, auth *access.Authenticator) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpjson.Write(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "", "only GET is served here"))
		return
	}
	agent := r.PathValue("id")
	if err := routing.ValidateID(agent); err != nil {
		httpjson.Error(w, r, s.log, crmsync.Errorf(crmsync.EINVALID, "id", "%v", err))
		return
	}
	if auth == nil {
		httpjson.Error(w, r, s.log, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "no credential is accepted here"))
		return
	}
	caller, err := auth.Caller(r, agent)
	if err != nil {
		httpjson.Error(w, r, s.log, err)
		return
	}
	if !caller.MayActAs(agent) {
		httpjson.Error(w, r, s.log, crmsync.Errorf(crmsync.EFORBIDDEN, "id", "this token may not read agent %s's events", agent))
		return
	}
	st, err := startOf(r)
	if err != nil {
		httpjson.Error(w, r, s.log, err)
		return
	}
	select {
	case <-s.closed:
		httpjson.Error(w, r, s.log, crmsync.Errorf(crmsync.EUNAVAILABLE, "", "the server is shutting down; try again"))
		return
	default:
	}
	wt, ok := s.register(agent)
	if !ok {
		w.Header().Set("Retry-After", "10")
		httpjson.Write(w, http.StatusTooManyRequests, errorBody("too_many_requests", "id",
			fmt.Sprintf("agent %s already has %d event streams open; close one first", agent, s.cfg.MaxPerAgent)))
		return
	}
	defer s.unregister(agent, wt)

	ctx := r.Context()
	pos, gap, err := s.position(ctx, agent, st)
	if err != nil {
		s.log.Error("stream: cannot open a stream", "agent", agent, "err", err)
		httpjson.Error(w, r, s.log, crmsync.Errorf(crmsync.EUNAVAILABLE, "", "the event store cannot be reached; try again"))
		return
	}

	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut every stream; this one lives
	// as long as the client stays. Not every writer supports it.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	c := &conn{s: s, w: w, rc: rc, agent: agent, pos: pos}
	if err := c.write(fmt.Appendf(nil, "retry: %d\n\n", retryMillis)); err != nil {
		return
	}
	if gap != nil {
		if err := c.send(*gap); err != nil {
			return
		}
	}
	if err := c.flush(); err != nil {
		return
	}
	c.loop(ctx, wt)
}

// startOf reads where the client wants to start.
func startOf(r *http.Request) (start, error) {
	q := r.URL.Query()
	since := q.Get("since")
	if since != "" && since != "start" && since != "now" {
		return start{}, crmsync.Errorf(crmsync.EINVALID, "since", `must be "start" or "now", not %q`, since)
	}
	field, id := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if id == "" {
		field, id = "last_event_id", q.Get("last_event_id")
	}
	if id != "" {
		if _, err := parseID(id); err != nil {
			return start{}, crmsync.Errorf(crmsync.EINVALID, field, "%v", err)
		}
		return start{after: id, resume: true}, nil
	}
	if since == "start" {
		return start{after: "0-0"}, nil
	}
	return start{}, nil
}

// position resolves st to an entry id to read after, and the gap event to
// send first when entries after the client's id were trimmed.
func (s *Streams) position(ctx context.Context, agent string, st start) (string, *Event, error) {
	if !st.resume {
		if st.after != "" {
			return st.after, nil, nil
		}
		id, err := s.lastID(ctx, agent)
		return id, nil, err
	}
	first, err := s.firstID(ctx, agent)
	if err != nil || first == "" {
		return st.after, nil, err
	}
	after, _ := parseID(st.after)
	oldest, err := parseID(first)
	if err != nil {
		return "", nil, fmt.Errorf("stream: entry id %q of %s: %w", first, agent, err)
	}
	// The client's entry is older than anything kept, so it was trimmed,
	// and so may have been the ones after it. ("0-0" is never an entry:
	// it means "from the start".)
	if st.after == "0-0" || !after.less(oldest) {
		return st.after, nil, nil
	}
	d, _ := json.Marshal(map[string]string{"last_event_id": st.after, "oldest_id": first})
	return st.after, &Event{Type: GapType, Data: d}, nil
}

// conn is one open SSE response.
type conn struct {
	s     *Streams
	w     http.ResponseWriter
	rc    *http.ResponseController
	agent string
	pos   string // the last entry sent (or the one to start after)
	buf   bytes.Buffer
}

// loop sends what is new each time the connection is woken, polled or
// due a heartbeat, until the client goes, the request ends or Streams is
// closed.
func (c *conn) loop(ctx context.Context, wt *waiter) {
	s := c.s
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	poll := time.NewTimer(s.cfg.Poll)
	defer poll.Stop()
	failing := false
	for {
		err := c.drain(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errWrite):
			return
		case err != nil:
			// Ending the response would make the browser reconnect into
			// the same outage; keep it open and try again at the next poll.
			if !failing {
				s.log.Warn("stream: read failed; retrying", "agent", c.agent, "err", err)
			}
			failing = true
		default:
			failing = false
		}

		// Without a subscription no wake-up comes: poll instead.
		var pollC <-chan time.Time
		if failing || !s.subscribed.Load() {
			poll.Reset(s.cfg.Poll)
			pollC = poll.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-wt.wake:
		case <-pollC:
		case <-heartbeat.C:
			if c.write([]byte(": ping\n\n")) != nil || c.flush() != nil {
				return
			}
		}
	}
}

var errWrite = errors.New("stream: client gone")

// drain sends every entry after c.pos, flushing after each batch.
func (c *conn) drain(ctx context.Context) error {
	for {
		evs, err := c.s.read(ctx, c.agent, c.pos, readBatch)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := c.send(ev); err != nil {
				return err
			}
			c.pos = ev.ID
		}
		if len(evs) > 0 {
			if err := c.flush(); err != nil {
				return err
			}
		}
		if len(evs) < readBatch {
			return nil
		}
	}
}

// frame is the data line's object: what the adapter page posts on.
type frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// send writes one event. The encoder compacts Data, so the frame is one
// line whatever the writer of the entry put in it, and does not escape
// HTML so the data reaches the page byte for byte.
func (c *conn) send(ev Event) error {
	c.buf.Reset()
	if ev.ID != "" {
		c.buf.WriteString("id: ")
		c.buf.WriteString(ev.ID)
		c.buf.WriteByte('\n')
	}
	c.buf.WriteString("data: ")
	enc := json.NewEncoder(&c.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(frame{Type: ev.Type, Data: ev.Data}); err != nil {
		// Data was checked when read, so this is a fault of ours; skip
		// the event rather than break the stream.
		c.s.log.Error("stream: cannot encode an event", "agent", c.agent, "id", ev.ID, "err", err)
		return nil
	}
	c.buf.WriteByte('\n') // Encode ended the line; this ends the event
	return c.write(c.buf.Bytes())
}

func (c *conn) write(b []byte) error {
	if _, err := c.w.Write(b); err != nil {
		return errWrite
	}
	return nil
}

func (c *conn) flush() error {
	if err := c.rc.Flush(); err != nil {
		return errWrite
	}
	return nil
}

// errorBody is httpjson's error shape, for the statuses crmsync's codes
// do not cover.
func errorBody(code, field, msg string) map[string]any {
	e := map[string]string{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	return map[string]any{"error": e}
}

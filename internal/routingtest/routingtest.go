// Package routingtest holds the test helpers shared by the routing
// packages: keys and a clock of a test's own, a reader of Redis streams
// that remembers what it saw, and JSON over HTTP. It is imported
// only by tests.
//
// It does not import package routing, so that routing's own internal tests
// can use it too.
package routingtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/redistest"
)

// Start is where a test's fake clock begins: a fixed time, so that ids,
// scores and expiries come out the same on every run.
var Start = time.UnixMilli(1_733_130_000_000)

// NewClock returns a fake clock reading Start.
func NewClock() *fakeclock.Clock { return fakeclock.New(Start) }

// Prefix returns a key prefix no other test uses, its keys deleted when the
// test ends. It holds the hash tag {routing}, which every routing package
// requires so that its scripts may touch all of its keys in one Redis
// Cluster slot.
func Prefix(tb testing.TB, rdb redis.UniversalClient) string {
	tb.Helper()
	return redistest.Prefix(tb, rdb) + "{routing}:"
}

// AgentEvents is the key of an agent's event stream under prefix, which the
// engine and pull mode append to and routing/stream serves.
func AgentEvents(prefix, agent string) string { return prefix + "agent:" + agent + ":events" }

// Cursor reads Redis streams a little at a time: each Read of a key returns
// what was appended since the last Read of that key, so a test checks only
// what its last step caused.
type Cursor struct {
	rdb  redis.UniversalClient
	seen map[string]string // key -> id of the last entry read
}

// NewCursor returns a Cursor that has read nothing yet.
func NewCursor(rdb redis.UniversalClient) *Cursor {
	return &Cursor{rdb: rdb, seen: map[string]string{}}
}

// Read returns the entries of the stream at key past the last Read of it
// (all of them the first time), oldest first.
func (c *Cursor) Read(tb testing.TB, key string) []redis.XMessage {
	tb.Helper()
	// No entry has the id 0-0, so past it is the whole stream.
	mark := "0-0"
	if m, ok := c.seen[key]; ok {
		mark = m
	}
	msgs, err := c.rdb.XRange(context.Background(), key, "("+mark, "+").Result()
	require.NoError(tb, err)
	if len(msgs) > 0 {
		c.seen[key] = msgs[len(msgs)-1].ID
	}
	return msgs
}

// Last is the id of the last entry read from key, "" before the first Read.
func (c *Cursor) Last(key string) string { return c.seen[key] }

// Seek makes the next Read of key return what follows id ("" for the whole
// stream), as a client that reconnects from an older position would read.
func (c *Cursor) Seek(key, id string) {
	if id == "" {
		delete(c.seen, key)
		return
	}
	c.seen[key] = id
}

// Request builds a request to url carrying body (nil for none), with token
// as its bearer token unless token is empty.
func Request(tb testing.TB, method, url string, body io.Reader, token string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(tb, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// Answer is a response as read back.
type Answer struct {
	Status int
	Header http.Header
	// Body is the decoded JSON; nil when the response had no body.
	Body map[string]any
	Raw  string
}

// ErrField is the field an error answer names.
func (a Answer) ErrField() string { return ErrField(a.Body) }

// ErrMessage is the message of an error answer.
func (a Answer) ErrMessage() string { return ErrMessage(a.Body) }

// Do sends req with c and reads the answer, failing the test when a
// non-empty body is not JSON.
func Do(tb testing.TB, c *http.Client, req *http.Request) Answer {
	tb.Helper()
	res, err := c.Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	a := Answer{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 {
		require.NoError(tb, json.Unmarshal(raw, &a.Body), "answer is not JSON: %s", raw)
	}
	return a
}

// ErrField is the field named by the error in a decoded JSON answer, or ""
// when there is none.
func ErrField(body map[string]any) string { return errorPart(body, "field") }

// ErrMessage is the message of the error in a decoded JSON answer, or ""
// when there is none.
func ErrMessage(body map[string]any) string { return errorPart(body, "message") }

func errorPart(body map[string]any, name string) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e[name].(string)
	return s
}

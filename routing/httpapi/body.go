package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// MaxBodyBytes caps every request body. The largest legitimate one is a
// conversation with its attributes, a few kilobytes.
const MaxBodyBytes = 64 << 10

// body is a request's JSON object, read field by field. encoding/json's
// own errors name neither a map key nor an array index, and a client
// needs "capacity.chat" to find its mistake, so each field is decoded on
// its own. The first problem is kept in err; later getters do nothing.
type body struct {
	fields map[string]json.RawMessage
	err    error
}

// readBody reads r's body as one JSON object holding only the allowed
// fields. An empty body is an empty object when optional, an error
// otherwise.
func readBody(w http.ResponseWriter, r *http.Request, optional bool, allowed ...string) *body {
	b := &body{fields: map[string]json.RawMessage{}}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.err = crmsync.Errorf(crmsync.ETOOLARGE, "body", "is larger than %d bytes", MaxBodyBytes)
		} else {
			b.err = crmsync.Errorf(crmsync.EINVALID, "body", "could not be read")
		}
		return b
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		if !optional {
			b.err = crmsync.Errorf(crmsync.EINVALID, "body", "is empty; want a JSON object")
		}
		return b
	}
	if raw[0] != '{' {
		b.err = crmsync.Errorf(crmsync.EINVALID, "body", "want a JSON object, got %s", kind(raw))
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b.fields); err != nil {
		b.err = syntaxError(err)
		return b
	}
	if dec.More() {
		b.err = crmsync.Errorf(crmsync.EINVALID, "body", "holds more than one JSON value")
		return b
	}
	for _, k := range slices.Sorted(maps.Keys(b.fields)) {
		if !slices.Contains(allowed, k) {
			b.err = crmsync.Errorf(crmsync.EINVALID, k, "is not a known field")
			return b
		}
	}
	return b
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON (offset %d)", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON (it ends too soon)")
	}
	return crmsync.Errorf(crmsync.EINVALID, "body", "is not valid JSON")
}

// kind names a JSON value's type for an error message.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func (b *body) fail(field, format string, args ...any) {
	if b.err == nil {
		b.err = crmsync.Errorf(crmsync.EINVALID, field, format, args...)
	}
}

// get returns the field's raw value; null counts as absent.
func (b *body) get(name string) (json.RawMessage, bool) {
	if b.err != nil {
		return nil, false
	}
	v, ok := b.fields[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// require notes a missing field.
func (b *body) require(name string) {
	if _, ok := b.get(name); !ok {
		b.fail(name, "is required")
	}
}

func (b *body) str(name string) string {
	v, ok := b.get(name)
	if !ok {
		return ""
	}
	return decodeString(b, name, v)
}

func decodeString(b *body, field string, v json.RawMessage) string {
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		b.fail(field, "want a string, got %s", kind(v))
	}
	return s
}

// id reads an id field checked by routing.ValidateID; "" when absent.
func (b *body) id(name string) string {
	s := b.str(name)
	if _, ok := b.get(name); ok && b.err == nil {
		if err := routing.ValidateID(s); err != nil {
			b.fail(name, "%v", err)
		}
	}
	return s
}

func (b *body) boolean(name string) bool {
	v, ok := b.get(name)
	if !ok {
		return false
	}
	var x bool
	if (v[0] != 't' && v[0] != 'f') || json.Unmarshal(v, &x) != nil {
		b.fail(name, "want true or false, got %s", kind(v))
	}
	return x
}

func (b *body) integer(name string) int {
	v, ok := b.get(name)
	if !ok {
		return 0
	}
	return decodeInt(b, name, v)
}

func decodeInt(b *body, field string, v json.RawMessage) int {
	if kind(v) != "a number" {
		b.fail(field, "want an integer, got %s", kind(v))
		return 0
	}
	if bytes.ContainsAny(v, ".eE") {
		b.fail(field, "want an integer, got %s", truncate(string(v), 40))
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 32)
	if err != nil {
		b.fail(field, "want an integer between %d and %d, got %s", -1<<31, 1<<31-1, truncate(string(v), 40))
		return 0
	}
	return int(n)
}

// duration reads a Go duration string such as "30s" or "2m30s". Numbers
// are refused rather than guessed at: 30 could mean seconds or
// milliseconds, and a wrong guess would go unnoticed.
func (b *body) duration(name string) time.Duration {
	v, ok := b.get(name)
	if !ok {
		return 0
	}
	if v[0] != '"' {
		b.fail(name, `want a duration string such as "30s" or "2m", got %s`, kind(v))
		return 0
	}
	s := decodeString(b, name, v)
	if b.err != nil {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.fail(name, `want a duration string such as "30s" or "2m", got %q`, truncate(s, 40))
		return 0
	}
	return d
}

func (b *body) object(name string) (map[string]json.RawMessage, bool) {
	v, ok := b.get(name)
	if !ok {
		return nil, false
	}
	var m map[string]json.RawMessage
	if v[0] != '{' || json.Unmarshal(v, &m) != nil {
		b.fail(name, "want an object, got %s", kind(v))
		return nil, false
	}
	return m, true
}

// intMap reads an object of integers; nil when absent.
func (b *body) intMap(name string) map[string]int {
	m, ok := b.object(name)
	if !ok {
		return nil
	}
	out := make(map[string]int, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[k] = decodeInt(b, name+"."+k, m[k])
	}
	return out
}

// stringMap reads an object of strings; nil when absent.
func (b *body) stringMap(name string) map[string]string {
	m, ok := b.object(name)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if string(m[k]) == "null" {
			b.fail(name+"."+k, "want a string, got null")
			continue
		}
		out[k] = decodeString(b, name+"."+k, m[k])
	}
	return out
}

// ids reads an array of ids; nil when absent.
func (b *body) ids(name string) []string {
	v, ok := b.get(name)
	if !ok {
		return nil
	}
	var a []json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &a) != nil {
		b.fail(name, "want an array of strings, got %s", kind(v))
		return nil
	}
	out := make([]string, 0, len(a))
	for i, x := range a {
		f := name + "[" + strconv.Itoa(i) + "]"
		if string(x) == "null" {
			b.fail(f, "want a string, got null")
			continue
		}
		s := decodeString(b, f, x)
		if b.err == nil {
			if err := routing.ValidateID(s); err != nil {
				b.fail(f, "%v", err)
			}
		}
		out = append(out, s)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

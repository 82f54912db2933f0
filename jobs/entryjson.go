package jobs

import (
	"math"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/templating"
)

// appendJSON appends the entry as encoding/json would marshal it (with
// HTML escaping off, which changes no decoded value). Every job writes
// several entries, so they are built without reflection.
func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = templating.AppendJSONString(b, e.Kind)
	b = appendStringField(b, `,"event":`, e.Event)
	b = appendStringField(b, `,"event_id":`, e.EventID)
	b = appendStringField(b, `,"endpoint":`, e.Endpoint)
	b = appendStringField(b, `,"method":`, e.Method)
	b = appendStringField(b, `,"url":`, e.URL)
	if e.Status != 0 {
		b = strconv.AppendInt(append(b, `,"status":`...), int64(e.Status), 10)
	}
	if e.Duration != 0 {
		b = appendJSONFloat(append(b, `,"duration_ms":`...), e.Duration)
	}
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	b = appendStringField(b, `,"outcome":`, e.Outcome)
	b = appendStringField(b, `,"error":`, e.Error)
	return append(b, '}')
}

// marshalable reports whether appendJSON can write the entry: what
// encoding/json refuses (a year outside 0-9999, a duration that is not a
// number) is left to it, so its error is the same.
func (e *Entry) marshalable() bool {
	y := e.At.Year()
	return y >= 0 && y <= 9999 && !math.IsNaN(e.Duration) && !math.IsInf(e.Duration, 0)
}

func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return templating.AppendJSONString(append(b, key...), v)
}

// appendJSONFloat writes f as encoding/json does: plain notation, with an
// exponent only for very small or very large magnitudes.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// decodeJSON parses a response body, keeping numbers as written.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// lookup follows a dotted path: object keys, and array indexes for numeric
// segments. It returns nil when any step is missing.
func lookup(v any, path []string) any {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// present reports whether a located value counts as found: not missing,
// not null, not an empty array or object.
func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return true
}

// target narrows a located value to the object it names: a non-empty array
// stands for its first element, as search endpoints commonly answer.
func target(v any) any {
	if a, ok := v.([]any); ok && len(a) > 0 {
		return a[0]
	}
	return v
}

// idOf finds the id in a located value: the value itself when it is a
// string or number, else the value at idPath inside it.
func idOf(v any, idPath []string) (string, bool) {
	if s, ok := scalarString(v); ok {
		return s, s != ""
	}
	s, ok := scalarString(lookup(v, idPath))
	return s, ok && s != ""
}

// scalarString writes a JSON string or number as text; numbers in decimal
// without an exponent.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return numberString(x), true
	}
	return "", false
}

func numberString(n json.Number) string {
	s := string(n)
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return s
	}
	// Bound the exponent: big.Rat would build 10^exp in full.
	if exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+")); err != nil || exp > 64 || exp < -64 {
		return s
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return s
	}
	if r.IsInt() {
		return r.Num().String()
	}
	if f, err := n.Float64(); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}

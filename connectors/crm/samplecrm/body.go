package samplecrm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// payload is a request body reduced to one flat object: a Container Map or
// Container Array has already been unwrapped.
type payload map[string]any

// upload is the file part of a multipart body.
type upload struct {
	filename    string
	contentType string
	data        []byte
}

// readBody reads at most limit bytes of the request body. A longer body is a
// 413, reported through the *http.MaxBytesError that writeError recognises.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, err
		}
		return nil, invalid("body: %v", err)
	}
	return data, nil
}

// readPayload decodes a JSON, form or multipart body. For multipart bodies
// the file part, if any, is returned too.
func readPayload(w http.ResponseWriter, r *http.Request, limit int64) (payload, *upload, error) {
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" {
		return readMultipart(w, r, params["boundary"], limit)
	}
	data, err := readBody(w, r, limit)
	if err != nil {
		return nil, nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, invalid("body: empty; send a JSON object or a form")
	}
	if mediaType == "application/x-www-form-urlencoded" {
		values, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, nil, invalid("body: bad form encoding: %v", err)
		}
		return formPayload(values), nil, nil
	}
	p, err := decodeJSON(data)
	return p, nil, err
}

func formPayload(values url.Values) payload {
	p := make(payload, len(values))
	for k, v := range values {
		if len(v) > 0 {
			p[k] = v[0]
		}
	}
	return p
}

// decodeJSON decodes one JSON object and unwraps a container: an object with
// a single key whose value is an object, or an array of objects.
func decodeJSON(data []byte) (payload, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("body: invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("body: unexpected data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("body: expected a JSON object, got %s", jsonKind(v))
	}
	if len(obj) != 1 {
		return obj, nil
	}
	for name, inner := range obj {
		switch inner := inner.(type) {
		case map[string]any:
			return inner, nil
		case []any:
			if len(inner) == 0 || !allObjects(inner) {
				return obj, nil
			}
			if len(inner) != 1 {
				return nil, invalid("%s: a container array must hold exactly one object, got %d", name, len(inner))
			}
			return inner[0].(map[string]any), nil
		}
	}
	return obj, nil
}

func allObjects(list []any) bool {
	for _, v := range list {
		if _, ok := v.(map[string]any); !ok {
			return false
		}
	}
	return true
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// multipartValueLimit caps each non-file part of a multipart body.
const multipartValueLimit = 64 << 10

// readMultipart streams a multipart body. The file is the part named "file"
// or, failing that, the first part that carries a filename.
func readMultipart(w http.ResponseWriter, r *http.Request, boundary string, limit int64) (payload, *upload, error) {
	if boundary == "" {
		return nil, nil, invalid("body: multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit), boundary)
	p := payload{}
	var file *upload
	fileFromFilePart := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, multipartError(err)
		}
		name := part.FormName()
		isFile := part.FileName() != "" || name == "file"
		if !isFile {
			v, err := io.ReadAll(io.LimitReader(part, multipartValueLimit+1))
			if err != nil {
				return nil, nil, multipartError(err)
			}
			if len(v) > multipartValueLimit {
				return nil, nil, invalid("%s: form value longer than %d bytes", name, multipartValueLimit)
			}
			if _, seen := p[name]; !seen && name != "" {
				p[name] = string(v)
			}
			continue
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, multipartError(err)
		}
		if file != nil && (fileFromFilePart || name != "file") {
			continue
		}
		file = &upload{filename: part.FileName(), contentType: part.Header.Get("Content-Type"), data: data}
		fileFromFilePart = name == "file"
	}
	return p, file, nil
}

func multipartError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return err
	}
	return invalid("body: bad multipart data: %v", err)
}

// fieldSpec names a known field and the spellings that mean it. Spellings
// are compared after normalize, so "contactId" and "contact_id" are one.
type fieldSpec struct {
	name    string
	aliases []string
}

// normalize lower-cases a field name and drops '_', '-' and spaces.
func normalize(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r != '_' && r != '-' && r != ' ' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func lookupField(specs []fieldSpec, key string) (string, bool) {
	n := normalize(key)
	for _, f := range specs {
		if slices.Contains(f.aliases, n) {
			return f.name, true
		}
	}
	return "", false
}

// fields is a payload split into known fields, as strings, and the rest.
type fields struct {
	known map[string]string
	keys  map[string]string // known field -> the key the request used
	extra map[string]any
}

func (f fields) has(name string) bool {
	_, ok := f.known[name]
	return ok
}

func (f fields) empty() bool { return len(f.known) == 0 && len(f.extra) == 0 }

// key names the field as the request spelled it, for error messages.
func (f fields) key(name string) string {
	if k, ok := f.keys[name]; ok {
		return k
	}
	return name
}

// split sorts a payload into known and extra fields. Known fields must be
// strings or numbers (null counts as empty); "id" is the server's to assign
// and is dropped.
func split(p payload, specs []fieldSpec) (fields, error) {
	f := fields{known: map[string]string{}, keys: map[string]string{}, extra: map[string]any{}}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := p[k]
		if normalize(k) == "id" {
			continue
		}
		name, ok := lookupField(specs, k)
		if !ok {
			f.extra[k] = v
			continue
		}
		s, err := scalar(k, v)
		if err != nil {
			return fields{}, err
		}
		if prev, dup := f.known[name]; dup && prev != "" && s != "" && prev != s {
			return fields{}, invalid("%s and %s disagree (%q, %q)", f.keys[name], k, prev, s)
		}
		if _, dup := f.known[name]; !dup || s != "" {
			f.known[name] = s
			f.keys[name] = k
		}
	}
	return f, nil
}

// scalar renders a JSON string or number as a string.
func scalar(key string, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", invalid("%s: must be a string or number, not %s", key, jsonKind(v))
}

// flag reads a boolean field that may arrive as a JSON boolean, a number or
// a string such as "true" or "1".
func flag(key string, v any) (bool, error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case json.Number:
		return v.String() != "0", nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "0", "false", "no", "off":
			return false, nil
		case "1", "true", "yes", "on":
			return true, nil
		}
	}
	return false, invalid("%s: must be true or false", key)
}

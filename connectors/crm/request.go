package crm

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/crmsync/crmsync/templating"
)

const (
	contentJSON = "application/json"
	contentForm = "application/x-www-form-urlencoded"
)

// fileDataMark stands in for {FILE_DATA} while a base64 upload body is
// rendered; the file is streamed in its place. It is random per process so
// no session value can forge it, and plain alphanumeric so neither JSON
// nor form encoding changes it.
var fileDataMark = "crmsyncfiledata" + randomHex(16)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}

// outgoing is one rendered request. It is sent once, or twice when an
// OAuth token was refused.
type outgoing struct {
	endpoint string
	method   string
	url      string
	ctype    string
	body     []byte
	// stream, when set, opens the body afresh for each attempt; size is -1
	// when unknown (the request is then chunked).
	stream func() (body io.ReadCloser, size int64, err error)
	// display is the body as Render shows it when it is streamed.
	display string
	idem    string
}

func modeOf(ep *Endpoint) templating.Mode {
	if ep.find {
		return templating.Search
	}
	return templating.Create
}

// render builds ep's request from v.
func render(ep *Endpoint, v *templating.Values) (*outgoing, error) {
	mode := modeOf(ep)
	u, complete := ep.url.Execute(v, mode)
	if !complete {
		return nil, fmt.Errorf("crm: %s: %w", ep.name, ErrIncompleteURL)
	}
	o := &outgoing{endpoint: ep.name, method: ep.method, url: u}
	switch {
	case ep.method == "GET":
		o.url = appendQuery(u, ep, v, mode)
	case ep.form:
		o.ctype = contentForm
		o.body = formBody(ep, v, mode)
	default:
		o.ctype = contentJSON
		o.body = jsonBody(ep, v, mode)
	}
	return o, nil
}

// appendQuery adds the rendered parameters after any query already in u,
// keeping a fragment last.
func appendQuery(u string, ep *Endpoint, v *templating.Values, mode templating.Mode) string {
	frag := ""
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u, frag = u[:i], u[i:]
	}
	var b strings.Builder
	b.Grow(len(u) + len(frag) + 32*len(ep.params))
	b.WriteString(u)
	sep := byte('?')
	if i := strings.IndexByte(u, '?'); i >= 0 {
		sep = '&'
		if i == len(u)-1 || u[len(u)-1] == '&' {
			sep = 0
		}
	}
	for _, p := range ep.params {
		s := p.tmpl.Execute(v, mode)
		if s == "" {
			continue
		}
		if sep != 0 {
			b.WriteByte(sep)
		}
		sep = '&'
		b.WriteString(url.QueryEscape(p.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(s))
	}
	b.WriteString(frag)
	return b.String()
}

func formBody(ep *Endpoint, v *templating.Values, mode templating.Mode) []byte {
	var b bytes.Buffer
	b.Grow(32 * len(ep.params))
	for _, p := range ep.params {
		s := p.tmpl.Execute(v, mode)
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(s))
	}
	return b.Bytes()
}

// jsonBody writes the parameters, in config order, as an object: at the
// top level for the property format, or under the container name.
func jsonBody(ep *Endpoint, v *templating.Values, mode templating.Mode) []byte {
	b := make([]byte, 0, 16+len(ep.ContainerName)+48*len(ep.params))
	if ep.container != containerNone {
		b = append(b, '{')
		b = appendJSONString(b, ep.ContainerName)
		b = append(b, ':')
		if ep.container == containerArray {
			b = append(b, '[')
		}
	}
	b = append(b, '{')
	first := true
	for _, p := range ep.params {
		s := p.tmpl.Execute(v, mode)
		if s == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, p.name)
		b = append(b, ':')
		switch {
		case p.typ == paramNumber && isJSONNumber(s):
			b = append(b, s...)
		case p.typ == paramBoolean:
			if t, err := strconv.ParseBool(s); err == nil {
				b = strconv.AppendBool(b, t)
			} else {
				b = appendJSONString(b, s)
			}
		default:
			b = appendJSONString(b, s)
		}
	}
	b = append(b, '}')
	switch ep.container {
	case containerMap:
		b = append(b, '}')
	case containerArray:
		b = append(b, ']', '}')
	}
	return b
}

// isJSONNumber reports whether s is a number as JSON writes it (no sign
// plus, no leading zeros, no hex, no NaN).
func isJSONNumber(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// renderUpload builds the upload request for f. The file itself is only
// read while the request is sent.
func renderUpload(up *UploadEndpoint, v *templating.Values, f *File) (*outgoing, error) {
	if up.multipart {
		return renderMultipart(up, v, f)
	}
	vv := *v
	vv.Set(templating.FileData, fileDataMark)
	o, err := render(&up.Endpoint, &vv)
	if err != nil {
		return nil, err
	}
	if o.method == "GET" {
		return nil, fmt.Errorf("crm: %s: GET cannot carry a file", up.name)
	}
	pieces := bytes.Split(o.body, []byte(fileDataMark))
	if len(pieces) < 2 {
		return nil, fmt.Errorf("crm: %s: no parameter carries {FILE_DATA}", up.name)
	}
	o.display = strings.ReplaceAll(string(o.body), fileDataMark, "<file data>")
	o.body = nil
	form := up.form
	o.stream = func() (io.ReadCloser, int64, error) {
		rc := &multiReadCloser{}
		readers := make([]io.Reader, 0, 2*len(pieces))
		size := int64(0)
		for i, p := range pieces {
			readers = append(readers, bytes.NewReader(p))
			size += int64(len(p))
			if i == len(pieces)-1 {
				break
			}
			file, err := f.Open()
			if err != nil {
				_ = rc.Close()
				return nil, 0, fmt.Errorf("crm: %s: open %s: %w", up.name, f.Name, err)
			}
			rc.closers = append(rc.closers, file)
			readers = append(readers, &base64Reader{src: file, form: form})
			size += 4 * ((f.Size + 2) / 3)
		}
		rc.Reader = io.MultiReader(readers...)
		if form || f.Size <= 0 {
			size = -1
		}
		return rc, size, nil
	}
	return o, nil
}

// renderMultipart writes the parameters as form fields, then the file
// part, whose bytes are streamed from f when the request is sent.
func renderMultipart(up *UploadEndpoint, v *templating.Values, f *File) (*outgoing, error) {
	u, complete := up.url.Execute(v, templating.Create)
	if !complete {
		return nil, fmt.Errorf("crm: %s: %w", up.name, ErrIncompleteURL)
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range up.params {
		s := p.tmpl.Execute(v, templating.Create)
		if s == "" {
			continue
		}
		if err := mw.WriteField(p.name, s); err != nil {
			return nil, fmt.Errorf("crm: %s: %w", up.name, err)
		}
	}
	field := up.FileField
	if field == "" {
		field = "file"
	}
	h := make(textproto.MIMEHeader, 2)
	h.Set("Content-Disposition", multipart.FileContentDisposition(field, f.Name))
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if _, err := mw.CreatePart(h); err != nil {
		return nil, fmt.Errorf("crm: %s: %w", up.name, err)
	}
	head := bytes.Clone(b.Bytes())
	b.Reset()
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("crm: %s: %w", up.name, err)
	}
	tail := bytes.Clone(b.Bytes())

	o := &outgoing{
		endpoint: up.name,
		method:   up.method,
		url:      u,
		ctype:    mw.FormDataContentType(),
		display:  string(head) + "<file data>" + string(tail),
	}
	o.stream = func() (io.ReadCloser, int64, error) {
		file, err := f.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("crm: %s: open %s: %w", up.name, f.Name, err)
		}
		size := int64(-1)
		if f.Size > 0 {
			size = int64(len(head)) + f.Size + int64(len(tail))
		}
		return &multiReadCloser{
			Reader:  io.MultiReader(bytes.NewReader(head), file, bytes.NewReader(tail)),
			closers: []io.Closer{file},
		}, size, nil
	}
	return o, nil
}

type multiReadCloser struct {
	io.Reader
	closers []io.Closer
}

func (m *multiReadCloser) Close() error {
	var first error
	for _, c := range m.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// base64Reader reads src base64 encoded, percent-escaped for a form body
// when form is set. It holds a few kilobytes, never the whole file.
type base64Reader struct {
	src  io.Reader
	form bool
	in   [3 * 1024]byte
	enc  [4 * 1024]byte
	esc  []byte
	out  []byte
	err  error
}

func (r *base64Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		n, err := io.ReadFull(r.src, r.in[:])
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			r.err = io.EOF
		default:
			r.err = err
		}
		if n == 0 {
			continue
		}
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(r.enc[:m], r.in[:n])
		r.out = r.enc[:m]
		if r.form {
			r.esc = r.esc[:0]
			for _, c := range r.out {
				switch c {
				case '+':
					r.esc = append(r.esc, "%2B"...)
				case '/':
					r.esc = append(r.esc, "%2F"...)
				case '=':
					r.esc = append(r.esc, "%3D"...)
				default:
					r.esc = append(r.esc, c)
				}
			}
			r.out = r.esc
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

package templating

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// URL is one parsed URL template: an endpoint URL, a lookup URL or an
// attachment link. Variables are escaped for the part of the URL they sit
// in, so any value reaches the server unchanged. They may appear in the
// path, the query and the fragment, but not in the scheme or host, which
// therefore always come from configuration.
//
// A query parameter whose variables all render empty is left out, as the
// vendor does for lookup URLs; literal parameters always stay.
type URL struct {
	src   string
	vars  []Var
	parts URLParts[seg]
}

// ParseURL parses a URL template. With its variables left out it must be an
// absolute http or https URL. Errors are *SyntaxError.
func ParseURL(src string) (*URL, error) {
	p := &parser{src: src}
	segs, err := p.text(modePlain)
	if err != nil {
		return nil, err
	}
	if off := strings.IndexByte(src, '%'); off >= 0 {
		// Checked on the source so that a variable cannot complete an
		// escape: "%4{X}" is rejected even though "%4" plus a value might
		// parse.
		for i := off; i < len(src); i++ {
			if src[i] == '%' && (i+2 >= len(src) || !isHex(src[i+1]) || !isHex(src[i+2])) {
				return nil, p.errorf(i, "%% must be followed by two hex digits; write %%25 for a literal %%")
			}
		}
	}

	// blank is the URL with its variables left out; offs holds where each
	// variable would go in it.
	var (
		blank strings.Builder
		offs  []int
	)
	for _, s := range segs {
		if s.v != 0 {
			offs = append(offs, blank.Len())
		}
		blank.WriteString(s.lit)
	}
	b := blank.String()

	// Anything up to where the path, query or fragment starts is scheme
	// or host. A variable right at that boundary would run into the host.
	hostEnd := len(b)
	if i := strings.Index(b, "://"); i >= 0 {
		if j := strings.IndexAny(b[i+3:], "/?#"); j >= 0 {
			hostEnd = i + 3 + j
		}
	}
	for i, off := range offs {
		if off <= hostEnd {
			return nil, p.errorf(varOffset(src, i), "variables are not allowed in the scheme or host")
		}
	}

	u, err := url.Parse(b)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &SyntaxError{Col: 1, Msg: "invalid URL: " + err.Error()}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &SyntaxError{Col: 1, Msg: "URL must start with http:// or https://"}
	}
	if u.Host == "" {
		return nil, &SyntaxError{Col: 1, Msg: "URL has no host"}
	}

	t := &URL{src: src, vars: p.vars}
	t.parts = SplitURL(segs, segLit, litSeg)
	return t, nil
}

func segLit(s seg) (string, bool) { return s.lit, s.v == 0 }

func litSeg(lit string) seg { return seg{lit: lit} }

// URLParts holds a URL template's segments sorted by the part of the URL
// they land in, so that each variable can be escaped for its place and each
// query parameter kept or left out on its own. S is the caller's segment
// type, one run of literal text or one variable.
type URLParts[S any] struct {
	Head  []S   // scheme, host and path
	Query [][]S // the &-separated parameters after ?; nil when there is no ?
	Frag  []S
	// HasFrag tells "#" with nothing after it from no fragment at all.
	HasFrag bool
}

// SplitURL sorts a URL template's segments into head, query parameters and
// fragment. It cuts literal text only, at the first ? and # and at each &
// between them, so that no value can move a cut; a ? or & after the # is
// fragment text. lit reports a segment's literal text, or false for a
// variable; text makes a literal segment from a piece of that text.
//
// The cut pieces share the segments' text, so splitting once at parse time
// leaves nothing to allocate when the URL is rendered.
func SplitURL[S any](segs []S, lit func(S) (string, bool), text func(string) S) URLParts[S] {
	const (
		inHead = iota
		inQuery
		inFrag
	)
	var p URLParts[S]
	zone := inHead
	add := func(s S) {
		switch zone {
		case inHead:
			p.Head = append(p.Head, s)
		case inQuery:
			last := len(p.Query) - 1
			p.Query[last] = append(p.Query[last], s)
		default:
			p.Frag = append(p.Frag, s)
		}
	}
	for _, s := range segs {
		l, ok := lit(s)
		if !ok {
			add(s)
			continue
		}
		for l != "" {
			i := -1
			switch zone {
			case inHead:
				i = strings.IndexAny(l, "?#")
			case inQuery:
				i = strings.IndexAny(l, "&#")
			}
			if i < 0 {
				add(text(l))
				break
			}
			if i > 0 {
				add(text(l[:i]))
			}
			switch l[i] {
			case '?':
				zone = inQuery
				p.Query = [][]S{nil}
			case '&':
				p.Query = append(p.Query, nil)
			case '#':
				zone = inFrag
				p.HasFrag = true
			}
			l = l[i+1:]
		}
	}
	return p
}

// MustParseURL is like ParseURL but panics on error. It is meant for URLs
// fixed in code.
func MustParseURL(src string) *URL {
	u, err := ParseURL(src)
	if err != nil {
		panic("templating: parse URL " + src + ": " + err.Error())
	}
	return u
}

// Execute renders the URL. complete is false when a variable in the path or
// fragment rendered empty: the URL then points somewhere other than meant,
// and a caller would skip an endpoint such as "find account by ID".
func (t *URL) Execute(v *Values, m Mode) (url string, complete bool) {
	if t == nil {
		return "", false
	}
	if v == nil {
		v = &noValues
	}
	var b strings.Builder
	b.Grow(len(t.src) + 64)
	complete = true
	write := func(segs []seg, escape func(string) string) {
		for i := range segs {
			s := &segs[i]
			if s.v == 0 {
				b.WriteString(s.lit)
				continue
			}
			val := v.Get(s.v, m)
			if val == "" {
				complete = false
			}
			b.WriteString(escape(val))
		}
	}
	write(t.parts.Head, pathEscape)
	if t.parts.Query != nil {
		// A blank query part changes nothing about completeness.
		full := complete
		sep := byte('?')
		for _, part := range t.parts.Query {
			if blankSegs(part, v, m) {
				continue
			}
			b.WriteByte(sep)
			sep = '&'
			write(part, queryEscape)
		}
		complete = full
	}
	if t.parts.HasFrag {
		b.WriteByte('#')
		write(t.parts.Frag, fragmentEscape)
	}
	return b.String(), complete
}

// String returns the source text.
func (t *URL) String() string { return t.src }

// Vars returns the variables used, in order of first use, without repeats.
func (t *URL) Vars() []Var { return slices.Clone(t.vars) }

func pathEscape(s string) string { return url.PathEscape(s) }

func queryEscape(s string) string { return url.QueryEscape(s) }

// fragmentEscape escapes all but unreserved characters. Single-page apps
// often route on the fragment and read their own query from it, so &, =
// and + must not pass through as they would in a path; a space becomes %20
// because fragments do not decode + as a space.
func fragmentEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func blankSegs(segs []seg, v *Values, m Mode) bool {
	vars := false
	for i := range segs {
		if s := &segs[i]; s.v != 0 {
			if v.Get(s.v, m) != "" {
				return false
			}
			vars = true
		}
	}
	return vars
}

// varOffset returns the source offset of the i-th variable reference,
// skipping {{ escapes.
func varOffset(src string, i int) int {
	for off := 0; off < len(src); off++ {
		switch {
		case strings.HasPrefix(src[off:], "{{"), strings.HasPrefix(src[off:], "}}"):
			off++
		case src[off] == '{':
			if i == 0 {
				return off
			}
			i--
		}
	}
	return 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

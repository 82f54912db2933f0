package lookup

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/crmsync/crmsync/templating"
)

// variable identifies one template variable; 0 marks literal text.
type variable uint8

const (
	varANI variable = iota + 1
	varCUID
	varEmail
	varMenuPath
	varMenuID
	varChannel
	varType
	varAccountID
	varPhoneNumber
)

var varNames = [...]string{
	varANI:         "ANI",
	varCUID:        "CUID",
	varEmail:       "EMAIL",
	varMenuPath:    "MENU_PATH",
	varMenuID:      "MENU_ID",
	varChannel:     "CHANNEL",
	varType:        "TYPE",
	varAccountID:   "ACCOUNT_ID",
	varPhoneNumber: "PHONE_NUMBER",
}

// The vendor documents one set of variables for lookup URLs and another for
// the screen pop; a variable from the wrong set would always render empty,
// so it is refused rather than silently dropped.
var (
	lookupVars     = []variable{varANI, varCUID, varEmail, varMenuPath, varMenuID, varChannel, varType}
	openCustomVars = []variable{varAccountID, varPhoneNumber}
)

func (v variable) value(s *Session) string {
	switch v {
	case varANI:
		return s.ANI
	case varCUID:
		return s.CUID
	case varEmail:
		return s.Email
	case varMenuPath:
		return s.MenuPath
	case varMenuID:
		return s.MenuID
	case varChannel:
		return s.Channel
	case varType:
		return s.Type
	case varAccountID:
		return s.AccountID
	case varPhoneNumber:
		return s.PhoneNumber
	}
	return ""
}

// seg is literal text or one variable.
type seg struct {
	lit string
	v   variable
}

// template is a parsed URL template, cut where the URL's structure is: the
// head (scheme, host and path), the &-separated query parameters and the
// fragment. The cuts are made once, on the template's own text, so no
// value can move them.
type template struct {
	parts templating.URLParts[seg]
	size  int // length of the literal text, to size the output
}

// parseError says what is wrong and where, by column (runes, from 1).
type parseError struct {
	col int
	msg string
}

func (e *parseError) Error() string {
	if e.col == 0 {
		return e.msg
	}
	return fmt.Sprintf("column %d: %s", e.col, e.msg)
}

func errAt(src string, off int, format string, args ...any) error {
	return &parseError{col: utf8.RuneCountInString(src[:off]) + 1, msg: fmt.Sprintf(format, args...)}
}

var (
	errNotAbsolute = &parseError{msg: "not an absolute URL: it must start with http:// or https://"}
	quoted         = regexp.MustCompile(` ?"[^"]*"`)
)

// maxNameInError bounds how much of an unknown name an error repeats.
const maxNameInError = 40

func parse(src string, allowed []variable) (*template, error) {
	var (
		segs []seg
		refs []int // source offset of each variable, for errors
		lit  strings.Builder
	)
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '{':
			j := strings.IndexAny(src[i+1:], "{}")
			if j < 0 || src[i+1+j] == '{' {
				return nil, errAt(src, i, "unclosed brace: a variable is written {NAME}; write %%7B for a literal {")
			}
			name := src[i+1 : i+1+j]
			v, ok := lookupVar(name, allowed)
			if !ok {
				if name == "" {
					return nil, errAt(src, i, "empty variable {}; allowed variables are %s", listVars(allowed))
				}
				if len(name) > maxNameInError {
					name = name[:maxNameInError] + "..."
				}
				return nil, errAt(src, i, "unknown variable {%s}; allowed variables are %s", name, listVars(allowed))
			}
			if lit.Len() > 0 {
				segs = append(segs, seg{lit: lit.String()})
				lit.Reset()
			}
			segs = append(segs, seg{v: v})
			refs = append(refs, i)
			i += j + 1
		case '}':
			return nil, errAt(src, i, "} without an opening {; write %%7D for a literal }")
		case '%':
			// Checked on the source so that a variable cannot finish an
			// escape the template started, as in %4{MENU_ID}.
			if i+2 >= len(src) || !isHex(src[i+1]) || !isHex(src[i+2]) {
				return nil, errAt(src, i, "%% must start an escape of two hex digits; write %%25 for a literal %%")
			}
			lit.WriteByte(c)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		segs = append(segs, seg{lit: lit.String()})
	}

	// blank is the URL with its variables left out.
	var blank strings.Builder
	for _, s := range segs {
		blank.WriteString(s.lit)
	}
	b := blank.String()

	// The scheme and host decide where the link goes, and no escaping
	// makes a value safe there. A variable right where the host ends would
	// still extend the host, hence <=.
	i := strings.Index(b, "://")
	if i < 0 {
		return nil, errNotAbsolute
	}
	hostEnd := len(b)
	if j := strings.IndexAny(b[i+3:], "/?#"); j >= 0 {
		hostEnd = i + 3 + j
	}
	n, at := 0, 0 // at: where the n-th variable would go in blank
	for _, s := range segs {
		if s.v == 0 {
			at += len(s.lit)
			continue
		}
		if at <= hostEnd {
			return nil, errAt(src, refs[n], "variable {%s} is in the scheme or host, where a value could send the link elsewhere; variables may only appear in the path, query or fragment", varNames[s.v])
		}
		n++
	}

	u, err := url.Parse(b)
	if err != nil {
		// url.Error repeats the whole URL and its inner errors quote
		// parts of it, any of which might hold a credential.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &parseError{msg: "not a valid URL: " + quoted.ReplaceAllString(err.Error(), "")}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errNotAbsolute
	}
	if u.Host == "" {
		return nil, &parseError{msg: "not an absolute URL: it has no host"}
	}

	t := &template{size: len(b)}
	t.parts = templating.SplitURL(segs, segLit, litSeg)
	return t, nil
}

func segLit(s seg) (string, bool) { return s.lit, s.v == 0 }

func litSeg(lit string) seg { return seg{lit: lit} }

func lookupVar(name string, allowed []variable) (variable, bool) {
	for _, v := range allowed {
		if varNames[v] == name {
			return v, true
		}
	}
	return 0, false
}

func listVars(vs []variable) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = "{" + varNames[v] + "}"
	}
	return strings.Join(names, ", ")
}

// render writes the URL for s; "" for a nil template.
func (t *template) render(s *Session) string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	b.Grow(t.size + 64)
	write := func(segs []seg, safe *[256]bool) {
		for _, sg := range segs {
			if sg.v == 0 {
				b.WriteString(sg.lit)
			} else {
				escape(&b, sg.v.value(s), safe)
			}
		}
	}
	write(t.parts.Head, &pathSafe)
	sep := byte('?')
	for _, p := range t.parts.Query {
		if dropParam(p, s) {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		write(p, &querySafe)
	}
	if t.parts.HasFrag {
		b.WriteByte('#')
		write(t.parts.Frag, &querySafe)
	}
	return b.String()
}

// dropParam reports whether a query parameter is left out: it is empty
// (as between "&&"), or it holds variables and all of them rendered empty.
// Literal text around such variables goes with them, since without the
// value it says nothing about the session. Parameters without variables
// stay.
func dropParam(p []seg, s *Session) bool {
	if len(p) == 0 {
		return true
	}
	vars := false
	for _, sg := range p {
		if sg.v != 0 {
			if sg.v.value(s) != "" {
				return false
			}
			vars = true
		}
	}
	return vars
}

// pathSafe leaves only unreserved characters bare: a path segment must not
// gain a /, and some servers read ; or + in a path specially.
// querySafe also leaves / : @ bare, which no query or fragment parser
// treats as structure, so menu paths and emails stay readable; & = + # ?
// are still escaped, as single-page apps read their own parameters out of
// the fragment.
var pathSafe, querySafe [256]bool

func init() {
	for c := range 256 {
		u := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
		pathSafe[c] = u
		querySafe[c] = u || c == '/' || c == ':' || c == '@'
	}
}

// escape percent-encodes every byte of v that safe does not allow, so any
// value, valid UTF-8 or not, decodes back byte for byte. A space becomes
// %20, which query parsers decode as surely as +.
func escape(b *strings.Builder, v string, safe *[256]bool) {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if safe[c] {
			continue
		}
		b.WriteString(v[start:i])
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
		start = i + 1
	}
	b.WriteString(v[start:])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

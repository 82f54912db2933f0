// Package templating is the parameter language of endpoint configuration:
// the {VARIABLES} and functions that CRM teams write in URLs and parameter
// values. Templates are parsed once when configuration loads and executed
// for each request; a parsed template is never modified, so one template can
// be executed from many goroutines at once. The package knows nothing of
// HTTP.
//
// # Parameter values
//
// A value is text mixed with variables, such as (Email:equals:{EMAIL}).
// Variable names ignore case. A value that uses variables renders empty when
// every one of them is empty, and an empty result means the parameter is
// left out of the request. Write {{ and }} for literal braces.
//
// A value starting with = is a function call:
//
//	=DEFAULT_VALUE(a, b, ...)  the first argument that is not empty
//	=CONCAT_OR(a, b, ...)      the non-empty arguments joined with " or "
//	=CONCAT_AND(a, b, ...)     the non-empty arguments joined with " and "
//
// Function names ignore case. Arguments are separated by commas and trimmed
// of surrounding blanks; each one follows the same empty rule as a whole
// value. Parentheses inside an argument are kept as text and must balance.
// An argument in double quotes keeps commas, parentheses and blanks as text
// (\" and \\ stand for " and \), while its variables still work; "" is an
// empty argument. An argument can be another call, written with or without
// its =. To send a value that starts with = as text, quote it in a call:
// =CONCAT_OR("=5").
package templating

import (
	"slices"
	"strings"
)

// Template is one parsed parameter value.
type Template struct {
	src  string
	root node
	vars []Var
}

// node is a piece of text (fn == fnNone) or a function call.
type node struct {
	fn    fn
	segs  []seg
	nvars int // variables among segs
	args  []node
}

func newPiece(segs []seg) node {
	n := node{segs: segs}
	for _, s := range segs {
		if s.v != 0 {
			n.nvars++
		}
	}
	return n
}

// Parse parses one parameter value. Errors are *SyntaxError.
func Parse(src string) (*Template, error) {
	p := &parser{src: src}
	var root node
	if strings.HasPrefix(src, "=") {
		p.pos = 1
		n, err := p.call()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.more() {
			return nil, p.errorf(p.pos, "unexpected text after the closing ) of %s", fnNames[n.fn])
		}
		root = n
	} else {
		segs, err := p.text(modePlain)
		if err != nil {
			return nil, err
		}
		root = newPiece(segs)
	}
	return &Template{src: src, root: root, vars: p.vars}, nil
}

// MustParse is like Parse but panics on error. It is meant for templates
// fixed in code.
func MustParse(src string) *Template {
	t, err := Parse(src)
	if err != nil {
		panic("templating: parse " + src + ": " + err.Error())
	}
	return t
}

// noValues stands in for a nil *Values: every variable is empty.
var noValues Values

// Execute renders the template. An empty result means the parameter should
// be left out of the request.
func (t *Template) Execute(v *Values, m Mode) string {
	if t == nil {
		return ""
	}
	if v == nil {
		v = &noValues
	}
	return t.root.eval(v, m)
}

// String returns the source text.
func (t *Template) String() string { return t.src }

// Vars returns the variables used, in order of first use, without repeats.
func (t *Template) Vars() []Var { return slices.Clone(t.vars) }

// blank reports whether the piece has variables and all of them are empty.
func (n *node) blank(v *Values, m Mode) bool {
	if n.nvars == 0 {
		return false
	}
	for i := range n.segs {
		if s := &n.segs[i]; s.v != 0 && v.Get(s.v, m) != "" {
			return false
		}
	}
	return true
}

// eval renders n, returning variable values and literals without copying
// where it can.
func (n *node) eval(v *Values, m Mode) string {
	switch n.fn {
	case fnNone:
		switch len(n.segs) {
		case 0:
			return ""
		case 1:
			return n.segs[0].text(v, m)
		}
		if n.blank(v, m) {
			return ""
		}
		size := 0
		for i := range n.segs {
			size += len(n.segs[i].text(v, m))
		}
		var b strings.Builder
		b.Grow(size)
		for i := range n.segs {
			b.WriteString(n.segs[i].text(v, m))
		}
		return b.String()
	case fnDefault:
		for i := range n.args {
			if s := n.args[i].eval(v, m); s != "" {
				return s
			}
		}
		return ""
	default:
		// Rendering into a stack buffer leaves one allocation, for the
		// result, unless the result is long.
		var buf [256]byte
		b := n.appendTo(buf[:0], v, m)
		if len(b) == 0 {
			return ""
		}
		return string(b)
	}
}

// appendTo appends the rendering of n to dst.
func (n *node) appendTo(dst []byte, v *Values, m Mode) []byte {
	switch n.fn {
	case fnNone:
		if n.blank(v, m) {
			return dst
		}
		for i := range n.segs {
			dst = append(dst, n.segs[i].text(v, m)...)
		}
	case fnDefault:
		for i := range n.args {
			l := len(dst)
			if dst = n.args[i].appendTo(dst, v, m); len(dst) > l {
				break
			}
		}
	case fnConcatOr, fnConcatAnd:
		sep := " or "
		if n.fn == fnConcatAnd {
			sep = " and "
		}
		start := len(dst)
		for i := range n.args {
			mark := len(dst)
			if mark > start {
				dst = append(dst, sep...)
			}
			l := len(dst)
			if dst = n.args[i].appendTo(dst, v, m); len(dst) == l {
				// Empty arguments leave no separator behind.
				dst = dst[:mark]
			}
		}
	}
	return dst
}

func (s *seg) text(v *Values, m Mode) string {
	if s.v != 0 {
		return v.Get(s.v, m)
	}
	return s.lit
}

package templating

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SyntaxError reports a template that cannot be parsed.
type SyntaxError struct {
	Col int    // 1-based, in characters (runes) from the start of the source, newlines included
	Msg string // what is wrong, without the position
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("col %d: %s", e.Col, e.Msg)
}

// seg is one run of literal text or one variable.
type seg struct {
	lit string
	v   Var // 0 for literal text
}

// fn names the functions a parameter value can call.
type fn uint8

const (
	fnNone fn = iota // not a call: a piece of text
	fnDefault
	fnConcatOr
	fnConcatAnd
)

var fnNames = [...]string{
	fnDefault:   "DEFAULT_VALUE",
	fnConcatOr:  "CONCAT_OR",
	fnConcatAnd: "CONCAT_AND",
}

func lookupFn(name string) (fn, bool) {
	for f := fnDefault; f <= fnConcatAnd; f++ {
		if strings.EqualFold(fnNames[f], name) {
			return f, true
		}
	}
	return fnNone, false
}

// textMode says where a run of text ends and what is special inside it.
type textMode uint8

const (
	modePlain  textMode = iota // to the end of the source
	modeArg                    // to a comma or ) outside parentheses
	modeQuoted                 // to an unescaped "
)

type parser struct {
	src  string
	pos  int // byte offset
	vars []Var
	seen [NumVars]bool
}

func (p *parser) errorf(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{
		Col: utf8.RuneCountInString(p.src[:off]) + 1,
		Msg: fmt.Sprintf(format, args...),
	}
}

func (p *parser) more() bool { return p.pos < len(p.src) }

func (p *parser) peek() byte { return p.src[p.pos] }

func (p *parser) skipSpace() {
	for p.more() && isSpaceByte(p.peek()) {
		p.pos++
	}
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// name consumes and returns a run of letters, digits and underscores.
func (p *parser) name() string {
	start := p.pos
	for p.more() && isNameByte(p.peek()) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// text scans literal text and variables. In modeArg it stops before a comma
// or ) that is not inside parentheses of the text itself; in modeQuoted it
// stops after the closing quote.
func (p *parser) text(mode textMode) ([]seg, error) {
	var (
		segs  []seg
		lit   strings.Builder
		depth int
		open  int // offset of the outermost unclosed ( in modeArg
		quote = p.pos - 1
	)
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, seg{lit: lit.String()})
			lit.Reset()
		}
	}
	for p.more() {
		c := p.peek()
		switch {
		case c == '{' && strings.HasPrefix(p.src[p.pos:], "{{"):
			lit.WriteByte('{')
			p.pos += 2
			continue
		case c == '}' && strings.HasPrefix(p.src[p.pos:], "}}"):
			lit.WriteByte('}')
			p.pos += 2
			continue
		case c == '{':
			v, err := p.variable()
			if err != nil {
				return nil, err
			}
			flush()
			segs = append(segs, seg{v: v})
			continue
		case c == '}':
			return nil, p.errorf(p.pos, "unexpected }; write }} for a literal }")
		}
		switch mode {
		case modeArg:
			switch c {
			case '(':
				if depth == 0 {
					open = p.pos
				}
				depth++
			case ')':
				if depth == 0 {
					flush()
					return segs, nil
				}
				depth--
			case ',':
				if depth == 0 {
					flush()
					return segs, nil
				}
			}
		case modeQuoted:
			switch {
			case c == '"':
				p.pos++
				flush()
				return segs, nil
			case c == '\\' && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '"' || p.src[p.pos+1] == '\\'):
				lit.WriteByte(p.src[p.pos+1])
				p.pos += 2
				continue
			}
		}
		lit.WriteByte(c)
		p.pos++
	}
	switch {
	case mode == modeQuoted:
		return nil, p.errorf(quote, `quoted argument has no closing "`)
	case depth > 0:
		return nil, p.errorf(open, "( has no matching )")
	}
	flush()
	return segs, nil
}

// variable consumes {NAME} at p.pos.
func (p *parser) variable() (Var, error) {
	start := p.pos
	p.pos++
	name := p.name()
	if name == "" || !p.more() || p.peek() != '}' {
		return 0, p.errorf(start, "{ must start a variable such as {EMAIL}; write {{ for a literal {")
	}
	p.pos++
	v, ok := LookupVar(name)
	if !ok {
		return 0, p.errorf(start, "unknown variable {%s}", name)
	}
	if !p.seen[v] {
		p.seen[v] = true
		p.vars = append(p.vars, v)
	}
	return v, nil
}

// call parses NAME(args) at p.pos, after any =.
func (p *parser) call() (node, error) {
	p.skipSpace()
	start := p.pos
	name := p.name()
	if name == "" {
		return node{}, p.errorf(start, "expected a function name after =")
	}
	f, ok := lookupFn(name)
	if !ok {
		return node{}, p.errorf(start, "unknown function %s (valid: DEFAULT_VALUE, CONCAT_OR, CONCAT_AND)", name)
	}
	p.skipSpace()
	if !p.more() || p.peek() != '(' {
		return node{}, p.errorf(p.pos, "expected ( after %s", fnNames[f])
	}
	open := p.pos
	p.pos++
	var args []node
	for {
		p.skipSpace()
		if !p.more() {
			return node{}, p.errorf(open, "%s( has no matching )", fnNames[f])
		}
		if len(args) == 0 && p.peek() == ')' {
			return node{}, p.errorf(open, "%s needs at least one argument", fnNames[f])
		}
		a, err := p.arg()
		if err != nil {
			return node{}, err
		}
		args = append(args, a)
		if !p.more() {
			return node{}, p.errorf(open, "%s( has no matching )", fnNames[f])
		}
		c := p.peek()
		p.pos++
		if c == ')' {
			break
		}
	}
	if f == fnDefault && len(args) < 2 {
		return node{}, p.errorf(start, "DEFAULT_VALUE needs at least 2 arguments, got %d", len(args))
	}
	return node{fn: f, args: args}, nil
}

// arg parses one argument, leaving p.pos on the comma or ) after it, or at
// the end of the source.
func (p *parser) arg() (node, error) {
	start := p.pos
	var (
		n    node
		what string
	)
	switch {
	case p.peek() == '"':
		p.pos++
		segs, err := p.text(modeQuoted)
		if err != nil {
			return node{}, err
		}
		n, what = newPiece(segs), "quoted argument"
	case p.peek() == '=':
		p.pos++
		c, err := p.call()
		if err != nil {
			return node{}, err
		}
		n, what = c, "function call"
	case p.startsCall():
		c, err := p.call()
		if err != nil {
			return node{}, err
		}
		n, what = c, "function call"
	default:
		segs, err := p.text(modeArg)
		if err != nil {
			return node{}, err
		}
		segs = trimRight(segs)
		if len(segs) == 0 {
			return node{}, p.errorf(start, `empty argument; write "" for an empty value`)
		}
		return newPiece(segs), nil
	}
	p.skipSpace()
	if p.more() && p.peek() != ',' && p.peek() != ')' {
		return node{}, p.errorf(p.pos, "unexpected text after %s; quote the whole argument", what)
	}
	return n, nil
}

// startsCall reports whether a known function name and ( follow p.pos, which
// makes a nested call without the leading =.
func (p *parser) startsCall() bool {
	save := p.pos
	defer func() { p.pos = save }()
	if _, ok := lookupFn(p.name()); !ok {
		return false
	}
	p.skipSpace()
	return p.more() && p.peek() == '('
}

// trimRight drops trailing blanks of the last literal; leading ones were
// skipped before the argument was scanned.
func trimRight(segs []seg) []seg {
	if len(segs) == 0 || segs[len(segs)-1].v != 0 {
		return segs
	}
	last := &segs[len(segs)-1]
	last.lit = strings.TrimRightFunc(last.lit, isSpace)
	if last.lit == "" {
		segs = segs[:len(segs)-1]
	}
	return segs
}

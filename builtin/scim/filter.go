package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The filter language of RFC 7644 section 3.4.2.2, parsed by hand: no
// maintained Go module implements it, and the grammar is small enough that a
// recursive-descent parser with explicit limits is easier to audit than a
// generated one.
//
// The grammar this parser accepts (ABNF, RFC 5234; keywords and operators
// are case-insensitive, SP is one or more spaces):
//
//	filter     = orExp
//	orExp      = andExp *( SP "or" SP andExp )
//	andExp     = unary *( SP "and" SP unary )
//	unary      = "not" [SP] "(" filter ")"
//	           / "(" filter ")"
//	           / valuePath
//	           / attrExp
//	valuePath  = attrPath "[" valFilter "]"      ; not inside another "[...]"
//	valFilter  = filter                          ; attribute paths relative to valuePath
//	attrExp    = attrPath SP "pr"
//	           / attrPath SP compareOp SP compValue
//	compareOp  = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"
//	compValue  = "false" / "null" / "true" / number / string  ; JSON (RFC 8259)
//	attrPath   = [URI ":"] ATTRNAME *1subAttr
//	subAttr    = "." ATTRNAME
//	ATTRNAME   = ( ALPHA / "$" ) *( "-" / "_" / DIGIT / ALPHA )
//	URI        = a schema URN such as urn:ietf:params:scim:schemas:core:2.0:User
//
// "and" binds tighter than "or"; "not" applies to a parenthesised filter.
// The input must be valid UTF-8 of at most MaxFilterLength bytes, and
// parentheses and brackets nest at most maxFilterDepth deep.

// MaxFilterLength is the longest filter accepted, in bytes.
const MaxFilterLength = 4096

// maxFilterDepth bounds nesting so a hostile filter cannot exhaust the stack.
const maxFilterDepth = 32

// Comparison operators (RFC 7644 section 3.4.2.2, table 3).
const (
	OpEq = "eq"
	OpNe = "ne"
	OpCo = "co"
	OpSw = "sw"
	OpEw = "ew"
	OpPr = "pr"
	OpGt = "gt"
	OpGe = "ge"
	OpLt = "lt"
	OpLe = "le"
)

// Expr is a parsed filter expression: *LogExpr, *NotExpr, *AttrExpr or
// *ValuePathExpr. String returns a canonical form that parses back to an
// equal expression.
type Expr interface {
	String() string
	expr()
}

// AttrPath names an attribute: an optional schema URN, a name and an
// optional sub-attribute name.
type AttrPath struct {
	URI  string
	Name string
	Sub  string
}

func (p AttrPath) String() string {
	s := p.Name
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// LogExpr is "Left and Right" or "Left or Right".
type LogExpr struct {
	Op          string // "and" or "or"
	Left, Right Expr
}

// NotExpr is "not (X)".
type NotExpr struct{ X Expr }

// AttrExpr compares an attribute with a value, or tests its presence.
type AttrExpr struct {
	Path AttrPath
	Op   string // one of the Op constants
	// Value is nil for pr and for null; otherwise a string, a bool or a
	// json.Number.
	Value any
	// Null is true when the literal was null (Value is nil then).
	Null bool
}

// ValuePathExpr is "Path[Filter]": some value of the multi-valued Path
// matches Filter.
type ValuePathExpr struct {
	Path   AttrPath
	Filter Expr
}

func (*LogExpr) expr()       {}
func (*NotExpr) expr()       {}
func (*AttrExpr) expr()      {}
func (*ValuePathExpr) expr() {}

func (e *LogExpr) String() string {
	return group(e.Left) + " " + e.Op + " " + group(e.Right)
}

// group puts parentheses around a nested logical expression so that the
// canonical form never depends on precedence.
func group(e Expr) string {
	if _, ok := e.(*LogExpr); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func (e *NotExpr) String() string { return "not (" + e.X.String() + ")" }

func (e *AttrExpr) String() string {
	if e.Op == OpPr {
		return e.Path.String() + " pr"
	}
	return e.Path.String() + " " + e.Op + " " + literal(e.Value, e.Null)
}

func (e *ValuePathExpr) String() string {
	return e.Path.String() + "[" + e.Filter.String() + "]"
}

// literal writes a comparison value in JSON form.
func literal(v any, null bool) string {
	switch x := v.(type) {
	case nil:
		if null {
			return "null"
		}
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case json.Number:
		return x.String()
	case string:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return `""`
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	return "null"
}

// ErrInvalidFilter is wrapped by every filter and path parse error.
var ErrInvalidFilter = errors.New("invalid filter")

// ParseFilter parses a filter (RFC 7644 section 3.4.2.2).
func ParseFilter(s string) (Expr, error) {
	p, err := newParser(s)
	if err != nil {
		return nil, err
	}
	e, err := p.filter(0, false)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t, "unexpected %s", t)
	}
	return e, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokNumber
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokDot
)

type token struct {
	kind tokKind
	text string // the source text (for a string, the decoded value)
	pos  int
	// spaceBefore records whether white space preceded the token, which
	// the grammar requires around operators.
	spaceBefore bool
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of filter"
	case tokString:
		return "string"
	}
	if len(t.text) > 32 {
		return fmt.Sprintf("%q", t.text[:32]+"...")
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	i    int
}

func newParser(s string) (*parser, error) {
	if len(s) > MaxFilterLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidFilter, MaxFilterLength)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalidFilter)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	return &parser{src: s, toks: toks}, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '$' || c == ':' || c == '.'
}

// lex splits s into tokens. A word is a run of name bytes (letters, digits,
// - _ $ : .), which covers keywords, operators, attribute paths with their
// URNs, and true/false/null. A word that starts with a digit or "-" is a
// number. A "." right after "]" is its own token (a sub-attribute after a
// value filter, in PATCH paths).
func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for {
		space := false
		for i < len(s) && s[i] == ' ' {
			i++
			space = true
		}
		if i >= len(s) {
			toks = append(toks, token{kind: tokEOF, pos: i, spaceBefore: space})
			return toks, nil
		}
		start := i
		c := s[i]
		switch {
		case c == '(':
			toks = append(toks, token{kind: tokLParen, text: "(", pos: i, spaceBefore: space})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, text: ")", pos: i, spaceBefore: space})
			i++
		case c == '[':
			toks = append(toks, token{kind: tokLBrack, text: "[", pos: i, spaceBefore: space})
			i++
		case c == ']':
			toks = append(toks, token{kind: tokRBrack, text: "]", pos: i, spaceBefore: space})
			i++
		case c == '.' && len(toks) > 0 && toks[len(toks)-1].kind == tokRBrack && !space:
			toks = append(toks, token{kind: tokDot, text: ".", pos: i})
			i++
		case c == '"':
			end, err := scanString(s, i)
			if err != nil {
				return nil, err
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:end]), &v); err != nil {
				return nil, fmt.Errorf("%w: malformed string at byte %d", ErrInvalidFilter, i)
			}
			toks = append(toks, token{kind: tokString, text: v, pos: start, spaceBefore: space})
			i = end
		case c >= '0' && c <= '9' || c == '-':
			for i < len(s) && (isNameByte(s[i]) || s[i] == '+') {
				i++
			}
			toks = append(toks, token{kind: tokNumber, text: s[start:i], pos: start, spaceBefore: space})
		case isNameByte(c):
			for i < len(s) && isNameByte(s[i]) {
				i++
			}
			toks = append(toks, token{kind: tokWord, text: s[start:i], pos: start, spaceBefore: space})
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, fmt.Errorf("%w: unexpected character %q at byte %d", ErrInvalidFilter, r, i)
		}
	}
}

// scanString returns the index just past the JSON string starting at s[i].
func scanString(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string at byte %d", ErrInvalidFilter, i)
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrInvalidFilter, fmt.Sprintf(format, args...), t.pos)
}

func isKeyword(t token, kw string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, kw)
}

// filter parses orExp. inValue is true inside a value filter "[...]".
func (p *parser) filter(depth int, inValue bool) (Expr, error) {
	if depth > maxFilterDepth {
		return nil, p.errorf(p.peek(), "nested deeper than %d", maxFilterDepth)
	}
	left, err := p.and(depth, inValue)
	if err != nil {
		return nil, err
	}
	for isKeyword(p.peek(), "or") {
		if t := p.next(); !t.spaceBefore {
			return nil, p.errorf(t, "a space must precede \"or\"")
		}
		right, err := p.and(depth, inValue)
		if err != nil {
			return nil, err
		}
		left = &LogExpr{Op: "or", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) and(depth int, inValue bool) (Expr, error) {
	left, err := p.unary(depth, inValue)
	if err != nil {
		return nil, err
	}
	for isKeyword(p.peek(), "and") {
		if t := p.next(); !t.spaceBefore {
			return nil, p.errorf(t, "a space must precede \"and\"")
		}
		right, err := p.unary(depth, inValue)
		if err != nil {
			return nil, err
		}
		left = &LogExpr{Op: "and", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) unary(depth int, inValue bool) (Expr, error) {
	t := p.peek()
	switch {
	case isKeyword(t, "not") && p.toks[p.i+1].kind == tokLParen:
		p.next()
		x, err := p.parens(depth, inValue)
		if err != nil {
			return nil, err
		}
		return &NotExpr{X: x}, nil
	case t.kind == tokLParen:
		return p.parens(depth, inValue)
	case t.kind == tokWord:
		return p.attrExp(depth, inValue)
	}
	return nil, p.errorf(t, "expected an attribute, \"not\" or \"(\" but found %s", t)
}

func (p *parser) parens(depth int, inValue bool) (Expr, error) {
	open := p.next() // "("
	x, err := p.filter(depth+1, inValue)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tokRParen {
		return nil, p.errorf(t, "expected \")\" to close \"(\" at byte %d but found %s", open.pos, t)
	}
	return x, nil
}

func (p *parser) attrExp(depth int, inValue bool) (Expr, error) {
	pt := p.next()
	path, err := parseAttrPath(pt.text)
	if err != nil {
		return nil, p.errorf(pt, "%s", err.Error())
	}
	if p.peek().kind == tokLBrack {
		if inValue {
			return nil, p.errorf(p.peek(), "a value filter cannot contain another")
		}
		if path.Sub != "" {
			return nil, p.errorf(pt, "a value filter must follow a multi-valued attribute, not a sub-attribute")
		}
		p.next()
		f, err := p.filter(depth+1, true)
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tokRBrack {
			return nil, p.errorf(t, "expected \"]\" but found %s", t)
		}
		return &ValuePathExpr{Path: path, Filter: f}, nil
	}
	opTok := p.next()
	if opTok.kind != tokWord || !opTok.spaceBefore {
		return nil, p.errorf(opTok, "expected an operator after %q", pt.text)
	}
	op := strings.ToLower(opTok.text)
	switch op {
	case OpPr:
		return &AttrExpr{Path: path, Op: OpPr}, nil
	case OpEq, OpNe, OpCo, OpSw, OpEw, OpGt, OpGe, OpLt, OpLe:
	default:
		return nil, p.errorf(opTok, "unknown operator %s", opTok)
	}
	vt := p.next()
	if !vt.spaceBefore {
		return nil, p.errorf(vt, "a space must follow the operator")
	}
	e := &AttrExpr{Path: path, Op: op}
	switch {
	case vt.kind == tokString:
		e.Value = vt.text
	case vt.kind == tokNumber:
		if !validNumber(vt.text) {
			return nil, p.errorf(vt, "malformed number %s", vt)
		}
		e.Value = json.Number(vt.text)
	case isKeyword(vt, "true"):
		e.Value = true
	case isKeyword(vt, "false"):
		e.Value = false
	case isKeyword(vt, "null"):
		e.Null = true
	default:
		return nil, p.errorf(vt, "expected a value (string, number, true, false or null) but found %s", vt)
	}
	return e, nil
}

// validNumber reports whether s is a JSON number (RFC 8259 section 6).
func validNumber(s string) bool {
	var n json.Number
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return false
	}
	return n.String() == s
}

// parseAttrPath splits "urn:...:name.sub" into its parts. The URN is
// everything before the last colon (schema URNs contain dots, as in
// "2.0", so the colon is split first).
func parseAttrPath(s string) (AttrPath, error) {
	var p AttrPath
	rest := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		p.URI, rest = s[:i], s[i+1:]
		if !validURN(p.URI) {
			return AttrPath{}, fmt.Errorf("malformed schema URN in %q", s)
		}
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if !validAttrName(name) || hasSub && !validAttrName(sub) {
		return AttrPath{}, fmt.Errorf("malformed attribute path %q", s)
	}
	p.Name, p.Sub = name, sub
	return p, nil
}

func validAttrName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '$' && i == 0:
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func validURN(s string) bool {
	if len(s) < 5 || len(s) > 256 || !strings.EqualFold(s[:4], "urn:") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) || s[i] == '$' {
			return false
		}
	}
	return !strings.Contains(s, "::") && !strings.HasSuffix(s, ":")
}

// Path is a PATCH operation's target (RFC 7644 section 3.5.2):
//
//	PATH = attrPath / valuePath [subAttr]
//
// for example "members", "name.givenName",
// `members[value eq "2819c223"]` or `emails[type eq "work"].value`.
type Path struct {
	Attr AttrPath
	// Filter, when set, selects values of the multi-valued Attr.
	Filter Expr
	// Sub names a sub-attribute of the selected values (after a filter).
	Sub string
}

func (p Path) String() string {
	s := p.Attr.String()
	if p.Filter != nil {
		s += "[" + p.Filter.String() + "]"
		if p.Sub != "" {
			s += "." + p.Sub
		}
	}
	return s
}

// MaxPathLength is the longest PATCH path accepted, in bytes.
const MaxPathLength = 1024

// ParsePath parses a PATCH path.
func ParsePath(s string) (Path, error) {
	if len(s) > MaxPathLength {
		return Path{}, fmt.Errorf("%w: path longer than %d bytes", ErrInvalidFilter, MaxPathLength)
	}
	p, err := newParser(s)
	if err != nil {
		return Path{}, err
	}
	t := p.next()
	if t.kind != tokWord || t.spaceBefore {
		return Path{}, p.errorf(t, "a path must start with an attribute name")
	}
	ap, err := parseAttrPath(t.text)
	if err != nil {
		return Path{}, p.errorf(t, "%s", err.Error())
	}
	out := Path{Attr: ap}
	if p.peek().kind == tokLBrack {
		if ap.Sub != "" {
			return Path{}, p.errorf(p.peek(), "a value filter must follow a multi-valued attribute, not a sub-attribute")
		}
		p.next()
		f, err := p.filter(1, true)
		if err != nil {
			return Path{}, err
		}
		if t := p.next(); t.kind != tokRBrack {
			return Path{}, p.errorf(t, "expected \"]\" but found %s", t)
		}
		out.Filter = f
		if p.peek().kind == tokDot {
			p.next()
			st := p.next()
			if st.kind != tokWord || st.spaceBefore || !validAttrName(st.text) {
				return Path{}, p.errorf(st, "expected a sub-attribute name after \".\"")
			}
			out.Sub = st.text
		}
	}
	if t := p.peek(); t.kind != tokEOF || t.spaceBefore {
		return Path{}, p.errorf(t, "unexpected %s after the path", t)
	}
	return out, nil
}

package scim

import (
	"encoding/json"
	"strings"
	"time"
)

// A filter is checked against the resource type's schemas before it runs,
// so evaluation itself cannot fail: unknown attributes and comparisons the
// attribute's type does not support are an invalidFilter error (RFC 7644
// section 3.4.2.2).

// scope resolves attribute paths: at the top of a resource (parent nil), or
// inside a value filter, where names are sub-attributes of parent.
type scope struct {
	rt     *resourceType
	parent *Attribute
}

// target is a resolved attribute path: the definition of the compared
// values and how to collect them from a resource.
type target struct {
	def *Attribute // the definition of the values compared
	// outer is the top attribute, sub the sub-attribute (or nil).
	outer, sub *Attribute
	ext        string // the extension URN holding outer, or ""
}

func (sc scope) resolve(p AttrPath) (target, *Error) {
	if sc.parent != nil {
		if p.URI != "" || p.Sub != "" {
			return target{}, badRequest(ErrTypeInvalidFilter, "%q: inside a value filter, name a sub-attribute of %s", clip(p.String()), sc.parent.Name)
		}
		a := attrOf(sc.parent.SubAttributes, p.Name)
		if a == nil {
			return target{}, badRequest(ErrTypeInvalidFilter, "unknown attribute %q in %s", clip(p.Name), sc.parent.Name)
		}
		return target{def: a, outer: a}, nil
	}
	s, a, sub, err := sc.rt.lookup(p)
	if err != nil {
		return target{}, badRequest(ErrTypeInvalidFilter, "%s", err.Error())
	}
	t := target{outer: a, sub: sub, def: a}
	if s != sc.rt.Core {
		t.ext = s.ID
	}
	if sub != nil {
		t.def = sub
	} else if a.Type == TypeComplex && a.MultiValued {
		// "emails co x" compares the values' "value" sub-attribute.
		if v := attrOf(a.SubAttributes, "value"); v != nil {
			t.def, t.sub = v, v
		}
	}
	return t, nil
}

// values collects the values t names in the object m.
func (t target) values(m map[string]any) []any {
	if t.ext != "" {
		em, _ := m[t.ext].(map[string]any)
		m = em
	}
	v, ok := m[t.outer.Name]
	if !ok || v == nil {
		return nil
	}
	var elems []any
	if l, ok := v.([]any); ok {
		elems = l
	} else {
		elems = []any{v}
	}
	if t.sub == nil {
		return elems
	}
	var out []any
	for _, e := range elems {
		if em, ok := e.(map[string]any); ok {
			if x, ok := em[t.sub.Name]; ok && x != nil {
				out = append(out, x)
			}
		}
	}
	return out
}

// checkFilter validates e against the scope.
func (sc scope) checkFilter(e Expr) *Error {
	switch x := e.(type) {
	case *LogExpr:
		if err := sc.checkFilter(x.Left); err != nil {
			return err
		}
		return sc.checkFilter(x.Right)
	case *NotExpr:
		return sc.checkFilter(x.X)
	case *ValuePathExpr:
		t, err := sc.resolve(x.Path)
		if err != nil {
			return err
		}
		if t.outer.Type != TypeComplex || !t.outer.MultiValued {
			return badRequest(ErrTypeInvalidFilter, "%q: a value filter needs a multi-valued complex attribute", clip(x.Path.String()))
		}
		return scope{rt: sc.rt, parent: t.outer}.checkFilter(x.Filter)
	case *AttrExpr:
		t, err := sc.resolve(x.Path)
		if err != nil {
			return err
		}
		return checkComparison(t.def, x)
	}
	return badRequest(ErrTypeInvalidFilter, "unsupported expression")
}

func checkComparison(def *Attribute, x *AttrExpr) *Error {
	bad := func(why string) *Error {
		return badRequest(ErrTypeInvalidFilter, "%q %s: %s", clip(x.Path.String()), x.Op, why)
	}
	if x.Op == OpPr {
		return nil
	}
	if def.Type == TypeComplex {
		return bad("a complex attribute can only be tested with pr; compare one of its sub-attributes")
	}
	if def.Mutability == "writeOnly" {
		return bad("the attribute is never returned and cannot be filtered on")
	}
	if x.Null {
		if x.Op != OpEq && x.Op != OpNe {
			return bad("null can only be compared with eq or ne")
		}
		return nil
	}
	switch def.Type {
	case TypeString, TypeReference, TypeBinary:
		if _, ok := x.Value.(string); !ok {
			return bad("the attribute is a string; compare it with a string")
		}
		if def.Type == TypeBinary && x.Op != OpEq && x.Op != OpNe {
			return bad("a binary attribute supports only eq and ne")
		}
	case TypeBoolean:
		if _, ok := x.Value.(bool); !ok {
			return bad("the attribute is a boolean; compare it with true or false")
		}
		if x.Op != OpEq && x.Op != OpNe {
			return bad("a boolean supports only eq and ne")
		}
	case TypeInteger, TypeDecimal:
		if _, ok := x.Value.(json.Number); !ok {
			return bad("the attribute is a number; compare it with a number")
		}
		if x.Op == OpCo || x.Op == OpSw || x.Op == OpEw {
			return bad("a number supports only eq, ne, gt, ge, lt and le")
		}
	case TypeDateTime:
		s, ok := x.Value.(string)
		if !ok {
			return bad("the attribute is a dateTime; compare it with a string")
		}
		if x.Op != OpCo && x.Op != OpSw && x.Op != OpEw {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return bad("compare a dateTime with an xsd:dateTime like 2026-01-02T15:04:05Z")
			}
		}
	}
	return nil
}

// match evaluates a checked filter against the object m.
func (sc scope) match(e Expr, m map[string]any) bool {
	switch x := e.(type) {
	case *LogExpr:
		if x.Op == "and" {
			return sc.match(x.Left, m) && sc.match(x.Right, m)
		}
		return sc.match(x.Left, m) || sc.match(x.Right, m)
	case *NotExpr:
		return !sc.match(x.X, m)
	case *ValuePathExpr:
		t, err := sc.resolve(x.Path)
		if err != nil {
			return false
		}
		inner := scope{rt: sc.rt, parent: t.outer}
		tt := t
		tt.sub = nil
		for _, e := range tt.values(m) {
			if em, ok := e.(map[string]any); ok && inner.match(x.Filter, em) {
				return true
			}
		}
		return false
	case *AttrExpr:
		t, err := sc.resolve(x.Path)
		if err != nil {
			return false
		}
		vals := t.values(m)
		switch {
		case x.Op == OpPr:
			for _, v := range vals {
				if present(v) {
					return true
				}
			}
			return false
		case x.Null:
			has := false
			for _, v := range vals {
				has = has || present(v)
			}
			return has == (x.Op == OpNe)
		case x.Op == OpNe:
			for _, v := range vals {
				if compare(t.def, OpEq, x.Value, v) {
					return false
				}
			}
			return true
		}
		for _, v := range vals {
			if compare(t.def, x.Op, x.Value, v) {
				return true
			}
		}
		return false
	}
	return false
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// compare applies op with the literal lit on the left to the stored value
// v, honouring the attribute's case-exactness (RFC 7644 section 3.4.2.2).
func compare(def *Attribute, op string, lit, v any) bool {
	switch def.Type {
	case TypeBoolean:
		b, ok := v.(bool)
		return ok && op == OpEq && b == lit
	case TypeInteger, TypeDecimal:
		a, ok1 := number(v)
		b, ok2 := number(lit)
		if !ok1 || !ok2 {
			return false
		}
		return ordered(op, cmpFloat(a, b))
	case TypeDateTime:
		s, _ := v.(string)
		l, _ := lit.(string)
		if op == OpCo || op == OpSw || op == OpEw {
			return compareStrings(op, l, s, false)
		}
		a, err1 := time.Parse(time.RFC3339Nano, s)
		b, err2 := time.Parse(time.RFC3339Nano, l)
		if err1 != nil || err2 != nil {
			return false
		}
		return ordered(op, a.Compare(b))
	}
	s, ok := v.(string)
	l, _ := lit.(string)
	return ok && compareStrings(op, l, s, def.CaseExact)
}

func compareStrings(op, lit, v string, exact bool) bool {
	if !exact {
		lit, v = strings.ToLower(lit), strings.ToLower(v)
	}
	switch op {
	case OpCo:
		return strings.Contains(v, lit)
	case OpSw:
		return strings.HasPrefix(v, lit)
	case OpEw:
		return strings.HasSuffix(v, lit)
	}
	return ordered(op, strings.Compare(v, lit))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ordered reads a comparison of the stored value against the literal.
func ordered(op string, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	}
	return false
}

// sortKey returns the value a resource sorts by: for a multi-valued
// attribute its primary value, else its first (RFC 7644 section 3.4.2.3).
func (t target) sortKey(m map[string]any) any {
	vals := t.values(m)
	if len(vals) == 0 {
		return nil
	}
	if t.outer.MultiValued && t.sub != nil {
		tt := t
		tt.sub = nil
		for _, e := range tt.values(m) {
			if em, ok := e.(map[string]any); ok && em["primary"] == true {
				if v, ok := em[t.sub.Name]; ok {
					return v
				}
			}
		}
	}
	return vals[0]
}

// lessValues orders two sort keys; absent values sort last in ascending
// order (RFC 7644 section 3.4.2.3).
func lessValues(def *Attribute, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	switch def.Type {
	case TypeInteger, TypeDecimal:
		x, _ := number(a)
		y, _ := number(b)
		return cmpFloat(x, y)
	case TypeBoolean:
		x, _ := a.(bool)
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case TypeDateTime:
		sa, _ := a.(string)
		sb, _ := b.(string)
		x, err1 := time.Parse(time.RFC3339Nano, sa)
		y, err2 := time.Parse(time.RFC3339Nano, sb)
		if err1 == nil && err2 == nil {
			return x.Compare(y)
		}
	}
	x, _ := a.(string)
	y, _ := b.(string)
	if !def.CaseExact {
		x, y = strings.ToLower(x), strings.ToLower(y)
	}
	return strings.Compare(x, y)
}

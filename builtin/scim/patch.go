package scim

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// patchOp is one operation of a PatchOp request (RFC 7644 section 3.5.2).
type patchOp struct {
	op       string // add, replace or remove
	path     *Path
	value    any
	hasValue bool
}

// parsePatch reads and checks a PatchOp body.
func parsePatch(body map[string]any) ([]patchOp, *Error) {
	schemas, _ := body["schemas"].([]any)
	if !slices.Contains(schemas, any(MsgPatchOp)) {
		return nil, badRequest(ErrTypeInvalidSyntax, "schemas: must be [%q]", MsgPatchOp)
	}
	var rawOps []any
	for k, v := range body {
		switch strings.ToLower(k) {
		case "schemas":
		case "operations":
			l, ok := v.([]any)
			if !ok {
				return nil, badRequest(ErrTypeInvalidSyntax, "Operations: must be an array")
			}
			rawOps = l
		default:
			return nil, badRequest(ErrTypeInvalidSyntax, "unknown PatchOp attribute %q", clip(k))
		}
	}
	if len(rawOps) == 0 {
		return nil, badRequest(ErrTypeInvalidSyntax, "Operations: at least one operation is required")
	}
	if len(rawOps) > MaxPatchOperations {
		return nil, badRequest(ErrTypeTooMany, "Operations: at most %d operations", MaxPatchOperations)
	}
	ops := make([]patchOp, 0, len(rawOps))
	for i, ro := range rawOps {
		m, ok := ro.(map[string]any)
		if !ok {
			return nil, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: must be an object", i)
		}
		var op patchOp
		for k, v := range m {
			switch strings.ToLower(k) {
			case "op":
				s, _ := v.(string)
				op.op = strings.ToLower(s)
			case "path":
				s, ok := v.(string)
				if !ok {
					return nil, badRequest(ErrTypeInvalidPath, "Operations[%d].path: must be a string", i)
				}
				if s == "" {
					continue
				}
				p, err := ParsePath(s)
				if err != nil {
					return nil, badRequest(ErrTypeInvalidPath, "Operations[%d].path: %s", i, err.Error())
				}
				op.path = &p
			case "value":
				op.value, op.hasValue = v, v != nil
			default:
				return nil, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: unknown attribute %q", i, clip(k))
			}
		}
		switch op.op {
		case "add", "replace":
			if !op.hasValue {
				return nil, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: %s needs a value", i, op.op)
			}
		case "remove":
			if op.path == nil {
				return nil, badRequest(ErrTypeNoTarget, "Operations[%d]: remove needs a path", i)
			}
		default:
			return nil, badRequest(ErrTypeInvalidSyntax, "Operations[%d].op: must be add, replace or remove", i)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// applyPatch applies ops to a copy of the resource cur, all or nothing:
// the first failing operation fails the whole request (RFC 7644 section
// 3.5.2).
func applyPatch(rt *resourceType, cur map[string]any, ops []patchOp) (map[string]any, *Error) {
	r, _ := deepCopy(cur).(map[string]any)
	for i, op := range ops {
		if err := applyOp(rt, r, op); err != nil {
			err.Detail = "Operations[" + strconv.Itoa(i) + "]: " + err.Detail
			return nil, err
		}
	}
	return r, nil
}

func applyOp(rt *resourceType, r map[string]any, op patchOp) *Error {
	if op.path == nil {
		m, ok := op.value.(map[string]any)
		if !ok {
			return badRequest(ErrTypeInvalidSyntax, "without a path, the value must be an object of attributes")
		}
		nm, err := normalizeAttributes(rt, m, false)
		if err != nil {
			return err
		}
		for k, v := range nm {
			if ext := rt.extension(k); ext != nil {
				em, _ := r[ext.ID].(map[string]any)
				if em == nil {
					em = map[string]any{}
				}
				vm, _ := v.(map[string]any)
				for ek, ev := range vm {
					mergeAttr(attrOf(ext.Attributes, ek), em, ev, op.op)
				}
				r[ext.ID] = em
				continue
			}
			a := attrOf(commonAttrs, k)
			if a == nil {
				a = attrOf(rt.Core.Attributes, k)
			}
			mergeAttr(a, r, v, op.op)
		}
		return nil
	}
	p := *op.path
	if ext := rt.extension(p.Attr.String()); ext != nil && p.Filter == nil {
		return applyExtension(ext, r, op)
	}
	s, a, sub, lerr := rt.lookup(p.Attr)
	if lerr != nil {
		return badRequest(ErrTypeInvalidPath, "%s", lerr.Error())
	}
	if a.Mutability == "readOnly" || sub != nil && sub.Mutability == "readOnly" {
		return badRequest(ErrTypeMutability, "%q is read-only", clip(p.String()))
	}
	cont := r
	if s != rt.Core {
		cont, _ = r[s.ID].(map[string]any)
		if cont == nil {
			cont = map[string]any{}
		}
		defer func() {
			if len(cont) > 0 {
				r[s.ID] = cont
			} else {
				delete(r, s.ID)
			}
		}()
	}
	if p.Filter != nil {
		return applyFiltered(rt, a, cont, p, op)
	}
	if sub != nil {
		return applySub(a, sub, cont, op)
	}
	if op.op == "remove" {
		if a.MultiValued && op.hasValue {
			return removeValues(a, cont, op.value)
		}
		if a.Required {
			return badRequest(ErrTypeMutability, "%q is required and cannot be removed", a.Name)
		}
		delete(cont, a.Name)
		return nil
	}
	v := op.value
	if _, isList := v.([]any); a.MultiValued && !isList {
		v = []any{v}
	}
	nv, err := normalizeValue(a, v, a.Name)
	if err != nil {
		return err
	}
	mergeAttr(a, cont, nv, op.op)
	return nil
}

func applyExtension(ext *Schema, r map[string]any, op patchOp) *Error {
	if op.op == "remove" {
		delete(r, ext.ID)
		return nil
	}
	m, ok := op.value.(map[string]any)
	if !ok {
		return badRequest(ErrTypeInvalidSyntax, "%s: the value must be an object", ext.ID)
	}
	nm, err := normalizeAttrs(ext.Attributes, m, ext.ID+":")
	if err != nil {
		return err
	}
	em, _ := r[ext.ID].(map[string]any)
	if em == nil {
		em = map[string]any{}
	}
	for k, v := range nm {
		mergeAttr(attrOf(ext.Attributes, k), em, v, op.op)
	}
	if len(em) > 0 {
		r[ext.ID] = em
	}
	return nil
}

// mergeAttr sets the normalized value nv of a in cont: add appends to a
// multi-valued attribute and merges into a complex one; replace replaces a
// multi-valued attribute and merges into a complex one; both set a simple
// attribute. A nil nv (an empty value) unassigns the attribute on replace.
func mergeAttr(a *Attribute, cont map[string]any, nv any, op string) {
	if nv == nil {
		if op == "replace" {
			delete(cont, a.Name)
		}
		return
	}
	switch {
	case a.MultiValued:
		newList, _ := nv.([]any)
		if op == "replace" {
			cont[a.Name] = newList
			return
		}
		old, _ := cont[a.Name].([]any)
		if hasPrimary(newList) {
			clearPrimary(old)
		}
		for _, e := range newList {
			if !containsValue(old, e) {
				old = append(old, e)
			}
		}
		cont[a.Name] = old
	case a.Type == TypeComplex:
		old, _ := cont[a.Name].(map[string]any)
		if old == nil {
			old = map[string]any{}
		}
		nm, _ := nv.(map[string]any)
		for k, v := range nm {
			old[k] = v
		}
		cont[a.Name] = old
	default:
		cont[a.Name] = nv
	}
}

func hasPrimary(list []any) bool {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["primary"] == true {
			return true
		}
	}
	return false
}

func clearPrimary(list []any) {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			delete(m, "primary")
		}
	}
}

// containsValue reports whether list holds e: the same "value"
// sub-attribute for complex values that have one, deep equality otherwise.
func containsValue(list []any, e any) bool {
	em, isMap := e.(map[string]any)
	for _, x := range list {
		if isMap {
			xm, _ := x.(map[string]any)
			if ev, ok := em["value"]; ok && xm != nil {
				if xm["value"] == ev {
					return true
				}
				continue
			}
		}
		if reflect.DeepEqual(x, e) {
			return true
		}
	}
	return false
}

// removeValues removes the given values from a multi-valued attribute, a
// form some clients use instead of a value filter
// ({"op":"remove","path":"members","value":[{"value":"id"}]}).
func removeValues(a *Attribute, cont map[string]any, v any) *Error {
	if _, isList := v.([]any); !isList {
		v = []any{v}
	}
	nv, err := normalizeValue(a, v, a.Name)
	if err != nil {
		return err
	}
	drop, _ := nv.([]any)
	old, _ := cont[a.Name].([]any)
	kept := old[:0]
	for _, x := range old {
		if !containsValue(drop, x) {
			kept = append(kept, x)
		}
	}
	setList(cont, a.Name, kept)
	return nil
}

func setList(cont map[string]any, name string, l []any) {
	if len(l) == 0 {
		delete(cont, name)
		return
	}
	cont[name] = l
}

// applySub handles "attr.sub" paths without a filter.
func applySub(a, sub *Attribute, cont map[string]any, op patchOp) *Error {
	var nv any
	if op.op != "remove" {
		var err *Error
		if nv, err = normalizeSingle(sub, op.value, a.Name+"."+sub.Name); err != nil {
			return err
		}
	}
	set := func(m map[string]any) {
		if nv == nil {
			delete(m, sub.Name)
		} else {
			m[sub.Name] = nv
		}
	}
	if a.MultiValued {
		list, _ := cont[a.Name].([]any)
		if op.op != "remove" && sub.Name == "primary" && nv == true && len(list) > 1 {
			return badRequest(ErrTypeInvalidValue, "%s.primary: name one value with a filter", a.Name)
		}
		for _, e := range list {
			if m, ok := e.(map[string]any); ok {
				set(m)
			}
		}
		return nil
	}
	m, _ := cont[a.Name].(map[string]any)
	if m == nil {
		if op.op == "remove" {
			return nil
		}
		m = map[string]any{}
	}
	set(m)
	if len(m) == 0 {
		delete(cont, a.Name)
	} else {
		cont[a.Name] = m
	}
	return nil
}

// applyFiltered handles `attr[filter]` and `attr[filter].sub` paths.
func applyFiltered(rt *resourceType, a *Attribute, cont map[string]any, p Path, op patchOp) *Error {
	if !a.MultiValued || a.Type != TypeComplex {
		return badRequest(ErrTypeInvalidPath, "%q: a value filter needs a multi-valued complex attribute", a.Name)
	}
	sc := scope{rt: rt, parent: a}
	if err := sc.checkFilter(p.Filter); err != nil {
		return err
	}
	var sub *Attribute
	if p.Sub != "" {
		if sub = attrOf(a.SubAttributes, p.Sub); sub == nil {
			return badRequest(ErrTypeInvalidPath, "unknown attribute %q", clip(a.Name+"."+p.Sub))
		}
		if sub.Mutability == "readOnly" {
			return badRequest(ErrTypeMutability, "%q is read-only", clip(p.String()))
		}
	}
	list, _ := cont[a.Name].([]any)
	var matched []int
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && sc.match(p.Filter, m) {
			matched = append(matched, i)
		}
	}
	if op.op == "remove" {
		if sub != nil {
			for _, i := range matched {
				if m, ok := list[i].(map[string]any); ok {
					delete(m, sub.Name)
				}
			}
			return nil
		}
		kept := make([]any, 0, len(list))
		for i, e := range list {
			if !slices.Contains(matched, i) {
				kept = append(kept, e)
			}
		}
		setList(cont, a.Name, kept)
		return nil
	}
	var nv any
	var err *Error
	if sub != nil {
		nv, err = normalizeSingle(sub, op.value, a.Name+"."+sub.Name)
	} else {
		nv, err = normalizeSingle(a, op.value, a.Name)
	}
	if err != nil {
		return err
	}
	if len(matched) == 0 {
		// Nothing matched: create the value the filter describes when
		// it is a conjunction of eq comparisons (the way clients add a
		// work email with `emails[type eq "work"].value`); otherwise
		// there is no target (RFC 7644 section 3.5.2.3).
		base, ok := eqTemplate(p.Filter)
		if !ok {
			return badRequest(ErrTypeNoTarget, "no value of %q matches the filter", a.Name)
		}
		if sub != nil {
			if nv != nil {
				base[sub.Name] = nv
			}
		} else if nm, ok := nv.(map[string]any); ok {
			for k, v := range nm {
				base[k] = v
			}
		}
		nb, err := normalizeSingle(a, base, a.Name)
		if err != nil {
			return err
		}
		if nb != nil {
			if hasPrimary([]any{nb}) {
				clearPrimary(list)
			}
			list = append(list, nb)
		}
		setList(cont, a.Name, list)
		return nil
	}
	if sub != nil && sub.Name == "primary" && nv == true {
		if len(matched) > 1 {
			return badRequest(ErrTypeInvalidValue, "%s: only one value may be primary", a.Name)
		}
		clearPrimary(list)
	}
	for _, i := range matched {
		m, _ := list[i].(map[string]any)
		switch {
		case sub != nil && nv == nil:
			delete(m, sub.Name)
		case sub != nil:
			m[sub.Name] = nv
		case op.op == "replace":
			nm, _ := nv.(map[string]any)
			list[i] = nm
		default:
			nm, _ := nv.(map[string]any)
			for k, v := range nm {
				m[k] = v
			}
		}
	}
	kept := list[:0]
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && len(m) > 0 {
			kept = append(kept, e)
		}
	}
	setList(cont, a.Name, kept)
	return nil
}

// eqTemplate returns the value a filter made only of `sub eq value` joined
// by "and" describes.
func eqTemplate(e Expr) (map[string]any, bool) {
	switch x := e.(type) {
	case *AttrExpr:
		if x.Op != OpEq || x.Null || x.Path.Sub != "" {
			return nil, false
		}
		return map[string]any{x.Path.Name: x.Value}, true
	case *LogExpr:
		if x.Op != "and" {
			return nil, false
		}
		l, ok1 := eqTemplate(x.Left)
		r, ok2 := eqTemplate(x.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

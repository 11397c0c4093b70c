package scim

import (
	"strings"
)

// maxProjectionLen bounds the attributes and excludedAttributes parameters.
const maxProjectionLen = 2048

// projection is a parsed attributes or excludedAttributes parameter (RFC
// 7644 section 3.4.2.5): which attributes to return.
type projection struct {
	rt      *resourceType
	include []target
	exclude []target
	// includeExt and excludeExt name whole extensions.
	includeExt, excludeExt map[string]bool
}

func parseProjection(rt *resourceType, attributes, excluded string) (*projection, *Error) {
	p := &projection{rt: rt, includeExt: map[string]bool{}, excludeExt: map[string]bool{}}
	if attributes != "" && excluded != "" {
		return nil, badRequest(ErrTypeInvalidValue, "attributes and excludedAttributes cannot be used together")
	}
	var err *Error
	if p.include, err = p.parseList(attributes, p.includeExt, "attributes"); err != nil {
		return nil, err
	}
	if p.exclude, err = p.parseList(excluded, p.excludeExt, "excludedAttributes"); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *projection) parseList(s string, exts map[string]bool, param string) ([]target, *Error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > maxProjectionLen {
		return nil, badRequest(ErrTypeInvalidValue, "%s: longer than %d bytes", param, maxProjectionLen)
	}
	var out []target
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if ext := p.rt.extension(item); ext != nil {
			exts[ext.ID] = true
			continue
		}
		ap, err := parseAttrPath(item)
		if err != nil {
			return nil, badRequest(ErrTypeInvalidValue, "%s: %s", param, err.Error())
		}
		sch, a, sub, err := p.rt.lookup(ap)
		if err != nil {
			return nil, badRequest(ErrTypeInvalidValue, "%s: %s", param, err.Error())
		}
		t := target{outer: a, sub: sub, def: a}
		if sch != p.rt.Core {
			t.ext = sch.ID
		}
		out = append(out, t)
	}
	return out, nil
}

// apply returns the projection of a full resource r. Attributes returned
// "always" (id, schemas) are kept whatever was asked; meta is kept unless
// excluded or left out of an attributes list.
func (p *projection) apply(r map[string]any) map[string]any {
	if p == nil || len(p.include) == 0 && len(p.includeExt) == 0 && len(p.exclude) == 0 && len(p.excludeExt) == 0 {
		return r
	}
	if len(p.include) > 0 || len(p.includeExt) > 0 {
		out := map[string]any{"schemas": r["schemas"], "id": r["id"]}
		for ext := range p.includeExt {
			if v, ok := r[ext]; ok {
				out[ext] = v
			}
		}
		for _, t := range p.include {
			copyTarget(t, r, out)
		}
		return out
	}
	out := deepCopy(r).(map[string]any)
	for ext := range p.excludeExt {
		delete(out, ext)
	}
	for _, t := range p.exclude {
		if t.outer.Returned == "always" {
			continue
		}
		removeTarget(t, out)
	}
	return out
}

// container returns the object holding t's attribute in r (the resource or
// one of its extensions), creating it in out when create is set.
func container(t target, m map[string]any, create bool) map[string]any {
	if t.ext == "" {
		return m
	}
	em, ok := m[t.ext].(map[string]any)
	if !ok && create {
		em = map[string]any{}
		m[t.ext] = em
	}
	return em
}

func copyTarget(t target, r, out map[string]any) {
	src := container(t, r, false)
	v, ok := src[t.outer.Name]
	if !ok {
		return
	}
	dst := container(t, out, true)
	if t.sub == nil || t.outer.Type != TypeComplex {
		dst[t.outer.Name] = deepCopy(v)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		m, _ := dst[t.outer.Name].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if sv, ok := x[t.sub.Name]; ok {
			m[t.sub.Name] = sv
		}
		if len(m) > 0 {
			dst[t.outer.Name] = m
		}
	case []any:
		prev, _ := dst[t.outer.Name].([]any)
		list := make([]any, len(x))
		for i, e := range x {
			m := map[string]any{}
			if i < len(prev) {
				if pm, ok := prev[i].(map[string]any); ok {
					m = pm
				}
			}
			if em, ok := e.(map[string]any); ok {
				if sv, ok := em[t.sub.Name]; ok {
					m[t.sub.Name] = sv
				}
			}
			list[i] = m
		}
		dst[t.outer.Name] = list
	}
}

func removeTarget(t target, out map[string]any) {
	dst := container(t, out, false)
	if dst == nil {
		return
	}
	if t.sub == nil {
		delete(dst, t.outer.Name)
		return
	}
	switch x := dst[t.outer.Name].(type) {
	case map[string]any:
		delete(x, t.sub.Name)
	case []any:
		for _, e := range x {
			if em, ok := e.(map[string]any); ok {
				delete(em, t.sub.Name)
			}
		}
	}
}

// returns reports whether the projection keeps the core attribute name
// (compared case-insensitively, as SCIM attribute names are).
func (p *projection) returns(name string) bool {
	if p == nil {
		return true
	}
	if len(p.include) > 0 || len(p.includeExt) > 0 {
		for _, t := range p.include {
			if t.ext == "" && strings.EqualFold(t.outer.Name, name) {
				return true
			}
		}
		return false
	}
	for _, t := range p.exclude {
		if t.ext == "" && t.sub == nil && strings.EqualFold(t.outer.Name, name) {
			return false
		}
	}
	return true
}

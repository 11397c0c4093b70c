package scim

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Input limits. They keep one request's work and storage bounded.
const (
	maxStringLen   = 2048
	maxBinaryLen   = 16384
	maxMultiValues = 100
)

// normalizeResource validates a resource body against rt and returns it
// with canonical attribute names (SCIM names are case-insensitive). Read-only
// attributes are dropped (RFC 7643 section 2.2: the service provider ignores
// them), nulls mean "unassigned" and are dropped, unknown attributes and
// schemas are refused.
func normalizeResource(rt *resourceType, in map[string]any) (map[string]any, *Error) {
	return normalizeAttributes(rt, in, true)
}

// normalizeAttributes is normalizeResource for a whole resource (schemas
// required, RFC 7643 section 3) or, with whole false, for a set of
// attributes such as the value of a PATCH operation without a path.
func normalizeAttributes(rt *resourceType, in map[string]any, whole bool) (map[string]any, *Error) {
	if _, ok := in["schemas"]; whole && !ok {
		return nil, badRequest(ErrTypeInvalidSyntax, "schemas: is required (must include %s)", rt.Core.ID)
	}
	out := map[string]any{}
	for k, v := range in {
		if strings.EqualFold(k, "schemas") {
			if err := checkSchemas(rt, v); err != nil {
				return nil, err
			}
			continue
		}
		if ext := rt.extension(k); ext != nil {
			if v == nil {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, badRequest(ErrTypeInvalidSyntax, "%s: must be an object", ext.ID)
			}
			nm, err := normalizeAttrs(ext.Attributes, m, ext.ID+":")
			if err != nil {
				return nil, err
			}
			if len(nm) > 0 {
				out[ext.ID] = nm
			}
			continue
		}
		a := attrOf(commonAttrs, k)
		if a == nil {
			a = attrOf(rt.Core.Attributes, k)
		}
		if a == nil {
			return nil, badRequest(ErrTypeInvalidValue, "unknown attribute %q", clip(k))
		}
		if a.Mutability == "readOnly" || v == nil {
			continue
		}
		nv, err := normalizeValue(a, v, a.Name)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[a.Name] = nv
		}
	}
	return out, nil
}

// extension returns the extension schema whose URN is k, or nil.
func (rt *resourceType) extension(k string) *Schema {
	for _, s := range rt.Extensions {
		if strings.EqualFold(k, s.ID) {
			return s
		}
	}
	return nil
}

func checkSchemas(rt *resourceType, v any) *Error {
	list, ok := v.([]any)
	if !ok {
		return badRequest(ErrTypeInvalidSyntax, "schemas: must be an array of schema URNs")
	}
	core := false
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return badRequest(ErrTypeInvalidSyntax, "schemas: must be an array of schema URNs")
		}
		switch {
		case strings.EqualFold(s, rt.Core.ID):
			core = true
		case rt.extension(s) != nil:
		default:
			return badRequest(ErrTypeInvalidValue, "schemas: %q is not a schema of %s resources", clip(s), rt.Name)
		}
	}
	if !core {
		return badRequest(ErrTypeInvalidValue, "schemas: must include %s", rt.Core.ID)
	}
	return nil
}

// normalizeAttrs validates an object whose keys are attributes of defs.
func normalizeAttrs(defs []Attribute, m map[string]any, prefix string) (map[string]any, *Error) {
	out := map[string]any{}
	for k, v := range m {
		a := attrOf(defs, k)
		if a == nil {
			return nil, badRequest(ErrTypeInvalidValue, "unknown attribute %q", clip(prefix+k))
		}
		if a.Mutability == "readOnly" || v == nil {
			continue
		}
		nv, err := normalizeValue(a, v, prefix+a.Name)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[a.Name] = nv
		}
	}
	return out, nil
}

// normalizeValue validates v as a value of a (all its values when a is
// multi-valued). It returns nil for an empty value.
func normalizeValue(a *Attribute, v any, path string) (any, *Error) {
	if !a.MultiValued {
		return normalizeSingle(a, v, path)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest(ErrTypeInvalidSyntax, "%s: must be an array", path)
	}
	if len(list) > maxMultiValues {
		return nil, badRequest(ErrTypeInvalidValue, "%s: at most %d values", path, maxMultiValues)
	}
	out := make([]any, 0, len(list))
	primaries := 0
	for _, x := range list {
		if x == nil {
			continue
		}
		nx, err := normalizeSingle(a, x, path)
		if err != nil {
			return nil, err
		}
		if nx == nil {
			continue
		}
		if m, ok := nx.(map[string]any); ok && m["primary"] == true {
			primaries++
		}
		out = append(out, nx)
	}
	if primaries > 1 {
		return nil, badRequest(ErrTypeInvalidValue, "%s: at most one value may be primary", path)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func normalizeSingle(a *Attribute, v any, path string) (any, *Error) {
	switch a.Type {
	case TypeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badRequest(ErrTypeInvalidSyntax, "%s: must be an object", path)
		}
		nm, err := normalizeAttrs(a.SubAttributes, m, path+".")
		if err != nil {
			return nil, err
		}
		if len(nm) == 0 {
			return nil, nil
		}
		return nm, nil
	case TypeString, TypeReference, TypeBinary:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be a string", path)
		}
		limit := maxStringLen
		if a.Type == TypeBinary {
			limit = maxBinaryLen
		}
		if len(s) > limit {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be at most %d bytes", path, limit)
		}
		if !utf8.ValidString(s) {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be valid UTF-8", path)
		}
		return s, nil
	case TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			// Some clients send "True"/"False"; accept them rather than
			// fail a whole sync over a quoting habit.
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, badRequest(ErrTypeInvalidValue, "%s: must be true or false", path)
	case TypeInteger, TypeDecimal:
		f, ok := number(v)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be a number", path)
		}
		if a.Type == TypeInteger && (f != math.Trunc(f) || math.Abs(f) > 1<<53) {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be an integer", path)
		}
		return json.Number(fmt.Sprint(v)), nil
	case TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be an xsd:dateTime string", path)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, badRequest(ErrTypeInvalidValue, "%s: must be an xsd:dateTime like 2026-01-02T15:04:05Z", path)
		}
		return s, nil
	}
	return nil, badRequest(ErrTypeInvalidValue, "%s: unsupported type", path)
}

// number reads a JSON number decoded either as json.Number or float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// clip shortens user input echoed in an error.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// deepCopy copies a JSON value so edits to the copy leave v alone.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// Package mapping is the claims.mapping extension: a rule-based claim
// mapper. For a pair of dialects (and optionally one upstream issuer) it
// applies a list of rules to the claims:
//
//   - rename: {"from": "http://wso2.org/claims/emailaddress", "to": "email"}
//     moves a claim to a new name; with "copy": true the source stays too;
//   - constant: {"to": "tenant", "value": "acme"} sets a fixed value;
//   - template: {"to": "name", "template": "{given_name} {family_name}"}
//     builds a string from other claims.
//
// Claims no rule names pass through unchanged, unless the mapping sets
// drop_unmapped. Rules read the claims given, never each other's output, so
// their order does not matter except when two set the same claim (the later
// wins). A request whose dialects no mapping covers passes through
// unchanged, as mappers in a chain must.
package mapping

import (
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
)

// ID is the module id.
const ID extension.ID = "claims.mapping"

//go:embed config.schema.json
var configSchema []byte

// Module returns the claims.mapping module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindClaims,
		New:          func() any { return new(Mapper) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Rename, copy, set and compose claims between dialects by rules.",
	}
}

// Mapper is a claims.mapping instance. Its exported fields are its
// configuration (see config.schema.json).
type Mapper struct {
	// Mappings lists the translations, tried in order: the first whose
	// From, To and Issuer match a request applies. With none, every
	// request passes through.
	Mappings []Mapping `json:"mappings,omitempty"`
}

// Mapping is the translation of claims from one dialect to another.
type Mapping struct {
	// From is the dialect of the claims given (an abi.Dialect… value).
	From string `json:"from"`
	// To is the dialect wanted.
	To string `json:"to"`
	// Issuer, when set, limits the mapping to requests naming this
	// upstream identity provider.
	Issuer string `json:"issuer,omitempty"`
	// DropUnmapped drops the claims no rule names instead of passing them
	// through.
	DropUnmapped bool `json:"drop_unmapped,omitempty"`
	// Rules set the claims of the result.
	Rules []Rule `json:"rules"`

	// renamed holds the sources of renames (not copies): they do not pass
	// through.
	renamed map[string]bool
}

// Rule sets one claim. Exactly one of From, Value and Template is set.
type Rule struct {
	// To is the claim to set.
	To string `json:"to"`
	// From is the claim whose value To takes; To is not set when From is
	// absent.
	From string `json:"from,omitempty"`
	// Copy, with From, keeps the source claim as well.
	Copy bool `json:"copy,omitempty"`
	// Value is the constant value of To, any JSON value.
	Value json.RawMessage `json:"value,omitempty"`
	// Template is the text of To with each {claim} replaced by the
	// claim's value: a string as it is, a number or boolean in its JSON
	// form, anything else as JSON; an absent claim as nothing. "{{" and
	// "}}" stand for literal braces. The result is trimmed of surrounding
	// spaces, and To is not set when it is empty.
	Template string `json:"template,omitempty"`

	value    any
	template []segment
}

// segment is a piece of a template: literal text, or a claim's name.
type segment struct {
	text  string
	claim bool
}

// Provision compiles the rules and checks what the schema cannot: each
// rule has one source, templates are well formed, and no mapping hides
// another. Problems are reported as an *extension.ConfigError naming the
// field.
func (m *Mapper) Provision(ctx context.Context, env extension.Env) error {
	var probs []extension.FieldError
	seen := make(map[[3]string]int)
	for i := range m.Mappings {
		mp := &m.Mappings[i]
		at := fmt.Sprintf("config.mappings[%d]", i)
		k := [3]string{mp.From, mp.To, mp.Issuer}
		if j, dup := seen[k]; dup {
			probs = append(probs, extension.FieldError{Path: at, Message: fmt.Sprintf("covers the same from, to and issuer as mappings[%d], which always applies first", j)})
		} else {
			seen[k] = i
		}
		mp.renamed = make(map[string]bool)
		for j := range mp.Rules {
			r := &mp.Rules[j]
			rat := fmt.Sprintf("%s.rules[%d]", at, j)
			n := 0
			for _, set := range []bool{r.From != "", r.Value != nil, r.Template != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				probs = append(probs, extension.FieldError{Path: rat, Message: "must set exactly one of from, value and template"})
				continue
			}
			switch {
			case r.From != "":
				if !r.Copy {
					mp.renamed[r.From] = true
				}
			case r.Value != nil:
				if err := json.Unmarshal(r.Value, &r.value); err != nil {
					probs = append(probs, extension.FieldError{Path: rat + ".value", Message: "malformed JSON: " + err.Error()})
				}
			default:
				segs, err := parseTemplate(r.Template)
				if err != nil {
					probs = append(probs, extension.FieldError{Path: rat + ".template", Message: err.Error()})
				}
				r.template = segs
			}
		}
	}
	if len(probs) > 0 {
		return &extension.ConfigError{Fields: probs}
	}
	return nil
}

// Map applies the first mapping that covers the request's dialects and
// issuer, and passes the claims through unchanged when none does. It never
// modifies req.Claims.
func (m *Mapper) Map(ctx context.Context, req abi.MapRequest) (abi.MapResponse, error) {
	for i := range m.Mappings {
		mp := &m.Mappings[i]
		if mp.From == req.From && mp.To == req.To && (mp.Issuer == "" || mp.Issuer == req.Issuer) {
			return abi.MapResponse{Claims: mp.apply(req.Claims)}, nil
		}
	}
	if req.Claims == nil {
		return abi.MapResponse{Claims: map[string]any{}}, nil
	}
	return abi.MapResponse{Claims: req.Claims}, nil
}

// apply returns a new map with the mapping's rules applied to in.
func (mp *Mapping) apply(in map[string]any) map[string]any {
	out := make(map[string]any, len(in)+len(mp.Rules))
	if !mp.DropUnmapped {
		for k, v := range in {
			if !mp.renamed[k] {
				out[k] = v
			}
		}
	}
	for i := range mp.Rules {
		r := &mp.Rules[i]
		switch {
		case r.From != "":
			if v, ok := in[r.From]; ok {
				out[r.To] = v
			}
		case r.template != nil:
			if s := render(r.template, in); s != "" {
				out[r.To] = s
			}
		default:
			out[r.To] = cloneJSON(r.value)
		}
	}
	return out
}

// parseTemplate splits a template into literal text and claim names.
func parseTemplate(s string) ([]segment, error) {
	segs := []segment{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case (c == '{' || c == '}') && i+1 < len(s) && s[i+1] == c:
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] != '}' {
				return nil, fmt.Errorf("the '{' at byte %d is not closed by a '}' (write {{ for a literal brace)", i)
			}
			if end == 0 {
				return nil, fmt.Errorf("the placeholder at byte %d names no claim", i)
			}
			flush()
			segs = append(segs, segment{text: s[i+1 : i+1+end], claim: true})
			i += end + 1
		case c == '}':
			return nil, fmt.Errorf("the '}' at byte %d closes nothing (write }} for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return segs, nil
}

// render fills a template from claims.
func render(segs []segment, claims map[string]any) string {
	var b strings.Builder
	for _, s := range segs {
		if !s.claim {
			b.WriteString(s.text)
			continue
		}
		switch v := claims[s.text].(type) {
		case nil:
		case string:
			b.WriteString(v)
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			b.WriteString(strconv.FormatBool(v))
		default:
			if j, err := json.Marshal(v); err == nil {
				b.Write(j)
			}
		}
	}
	return strings.TrimSpace(b.String())
}

// cloneJSON returns a deep copy of a decoded JSON value, so that a
// constant handed to the next mapper in a chain cannot be changed under
// the configuration.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = cloneJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneJSON(e)
		}
		return c
	}
	return v
}

var (
	_ claims.Mapper         = (*Mapper)(nil)
	_ extension.Provisioner = (*Mapper)(nil)
)

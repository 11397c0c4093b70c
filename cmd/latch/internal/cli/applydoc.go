package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The declarative file of `latch apply` (docs/apply.md): YAML documents,
// each one object of the running server, in the shape
//
//	apiVersion: latch/v1
//	kind: Flow
//	metadata: {name: admins-mfa, tenant: default}
//	spec: {...}
//
// parseApplyDocs reads and checks every document before anything is
// applied, so a mistake anywhere in the file changes nothing.

// applyAPIVersion is the only apiVersion this build reads.
const applyAPIVersion = "latch/v1"

// Limits on a file, so that a hostile file cannot make the parser work
// without end.
const (
	maxApplyFileBytes = 8 << 20
	maxApplyDocs      = 10000
)

// Kinds of object a document may describe, in the order apply runs them:
// tenants first (everything else lives in one), flows before the clients
// that name them, bundles last.
const (
	kindTenant = "Tenant"
	kindRole   = "Role"
	kindGroup  = "Group"
	kindUser   = "User"
	kindFlow   = "Flow"
	kindClient = "Client"
	kindBundle = "Bundle"
)

var applyKinds = []string{kindTenant, kindRole, kindGroup, kindUser, kindFlow, kindClient, kindBundle}

// fieldType is what a spec field holds.
type fieldType int

const (
	fString fieldType = iota
	fBool
	fStrings
	fObject
	fAny
	fSteps
)

func (t fieldType) String() string {
	return [...]string{"a string", "a boolean", "a list of strings", "a mapping", "any value", "a list of steps"}[t]
}

// specFields lists, per kind, the fields a spec may hold. The admin API's
// JSON names are used unchanged.
var specFields = map[string]map[string]fieldType{
	kindTenant: {"display_name": fString, "enabled": fBool, "settings": fObject},
	kindRole:   {"description": fString, "permissions": fStrings},
	kindGroup:  {"description": fString, "attributes": fObject},
	kindUser: {"password": fString, "email": fString, "email_verified": fBool, "phone_number": fString,
		"display_name": fString, "given_name": fString, "family_name": fString, "enabled": fBool,
		"attributes": fObject, "groups": fStrings, "roles": fStrings},
	kindFlow: {"steps": fSteps, "script": fString, "comment": fString},
	kindClient: {"name": fString, "client_secret": fString, "public": fBool, "first_party": fBool,
		"redirect_uris": fStrings, "grant_types": fStrings, "response_types": fStrings, "scopes": fStrings,
		"audience": fStrings, "token_endpoint_auth_method": fString, "settings": fObject, "enabled": fBool},
	kindBundle: {"file": fString, "grants": fStrings, "config": fAny, "tenants": fStrings, "enabled": fBool},
}

// stepFields are the fields of one step of a Flow.
var stepFields = map[string]fieldType{"options": fStrings, "subject_step": fBool, "attribute_step": fBool}

// applyDoc is one checked document.
type applyDoc struct {
	// Index counts documents from 1 in the file; Line is where it starts.
	Index  int
	Line   int
	Kind   string
	Name   string
	Tenant string
	// Spec holds the fields given, with ${ENV} references replaced.
	Spec map[string]any
}

// String names the document in messages.
func (d applyDoc) String() string {
	return fmt.Sprintf("document %d (line %d, %s %q)", d.Index, d.Line, d.Kind, d.Name)
}

// docError is a mistake in one document.
type docError struct {
	Index int
	Line  int
	Field string
	Msg   string
}

func (e *docError) Error() string {
	s := fmt.Sprintf("document %d (line %d)", e.Index, e.Line)
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} in s with the variable's value; $${ writes
// a literal ${. A reference to an unset variable is an error.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$${" {
			return "${"
		}
		name := m[2 : len(m)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// parseApplyDocs reads every document of data. Empty documents are
// skipped. The error joins one *docError per mistake (at most 20).
func parseApplyDocs(data []byte, defaultTenant string, lookup func(string) (string, bool)) ([]applyDoc, error) {
	if len(data) > maxApplyFileBytes {
		return nil, fmt.Errorf("the file is larger than %d bytes", maxApplyFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []applyDoc
	var errs []error
	seen := map[string]int{}
	for index := 1; ; index++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &docError{Index: index, Line: yamlErrLine(err), Msg: "not valid YAML: " + yamlErrText(err)})
			break // the decoder cannot go on after a syntax error
		}
		if index > maxApplyDocs {
			errs = append(errs, fmt.Errorf("the file has more than %d documents", maxApplyDocs))
			break
		}
		if len(root.Content) == 0 || (root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null") {
			continue
		}
		d, err := parseApplyDoc(index, root.Content[0], defaultTenant, lookup)
		if err != nil {
			errs = append(errs, err)
		} else {
			key := d.Kind + "/" + d.Tenant + "/" + d.Name
			if d.Kind == kindTenant || d.Kind == kindBundle {
				key = d.Kind + "/" + d.Name
			}
			if first, dup := seen[key]; dup {
				errs = append(errs, &docError{Index: index, Line: d.Line, Field: "metadata.name",
					Msg: fmt.Sprintf("%s %q is also described by document %d", d.Kind, d.Name, first)})
			} else {
				seen[key] = index
				docs = append(docs, d)
			}
		}
		if len(errs) >= 20 {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return docs, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	var n int
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		_, _ = fmt.Sscan(m[1], &n)
	}
	return n
}

func yamlErrText(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// mapping returns the key and value nodes of a mapping node in order.
func mapping(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func parseApplyDoc(index int, n *yaml.Node, defaultTenant string, lookup func(string) (string, bool)) (applyDoc, error) {
	d := applyDoc{Index: index, Line: n.Line, Tenant: defaultTenant}
	fail := func(at *yaml.Node, field, format string, args ...any) (applyDoc, error) {
		return applyDoc{}, &docError{Index: index, Line: at.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode {
		return fail(n, "", "a document must be a mapping with apiVersion, kind, metadata and spec")
	}
	var spec, meta *yaml.Node
	var version string
	for _, kv := range mapping(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "apiVersion":
			version = scalar(v)
		case "kind":
			d.Kind = scalar(v)
		case "metadata":
			meta = v
		case "spec":
			spec = v
		default:
			return fail(k, k.Value, "unknown field; a document has apiVersion, kind, metadata and spec")
		}
	}
	if version != applyAPIVersion {
		return fail(n, "apiVersion", "must be %s", applyAPIVersion)
	}
	if !slices.Contains(applyKinds, d.Kind) {
		return fail(n, "kind", "must be one of %s", strings.Join(applyKinds, ", "))
	}
	if meta == nil || meta.Kind != yaml.MappingNode {
		return fail(n, "metadata", "is required: a mapping with name (and optionally tenant)")
	}
	for _, kv := range mapping(meta) {
		k, v := kv[0], kv[1]
		val, err := expandEnv(scalar(v), lookup)
		if err != nil {
			return fail(v, "metadata."+k.Value, "%v", err)
		}
		switch {
		case v.Kind != yaml.ScalarNode:
			return fail(v, "metadata."+k.Value, "must be a string")
		case k.Value == "name":
			d.Name = val
		case k.Value == "tenant":
			if d.Kind == kindTenant || d.Kind == kindBundle {
				return fail(k, "metadata.tenant", "a %s belongs to no tenant", d.Kind)
			}
			d.Tenant = val
		default:
			return fail(k, "metadata."+k.Value, "unknown field; metadata has name and tenant")
		}
	}
	if strings.TrimSpace(d.Name) == "" || strings.TrimSpace(d.Name) != d.Name || len(d.Name) > 128 {
		return fail(meta, "metadata.name", "is required: 1 to 128 characters without surrounding spaces")
	}
	if d.Tenant == "" {
		d.Tenant = "default"
	}
	if d.Kind == kindTenant || d.Kind == kindBundle {
		d.Tenant = ""
	}
	d.Spec = map[string]any{}
	if spec == nil || (spec.Kind == yaml.ScalarNode && spec.Tag == "!!null") {
		if d.Kind == kindFlow || d.Kind == kindBundle {
			return fail(n, "spec", "is required for a %s", d.Kind)
		}
		return d, nil
	}
	if spec.Kind != yaml.MappingNode {
		return fail(spec, "spec", "must be a mapping")
	}
	fields := specFields[d.Kind]
	for _, kv := range mapping(spec) {
		k, v := kv[0], kv[1]
		field := "spec." + k.Value
		t, ok := fields[k.Value]
		if !ok {
			return fail(k, field, "unknown field for a %s; known: %s", d.Kind, strings.Join(sortedKeys(fields), ", "))
		}
		val, err := decodeField(v, t, field, lookup)
		if err != nil {
			return applyDoc{}, withIndex(err, index)
		}
		d.Spec[k.Value] = val
	}
	if d.Kind == kindFlow {
		if _, ok := d.Spec["steps"]; !ok {
			return fail(spec, "spec.steps", "is required: a flow needs at least one step")
		}
	}
	if d.Kind == kindBundle {
		if f, _ := d.Spec["file"].(string); f == "" {
			return fail(spec, "spec.file", "is required: the path of the bundle archive")
		}
	}
	return d, nil
}

func withIndex(err error, index int) error {
	var de *docError
	if errors.As(err, &de) {
		de.Index = index
	}
	return err
}

func scalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// decodeField checks that n holds a t and returns it as JSON-shaped Go
// values, with ${ENV} references replaced in every string.
func decodeField(n *yaml.Node, t fieldType, field string, lookup func(string) (string, bool)) (any, error) {
	wrong := func() error {
		return &docError{Line: n.Line, Field: field, Msg: "must be " + t.String()}
	}
	switch t {
	case fString:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return nil, wrong()
		}
		s, err := expandEnv(n.Value, lookup)
		if err != nil {
			return nil, &docError{Line: n.Line, Field: field, Msg: err.Error()}
		}
		return s, nil
	case fBool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return nil, wrong()
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, wrong()
		}
		return b, nil
	case fStrings:
		if n.Kind != yaml.SequenceNode {
			return nil, wrong()
		}
		out := []any{}
		for i, item := range n.Content {
			v, err := decodeField(item, fString, fmt.Sprintf("%s[%d]", field, i), lookup)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case fSteps:
		if n.Kind != yaml.SequenceNode {
			return nil, wrong()
		}
		out := []any{}
		for i, item := range n.Content {
			f := fmt.Sprintf("%s[%d]", field, i)
			if item.Kind != yaml.MappingNode {
				return nil, &docError{Line: item.Line, Field: f, Msg: "must be a mapping with options"}
			}
			step := map[string]any{}
			for _, kv := range mapping(item) {
				st, ok := stepFields[kv[0].Value]
				if !ok {
					return nil, &docError{Line: kv[0].Line, Field: f + "." + kv[0].Value,
						Msg: "unknown field for a step; known: " + strings.Join(sortedKeys(stepFields), ", ")}
				}
				v, err := decodeField(kv[1], st, f+"."+kv[0].Value, lookup)
				if err != nil {
					return nil, err
				}
				step[kv[0].Value] = v
			}
			out = append(out, step)
		}
		return out, nil
	case fObject:
		if n.Kind != yaml.MappingNode {
			return nil, wrong()
		}
		return decodeAny(n, field, lookup, 0)
	default:
		return decodeAny(n, field, lookup, 0)
	}
}

// maxDepth bounds the nesting of free-form values.
const maxDepth = 32

// decodeAny turns a free-form YAML value into JSON-shaped Go values
// (maps with string keys, []any, string, bool, float64, nil).
func decodeAny(n *yaml.Node, field string, lookup func(string) (string, bool), depth int) (any, error) {
	if depth > maxDepth {
		return nil, &docError{Line: n.Line, Field: field, Msg: fmt.Sprintf("is nested deeper than %d levels", maxDepth)}
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, kv := range mapping(n) {
			if kv[0].Kind != yaml.ScalarNode {
				return nil, &docError{Line: kv[0].Line, Field: field, Msg: "keys must be strings"}
			}
			v, err := decodeAny(kv[1], field+"."+kv[0].Value, lookup, depth+1)
			if err != nil {
				return nil, err
			}
			out[kv[0].Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := []any{}
		for i, item := range n.Content {
			v, err := decodeAny(item, fmt.Sprintf("%s[%d]", field, i), lookup, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, &docError{Line: n.Line, Field: field, Msg: "is not a boolean"}
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, &docError{Line: n.Line, Field: field, Msg: "is not a number"}
			}
			return f, nil
		default:
			s, err := expandEnv(n.Value, lookup)
			if err != nil {
				return nil, &docError{Line: n.Line, Field: field, Msg: err.Error()}
			}
			return s, nil
		}
	case yaml.AliasNode:
		return nil, &docError{Line: n.Line, Field: field, Msg: "YAML aliases are not accepted"}
	default:
		return nil, &docError{Line: n.Line, Field: field, Msg: "unexpected YAML node"}
	}
}

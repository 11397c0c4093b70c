package extension

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/latchid/latch/kernel/fault"
)

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	// Path locates the field, starting at "config"
	// ("config.servers[0].url"); "config" alone means the whole document.
	Path string
	// Message says what is wrong ("must be >= 1", "unknown field").
	Message string
}

// String returns "path: message".
func (e FieldError) String() string {
	return e.Path + ": " + e.Message
}

// ConfigError reports why an instance's configuration was refused: one
// FieldError per problem, sorted by path. errors.Is(err, fault.InvalidRequest)
// holds for it, so an admin API answers it as a client error.
type ConfigError struct {
	// Fields lists the problems; it is never empty.
	Fields []FieldError
}

// Error joins the problems with "; ".
func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns a fault.InvalidRequest whose client-safe message lists the
// problems and whose field is the first offending path.
func (e *ConfigError) Unwrap() error {
	f := fault.InvalidRequest.WithMessage("invalid configuration: " + e.Error())
	if len(e.Fields) > 0 {
		f = f.WithField(e.Fields[0].Path)
	}
	return f
}

func newConfigError(fields []FieldError) *ConfigError {
	slices.SortStableFunc(fields, func(a, b FieldError) int { return strings.Compare(a.Path, b.Path) })
	return &ConfigError{Fields: slices.CompactFunc(fields, func(a, b FieldError) bool { return a == b })}
}

// configRoot is the name the paths in a ConfigError start with.
const configRoot = "config"

// denyLoader refuses every external reference: module schemas must be
// self-contained, and a bundle's schema must not make the kernel read files
// or the network.
type denyLoader struct{}

func (denyLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %q: schemas may not refer to other documents", url)
}

func compileSchema(id ID, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing config schema: %w", err)
	}
	url := "latch:///extension/" + string(id) + "/config.schema.json"
	c := jsonschema.NewCompiler()
	c.UseLoader(denyLoader{})
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("adding config schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compiling config schema: %w", err)
	}
	return s, nil
}

// decodeConfig validates raw against schema (when not nil) and decodes it
// strictly into v. An empty or null raw is read as {}. Every problem with the
// configuration comes back as a *ConfigError.
func decodeConfig(schema *jsonschema.Schema, raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return newConfigError([]FieldError{{Path: configRoot, Message: "malformed JSON: " + err.Error()}})
	}
	if schema != nil {
		if err := schema.Validate(doc); err != nil {
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				return newConfigError([]FieldError{{Path: configRoot, Message: err.Error()}})
			}
			return newConfigError(schemaProblems(doc, ve))
		}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		if m, ok := doc.(map[string]any); ok && len(m) == 0 {
			return nil
		}
		return newConfigError([]FieldError{{Path: configRoot, Message: "this extension takes no configuration"}})
	}
	if probs := unknownFields(doc, rv.Type(), configRoot); len(probs) > 0 {
		return newConfigError(probs)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newConfigError([]FieldError{decodeProblem(err)})
	}
	if _, err := dec.Token(); err != io.EOF {
		return newConfigError([]FieldError{{Path: configRoot, Message: "unexpected data after the configuration object"}})
	}
	return nil
}

// decodeProblem turns an encoding/json error into a FieldError.
func decodeProblem(err error) FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := configRoot
		if te.Field != "" {
			path += "." + te.Field
		}
		return FieldError{Path: path, Message: "must be " + typeWord(te.Type) + ", got " + te.Value}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return FieldError{Path: configRoot, Message: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		return FieldError{Path: configRoot + "." + strings.TrimSuffix(name, `"`), Message: "unknown field"}
	}
	return FieldError{Path: configRoot, Message: err.Error()}
}

func typeWord(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()
)

// unknownFields walks the generic JSON value doc beside the Go type t and
// reports every object member that t has no field for, with its full path.
// encoding/json's DisallowUnknownFields names only the member, not where it
// is; this walk names the path. Types that decode themselves (json.Unmarshaler,
// encoding.TextUnmarshaler) and interfaces accept anything.
func unknownFields(doc any, t reflect.Type, path string) []FieldError {
	for t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	var out []FieldError
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil // a type error; the decoder reports it
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fieldType(fields, k)
			if !ok {
				out = append(out, FieldError{Path: path + "." + k, Message: "unknown field"})
				continue
			}
			out = append(out, unknownFields(obj[k], ft, path+"."+k)...)
		}
	case reflect.Map:
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, unknownFields(obj[k], t.Elem(), path+"."+k)...)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := doc.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			out = append(out, unknownFields(e, t.Elem(), path+"["+strconv.Itoa(i)+"]")...)
		}
	}
	return out
}

// jsonFields returns the JSON member names of struct type t, mapped to their
// field types, following encoding/json's rules for tags and embedded
// structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, taken := out[k]; !taken {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// fieldType finds the field for member k: an exact match, else a
// case-insensitive one, as encoding/json matches.
func fieldType(fields map[string]reflect.Type, k string) (reflect.Type, bool) {
	if t, ok := fields[k]; ok {
		return t, true
	}
	for name, t := range fields {
		if strings.EqualFold(name, k) {
			return t, true
		}
	}
	return nil, false
}

var printer = message.NewPrinter(language.English)

// schemaProblems flattens a validation error tree into one FieldError per
// failed leaf.
func schemaProblems(doc any, ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		path := instancePath(doc, e.InstanceLocation)
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, m := range k.Missing {
				out = append(out, FieldError{Path: path + "." + m, Message: "is required"})
			}
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				out = append(out, FieldError{Path: path + "." + p, Message: "unknown field"})
			}
		default:
			out = append(out, FieldError{Path: path, Message: kindMessage(e.ErrorKind)})
		}
	}
	walk(ve)
	if len(out) == 0 {
		out = append(out, FieldError{Path: configRoot, Message: ve.Error()})
	}
	return out
}

// instancePath renders a JSON pointer's tokens as "config.a.b[2].c", using
// doc to tell array indexes from member names.
func instancePath(doc any, tokens []string) string {
	var b strings.Builder
	b.WriteString(configRoot)
	cur := doc
	for _, tok := range tokens {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
		case map[string]any:
			b.WriteString("." + tok)
			cur = c[tok]
		default:
			b.WriteString("." + tok)
			cur = nil
		}
	}
	return b.String()
}

// kindMessage words a failed schema keyword as a short rule.
func kindMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Minimum:
		return "must be >= " + ratString(k.Want)
	case *kind.Maximum:
		return "must be <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.Type:
		return "must be of type " + strings.Join(k.Want, " or ") + ", got " + k.Got
	case *kind.Enum:
		vals := make([]string, len(k.Want))
		for i, w := range k.Want {
			vals[i] = jsonString(w)
		}
		return "must be one of " + strings.Join(vals, ", ")
	case *kind.Const:
		return "must be " + jsonString(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.Pattern:
		return fmt.Sprintf("must match the pattern %q", k.Want)
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("must not repeat items (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.FalseSchema:
		return "is not allowed"
	}
	return k.LocalizedString(printer)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

var _ error = (*ConfigError)(nil)

package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// The configuration is layered by hand with yaml.v3 and reflection rather
// than with koanf. koanf flattens YAML into a map first, which loses the
// line numbers strict decoding must report and turns an unknown key into a
// silently ignored one; and the environment mapping (one variable per leaf,
// named after its YAML path) is a few lines of reflection over the same
// struct tags that drive decoding, so the three sources cannot disagree
// about names.

// DefaultFile is the file Load reads when given no path and it exists.
const DefaultFile = "latch.yaml"

// EnvPrefix starts every environment variable Load reads.
const EnvPrefix = "LATCH_"

// Load returns the configuration from, weakest to strongest: the defaults,
// the YAML file at path, the environment (through env, os.Getenv in
// production), and the flags of fs that were set explicitly. Derived
// defaults (PublicURL, Store.DSN) are filled last, from the merged values.
//
// path "" reads ./latch.yaml if it exists. YAML decoding is strict: an
// unknown key is an error naming the key and its line. An environment
// variable set to "" counts as unset. flags and env may be nil.
//
// Load checks syntax and types only; call Validate on the result.
func Load(path string, flags *pflag.FlagSet, env func(string) string) (Config, error) {
	c := defaults()

	if path == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			path = DefaultFile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("looking for %s: %w", DefaultFile, err)
		}
	}
	if path != "" {
		data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the config file (--config or ./latch.yaml); reading it is the point
		if err != nil {
			return Config{}, fmt.Errorf("reading config file: %w", err)
		}
		if err := decodeYAML(data, &c); err != nil {
			return Config{}, fmt.Errorf("loading config file %q: %w", path, err)
		}
	}
	if env != nil {
		if err := applyEnv(&c, env); err != nil {
			return Config{}, fmt.Errorf("loading environment: %w", err)
		}
	}
	if flags != nil {
		if err := applyFlags(&c, flags); err != nil {
			return Config{}, fmt.Errorf("loading flags: %w", err)
		}
	}
	c.derive()
	return c, nil
}

// decodeYAML decodes one YAML document strictly into c, leaving fields the
// document does not mention unchanged.
func decodeYAML(data []byte, c *Config) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return fmt.Errorf("parsing YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("parsing YAML: more than one document")
	}
	if len(root.Content) == 0 {
		return nil
	}
	var unknown []error
	checkKeys(root.Content[0], reflect.TypeFor[Config](), "", map[visit]bool{}, &unknown)
	if len(unknown) > 0 {
		return errors.Join(unknown...)
	}
	// The key check above gives the better message; KnownFields is the
	// backstop that keeps decoding strict if the two ever disagree.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil {
		return fmt.Errorf("decoding YAML: %w", err)
	}
	return nil
}

// visit is a mapping node checked under a YAML path.
type visit struct {
	n      *yaml.Node
	prefix string
}

// checkKeys reports every mapping key under n that names no field of the
// struct type t, by YAML path and line. Each (node, path) is checked once,
// so aliases and merge keys cannot make the work grow exponentially
// ("billion laughs") or loop, whatever the input.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string, seen map[visit]bool, errs *[]error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode || seen[visit{n, prefix}] {
		return // not a mapping: a type error the decoder reports with its line
	}
	seen[visit{n, prefix}] = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || k.Value == "<<" {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				checkKeys(m, t, prefix, seen, errs)
			}
			continue
		}
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			msg := fmt.Sprintf("line %d, column %d: unknown key %q", k.Line, k.Column, prefix+k.Value)
			if s := suggest(t, k.Value); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+s)
			}
			*errs = append(*errs, errors.New(msg))
			continue
		}
		if isSection(f.Type) {
			checkKeys(v, f.Type, prefix+k.Value+".", seen, errs)
		}
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range fieldsOf(t) {
		if yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldsOf(t reflect.Type) func(func(reflect.StructField) bool) {
	return func(yield func(reflect.StructField) bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || yamlName(f) == "" || yamlName(f) == "-" {
				continue
			}
			if !yield(f) {
				return
			}
		}
	}
}

// isSection reports whether a field is a nested section rather than a leaf.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct
}

// suggest returns the key of t closest to name, if it is close enough to be
// a likely typo or a different spelling (bodyLimit, body-limit).
func suggest(t reflect.Type, name string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestD := "", 3
	for f := range fieldsOf(t) {
		cand := yamlName(f)
		if norm(cand) == norm(name) {
			return cand
		}
		if d := editDistance(cand, name); d < bestD {
			best, bestD = cand, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo of a config key; skip the quadratic work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// leaf is one configurable value: its YAML path and environment variable.
type leaf struct {
	path  string // "http.body_limit"
	env   string // "LATCH_HTTP_BODY_LIMIT"
	index []int  // reflect field index path from Config
}

// leaves lists every leaf of Config in declaration order. It is computed
// once: the struct is fixed at compile time.
var leaves = collectLeaves(reflect.TypeFor[Config](), "", nil)

func collectLeaves(t reflect.Type, prefix string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if !f.IsExported() || name == "" || name == "-" || f.Tag.Get("env") == "-" {
			continue // file-only fields (env:"-") have no variable
		}
		idx := append(slices.Clone(index), i)
		if isSection(f.Type) {
			out = append(out, collectLeaves(f.Type, prefix+name+".", idx)...)
			continue
		}
		path := prefix + name
		out = append(out, leaf{
			path:  path,
			env:   EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")),
			index: idx,
		})
	}
	return out
}

// EnvVars returns the name of every environment variable Load reads,
// sorted: LATCH_ followed by a leaf's YAML path upper-cased with "."
// replaced by "_" (store.dsn is LATCH_STORE_DSN).
func EnvVars() []string {
	out := make([]string, len(leaves))
	for i, l := range leaves {
		out[i] = l.env
	}
	slices.Sort(out)
	return out
}

func applyEnv(c *Config, env func(string) string) error {
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, l := range leaves {
		v := env(l.env)
		if v == "" {
			continue
		}
		if err := setLeaf(root.FieldByIndex(l.index), v); err != nil {
			// Never repeat the value: it may be a secret.
			errs = append(errs, fmt.Errorf("%s (%s): %w", l.env, l.path, err))
		}
	}
	return errors.Join(errs...)
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// setLeaf parses s into the leaf field v. Error messages describe the
// expected form without quoting s.
func setLeaf(v reflect.Value, s string) error {
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("not a duration (use a unit, like 30s or 5m)")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer of %d bits", v.Type().Bits())
		}
		v.SetInt(n)
	case v.CanUint():
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a non-negative integer of %d bits", v.Type().Bits())
		}
		v.SetUint(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	default:
		// A field type added to Config without support here; the tests
		// set every leaf from the environment, so this cannot ship.
		panic(fmt.Sprintf("config: no parser for field type %s", v.Type()))
	}
	return nil
}

// flagDef maps a command-line flag to the leaf it sets.
type flagDef struct {
	name, path, usage string
}

// flagDefs lists the flags RegisterFlags defines, besides --config.
var flagDefs = []flagDef{
	{"listen", "listen", "address to listen on, host:port"},
	{"public-url", "public_url", "external base URL (default derived from --listen)"},
	{"data", "data_dir", "data directory (SQLite database, development master key)"},
	{"log-level", "log_level", "log level: debug, info, warn or error"},
	{"store-driver", "store.driver", "storage backend: sqlite or postgres"},
	{"store-dsn", "store.dsn", "storage data source name (default <data>/latch.db for sqlite)"},
}

// ConfigFlag is the name of the flag holding the config file path. Load
// does not read it; the caller passes its value as Load's path.
const ConfigFlag = "config"

// RegisterFlags defines on fs the flags Load reads: --listen, --public-url,
// --data, --log-level, --store-driver and --store-dsn, plus --config for
// the caller. Only flags set on the command line override other sources.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String(ConfigFlag, "", "path to the config file (default ./"+DefaultFile+" when it exists)")
	def := Default()
	shown := map[string]string{
		"listen":       def.Listen,
		"data_dir":     def.DataDir,
		"log_level":    def.LogLevel,
		"store.driver": def.Store.Driver,
	}
	for _, f := range flagDefs {
		fs.String(f.name, shown[f.path], f.usage)
	}
}

func applyFlags(c *Config, fs *pflag.FlagSet) error {
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, f := range flagDefs {
		fl := fs.Lookup(f.name)
		if fl == nil || !fl.Changed {
			continue
		}
		l, ok := leafByPath(f.path)
		if !ok {
			panic("config: flag " + f.name + " maps to unknown path " + f.path)
		}
		if err := setLeaf(root.FieldByIndex(l.index), fl.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("--%s (%s): %w", f.name, f.path, err))
		}
	}
	return errors.Join(errs...)
}

func leafByPath(path string) (leaf, bool) {
	for _, l := range leaves {
		if l.path == path {
			return l, true
		}
	}
	return leaf{}, false
}

package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/mod/semver"
	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
)

// ManifestFile is the manifest's path in the archive.
const ManifestFile = "latch-bundle.yaml"

// MaxManifestSize bounds the manifest.
const MaxManifestSize = 256 << 10

// ErrInvalidManifest is wrapped by every error of ParseManifest.
var ErrInvalidManifest = errors.New("invalid bundle manifest")

// Manifest is latch-bundle.yaml.
type Manifest struct {
	// Name names the bundle: 1 to 64 of a-z, 0-9, '-' and '_', starting
	// with a letter. It is the key the bundle is installed under.
	Name string `yaml:"name" json:"name"`
	// Version is the bundle's semantic version ("1.4.0", no "v").
	Version string `yaml:"version" json:"version"`
	// ABIVersion is the ABI version its modules speak (abi.Version).
	ABIVersion string `yaml:"abi_version" json:"abi_version"`
	// Description is one sentence about the bundle.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Extensions are the extensions the module declares.
	Extensions []Extension `yaml:"extensions" json:"extensions"`
	// Capabilities are the capabilities the bundle asks the operator for.
	Capabilities []Capability `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	// ConfigSchema is the JSON Schema of the configuration, written in
	// YAML or JSON; empty for none.
	ConfigSchema json.RawMessage `yaml:"-" json:"config_schema,omitempty"`
	// Modules names the module files.
	Modules Modules `yaml:"modules" json:"modules"`
}

// Extension is one extension a bundle declares.
type Extension struct {
	// Kind is the extension kind ("authenticator", "userstore", ...).
	Kind string `yaml:"kind" json:"kind"`
	// Name is the entry name; the extension id is the kind's namespace, a
	// dot and the name ("authn.pin").
	Name string `yaml:"name" json:"name"`
}

// ID is the extension's id.
func (e Extension) ID() (extension.ID, error) {
	k := extension.Kind(e.Kind)
	if !k.Valid() {
		return "", fmt.Errorf("unknown kind %q", e.Kind)
	}
	id, err := extension.ParseID(k.Namespace() + "." + e.Name)
	if err != nil {
		return "", fmt.Errorf("name %q: %w", e.Name, err)
	}
	return id, nil
}

// Capability is one capability a bundle asks for: one of the abi
// Capability names, with the hosts for "http".
type Capability struct {
	Name  string   `yaml:"name" json:"name"`
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
}

// Modules names a bundle's module files by their path in the archive.
type Modules struct {
	// WASM is the WebAssembly module ("modules/pin.wasm").
	WASM string `yaml:"wasm,omitempty" json:"wasm,omitempty"`
	// Native lists native binaries per platform, run out of process over
	// the go-plugin transport.
	Native []Native `yaml:"native,omitempty" json:"native,omitempty"`
}

// Native is one native binary.
type Native struct {
	OS   string `yaml:"os" json:"os"`
	Arch string `yaml:"arch" json:"arch"`
	Path string `yaml:"path" json:"path"`
	// SHA256 is the lower-case hex SHA-256 of the binary. Pack fills it
	// in; an archive must carry it, and the server checks the binary
	// against it before every start of the process.
	SHA256 string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
}

// Platform is the binary's "os/arch".
func (n Native) Platform() string { return n.OS + "/" + n.Arch }

// NativeFor returns the native binary for platform ("linux/amd64").
func (m Manifest) NativeFor(platform string) (Native, bool) {
	for _, n := range m.Modules.Native {
		if n.Platform() == platform {
			return n, true
		}
	}
	return Native{}, false
}

// Runs reports whether a node on platform can run the bundle: it has a
// WebAssembly module or a native binary for that platform.
func (m Manifest) Runs(platform string) bool {
	_, ok := m.NativeFor(platform)
	return ok || m.Modules.WASM != ""
}

// Platforms lists what the bundle runs on: "wasm" and each native
// binary's os/arch.
func (m Manifest) Platforms() []string {
	var out []string
	if m.Modules.WASM != "" {
		out = append(out, "wasm")
	}
	for _, n := range m.Modules.Native {
		out = append(out, n.Platform())
	}
	return out
}

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	platformRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hostRE     = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$`)
)

// manifestYAML is the manifest as written, with the schema left as a node.
type manifestYAML struct {
	Manifest     `yaml:",inline"`
	ConfigSchema yaml.Node `yaml:"config_schema"`
}

// ParseManifest decodes latch-bundle.yaml strictly (unknown keys are
// refused) and checks it; every problem is reported, joined.
func ParseManifest(data []byte) (Manifest, error) {
	m, err := DecodeManifest(data)
	if err != nil {
		return Manifest{}, err
	}
	if err := m.Check(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// DecodeManifest decodes latch-bundle.yaml strictly (unknown keys are
// refused) without checking it: a packer fills the modules in, then Pack
// checks.
func DecodeManifest(data []byte) (Manifest, error) {
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidManifest, len(data), MaxManifestSize)
	}
	var raw manifestYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	m := raw.Manifest
	if !raw.ConfigSchema.IsZero() {
		var v any
		if err := raw.ConfigSchema.Decode(&v); err != nil {
			return Manifest{}, fmt.Errorf("%w: config_schema: %w", ErrInvalidManifest, err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: config_schema: not representable as JSON: %w", ErrInvalidManifest, err)
		}
		m.ConfigSchema = js
	}
	return m, nil
}

// Check checks a manifest and returns every problem, joined, each
// wrapping ErrInvalidManifest.
func (m Manifest) Check() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidManifest}, a...)...))
	}
	if !nameRE.MatchString(m.Name) {
		bad("name %q: want 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter", m.Name)
	}
	if !ValidVersion(m.Version) {
		bad("version %q: want a semantic version such as 1.2.0", m.Version)
	}
	if m.ABIVersion != abi.Version {
		bad("abi_version %q: this host speaks ABI version %q", m.ABIVersion, abi.Version)
	}
	if len(m.Extensions) == 0 {
		bad("extensions: the bundle declares none")
	}
	seen := map[extension.ID]bool{}
	for i, e := range m.Extensions {
		id, err := e.ID()
		if err != nil {
			bad("extensions[%d]: %v", i, err)
			continue
		}
		if seen[id] {
			bad("extensions[%d]: %s is declared twice", i, id)
		}
		seen[id] = true
	}
	caps := map[string]bool{}
	for i, c := range m.Capabilities {
		switch {
		case !abi.KnownCapability(c.Name):
			bad("capabilities[%d]: unknown capability %q", i, c.Name)
		case caps[c.Name]:
			bad("capabilities[%d]: %q is listed twice", i, c.Name)
		case c.Name == abi.CapabilityHTTP && len(c.Hosts) == 0:
			bad("capabilities[%d]: %q needs hosts", i, c.Name)
		case c.Name != abi.CapabilityHTTP && len(c.Hosts) > 0:
			bad("capabilities[%d]: %q takes no hosts", i, c.Name)
		}
		caps[c.Name] = true
		for _, h := range c.Hosts {
			if !hostRE.MatchString(h) {
				bad("capabilities[%d]: host %q: want a lower-case host name, optionally *. and :port", i, h)
			}
		}
	}
	if len(m.ConfigSchema) > 0 {
		if _, err := CompileSchema(m.ConfigSchema); err != nil {
			bad("config_schema: %v", err)
		}
	}
	if m.Modules.WASM == "" && len(m.Modules.Native) == 0 {
		bad("modules: none named")
	}
	if m.Modules.WASM != "" {
		if err := checkPath(m.Modules.WASM); err != nil {
			bad("modules.wasm: %v", err)
		} else if !strings.HasSuffix(m.Modules.WASM, ".wasm") {
			bad("modules.wasm %q: want a .wasm file", m.Modules.WASM)
		}
	}
	plats := map[string]bool{}
	for i, n := range m.Modules.Native {
		if !platformRE.MatchString(n.OS) || !platformRE.MatchString(n.Arch) {
			bad("modules.native[%d]: os %q and arch %q: want GOOS and GOARCH names", i, n.OS, n.Arch)
		}
		if plats[n.OS+"/"+n.Arch] {
			bad("modules.native[%d]: %s/%s is listed twice", i, n.OS, n.Arch)
		}
		plats[n.OS+"/"+n.Arch] = true
		if err := checkPath(n.Path); err != nil {
			bad("modules.native[%d].path: %v", i, err)
		}
		if n.SHA256 != "" && !sha256RE.MatchString(n.SHA256) {
			bad("modules.native[%d].sha256: want 64 lower-case hex digits", i)
		}
	}
	return errors.Join(errs...)
}

// Files lists the module paths the manifest names.
func (m Manifest) Files() []string {
	var out []string
	if m.Modules.WASM != "" {
		out = append(out, m.Modules.WASM)
	}
	for _, n := range m.Modules.Native {
		out = append(out, n.Path)
	}
	return out
}

// CapabilityNames lists the names of the requested capabilities, sorted.
func (m Manifest) CapabilityNames() []string {
	out := make([]string, 0, len(m.Capabilities))
	for _, c := range m.Capabilities {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// Hosts returns the hosts requested with the http capability.
func (m Manifest) Hosts() []string {
	for _, c := range m.Capabilities {
		if c.Name == abi.CapabilityHTTP {
			return slices.Clone(c.Hosts)
		}
	}
	return nil
}

// Missing returns the requested capabilities that grants lacks, sorted.
func (m Manifest) Missing(grants []string) []string {
	var out []string
	for _, c := range m.CapabilityNames() {
		if !slices.Contains(grants, c) {
			out = append(out, c)
		}
	}
	return out
}

// Marshal encodes the manifest as YAML, the schema inline.
func (m Manifest) Marshal() ([]byte, error) {
	var schema any
	if len(m.ConfigSchema) > 0 {
		if err := json.Unmarshal(m.ConfigSchema, &schema); err != nil {
			return nil, fmt.Errorf("encoding the manifest: config_schema: %w", err)
		}
	}
	out, err := yaml.Marshal(struct {
		Manifest     `yaml:",inline"`
		ConfigSchema any `yaml:"config_schema,omitempty"`
	}{m, schema})
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	return out, nil
}

// ValidVersion reports whether v is a semantic version without a "v".
func ValidVersion(v string) bool {
	return v != "" && v[0] != 'v' && semver.IsValid("v"+v) && semver.Canonical("v"+v) == "v"+strings.SplitN(v, "+", 2)[0]
}

// CompareVersions compares two valid versions as semver does (-1, 0, 1).
func CompareVersions(a, b string) int { return semver.Compare("v"+a, "v"+b) }

// CompileSchema compiles a configuration schema, refusing references to
// other documents (a bundle must not make the server read files or the
// network).
func CompileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	const url = "latch:///bundle/config.schema.json"
	c := jsonschema.NewCompiler()
	c.UseLoader(denyLoader{})
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("adding: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compiling: %w", err)
	}
	return s, nil
}

// ValidateConfig checks a configuration against the manifest's schema; an
// empty configuration is checked as {}.
func (m Manifest) ValidateConfig(config json.RawMessage) error {
	if len(m.ConfigSchema) == 0 {
		return nil
	}
	s, err := CompileSchema(m.ConfigSchema)
	if err != nil {
		return fmt.Errorf("config schema: %w", err)
	}
	if len(bytes.TrimSpace(config)) == 0 {
		config = json.RawMessage("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err != nil {
		return fmt.Errorf("config: not JSON: %w", err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("config does not match the bundle's schema: %w", err)
	}
	return nil
}

type denyLoader struct{}

func (denyLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %q: schemas may not refer to other documents", url)
}

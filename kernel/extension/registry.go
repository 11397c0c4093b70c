// Package extension is the kernel's extension registry and lifecycle, and the
// one helper through which every call into an extension goes.
//
// A Module is a factory registered under a typed, namespaced id
// ("authn.password", "userstore.sql"). An Instance is a module configured by
// the operator under an instance name ("corp-ldap" of module
// "userstore.ldap"); several instances of one module may run side by side.
// A builtin module implements its kind's Go interface directly; the WASM and
// go-plugin hosts register modules whose instances wrap a guest behind the
// same interface, so the rest of the kernel cannot tell them apart.
//
// Registries are values: build one per server (builtin/builtin.go registers
// the builtin table into it) or per test. There is no package-level registry
// and no init() side effect.
//
// # Lifecycle
//
// Registry.Load takes every instance through these steps, in the order the
// configuration lists the instances:
//
//  1. Construct: Module.New returns a fresh value (normally a pointer to a
//     zero struct).
//  2. Decode the configuration strictly: the instance's JSON configuration
//     is validated against Module.ConfigSchema (a JSON Schema), then decoded
//     into the value with unknown fields refused. Problems are reported as a
//     *ConfigError naming each offending field path, such as
//     "config.max_attempts: must be >= 1".
//  3. Provision: if the value is a Provisioner, Provision(ctx, env) sets it
//     up (opens connections, loads keys, compiles a WASM module) with the
//     dependencies in env.
//  4. Validate: if the value is a Validator, Validate() checks the
//     provisioned value as a whole.
//  5. Serve: the instance is in the returned *Instances and the kernel calls
//     its kind's methods, always through Call.
//  6. Clean up: Instances.Close calls Close(ctx) on every Cleaner (or Close()
//     on an io.Closer), in reverse load order. Cleanup also runs on an
//     instance whose Provision or Validate failed, so Close must cope with a
//     value that is only partly set up; an instance whose configuration did
//     not decode was never provisioned and is not cleaned up. When one
//     instance fails to load, the instances loaded before it are cleaned up
//     too, and Load returns the error.
//
// Configuration changes build a new *Instances (Load again) and swap it in;
// the old set is closed once the requests using it are done.
package extension

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Module describes an extension module: what the registry needs to build its
// instances.
type Module struct {
	// ID is the module's id; its namespace tells its kind.
	ID ID
	// Kind is the module's kind. It may be left empty (it follows from the
	// ID); when set it must agree with the ID's namespace.
	Kind Kind
	// New returns a fresh, unconfigured instance value: a pointer to a
	// struct that the configuration is decoded into, implementing the
	// kind's Go interface and optionally Provisioner, Validator, Cleaner
	// and HealthChecker. It is called once per instance, and once at
	// registration to check the value's type.
	New func() any
	// ConfigSchema is the JSON Schema (draft 2020-12 unless it names
	// another with $schema) that an instance's configuration must match.
	// It may not refer to other documents. Empty means no schema: the
	// configuration is still decoded strictly.
	ConfigSchema json.RawMessage
	// Description is one sentence about the module, for listings.
	Description string
}

type registered struct {
	Module
	schema *jsonschema.Schema
}

// Registry is a table of modules. Register modules at start-up, then Load
// instances from it; it is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	modules map[ID]*registered
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{modules: make(map[ID]*registered)}
}

// Register adds m to the registry. It panics, because these are programmer
// errors caught at start-up, when m's id is empty, malformed or already
// registered; when m.Kind disagrees with the id; when m.New is nil, returns
// nil or returns a value that does not implement the kind's interface; or
// when m.ConfigSchema is not a valid JSON Schema.
func (r *Registry) Register(m Module) {
	if m.ID == "" {
		panic("extension: registering a module with an empty id")
	}
	if _, err := ParseID(string(m.ID)); err != nil {
		panic(fmt.Sprintf("extension: registering module: %v", err))
	}
	if m.Kind == "" {
		m.Kind = m.ID.Kind()
	}
	if m.Kind != m.ID.Kind() {
		panic(fmt.Sprintf("extension: registering module %q: kind %q does not match namespace %q", m.ID, m.Kind, m.ID.Namespace()))
	}
	if m.New == nil {
		panic(fmt.Sprintf("extension: registering module %q: New is nil", m.ID))
	}
	v := m.New()
	if v == nil {
		panic(fmt.Sprintf("extension: registering module %q: New returned nil", m.ID))
	}
	if !m.Kind.ImplementedBy(v) {
		panic(fmt.Sprintf("extension: registering module %q: %T does not implement the %s interface", m.ID, v, m.Kind))
	}
	reg := &registered{Module: m}
	if len(m.ConfigSchema) > 0 {
		s, err := compileSchema(m.ID, m.ConfigSchema)
		if err != nil {
			panic(fmt.Sprintf("extension: registering module %q: %v", m.ID, err))
		}
		reg.schema = s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.modules[m.ID]; dup {
		panic(fmt.Sprintf("extension: registering module %q: already registered", m.ID))
	}
	r.modules[m.ID] = reg
}

// Module returns the module registered under id.
func (r *Registry) Module(id ID) (Module, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.modules[id]
	if !ok {
		return Module{}, false
	}
	return m.Module, true
}

// Modules returns every registered module, sorted by id.
func (r *Registry) Modules() []Module {
	return r.ModulesOf("")
}

// ModulesOf returns the modules of one kind (every module for ""), sorted by
// id.
func (r *Registry) ModulesOf(kind Kind) []Module {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Module, 0, len(r.modules))
	for _, m := range r.modules {
		if kind == "" || m.Kind == kind {
			out = append(out, m.Module)
		}
	}
	slices.SortFunc(out, func(a, b Module) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (r *Registry) lookup(id ID) (*registered, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.modules[id]
	return m, ok
}

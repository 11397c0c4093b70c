package plugin

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

// Meta describes a module: what latch_describe reports, beside the
// extensions registered with the kind packages. It must agree with the
// bundle manifest, which the host checks at load.
type Meta struct {
	// Name is the module's name: lowercase letters, digits, '-', '_' and
	// '.', starting with a letter or digit ("acme-otp").
	Name string
	// Version is the module's semantic version ("1.4.0").
	Version string
	// Capabilities lists what the module needs of the host, one entry per
	// capability (abi.Capability…): "log" for guest.Log, "clock" for
	// guest.Now, "random" for guest.Random, and for the sdk/host functions
	// "config", "kv", "secrets", "userlookup", "audit" and "http" (with
	// Hosts, the hosts it may reach). The operator grants them when
	// installing the bundle; a module that uses a capability it did not
	// declare is refused at load, or its call is refused as forbidden.
	// An http capability without Hosts reaches the hosts the operator
	// lists in the plugin's http_hosts (for a module whose endpoints are
	// configured, such as a webhook); with Hosts it documents the hosts
	// the module means to reach. Either way the operator's list decides.
	Capabilities []abi.CapabilityRequest
	// ConfigSchema is a JSON Schema (draft 2020-12) of the configuration
	// the module's extensions take, as JSON; the host validates an
	// operator's configuration against it before OpCodeConfigure. Empty:
	// no configuration.
	ConfigSchema []byte
	// OnInternalError, when set, receives every error that an extension
	// returned and that was answered as abi.CodeInternal with a generic
	// message (a *CallError naming the extension and operation), so the
	// detail hidden from the wire can be logged:
	//
	//	OnInternalError: func(err error) { guest.Log(guest.LevelError, err.Error()) },
	//
	// (which needs the "log" capability). The dispatcher never logs by
	// itself: calling guest.Log would make every module import the log
	// host function, and need its capability.
	OnInternalError func(err error)
}

// Configurer is implemented by extensions that take a configuration.
// Configure receives the instance's configuration (a JSON object, valid
// against Meta.ConfigSchema) once, before any other operation; an error
// refuses the configuration and the instance is not used. Requests carry
// the configuration too (their Config field), so a stateless extension may
// read it there instead.
type Configurer interface {
	Configure(config []byte) error
}

// HealthChecker is implemented by extensions that can tell whether they
// can serve; an error reports that they cannot.
type HealthChecker interface {
	Health() error
}

// Closer is implemented by extensions that hold something to release. Close
// is the last call an instance receives; it may follow a refused
// Configure, so it must cope with a configuration that never took.
type Closer interface {
	Close() error
}

// Handler answers the kind-specific operations of one registered
// extension: it decodes payload, the request of op (always an operation of
// the extension's kind), runs the extension and returns its response, which
// the dispatcher encodes (nil for an empty payload). A returned error fails
// the call as a call (Reply.Error, through WireError); an operation that
// ran and failed answers with its response's own Error field instead
// (abi/SPEC.md section 5). The dispatcher runs one call at a time and
// encodes the response before the next, so a Handler may reuse its request
// and response values. The kind packages provide Handlers; plugin authors
// use those packages.
type Handler func(op abi.OpCode, payload []byte) (abi.Message, error)

// entry is one registered extension: Description.Extensions[i] and what
// answers Call.Entry i.
type entry struct {
	kind   string
	name   string
	id     string // namespace.name, for error reports
	impl   any
	handle Handler
}

// module is the state of a module: its meta, its extensions in
// registration order and the dispatcher's buffers. A WASM guest runs one
// call at a time, so it needs no locking; the native test harness
// serialises its calls.
type module struct {
	meta    Meta
	defined bool
	entries []entry
	out     []byte // the last reply, reused by the next call
	cur     struct {
		id string
		op abi.OpCode
	}
}

// std is the module of this program.
var std module

// installed records that the dispatcher was handed to sdk/guest.
var installed bool

// install registers the dispatcher and the description with sdk/guest.
func install() {
	if installed {
		return
	}
	installed = true
	guest.Handle(std.handle)
	guest.Describe(std.describe)
}

// Define describes the module. Call it once, from an init function, beside
// the kind packages' Register calls:
//
//	func init() {
//		plugin.Define(plugin.Meta{Name: "acme-otp", Version: "1.0.0"})
//		authn.Register("sms_otp", &smsOTP{})
//	}
//
// A WASI reactor's main never runs: the host runs package initialisation
// once and then calls the module's exports, so init is the one place to
// register. Define installs the dispatcher (through guest.Handle and
// guest.Describe). It panics, at start-up, when called twice or when m is
// invalid (a bad name, an empty version, an unknown or repeated
// capability, hosts on a capability other than http, http without hosts,
// a schema that is not JSON).
func Define(m Meta) {
	std.define(m)
	install()
}

func (m *module) define(meta Meta) {
	if m.defined {
		panic("plugin: Define called twice (module " + m.meta.Name + ")")
	}
	if err := checkMeta(meta); err != "" {
		panic("plugin: Define: " + err)
	}
	meta.Capabilities = cloneCapabilities(meta.Capabilities)
	meta.ConfigSchema = append([]byte(nil), meta.ConfigSchema...)
	m.meta, m.defined = meta, true
}

// Register adds an extension of kind (one of the abi.Kind… constants)
// named name to the module, answered by h, with impl checked for the
// optional Configurer, HealthChecker and Closer. Its index in the
// Description (Call.Entry) is its registration order. The kind packages
// call it from their own Register functions; authors call those, from an
// init function.
//
// It panics, at start-up, for an unknown kind, a name that is not
// lowercase dotted segments of [a-z][a-z0-9_]*, a name already registered
// for the kind, or a nil impl or h.
func Register(kind, name string, impl any, h Handler) {
	std.register(kind, name, impl, h)
	install()
}

func (m *module) register(kind, name string, impl any, h Handler) {
	ns := namespace(kind)
	switch {
	case ns == "":
		panic("plugin: Register: unknown kind " + quote(kind))
	case !validEntryName(name) || len(ns)+1+len(name) > maxIDLength:
		panic("plugin: Register: invalid " + kind + " name " + quote(name) + ": want lowercase segments [a-z][a-z0-9_]*, dot-separated")
	case impl == nil || h == nil:
		panic("plugin: Register: " + kind + " " + quote(name) + " has no implementation")
	}
	for _, e := range m.entries {
		if e.kind == kind && e.name == name {
			panic("plugin: Register: " + kind + " " + quote(name) + " registered twice")
		}
	}
	m.entries = append(m.entries, entry{kind: kind, name: name, id: ns + "." + name, impl: impl, handle: h})
}

// namespace returns the extension id namespace of kind, "" for an unknown
// kind.
func namespace(kind string) string {
	switch kind {
	case abi.KindAuthenticator:
		return abi.NamespaceAuthenticator
	case abi.KindGrant:
		return abi.NamespaceGrant
	case abi.KindUserStore:
		return abi.NamespaceUserStore
	case abi.KindClaims:
		return abi.NamespaceClaims
	case abi.KindThrottler:
		return abi.NamespaceThrottler
	case abi.KindProvisioner:
		return abi.NamespaceProvisioner
	}
	return ""
}

// maxIDLength is the longest extension id the kernel accepts.
const maxIDLength = 128

// validEntryName reports whether name is dot-separated segments of
// [a-z][a-z0-9_]* (the kernel's rule for the name part of an extension id,
// kernel/extension.ParseID, which sdk may not import).
func validEntryName(name string) bool {
	segStart := true // at the first byte of a segment
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
		case segStart:
			return false // empty segment, or one not starting with a letter
		case c == '.':
			segStart = true
			continue
		case c >= '0' && c <= '9', c == '_':
		default:
			return false
		}
		segStart = false
	}
	return name != "" && !segStart
}

// validModuleName reports whether name is 1 to 128 bytes of a-z, 0-9, '-',
// '_' and '.', starting with a letter or digit.
func validModuleName(name string) bool {
	if name == "" || len(name) > maxIDLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkMeta returns what is wrong with m, "" when nothing is.
func checkMeta(m Meta) string {
	if !validModuleName(m.Name) {
		return "invalid module name " + quote(m.Name) + ": want lowercase [a-z0-9][a-z0-9._-]*"
	}
	if strings.TrimSpace(m.Version) == "" {
		return "module " + m.Name + " has no version"
	}
	seen := map[string]bool{}
	for _, c := range m.Capabilities {
		switch {
		case !abi.KnownCapability(c.Name):
			return "unknown capability " + quote(c.Name)
		case seen[c.Name]:
			return "capability " + quote(c.Name) + " declared twice"
		case c.Name != abi.CapabilityHTTP && len(c.Hosts) > 0:
			return "capability " + quote(c.Name) + " takes no hosts"
		}
		seen[c.Name] = true
	}
	if len(m.ConfigSchema) > 0 && !json.Valid(m.ConfigSchema) {
		return "the config schema is not valid JSON"
	}
	return ""
}

func cloneCapabilities(cs []abi.CapabilityRequest) []abi.CapabilityRequest {
	if len(cs) == 0 {
		return nil
	}
	out := make([]abi.CapabilityRequest, len(cs))
	for i, c := range cs {
		out[i] = abi.CapabilityRequest{Name: c.Name, Hosts: append([]string(nil), c.Hosts...)}
	}
	return out
}

// quote returns s as a Go string literal.
func quote(s string) string { return strconv.Quote(s) }

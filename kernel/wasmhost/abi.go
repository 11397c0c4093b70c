package wasmhost

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/latchid/latch/abi"
)

// Names and values of the Latch ABI v1 calling convention, as the host
// uses them: short local names for the abi package's constants (abi/SPEC.md).
const (
	// exportMarker marks a module built for Latch ABI v1: () -> ().
	exportMarker = abi.ExportABIMarker
	// exportBuffer returns a guest buffer of at least size bytes, valid
	// until the next latch_buffer call; 0 when the guest cannot allocate:
	// (size i32) -> i32.
	exportBuffer = abi.ExportBuffer
	// exportHandle handles the call of len bytes in the buffer last
	// returned by latch_buffer and returns the packed reply:
	// (len i32) -> i64.
	exportHandle = abi.ExportHandle
	// exportDescribe returns the packed describe message, once, at load:
	// () -> i64.
	exportDescribe = abi.ExportDescribe
	// exportMemory is the linear memory every pointer points into.
	exportMemory = abi.ExportMemory
	// exportInitialize is the WASI reactor initialiser, called once after
	// instantiation when present (Go's -buildmode=c-shared and TinyGo
	// reactors have it).
	exportInitialize = abi.ExportInitialize

	// hostModule is the import module name of the host functions.
	hostModule = abi.HostModule
	// wasiModule is the import module name of WASI preview 1, which the host
	// provides sandboxed.
	wasiModule = "wasi_snapshot_preview1"
)

// The host functions of the latch_v1 module. Each mirrors abi/SPEC.md (the
// abi.Import… constants).
const (
	// importLog is log(level i32, ptr i32, len i32): write the UTF-8 text
	// at ptr to the host's log, labelled with the module id.
	importLog = abi.ImportLog
	// importNow is now_unix_nanos() -> i64: the wall clock in nanoseconds
	// since the Unix epoch.
	importNow = abi.ImportNowUnixNanos
	// importRandom is random(ptr i32, len i32): fill len bytes at ptr with
	// cryptographically secure random bytes.
	importRandom = abi.ImportRandom
	// importHostCall is host_call(ptr i32, len i32) -> i64: pass the request
	// at ptr to the module's HostCaller, write the answer into a buffer
	// from latch_buffer (called re-entrantly) and return it packed; an
	// empty answer is 0 and needs no buffer.
	importHostCall = abi.ImportHostCall
)

// Capabilities an operator grants (ModuleOptions.Grants). Each mirrors
// abi/SPEC.md (the abi.Capability… constants).
const (
	capLog        = abi.CapabilityLog        // importLog
	capClock      = abi.CapabilityClock      // importNow
	capRandom     = abi.CapabilityRandom     // importRandom
	capConfig     = abi.CapabilityConfig     // served through importHostCall
	capKV         = abi.CapabilityKV         // served through importHostCall
	capSecrets    = abi.CapabilitySecrets    // served through importHostCall
	capUserLookup = abi.CapabilityUserLookup // served through importHostCall
	capAudit      = abi.CapabilityAudit      // served through importHostCall
	capHTTP       = abi.CapabilityHTTP       // served through importHostCall
)

// hostCallCapabilities are the capabilities served through host_call; a
// module may import host_call when it was granted at least one of them.
// Mirrors abi/SPEC.md.
var hostCallCapabilities = []string{capConfig, capKV, capSecrets, capUserLookup, capAudit, capHTTP}

// knownCapability reports whether name is a capability of the contract.
// Mirrors abi.KnownCapability.
func knownCapability(name string) bool {
	switch name {
	case capLog, capClock, capRandom:
		return true
	}
	return slices.Contains(hostCallCapabilities, name)
}

// Log levels of log, those of log/slog; a level between two counts as the
// lower one. Mirror abi/SPEC.md (the abi.LogLevel… constants).
const (
	logLevelDebug = -4
	logLevelInfo  = 0
	logLevelWarn  = 4
	logLevelError = 8
)

// Limits of the host functions. They mirror nothing in abi/SPEC.md yet;
// the spec should state them.
const (
	// MaxLogBytes is the longest message log writes; the rest is cut off
	// (and the record marked truncated).
	MaxLogBytes = 4096
	// MaxRandomBytes is the most bytes one random call fills; asking for
	// more traps the guest.
	MaxRandomBytes = 4096
)

// signature is a function type, for checking imports and exports.
type signature struct {
	params, results []api.ValueType
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunction describes one function of latch_v1: its signature, and the
// capability that allows importing it ("" for host_call, which needs any of
// hostCallCapabilities).
type hostFunction struct {
	name       string
	sig        signature
	capability string
}

// hostFunctions are the functions of latch_v1.
var hostFunctions = []hostFunction{
	{importLog, signature{params: []api.ValueType{i32, i32, i32}}, capLog},
	{importNow, signature{results: []api.ValueType{i64}}, capClock},
	{importRandom, signature{params: []api.ValueType{i32, i32}}, capRandom},
	{importHostCall, signature{params: []api.ValueType{i32, i32}, results: []api.ValueType{i64}}, ""},
}

// lookupHostFunction returns the latch_v1 function named name.
func lookupHostFunction(name string) (hostFunction, bool) {
	for _, f := range hostFunctions {
		if f.name == name {
			return f, true
		}
	}
	return hostFunction{}, false
}

// granted reports whether grants allow importing f, and names what it
// needs for the error message.
func (f hostFunction) granted(grants []string) (ok bool, needs string) {
	if f.capability != "" {
		return slices.Contains(grants, f.capability), "capability " + f.capability
	}
	for _, c := range hostCallCapabilities {
		if slices.Contains(grants, c) {
			return true, ""
		}
	}
	return false, "one of the capabilities " + strings.Join(hostCallCapabilities, ", ")
}

// requiredExports lists the function exports of every Latch ABI v1 module,
// with their signatures; the marker comes first so that its absence is the
// error reported for a module that is not a Latch module at all.
var requiredExports = []struct {
	name string
	sig  signature
}{
	{exportMarker, signature{}},
	{exportBuffer, signature{params: []api.ValueType{i32}, results: []api.ValueType{i32}}},
	{exportHandle, signature{params: []api.ValueType{i32}, results: []api.ValueType{i64}}},
	{exportDescribe, signature{results: []api.ValueType{i64}}},
}

// matches reports whether def has the signature s.
func (s signature) matches(def api.FunctionDefinition) bool {
	return slices.Equal(s.params, def.ParamTypes()) && slices.Equal(s.results, def.ResultTypes())
}

// String formats s as "(i32, i32) -> (i64)".
func (s signature) String() string {
	return formatTypes(s.params) + " -> " + formatTypes(s.results)
}

func formatTypes(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// defSignature returns the signature of def.
func defSignature(def api.FunctionDefinition) signature {
	return signature{params: def.ParamTypes(), results: def.ResultTypes()}
}

// pack packs a guest address and a length into the i64 that latch_handle,
// latch_describe and host_call return: ptr<<32 | len. Mirrors
// abi.PackPtrLen. For example a 200-byte message at 0x0001_0000 packs to
// 0x0001_0000_0000_00c8, and an empty message to 0.
func pack(ptr, n uint32) uint64 {
	return uint64(ptr)<<32 | uint64(n)
}

// unpack is the inverse of pack: 0x0001_0000_0000_00c8 unpacks to address
// 0x0001_0000 and length 200. Mirrors abi.UnpackPtrLen.
func unpack(v uint64) (ptr, n uint32) {
	return uint32(v >> 32), uint32(v) //nolint:gosec // G115: taking the low 32 bits is the point
}

// span formats a guest memory range for error messages.
func span(ptr, n uint32) string {
	return fmt.Sprintf("[%#x, %#x)", ptr, uint64(ptr)+uint64(n))
}

package abi

// The WASM calling convention of contract v1. Every name a guest exports
// and every host function it may import is a constant below; SPEC.md gives
// the whole convention in prose. All pointers and lengths are offsets and
// byte counts in the guest's linear memory (the export named ExportMemory),
// passed as WebAssembly i32 and read as unsigned.

// HostModule is the module name under which the host provides its
// functions (the Import… names) to guests: a guest imports
// "latch_v1"."log" and so on. The version in the name changes only with the
// contract's major version.
const HostModule = "latch_v1"

// Guest exports. A module lacking any of them is refused at load, naming
// the missing export.
const (
	// ExportABIMarker marks a module built for contract v1: a function with
	// no parameters and no results, never called.
	//
	//	(func (export "latch_abi_v1"))
	ExportABIMarker = "latch_abi_v1"

	// ExportBuffer returns a pointer to a guest-owned buffer of at least
	// size bytes. The guest reuses the buffer across calls (it grows it
	// when asked for more), so the pointer is valid only until the next
	// latch_buffer call. It returns 0 when it cannot provide the buffer,
	// which the host treats as an internal failure.
	//
	//	(func (export "latch_buffer") (param $size i32) (result (; ptr ;) i32))
	ExportBuffer = "latch_buffer"

	// ExportHandle decodes a Call envelope of len bytes from the buffer last
	// returned by latch_buffer, runs it, and returns the Reply envelope as a
	// packed pointer and length (see PackPtrLen) in guest memory, valid
	// until the next call into the guest. A Reply of length 0 is a success
	// with no payload. A trap is an internal failure: the host discards the
	// instance and fails the call closed.
	//
	//	(func (export "latch_handle") (param $len i32) (result (; ptr<<32|len ;) i64))
	ExportHandle = "latch_handle"

	// ExportDescribe returns the module's Description, encoded, as a packed
	// pointer and length. The host calls it once, at load, before any
	// latch_handle.
	//
	//	(func (export "latch_describe") (result (; ptr<<32|len ;) i64))
	ExportDescribe = "latch_describe"

	// ExportMemory is the guest's linear memory, which every pointer above
	// points into.
	ExportMemory = "memory"

	// ExportInitialize is the WASI reactor initializer that
	// `GOOS=wasip1 -buildmode=c-shared` (and TinyGo) modules export; when
	// present the host calls it once, before latch_describe.
	ExportInitialize = "_initialize"
)

// Host functions, in module HostModule. Each but ImportHostCall is gated by
// one capability (see CapabilityOfImport): a module importing a function
// whose capability the operator did not grant is refused at load, with a
// message naming the function and the capability.
const (
	// ImportLog writes len bytes of UTF-8 text at ptr to the host's log at
	// level (one of the LogLevel… constants), attributed to the extension.
	// Capability: CapabilityLog.
	//
	//	(import "latch_v1" "log" (func (param $level i32) (param $ptr i32) (param $len i32)))
	ImportLog = "log"

	// ImportNowUnixNanos returns the wall-clock time in nanoseconds since
	// the Unix epoch. Capability: CapabilityClock.
	//
	//	(import "latch_v1" "now_unix_nanos" (func (result i64)))
	ImportNowUnixNanos = "now_unix_nanos"

	// ImportRandom fills len bytes at ptr with cryptographically secure
	// random bytes. Capability: CapabilityRandom.
	//
	//	(import "latch_v1" "random" (func (param $ptr i32) (param $len i32)))
	ImportRandom = "random"

	// ImportHostCall makes a capability-gated call into the host: the guest
	// writes a HostCall envelope of len bytes at ptr; the host obtains a
	// buffer with latch_buffer, writes the HostReply envelope into it and
	// returns its packed pointer and length. The reply is valid until the
	// next latch_buffer call: the guest decodes it (or copies it) before
	// calling the host again. Importing it needs at least one of the
	// capabilities served through it (config, kv, secrets, userlookup,
	// audit, http); each call is checked against its HostOp's capability
	// and refused with CodeForbidden when not granted.
	//
	//	(import "latch_v1" "host_call" (func (param $ptr i32) (param $len i32) (result (; ptr<<32|len ;) i64)))
	ImportHostCall = "host_call"
)

// Log levels of ImportLog, the values of log/slog's levels. A level between
// two of them counts as the lower one.
const (
	// LogLevelDebug is slog.LevelDebug.
	LogLevelDebug int32 = -4
	// LogLevelInfo is slog.LevelInfo.
	LogLevelInfo int32 = 0
	// LogLevelWarn is slog.LevelWarn.
	LogLevelWarn int32 = 4
	// LogLevelError is slog.LevelError.
	LogLevelError int32 = 8
)

// PackPtrLen packs a guest pointer and a length into the i64 that
// latch_handle, latch_describe and host_call return: the pointer in the high
// 32 bits, the length in the low 32 bits.
//
// Worked examples:
//
//	ptr 0x00010000, len 200 (0xc8)  -> 0x00010000_000000c8 (281474976710856)
//	ptr 0x0011a0f0, len 0x00012345  -> 0x0011a0f0_00012345
//	ptr 0x00000000, len 0           -> 0 (an empty message)
//
// WebAssembly's i64 is signed: a pointer at or above 2 GiB gives a
// negative i64, which is the same 64 bits read as uint64.
func PackPtrLen(ptr, length uint32) uint64 {
	return uint64(ptr)<<32 | uint64(length)
}

// UnpackPtrLen splits a packed value into its pointer and length; it is the
// inverse of PackPtrLen.
//
//	0x00010000_000000c8 -> ptr 0x00010000, len 200
func UnpackPtrLen(v uint64) (ptr, length uint32) {
	return uint32(v >> 32), uint32(v) //nolint:gosec // G115: taking the low 32 bits is the point
}

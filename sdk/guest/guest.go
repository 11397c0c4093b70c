package guest

import (
	"errors"
	"time"

	"github.com/latchid/latch/abi"
)

// Names of the Latch ABI v1 calling convention, from package abi. The
// //go:wasmexport and //go:wasmimport directives in abi_wasip1.go must spell
// the same names (directives cannot refer to constants), which a test checks.
const (
	exportMarker   = abi.ExportABIMarker
	exportBuffer   = abi.ExportBuffer
	exportHandle   = abi.ExportHandle
	exportDescribe = abi.ExportDescribe

	hostModule = abi.HostModule
	hostLog    = abi.ImportLog
	hostNow    = abi.ImportNowUnixNanos
	hostRandom = abi.ImportRandom
	hostCall   = abi.ImportHostCall
)

// MaxRandomBytes is the most bytes the host fills in one random call; Random
// asks in chunks of this size. It matches the host's limit
// (kernel/wasmhost.MaxRandomBytes), which abi/SPEC.md should state.
const MaxRandomBytes = 4096

// maxBuffer bounds the buffer latch_buffer hands out; a larger request gets
// 0 ("cannot allocate") rather than an out-of-memory crash of the guest.
const maxBuffer = 1 << 30

// Level is the severity of a Log message. The values are those of log/slog;
// the host counts a level between two of them as the lower one. Mirrors
// abi/SPEC.md (the abi.LogLevel… constants).
type Level int32

// Log levels.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// Errors returned by the package.
var (
	// ErrHostCall is returned by HostCall when the host's answer does not
	// lie in the buffer the guest gave it: a host bug.
	ErrHostCall = errors.New("guest: host_call: the answer lies outside the buffer the host was given")
	// ErrNotInGuest is the panic value of Log, Now, Random and HostCall
	// outside a wasip1 build, where there is no host to call.
	ErrNotInGuest = errors.New("guest: host functions are only available in a WASM guest (GOOS=wasip1)")
)

// handler, describer and the buffers are the guest's whole state. A WASM
// guest is single-threaded and the host calls one export at a time, so they
// need no locking.
var (
	handler   func(call []byte) []byte
	describer func() []byte

	// bufs are the two buffers latch_buffer hands out. The convention has
	// latch_handle read its call from the buffer last returned, which the
	// host may reuse for later calls without asking again, and has a
	// host_call answer arrive in a buffer from latch_buffer too. While a
	// call is being handled, latch_buffer therefore hands out the other
	// buffer, so that an answer never overwrites the call.
	bufs [2][]byte
	// last indexes the buffer latch_buffer returned last.
	last int
	// handling is set while a Handle function runs; current indexes the
	// buffer holding its call.
	handling bool
	current  int
)

// nextBuffer returns the buffer latch_buffer should hand out for size
// bytes, growing it, and ok=false when size is more than maxBuffer.
func nextBuffer(size uint32) (_ []byte, ok bool) {
	i := last
	if handling {
		i = 1 - current
	}
	b, ok := grow(bufs[i], size)
	if !ok {
		return nil, false
	}
	bufs[i], last = b, i
	return b, true
}

// beginCall marks the start of handling a call of n bytes and returns it:
// the first n bytes of the buffer last returned. ok is false when n is more
// than that buffer holds.
func beginCall(n uint32) (_ []byte, ok bool) {
	b := bufs[last]
	if uint64(n) > uint64(len(b)) {
		return nil, false
	}
	handling, current = true, last
	return b[:n:n], true
}

// endCall marks the end of handling a call.
func endCall() {
	handling = false
}

// Handle registers fn as the guest's handler: every call the host makes is
// passed to fn and fn's result is the reply. The call slice is valid only
// until fn returns. Call Handle from an init function; a later call replaces
// the handler. A guest without a handler traps on its first call.
func Handle(fn func(call []byte) []byte) {
	handler = fn
}

// Describe registers fn as the source of the guest's describe message (what
// the module provides and the capabilities it needs; its encoding is
// defined by abi/SPEC.md). The host asks once, at load, after the init
// functions ran. A guest without one describes itself with an empty
// message.
func Describe(fn func() []byte) {
	describer = fn
}

// grow returns b with a length of at least size, reusing its storage when
// it is large enough and otherwise doubling it, and ok=false when size is
// more than maxBuffer. The result is never empty, so its first byte has an
// address.
func grow(b []byte, size uint32) (_ []byte, ok bool) {
	if size > maxBuffer {
		return b, false
	}
	if int64(cap(b)) >= int64(size) && cap(b) > 0 {
		return b[:cap(b)], true
	}
	n := max(2*cap(b), int(size), 64)
	return make([]byte, min(n, maxBuffer)), true
}

// pack packs a guest pointer and a length into the i64 that latch_handle,
// latch_describe and host_call return: ptr<<32 | len. An empty message packs
// to 0 whatever its pointer.
func pack(ptr, n uint32) uint64 {
	if n == 0 {
		return 0
	}
	return uint64(ptr)<<32 | uint64(n)
}

// unpack is the inverse of pack.
func unpack(v uint64) (ptr, n uint32) {
	return uint32(v >> 32), uint32(v) //nolint:gosec // G115: taking the low 32 bits is the point
}

// within returns the n bytes at guest address ptr when they lie inside buf,
// whose first byte is at guest address base; ok is false otherwise. It turns
// an address the host handed back into a slice without converting an integer
// to a pointer.
func within(buf []byte, base, ptr, n uint32) (_ []byte, ok bool) {
	if ptr < base {
		return nil, false
	}
	off := uint64(ptr - base)
	if off+uint64(n) > uint64(len(buf)) {
		return nil, false
	}
	return buf[off : off+uint64(n)], true
}

// Log sends msg to the host's log at level, labelled with the module id
// (host function log, capability "log"). The host truncates long messages
// (at 4 KiB).
func Log(level Level, msg string) {
	logImpl(level, msg)
}

// Now returns the host's wall-clock time (host function now_unix_nanos,
// capability "clock").
func Now() time.Time {
	return time.Unix(0, nowImpl())
}

// Random fills b with cryptographically secure random bytes from the host
// (host function random, capability "random"), asking in chunks of
// MaxRandomBytes.
func Random(b []byte) {
	for len(b) > 0 {
		n := min(len(b), MaxRandomBytes)
		randomImpl(b[:n])
		b = b[n:]
	}
}

// HostCall sends req, a HostCall envelope, to the host (host function
// host_call) and returns the host's HostReply envelope (abi/SPEC.md), a
// fresh slice the caller owns; an empty answer is a success with no
// payload. Importing host_call needs at least one of the capabilities
// served through it. HostCall may be used only while a Handle function
// runs: the host traps a guest that calls it from an init function or from
// Describe. It returns ErrHostCall when the host's answer lies outside the
// buffer it was given.
func HostCall(req []byte) ([]byte, error) {
	return hostCallImpl(req)
}

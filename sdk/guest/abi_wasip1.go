//go:build wasip1

package guest

import (
	"unsafe"
)

// This file holds the wasm side of the calling convention: the exports the
// host calls and the host functions the guest imports. The names in the
// directives must match the constants in guest.go (checked by
// TestDirectivesMatchNames).

// reply and described keep the last results reachable until the host has
// copied them (that is, until the next call into the guest).
var reply, described []byte //nolint:unused // written by the wasmexport functions below, which linters see as unused

// addr returns the guest (linear-memory) address of b's first byte; 0 for an
// empty slice with no storage. The Go garbage collector does not move heap
// objects, so the address stays valid while b is reachable.
func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) //nolint:gosec // G103, G115: a wasm32 address is a 32-bit offset into linear memory
}

// size returns a length as the convention's i32. Linear memory is at most
// 4 GiB, so a slice's length always fits.
func size(n int) uint32 {
	return uint32(n) //nolint:gosec // G115: see above
}

// latchABIV1 is the marker export: its presence tells the host that the
// module speaks Latch ABI v1.
//
//go:wasmexport latch_abi_v1
func latchABIV1() {} //nolint:unused // exported by //go:wasmexport, which linters do not see

// latchBuffer returns the address of a buffer of at least n bytes (see
// nextBuffer), or 0 when n is more than the guest is willing to
// allocate.
//
//go:wasmexport latch_buffer
func latchBuffer(n uint32) uint32 { //nolint:unused // exported by //go:wasmexport, which linters do not see
	b, ok := nextBuffer(n)
	if !ok {
		return 0
	}
	return addr(b)
}

// latchHandle passes the first n bytes of the buffer last returned to the
// registered handler and returns its reply packed as ptr<<32 | len. A call
// without a handler, or with n beyond that buffer, is a programmer error
// (of the plugin author or of the host) and traps the guest, which the host
// reports as a failed call.
//
//go:wasmexport latch_handle
func latchHandle(n uint32) uint64 { //nolint:unused // exported by //go:wasmexport, which linters do not see
	if handler == nil {
		panic("guest: no handler registered: call guest.Handle from an init function")
	}
	call, ok := beginCall(n)
	if !ok {
		panic("guest: latch_handle: the call is longer than the buffer the host was given")
	}
	reply = nil // let the previous reply go before the handler allocates
	reply = handler(call)
	endCall()
	return pack(addr(reply), size(len(reply)))
}

// latchDescribe returns the registered describe message packed as
// ptr<<32 | len, or 0 (empty) when there is none.
//
//go:wasmexport latch_describe
func latchDescribe() uint64 { //nolint:unused // exported by //go:wasmexport, which linters do not see
	if describer == nil {
		return 0
	}
	described = describer()
	return pack(addr(described), size(len(described)))
}

//go:wasmimport latch_v1 log
func importLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport latch_v1 now_unix_nanos
func importNow() int64

//go:wasmimport latch_v1 random
func importRandom(ptr unsafe.Pointer, n uint32)

//go:wasmimport latch_v1 host_call
func importHostCall(ptr unsafe.Pointer, n uint32) uint64

func logImpl(level Level, msg string) {
	importLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), size(len(msg))) //nolint:gosec // G103: passing the text's address to the host is the point
}

func nowImpl() int64 {
	return importNow()
}

func randomImpl(b []byte) {
	importRandom(unsafe.Pointer(unsafe.SliceData(b)), size(len(b))) //nolint:gosec // G103: passing the buffer's address to the host is the point
}

// hostCallImpl sends req and copies the answer out of the buffer the host
// wrote it into (the one latch_buffer returned last). A packed 0 is an
// empty answer.
func hostCallImpl(req []byte) ([]byte, error) {
	v := importHostCall(unsafe.Pointer(unsafe.SliceData(req)), size(len(req))) //nolint:gosec // G103: passing the request's address to the host is the point
	ptr, n := unpack(v)
	if n == 0 {
		return []byte{}, nil
	}
	b := bufs[last]
	view, ok := within(b, addr(b), ptr, n)
	if !ok {
		return nil, ErrHostCall
	}
	out := make([]byte, n)
	copy(out, view)
	return out, nil
}

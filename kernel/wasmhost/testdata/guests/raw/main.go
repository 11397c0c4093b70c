// Command raw is a test guest written against the calling convention
// directly, without sdk/guest, so that it can break the convention on
// purpose. The first byte of a call picks a behaviour:
//
//	'e' echo: reply with the call
//	'g' garbage: reply with a pointer far outside memory
//	'w' wrap: reply with a range whose end wraps past 2^32
//	'o' oversized: reply with a valid pointer and a length of 4 GiB - 1
//	'b' bad buffer: reply "ok", and make the next latch_buffer return a
//	    pointer outside memory (the host asks again only for a call longer
//	    than the buffer it has)
//	'z' zero buffer: like 'b', but the next latch_buffer returns 0
//	'l' log with a pointer outside memory
//	'r' random with a length over the limit
//	'R' random with a pointer outside memory
//	'c' host_call with a pointer outside memory
//	'a' host_call whose answer buffer is outside memory
//	't' time: reply with time.Now (read through WASI, not now_unix_nanos) as
//	    8 bytes, big-endian Unix nanoseconds
//
// latch_describe returns an empty message.
package main

import (
	"encoding/binary"
	"time"
	"unsafe"
)

var (
	buf       []byte
	badBuffer uint32 // what the next latch_buffer returns instead, if not 1
	answering bool
	reply     []byte
)

// far is an address beyond any memory a test instance can have.
const far = 0xFFFF0000

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport latch_abi_v1
func marker() {}

//go:wasmexport latch_buffer
func buffer(size uint32) uint32 {
	if answering {
		return far
	}
	if badBuffer != 1 {
		v := badBuffer
		badBuffer = 1
		return v
	}
	if uint32(cap(buf)) < size+1 {
		buf = make([]byte, size+1)
	}
	buf = buf[:cap(buf)]
	return addr(buf)
}

//go:wasmexport latch_handle
func handle(n uint32) uint64 {
	call := buf[:n]
	if n == 0 {
		return 0
	}
	switch call[0] {
	case 'e':
		reply = append(reply[:0], call...)
		return uint64(addr(reply))<<32 | uint64(len(reply))
	case 'g':
		return uint64(far)<<32 | 16
	case 'w':
		return uint64(0xFFFFFFF0)<<32 | 0x100
	case 'o':
		return uint64(addr(buf))<<32 | 0xFFFFFFFF
	case 'b':
		badBuffer = far
	case 'z':
		badBuffer = 0
	case 'l':
		importLog(0, far, 100)
	case 'r':
		importRandom(addr(buf), 1<<20)
	case 'R':
		importRandom(far, 16)
	case 'c':
		importHostCall(far, 16)
	case 'a':
		answering = true
		importHostCall(addr(buf), 1)
		answering = false
	case 't':
		reply = binary.BigEndian.AppendUint64(reply[:0], uint64(time.Now().UnixNano()))
		return uint64(addr(reply))<<32 | uint64(len(reply))
	}
	reply = append(reply[:0], "ok"...)
	return uint64(addr(reply))<<32 | uint64(len(reply))
}

//go:wasmexport latch_describe
func describe() uint64 { return 0 }

//go:wasmimport latch_v1 log
func importLog(level int32, ptr, n uint32)

//go:wasmimport latch_v1 random
func importRandom(ptr, n uint32)

//go:wasmimport latch_v1 host_call
func importHostCall(ptr, n uint32) uint64

func init() { badBuffer = 1 }

func main() {}

// Command nomarker is a test guest with every export of the calling
// convention except the latch_abi_v1 marker, which the host must refuse.
package main

import "unsafe"

var buf []byte

//go:wasmexport latch_buffer
func buffer(size uint32) uint32 {
	if uint32(cap(buf)) < size+1 {
		buf = make([]byte, size+1)
	}
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport latch_handle
func handle(n uint32) uint64 { return 0 }

//go:wasmexport latch_describe
func describe() uint64 { return 0 }

func main() {}

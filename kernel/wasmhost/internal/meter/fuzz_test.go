package meter

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument: the rewriter never panics, and a module that wazero
// compiles still compiles once instrumented.
//
// wazero's decoder allocates room for the counts a module declares before
// reading the entries (a parameter count, a data segment's size, ...), so a
// short input declaring a count in the billions exhausts the fuzzer's
// memory inside wazero. Inputs with two consecutive bytes of 0x80 or more
// (a LEB128 of at least 16384) are still instrumented but not compiled.
func FuzzInstrument(f *testing.F) {
	spin := fn{body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}, export: "spin"}
	f.Add(mod{memory: true, funcs: []fn{spin}}.bytes())
	f.Add(mod{memory: true, funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, locals: []byte{tI32}, body: sumBody, export: "f"}}}.bytes())
	f.Add(mod{memory: true, nGlobals: 1, globals: cat([]byte{tI32, 0x01}, i32c(7), []byte{0x0b}), funcs: []fn{spin}}.bytes())
	f.Add(mod{memory: true, custom: []string{"latch.test"}, table: true, elem: []byte{1, 0x03, 0x00, 1, 1}, funcs: []fn{spin, {results: []byte{tI32}, body: []byte{0x41, 0x00, 0x11, 0x01, 0x00}}}}.bytes())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(wazero.NewCompilationCache()))
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil || largeLEB(wasm) {
			return
		}
		code, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			return
		}
		_ = code.Close(ctx)
		code, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("the input compiles, the output does not: %v", err)
		}
		_ = code.Close(ctx)
	})
}

// largeLEB reports whether b holds two consecutive bytes with the high bit
// set, the start of a LEB128 of at least 16384.
func largeLEB(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if b[i-1] >= 0x80 && b[i] >= 0x80 {
			return true
		}
	}
	return false
}

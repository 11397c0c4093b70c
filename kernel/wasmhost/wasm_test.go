package wasmhost

// A tiny WebAssembly binary assembler for hand-made test modules: guests
// that break the calling convention in ways a Go guest cannot (a bare
// unreachable, wrong signatures, foreign imports), and a minimal echo guest
// that shows the host's own overhead.

const (
	tI32 = 0x7f
	tI64 = 0x7e
)

// Opcodes used by the test modules.
const (
	opUnreachable  = 0x00
	opEnd          = 0x0b
	opLocalGet     = 0x20
	opI32Const     = 0x41
	opI64Const     = 0x42
	opI32LeU       = 0x4d
	opI64Or        = 0x84
	opI64ExtendI32 = 0xad
	opSelect       = 0x1b
	opDrop         = 0x1a
	opCall         = 0x10
	opI32Load      = 0x28
	opI64Load      = 0x29
)

// wfunc is a function: imported when module is set, else defined with body
// (without the final end) and exported as name when export is set.
type wfunc struct {
	module, name    string
	export          bool
	params, results []byte
	body            []byte
}

// assemble encodes a module with funcs (imports first, in order) and, when
// pages > 0, one memory of that many pages exported as "memory".
func assemble(pages uint32, funcs ...wfunc) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, content []byte) {
		out = append(out, id)
		out = uleb(out, uint64(len(content)))
		out = append(out, content...)
	}
	name := func(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

	var types, imports, defs, exports, code []byte
	var nImports, nDefs, nExports uint64
	for i, f := range funcs {
		types = append(types, 0x60)
		types = uleb(types, uint64(len(f.params)))
		types = append(types, f.params...)
		types = uleb(types, uint64(len(f.results)))
		types = append(types, f.results...)
		if f.module != "" {
			imports = name(imports, f.module)
			imports = name(imports, f.name)
			imports = append(imports, 0x00) // func
			imports = uleb(imports, uint64(i))
			nImports++
			continue
		}
		defs = uleb(defs, uint64(i))
		nDefs++
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, opEnd)
		code = uleb(code, uint64(len(body)))
		code = append(code, body...)
		if f.export {
			exports = name(exports, f.name)
			exports = append(exports, 0x00) // func
			exports = uleb(exports, uint64(i))
			nExports++
		}
	}
	if pages > 0 {
		exports = name(exports, "memory")
		exports = append(exports, 0x02, 0x00) // memory 0
		nExports++
	}
	section(1, append(uleb(nil, uint64(len(funcs))), types...))
	if nImports > 0 {
		section(2, append(uleb(nil, nImports), imports...))
	}
	section(3, append(uleb(nil, nDefs), defs...))
	if pages > 0 {
		section(5, uleb([]byte{0x01, 0x00}, uint64(pages))) // one memory, min only
	}
	section(7, append(uleb(nil, nExports), exports...))
	section(10, append(uleb(nil, nDefs), code...))
	return out
}

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func i32Const(v int32) []byte { return sleb([]byte{opI32Const}, int64(v)) }
func i64Const(v int64) []byte { return sleb([]byte{opI64Const}, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// tinyBase is where the tiny guests keep their one buffer.
const tinyBase = 1024

// tinyExports returns the four required exports of a one-page guest whose
// latch_handle body is handle: latch_buffer hands out the buffer at
// tinyBase (0 when the size does not fit the page) and latch_describe
// returns nothing.
func tinyExports(handle []byte) []wfunc {
	return []wfunc{
		{name: exportMarker, export: true},
		{name: exportBuffer, export: true, params: []byte{tI32}, results: []byte{tI32},
			// select(tinyBase, 0, size <= 65536-tinyBase)
			body: cat(i32Const(tinyBase), i32Const(0), []byte{opLocalGet, 0}, i32Const(pageSize-tinyBase), []byte{opI32LeU, opSelect})},
		{name: exportHandle, export: true, params: []byte{tI32}, results: []byte{tI64}, body: handle},
		{name: exportDescribe, export: true, results: []byte{tI64}, body: i64Const(0)},
	}
}

// tinyGuest returns a one-page guest with tinyExports(handle); extra
// functions come first (imports must).
func tinyGuest(handle []byte, extra ...wfunc) []byte {
	return assemble(1, append(extra, tinyExports(handle)...)...)
}

// loadI32 and loadI64 load the value at tinyBase+off.
func loadI32(off uint32) []byte {
	return cat(i32Const(tinyBase), uleb([]byte{opI32Load, 2}, uint64(off)))
}

func loadI64(off uint32) []byte {
	return cat(i32Const(tinyBase), uleb([]byte{opI64Load, 3}, uint64(off)))
}

// tinyEcho is a Latch ABI v1 echo guest in 150-odd bytes: latch_handle
// returns tinyBase<<32 | len, the call it was given.
//
//	(func (export "latch_handle") (param i32) (result i64)
//	  (i64.or (i64.const 0x400_0000_0000) (i64.extend_i32_u (local.get 0))))
func tinyEcho() []byte {
	return tinyGuest(cat(i64Const(tinyBase<<32), []byte{opLocalGet, 0, opI64ExtendI32, opI64Or}))
}

// tinyUnreachable traps with unreachable in latch_handle.
func tinyUnreachable() []byte {
	return tinyGuest([]byte{opUnreachable})
}

// Imports of latch_v1 for hand-made guests, with their function indexes
// when passed first and in this order.
var (
	importLogFunc      = wfunc{module: hostModule, name: importLog, params: []byte{tI32, tI32, tI32}}
	importRandomFunc   = wfunc{module: hostModule, name: importRandom, params: []byte{tI32, tI32}}
	importHostCallFunc = wfunc{module: hostModule, name: importHostCall, params: []byte{tI32, tI32}, results: []byte{tI64}}
)

// tinyPackedReply returns, from latch_handle, the i64 in the call's first
// eight bytes (little-endian): the fuzzer's way to hand the host any
// packed pointer.
func tinyPackedReply() []byte {
	return tinyGuest(loadI64(0))
}

// tinyHostArgs calls log, random and host_call with arguments read from the
// call, seven little-endian i32s: log's level, ptr and len, random's ptr and
// len, host_call's ptr and len. It replies with nothing.
func tinyHostArgs() []byte {
	handle := cat(
		loadI32(0), loadI32(4), loadI32(8), []byte{opCall, 0},
		loadI32(12), loadI32(16), []byte{opCall, 1},
		loadI32(20), loadI32(24), []byte{opCall, 2, opDrop},
		i64Const(0),
	)
	return tinyGuest(handle, importLogFunc, importRandomFunc, importHostCallFunc)
}

// Package meter rewrites a WebAssembly module so that its host can stop it
// at a deadline without wazero's close-on-context-done mode.
//
// wazero's WithCloseOnContextDone makes the compiler call out of the
// guest's machine code at every loop header to ask whether the module was
// closed. Go's WebAssembly backend wraps every function body in a loop, so
// that check is paid on every function call as well as on every iteration,
// and it made a small call of a Go guest about six times slower (10.8 µs
// against 1.8 µs). Instrument replaces it with a check the guest's own code
// makes, which costs a few instructions:
//
//   - two mutable i32 globals are appended to the module: a fuel counter
//     and a stop flag. Appending gives them the highest indices, so no
//     existing global index moves, and no function index moves either (no
//     import is added), so nothing else in the module needs rewriting;
//   - the stop flag is exported as StopExport, for the host to set;
//   - after the block type of every loop instruction, the guest decrements
//     the fuel, and when it reaches zero it refills it (Fuel) after two
//     things: a memory.grow by 0 pages, which leaves the memory as it is but
//     returns to the Go runtime for a moment, and a look at the stop flag,
//     which traps (unreachable) when it is set.
//
// The memory.grow is what makes the scheme safe inside a Go program. Machine
// code wazero generated cannot be preempted by the Go scheduler: a guest
// spinning in a loop that never leaves it would hold its thread, and a
// stop-the-world garbage collection started meanwhile would wait for it
// forever, and with the world stopped no timer could run to raise the stop
// flag. Returning to Go every Fuel loop iterations gives the scheduler a
// preemption point, so the collector and the host's deadline timer always
// get to run; a flag check alone would not.
//
// Why by hand? No maintained Go library decodes and re-encodes function
// bodies at the instruction level (the ones that parse modules stop at
// sections, or are wazero's internal packages). The rewriter needs only a
// decoder that knows the length of every instruction's immediates, for the
// instruction set wazero accepts by default (WebAssembly 2.0: the MVP,
// sign extension, non-trapping conversions, bulk memory, reference types,
// multiple values, 128-bit SIMD). Anything else (another proposal's
// opcodes, a start function, a module with no memory) is refused with
// ErrUnsupported, and the host runs such a module under wazero's own check
// instead. The rewriter does not validate: wazero compiles its output and
// refuses what is invalid.
package meter

import (
	"errors"
	"fmt"
	"strings"
)

// StopExport is the name under which an instrumented module exports its
// stop flag, a mutable i32 global: the host sets it to 1 to stop the guest
// at its next loop header. The name is reserved: a module that exports it
// already is refused with ErrReserved.
const StopExport = "__latch_stop"

// Fuel is how many loop headers a guest passes between two returns to the
// Go runtime (and two looks at the stop flag). A return costs about as
// much as a few hundred loop headers' worth of the check itself, so at
// this value it adds well under a nanosecond per header, while the longest
// a guest can hold its thread without offering the scheduler a preemption
// point stays at 4096 iterations of its longest loop.
const Fuel = 4096

var (
	// ErrUnsupported is returned for a module that uses something the
	// rewriter does not handle: run it uninstrumented, under wazero's own
	// check.
	ErrUnsupported = errors.New("cannot instrument the module")
	// ErrReserved is returned for a module that already exports
	// StopExport.
	ErrReserved = errors.New("exports a reserved name")
	// ErrMalformed is returned for a module with a section that declares
	// more entries than it has bytes, which no valid module does. Refuse
	// the module without handing it to wazero, whose decoder allocates room
	// for the declared count first (a 25-byte module can ask it for
	// gigabytes).
	ErrMalformed = errors.New("malformed module")
)

// Section ids (WebAssembly 2.0, section 5.5.2).
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secDataCount = 12
)

// rank is the position of a non-custom section in the order the binary
// format requires (the data count section comes before the code section).
var rank = [...]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// section is one section of the input: its id and its contents.
type section struct {
	id       byte
	contents []byte
}

// Instrument returns wasm with the stop flag and the loop checks described
// in the package comment. It fails with ErrUnsupported for a module it
// cannot instrument (and for bytes that are not a module it can parse),
// with ErrReserved for a module that exports StopExport, and with
// ErrMalformed for a module no one should compile.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrUnsupported)
	}
	secs, err := split(wasm[8:])
	if err != nil {
		return nil, err
	}
	var (
		importedGlobals, definedGlobals uint32
		hasMemory                       bool
		globalSec, exportSec            = -1, -1
	)
	for i, s := range secs {
		if err := checkCount(s); err != nil {
			return nil, err
		}
		switch s.id {
		case secImport:
			g, mem, err := scanImports(s.contents)
			if err != nil {
				return nil, err
			}
			importedGlobals, hasMemory = g, hasMemory || mem
		case secMemory:
			r := reader{b: s.contents}
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			hasMemory = hasMemory || n > 0
		case secGlobal:
			r := reader{b: s.contents}
			if definedGlobals, err = r.u32(); err != nil {
				return nil, err
			}
			globalSec = i
		case secExport:
			if err := scanExports(s.contents); err != nil {
				return nil, err
			}
			exportSec = i
		case secStart:
			return nil, fmt.Errorf("%w: it has a start function, which runs at instantiation before a deadline can be armed", ErrUnsupported)
		}
	}
	if !hasMemory {
		return nil, fmt.Errorf("%w: it has no memory, which the check's memory.grow needs", ErrUnsupported)
	}
	if importedGlobals+definedGlobals > 1<<20 {
		return nil, fmt.Errorf("%w: too many globals", ErrUnsupported)
	}
	fuelIdx := importedGlobals + definedGlobals
	stopIdx := fuelIdx + 1
	check := checkCode(fuelIdx, stopIdx)

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, wasm[:8]...)
	emitted := map[byte]bool{}
	emitMissing := func(before int) {
		if globalSec < 0 && !emitted[secGlobal] && before > rank[secGlobal] {
			out = appendSection(out, secGlobal, appendGlobals(appendU32(nil, 2)))
			emitted[secGlobal] = true
		}
		if exportSec < 0 && !emitted[secExport] && before > rank[secExport] {
			out = appendSection(out, secExport, appendStopExport(appendU32(nil, 1), stopIdx))
			emitted[secExport] = true
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			emitMissing(rank[s.id])
		}
		switch s.id {
		case secGlobal:
			r := reader{b: s.contents}
			_, _ = r.u32() // read above
			c := appendU32(nil, definedGlobals+2)
			c = append(c, r.rest()...)
			out = appendSection(out, secGlobal, appendGlobals(c))
		case secExport:
			r := reader{b: s.contents}
			n, _ := r.u32() // read above
			c := appendU32(nil, n+1)
			c = append(c, r.rest()...)
			out = appendSection(out, secExport, appendStopExport(c, stopIdx))
		case secCode:
			c, err := rewriteCode(s.contents, check)
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secCode, c)
		default:
			out = appendSection(out, s.id, s.contents)
		}
	}
	emitMissing(len(rank) + 1)
	return out, nil
}

// split cuts the module's body into sections, dropping the DWARF custom
// sections (".debug_…"), whose code offsets the rewrite would make wrong.
func split(b []byte) ([]section, error) {
	r := reader{b: b}
	var secs []section
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		if id != secCustom && (int(id) >= len(rank) || rank[id] == 0) {
			return nil, fmt.Errorf("%w: unknown section id %d", ErrUnsupported, id)
		}
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		contents, err := r.bytes(n)
		if err != nil {
			return nil, err
		}
		if id == secCustom {
			cr := reader{b: contents}
			name, err := cr.name()
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(name, ".debug_") {
				continue
			}
		}
		secs = append(secs, section{id: id, contents: contents})
	}
	return secs, nil
}

// checkCount refuses a section whose leading vector count is larger than
// its size: every entry takes at least one byte.
func checkCount(s section) error {
	switch s.id {
	case secCustom, secStart, secDataCount:
		return nil
	}
	r := reader{b: s.contents}
	n, err := r.u32()
	if err != nil {
		return err
	}
	if uint64(n) > uint64(len(r.rest())) {
		return fmt.Errorf("%w: section %d declares %d entries in %d bytes", ErrMalformed, s.id, n, len(r.rest()))
	}
	return nil
}

// scanImports counts the imported globals and reports whether a memory is
// imported.
func scanImports(b []byte) (globals uint32, memory bool, err error) {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return 0, false, err
	}
	for range n {
		if _, err := r.name(); err != nil {
			return 0, false, err
		}
		if _, err := r.name(); err != nil {
			return 0, false, err
		}
		kind, err := r.byte()
		if err != nil {
			return 0, false, err
		}
		switch kind {
		case 0x00: // function: type index
			_, err = r.u32()
		case 0x01: // table: reference type, limits
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 0x02: // memory: limits
			err, memory = r.limits(), true
		case 0x03: // global: value type, mutability
			_, err = r.bytes(2)
			globals++
		default:
			err = fmt.Errorf("%w: import kind %#x", ErrUnsupported, kind)
		}
		if err != nil {
			return 0, false, err
		}
	}
	return globals, memory, nil
}

// scanExports refuses a module that already exports StopExport.
func scanExports(b []byte) error {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		name, err := r.name()
		if err != nil {
			return err
		}
		if name == StopExport {
			return fmt.Errorf("%w %s", ErrReserved, StopExport)
		}
		if _, err := r.byte(); err != nil {
			return err
		}
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// appendGlobals appends the fuel counter and the stop flag: mutable i32
// globals initialised to Fuel and 0.
func appendGlobals(b []byte) []byte {
	b = append(b, 0x7f, 0x01, 0x41)
	b = appendS32(b, Fuel)
	b = append(b, 0x0b)
	return append(b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
}

// appendStopExport appends the export of the stop flag.
func appendStopExport(b []byte, stopIdx uint32) []byte {
	b = appendU32(b, uint32(len(StopExport)))
	b = append(b, StopExport...)
	b = append(b, 0x03)
	return appendU32(b, stopIdx)
}

// checkCode returns the instructions inserted after each loop's block type:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  i32.const 0  memory.grow 0  drop       ;; back to Go for a moment
//	  global.get $stop  if  unreachable  end  ;; stopped by the host
//	  i32.const Fuel  global.set $fuel
//	end
//
// They leave the operand stack as they found it, so they are valid in any
// loop, whatever its block type, and in unreachable code.
func checkCode(fuelIdx, stopIdx uint32) []byte {
	b := []byte{0x23}
	b = appendU32(b, fuelIdx)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x23)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x45, 0x04, 0x40)
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a)
	b = append(b, 0x23)
	b = appendU32(b, stopIdx)
	b = append(b, 0x04, 0x40, 0x00, 0x0b)
	b = append(b, 0x41)
	b = appendS32(b, Fuel)
	b = append(b, 0x24)
	b = appendU32(b, fuelIdx)
	return append(b, 0x0b)
}

// rewriteCode returns the code section with check inserted after every
// loop's block type, each body re-encoded with its new size.
func rewriteCode(b []byte, check []byte) ([]byte, error) {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(b)+len(b)/8), n)
	var body []byte
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		code, err := r.bytes(size)
		if err != nil {
			return nil, err
		}
		if body, err = rewriteBody(body[:0], code, check); err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(body))) //nolint:gosec // a body is at most the module's size plus the checks, far below 4 GiB for any module wazero accepts
		out = append(out, body...)
	}
	if !r.done() {
		return nil, fmt.Errorf("%w: %d bytes after the last function body", ErrUnsupported, len(r.rest()))
	}
	return out, nil
}

// rewriteBody appends code, with check after every loop's block type, to
// out.
func rewriteBody(out, code, check []byte) ([]byte, error) {
	r := reader{b: code}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	for range groups {
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	last := 0
	for !r.done() {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		if err := r.skipImmediates(op); err != nil {
			return nil, err
		}
		if op == opLoop {
			out = append(out, code[last:r.pos]...)
			out = append(out, check...)
			last = r.pos
		}
	}
	return append(out, code[last:]...), nil
}

func appendSection(out []byte, id byte, contents []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(contents))) //nolint:gosec // a section is at most the module's size, far below 4 GiB for any module wazero accepts
	return append(out, contents...)
}

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

package meter

import (
	"fmt"
)

// reader reads the binary format's primitives from b, failing with
// ErrUnsupported at the end of the input or on an overlong number.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) done() bool { return r.pos >= len(r.b) }

func (r *reader) rest() []byte { return r.b[r.pos:] }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, fmt.Errorf("%w: unexpected end of input", ErrUnsupported)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if int64(n) > int64(len(r.b)-r.pos) {
		return nil, fmt.Errorf("%w: unexpected end of input", ErrUnsupported)
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; ; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c > 0x0f {
			return 0, fmt.Errorf("%w: overlong u32", ErrUnsupported)
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// skipLEB skips a LEB128 of at most maxBytes bytes (5 for 32 and 33 bits,
// 10 for 64 bits); the value's range is wazero's to check.
func (r *reader) skipLEB(maxBytes int) error {
	for range maxBytes {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: overlong LEB128", ErrUnsupported)
}

// name reads a length-prefixed UTF-8 name (not checked as UTF-8).
func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

// limits reads a table's or memory's limits: a minimum, and a maximum when
// the flag says so. The flags of shared (threads) and 64-bit memories are
// not WebAssembly 2.0.
func (r *reader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 1 {
		return fmt.Errorf("%w: limits flag %#x", ErrUnsupported, flag)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag == 1 {
		_, err = r.u32()
	}
	return err
}

// memarg skips a memory instruction's alignment and offset.
func (r *reader) memarg() error {
	if _, err := r.u32(); err != nil {
		return err
	}
	_, err := r.u32()
	return err
}

// Opcodes with immediates (WebAssembly 2.0, section 5.4).
const (
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opCall         = 0x10
	opCallIndirect = 0x11
	opSelectTyped  = 0x1c
	opLocalGet     = 0x20
	opGlobalSet    = 0x24
	opTableGet     = 0x25
	opTableSet     = 0x26
	opLoadFirst    = 0x28 // i32.load
	opStoreLast    = 0x3e // i64.store32
	opMemorySize   = 0x3f
	opMemoryGrow   = 0x40
	opI32Const     = 0x41
	opI64Const     = 0x42
	opF32Const     = 0x43
	opF64Const     = 0x44
	opNumericFirst = 0x45 // i32.eqz
	opNumericLast  = 0xc4 // i64.extend32_s (sign extension)
	opRefNull      = 0xd0
	opRefIsNull    = 0xd1
	opRefFunc      = 0xd2
	opPrefixMisc   = 0xfc
	opPrefixSIMD   = 0xfd
)

// skipImmediates skips the immediates of the instruction op, whose opcode
// byte was just read. An opcode outside WebAssembly 2.0 is ErrUnsupported.
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == opRefIsNull:
		// unreachable, nop, else, end, return, drop, select, ref.is_null
		return nil
	case op == opBlock, op == opLoop, op == opIf:
		return r.skipLEB(5) // block type: empty, a value type or a type index, as an s33
	case op == opBr, op == opBrIf, op == opCall, op == opRefFunc, op >= opLocalGet && op <= opGlobalSet,
		op == opTableGet, op == opTableSet, op == opMemorySize, op == opMemoryGrow:
		_, err := r.u32()
		return err
	case op == opBrTable:
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range uint64(n) + 1 { // the labels and the default
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == opCallIndirect:
		if _, err := r.u32(); err != nil { // type index
			return err
		}
		_, err := r.u32() // table index
		return err
	case op == opSelectTyped:
		n, err := r.u32()
		if err != nil {
			return err
		}
		_, err = r.bytes(n) // value types, one byte each
		return err
	case op >= opLoadFirst && op <= opStoreLast:
		return r.memarg()
	case op == opI32Const:
		return r.skipLEB(5)
	case op == opI64Const:
		return r.skipLEB(10)
	case op == opF32Const:
		_, err := r.bytes(4)
		return err
	case op == opF64Const:
		_, err := r.bytes(8)
		return err
	case op >= opNumericFirst && op <= opNumericLast:
		return nil
	case op == opRefNull:
		_, err := r.byte() // reference type
		return err
	case op == opPrefixMisc:
		return r.skipMisc()
	case op == opPrefixSIMD:
		return r.skipSIMD()
	}
	return fmt.Errorf("%w: opcode %#x is not WebAssembly 2.0", ErrUnsupported, op)
}

// skipMisc skips an 0xfc-prefixed instruction: the non-trapping
// conversions, bulk memory and the table instructions.
func (r *reader) skipMisc() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	var n int // u32 immediates
	switch {
	case sub <= 7: // i32.trunc_sat_f32_s … i64.trunc_sat_f64_u
		n = 0
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		n = 2
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
		n = 1
	default:
		return fmt.Errorf("%w: instruction 0xfc %d is not WebAssembly 2.0", ErrUnsupported, sub)
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// skipSIMD skips an 0xfd-prefixed instruction (128-bit SIMD).
func (r *reader) skipSIMD() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11: // v128.load … v128.store
		return r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // v128.load8_lane … v128.store64_lane
		if err := r.memarg(); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub == 92, sub == 93: // v128.load32_zero, v128.load64_zero
		return r.memarg()
	case sub <= 255:
		return nil
	}
	return fmt.Errorf("%w: instruction 0xfd %d is not WebAssembly 2.0", ErrUnsupported, sub)
}

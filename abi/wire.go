package abi

//go:generate go run ./internal/wiregen -dir . -o wire_gen.go

import (
	"slices"
	"strconv"
	"strings"
)

// Message is a wire type of the contract: every struct type in this package
// implements it (the methods are generated into wire_gen.go from the `wire`
// struct tags). SPEC.md describes the encoding byte by byte.
type Message interface {
	// AppendWire appends the binary encoding of the message to b and
	// returns the extended slice. Encoding is deterministic: equal messages
	// encode to equal bytes (fields in field-number order, map keys sorted).
	// It fails only for a claim value that has no JSON form (NaN, a channel)
	// or a message larger than MaxMessageSize; b is then returned unchanged.
	AppendWire(b []byte) ([]byte, error)
	// UnmarshalWire resets the message and decodes b into it. Fields it
	// does not know are skipped. It never panics, and fails with an error
	// wrapping ErrMalformed or ErrLimit. Strings and byte slices are copied
	// out of b unless a field's documentation says it aliases b.
	UnmarshalWire(b []byte) error
}

// Limits of the encoding. A decoder refuses input beyond them with an error
// wrapping ErrLimit; an encoder refuses to produce a message larger than
// MaxMessageSize.
const (
	// MaxMessageSize is the largest encoded message, envelope included, that
	// crosses the boundary between host and guest: 1 MiB.
	MaxMessageSize = 1 << 20
	// MaxDepth is the deepest nesting of messages inside messages, and,
	// separately, of arrays and objects inside a JSON value (claims).
	MaxDepth = 64
	// MaxElements is the largest number of elements of one repeated field,
	// entries of one map, or members of one JSON array or object.
	MaxElements = 1 << 16
)

// CodecError is the type of the encoding's sentinel errors. Errors returned
// by AppendWire and UnmarshalWire wrap one of them; test with errors.Is.
type CodecError string

// Error returns the sentinel's text.
func (e CodecError) Error() string { return string(e) }

// Sentinel errors of the encoding. They are constants, so no one can replace
// them.
const (
	// ErrMalformed: the input is not a valid encoding (truncated, a bad
	// varint, a wire type that does not match the field, invalid JSON in a
	// claims field, an integer out of range).
	ErrMalformed CodecError = "malformed message"
	// ErrLimit: the input or output breaks one of MaxMessageSize, MaxDepth
	// or MaxElements.
	ErrLimit CodecError = "message exceeds a limit"
	// ErrUnencodable: a value has no wire form (a claim value that cannot be
	// written as JSON, such as NaN or a channel).
	ErrUnencodable CodecError = "value has no wire form"
)

// Wire types: the low three bits of a field key. Only varint and
// length-delimited fields are written; fixed64 and fixed32 fields are
// skipped when read, so that a later version may use them.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// maxFieldNumber is the largest field number (as in protobuf: 2^29-1).
const maxFieldNumber = 1<<29 - 1

// codecErr is a detailed error: a message and the sentinel it wraps.
type codecErr struct {
	kind CodecError
	msg  string
}

func (e *codecErr) Error() string { return e.msg }
func (e *codecErr) Unwrap() error { return e.kind }

func malformed(msg string) error { return &codecErr{kind: ErrMalformed, msg: msg} }
func overLimit(msg string) error { return &codecErr{kind: ErrLimit, msg: msg} }

// fieldErr places an error at a field of a message type; field 0 means the
// message as a whole (its size, a key that cannot be read).
type fieldErr struct {
	typ   string
	field uint32
	err   error
}

func (e *fieldErr) Error() string {
	if e.field == 0 {
		return e.typ + ": " + e.err.Error()
	}
	return e.typ + " field " + strconv.FormatUint(uint64(e.field), 10) + ": " + e.err.Error()
}

func (e *fieldErr) Unwrap() error { return e.err }

// topErr is what UnmarshalWire and AppendWire return: "abi: decoding T
// field N: ..." or "abi: encoding T field N: ...".
type topErr struct {
	verb string
	err  error
}

func (e *topErr) Error() string { return "abi: " + e.verb + " " + e.err.Error() }
func (e *topErr) Unwrap() error { return e.err }

func decodeErr(err error) error { return &topErr{verb: "decoding", err: err} }
func encodeErr(err error) error { return &topErr{verb: "encoding", err: err} }

func atField(typ string, field uint32, err error) error {
	return &fieldErr{typ: typ, field: field, err: err}
}

// checkDecodeSize refuses an input larger than MaxMessageSize before any
// work is done.
func checkDecodeSize(typ string, b []byte) error {
	if len(b) > MaxMessageSize {
		return sizeErr("decoding", typ, len(b))
	}
	return nil
}

func sizeErr(verb, typ string, n int) error {
	return &topErr{verb: verb, err: atField(typ, 0, overLimit("size "+itoa(n)+" exceeds limit "+itoa(MaxMessageSize)))}
}

// checkEncodeSize refuses an encoding larger than MaxMessageSize.
func checkEncodeSize(typ string, n int) error {
	if n > MaxMessageSize {
		return sizeErr("encoding", typ, n)
	}
	return nil
}

func checkDepth(depth int) error {
	if depth > MaxDepth {
		return depthErr()
	}
	return nil
}

func depthErr() error { return overLimit("nesting deeper than " + itoa(MaxDepth)) }

func tooMany() error { return overLimit("more than " + itoa(MaxElements) + " elements") }

func itoa(n int) string { return strconv.Itoa(n) }

// --- varints -----------------------------------------------------------------

// appendVarint appends v as an unsigned LEB128 varint (7 bits a byte, least
// significant group first, high bit set on every byte but the last).
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// varintSize is the number of bytes appendVarint writes for v.
func varintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// readVarint reads a varint from the start of b and returns it with the
// number of bytes read. It accepts up to 10 bytes (non-minimal forms
// included, as protobuf does) and refuses a value above 2^64-1.
func readVarint(b []byte) (uint64, int, error) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	var v uint64
	for i := 0; i < 10; i++ {
		if i == len(b) {
			return 0, 0, malformed("truncated varint")
		}
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0, malformed("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, malformed("varint longer than 10 bytes")
}

// zigzag maps signed to unsigned integers so that small magnitudes stay
// small: 0, -1, 1, -2, 2 ... become 0, 1, 2, 3, 4 ...
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) } //nolint:gosec // G115: reinterpreting the bits is the point

// unzigzag inverts zigzag.
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// --- keys and fields ---------------------------------------------------------

// appendKey appends the key of a field: varint(number<<3 | wire type).
func appendKey(b []byte, num uint32, typ byte) []byte {
	return appendVarint(b, uint64(num)<<3|uint64(typ))
}

func wrongType(got, want byte) error {
	return malformed("wire type " + itoa(int(got)) + ", want " + itoa(int(want)))
}

// --- appending fields --------------------------------------------------------

// appendString appends a length-delimited string field content (after the
// key): varint length, then the bytes.
func appendString(b []byte, s string) []byte {
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendBytes appends a length-delimited bytes field content.
func appendBytes(b []byte, v []byte) []byte {
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendStrings appends a repeated string field: one key and one value per
// element, empty elements included.
func appendStrings(b []byte, num uint32, v []string) []byte {
	for _, s := range v {
		b = appendKey(b, num, wireBytes)
		b = appendString(b, s)
	}
	return b
}

// beginNested appends a nested field's key and a one-byte length
// placeholder, and returns the placeholder's offset for endNested.
func beginNested(b []byte, num uint32) ([]byte, int) {
	b = appendKey(b, num, wireBytes)
	return append(b, 0), len(b)
}

// endNested writes the length of the content appended since beginNested
// into the placeholder at off, moving the content when the length needs more
// than one byte. Writing content first and moving it is cheaper than sizing
// every message twice, and keeps the encoding minimal (canonical).
func endNested(b []byte, off int) []byte {
	if n := len(b) - off - 1; n < 0x80 {
		b[off] = byte(n) //nolint:gosec // G115: n < 0x80
		return b
	}
	return endNestedSlow(b, off)
}

func endNestedSlow(b []byte, off int) []byte {
	n := len(b) - off - 1               // >= 0x80: endNested handled shorter content
	s := varintSize(uint64(n))          //nolint:gosec // G115: n > 0
	b = append(b, make([]byte, s-1)...) // room for the longer length
	copy(b[off+s:], b[off+1:off+1+n])   // move the content up
	appendVarint(b[off:off], uint64(n)) //nolint:gosec // G115: n > 0
	return b
}

// entry is one key and value of a map being encoded.
type entry[V any] struct {
	k string
	v V
}

// sortedEntries returns the entries of m in ascending key order, using buf
// for storage when it is large enough. Taking key and value in one pass,
// and sorting small maps by insertion, keeps the common case (a handful of
// entries) free of allocations and second lookups.
func sortedEntries[V any](buf []entry[V], m map[string]V) []entry[V] {
	es := buf[:0]
	for k, v := range m {
		es = append(es, entry[V]{k, v})
	}
	if len(es) > 12 {
		slices.SortFunc(es, func(a, b entry[V]) int { return strings.Compare(a.k, b.k) })
		return es
	}
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].k < es[j-1].k; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
	return es
}

// appendStringMap appends a map[string]string as a repeated field of entry
// messages {1: key, 2: value}, in ascending key order.
func appendStringMap(b []byte, num uint32, m map[string]string) []byte {
	var buf [8]entry[string]
	for _, e := range sortedEntries(buf[:], m) {
		var off int
		b, off = beginNested(b, num)
		if e.k != "" {
			b = append(b, 1<<3|wireBytes)
			b = appendString(b, e.k)
		}
		if e.v != "" {
			b = append(b, 2<<3|wireBytes)
			b = appendString(b, e.v)
		}
		b = endNested(b, off)
	}
	return b
}

// appendStringsMap appends a map[string][]string as a repeated field of
// entry messages {1: key, 2: repeated value}, in ascending key order.
func appendStringsMap(b []byte, num uint32, m map[string][]string) []byte {
	var buf [8]entry[[]string]
	for _, e := range sortedEntries(buf[:], m) {
		var off int
		b, off = beginNested(b, num)
		if e.k != "" {
			b = append(b, 1<<3|wireBytes)
			b = appendString(b, e.k)
		}
		b = appendStrings(b, 2, e.v)
		b = endNested(b, off)
	}
	return b
}

// appendJSONMapField appends a map[string]any as a length-delimited field
// holding the map as a JSON object (keys sorted).
func appendJSONMapField(b []byte, num uint32, m map[string]any) ([]byte, error) {
	start := len(b)
	b, off := beginNested(b, num)
	b, err := appendJSONObject(b, m, 0)
	if err != nil {
		return b[:start], err
	}
	return endNested(b, off), nil
}

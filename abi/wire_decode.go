package abi

import (
	"strconv"
	"unsafe"
)

// sharedStringMax is the largest input whose decoded strings and byte
// slices share one allocation: for a message of at most this many bytes the
// decoder copies the input once and hands out strings viewing the copy and
// byte slices cut from it, instead of allocating every field on its own. A
// string or byte slice kept after decoding then keeps at most this many
// bytes alive.
const sharedStringMax = 4096

// decoder holds the input of one UnmarshalWire call. Positions are offsets
// into b; every read is bounded by the end of the enclosing message, which
// is never beyond len(b), so no read can go out of range.
type decoder struct {
	b []byte
	// c is the copy of b, made on first use when len(b) <= sharedStringMax,
	// and s views it as a string. Fields never overlap, so the bytes a
	// string field views are never those of a byte-slice field cut from c:
	// a plugin that writes into a decoded byte slice cannot change a string.
	// Byte slices are cut with their capacity at their length, so appending
	// to one cannot write into its neighbour either. The copy is never
	// reused, so whatever is decoded from it may be kept.
	c    []byte
	s    string
	strs []string // storage the values of map[string][]string entries are cut from
}

// The hot readers below are split into a small fast path (one-byte keys
// and lengths, the common case), which the compiler inlines into the
// generated decoders, and a slow path in a function of its own. Calls are
// expensive in Go's WASM code (every call saves and restores the stack in
// linear memory), so keeping them out of the common case matters more
// there than natively.

// share makes the shared copy of b (c and s) unless it exists, and reports
// whether there is one: false when b is larger than sharedStringMax.
func (d *decoder) share() bool {
	if len(d.s) == len(d.b) {
		return true
	}
	if len(d.b) > sharedStringMax {
		return false
	}
	d.c = make([]byte, len(d.b))
	copy(d.c, d.b)
	d.s = unsafe.String(unsafe.SliceData(d.c), len(d.c)) //nolint:gosec // G103: no byte slice handed out covers the bytes a string views (see decoder), and c is never reused
	return true
}

// str returns b[start:end] as a string.
func (d *decoder) str(start, end int) string {
	if len(d.s) == len(d.b) {
		return d.s[start:end]
	}
	return d.strSlow(start, end)
}

func (d *decoder) strSlow(start, end int) string {
	if !d.share() {
		return string(d.b[start:end])
	}
	return d.s[start:end]
}

// readVarint reads a varint at i and returns it with the position after it.
func (d *decoder) readVarint(i, end int) (uint64, int, error) {
	if i < end && d.b[i] < 0x80 {
		return uint64(d.b[i]), i + 1, nil
	}
	return d.readVarintSlow(i, end)
}

func (d *decoder) readVarintSlow(i, end int) (uint64, int, error) {
	v, n, err := readVarint(d.b[i:end])
	return v, i + n, err
}

// readKey reads a field key at i and returns the field number, the wire
// type and the position after the key.
func (d *decoder) readKey(i, end int) (uint32, byte, int, error) {
	if i < end && d.b[i] < 0x80 && d.b[i] >= 8 {
		return uint32(d.b[i] >> 3), d.b[i] & 7, i + 1, nil
	}
	return d.readKeySlow(i, end)
}

func (d *decoder) readKeySlow(i, end int) (uint32, byte, int, error) {
	v, j, err := d.readVarint(i, end)
	if err != nil {
		return 0, 0, 0, err
	}
	num := v >> 3
	if num == 0 || num > maxFieldNumber {
		return 0, 0, 0, malformed("field number " + strconv.FormatUint(num, 10) + " out of range")
	}
	return uint32(num), byte(v & 7), j, nil
}

// readSpan reads the length of a length-delimited field at i and returns
// the bounds of its content; the field ends at stop.
func (d *decoder) readSpan(i, end int, typ byte) (start, stop int, err error) {
	if typ == wireBytes && i < end && int(d.b[i]) < end-i && d.b[i] < 0x80 {
		return i + 1, i + 1 + int(d.b[i]), nil
	}
	return d.readSpanSlow(i, end, typ)
}

func (d *decoder) readSpanSlow(i, end int, typ byte) (start, stop int, err error) {
	if typ != wireBytes {
		return 0, 0, wrongType(typ, wireBytes)
	}
	l, j, err := d.readVarint(i, end)
	if err != nil {
		return 0, 0, err
	}
	remaining := end - j       // >= 0: readVarint never passes end
	if l > uint64(remaining) { //nolint:gosec // G115: remaining >= 0
		return 0, 0, malformed("length " + strconv.FormatUint(l, 10) + " exceeds remaining " + itoa(remaining) + " bytes")
	}
	return j, j + int(l), nil //nolint:gosec // G115: l <= remaining, an int
}

// readString reads a string field.
func (d *decoder) readString(i, end int, typ byte) (string, int, error) {
	if typ == wireBytes && i < end && int(d.b[i]) < end-i && d.b[i] < 0x80 && len(d.s) == len(d.b) {
		return d.s[i+1 : i+1+int(d.b[i])], i + 1 + int(d.b[i]), nil
	}
	return d.readStringSlow(i, end, typ)
}

func (d *decoder) readStringSlow(i, end int, typ byte) (string, int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil || s == e {
		return "", e, err
	}
	return d.str(s, e), e, nil
}

// readBytes reads a bytes field: a copy, nil when empty. In a message of
// at most sharedStringMax bytes the copy is cut from the shared copy of the
// input (see decoder), with its capacity at its length.
func (d *decoder) readBytes(i, end int, typ byte) ([]byte, int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil || s == e {
		return nil, e, err
	}
	if d.share() && len(d.c) == len(d.b) {
		return d.c[s:e:e], e, nil
	}
	return append([]byte(nil), d.b[s:e]...), e, nil
}

// readAlias reads a bytes field without copying: the result aliases the
// input (nil when empty), with its capacity cut so that appending to it
// cannot overwrite what follows.
func (d *decoder) readAlias(i, end int, typ byte) ([]byte, int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil || s == e {
		return nil, e, err
	}
	return d.b[s:e:e], e, nil
}

// readUvarint reads a varint field.
func (d *decoder) readUvarint(i, end int, typ byte) (uint64, int, error) {
	if typ == wireVarint && i < end && d.b[i] < 0x80 {
		return uint64(d.b[i]), i + 1, nil
	}
	return d.readUvarintSlow(i, end, typ)
}

func (d *decoder) readUvarintSlow(i, end int, typ byte) (uint64, int, error) {
	if typ != wireVarint {
		return 0, 0, wrongType(typ, wireVarint)
	}
	return d.readVarint(i, end)
}

// readBool reads a bool field; any value but 0 is true, as in protobuf.
func (d *decoder) readBool(i, end int, typ byte) (bool, int, error) {
	v, j, err := d.readUvarint(i, end, typ)
	return v != 0, j, err
}

// readSint64 reads a zigzag-encoded signed integer field.
func (d *decoder) readSint64(i, end int, typ byte) (int64, int, error) {
	v, j, err := d.readUvarint(i, end, typ)
	return unzigzag(v), j, err
}

// readInt reads a zigzag-encoded int field, refusing a value that does not
// fit the platform's int (TinyGo's int may be 32 bits).
func (d *decoder) readInt(i, end int, typ byte) (int, int, error) {
	if typ == wireVarint && i < end && d.b[i] < 0x80 {
		return int(unzigzag(uint64(d.b[i]))), i + 1, nil
	}
	return d.readIntSlow(i, end, typ)
}

func (d *decoder) readIntSlow(i, end int, typ byte) (int, int, error) {
	v, j, err := d.readSint64(i, end, typ)
	if err != nil {
		return 0, 0, err
	}
	if int64(int(v)) != v {
		return 0, 0, malformed("integer " + strconv.FormatInt(v, 10) + " out of range")
	}
	return int(v), j, nil
}

// readUint32 reads an unsigned 32-bit varint field.
func (d *decoder) readUint32(i, end int, typ byte) (uint32, int, error) {
	if typ == wireVarint && i < end && d.b[i] < 0x80 {
		return uint32(d.b[i]), i + 1, nil
	}
	return d.readUint32Slow(i, end, typ)
}

func (d *decoder) readUint32Slow(i, end int, typ byte) (uint32, int, error) {
	v, j, err := d.readUvarint(i, end, typ)
	if err != nil {
		return 0, 0, err
	}
	if v > 1<<32-1 {
		return 0, 0, malformed("integer " + strconv.FormatUint(v, 10) + " out of range")
	}
	return uint32(v), j, nil
}

// skip skips the content of a field of wire type typ at i and returns the
// position after it. Unknown fields are skipped so that an older reader
// accepts a newer writer's messages.
func (d *decoder) skip(i, end int, typ byte) (int, error) {
	switch typ {
	case wireVarint:
		_, j, err := d.readVarint(i, end)
		return j, err
	case wireFixed64:
		if end-i < 8 {
			return 0, malformed("truncated fixed64")
		}
		return i + 8, nil
	case wireBytes:
		_, e, err := d.readSpan(i, end, typ)
		return e, err
	case wireFixed32:
		if end-i < 4 {
			return 0, malformed("truncated fixed32")
		}
		return i + 4, nil
	}
	return 0, malformed("unknown wire type " + itoa(int(typ)))
}

// readStrings decodes one element of a repeated string field into *s.
func (d *decoder) readStrings(s *[]string, i, end int, typ byte) (int, error) {
	if len(*s) >= MaxElements {
		return 0, tooMany()
	}
	v, j, err := d.readString(i, end, typ)
	if err != nil {
		return 0, err
	}
	*s = append(*s, v)
	return j, nil
}

// shortKey reads the canonical start of a map entry spanning [s, e): the
// key 0x0a and a key shorter than 128 bytes, cut from the shared string. It
// returns the position after the key, and false when the entry starts any
// other way (the slow path then reads it field by field).
func (d *decoder) shortKey(s, e int) (string, int, bool) {
	if len(d.s) != len(d.b) || e-s < 2 || d.b[s] != 1<<3|wireBytes || d.b[s+1] >= 0x80 {
		return "", 0, false
	}
	ke := s + 2 + int(d.b[s+1])
	if ke > e {
		return "", 0, false
	}
	return d.s[s+2 : ke], ke, true
}

// shortValue reads, at j < e, a field 2 holding a string shorter than 128
// bytes, cut from the shared string, and returns the position after it.
func (d *decoder) shortValue(j, e int) (string, int, bool) {
	if e-j < 2 || d.b[j] != 2<<3|wireBytes || d.b[j+1] >= 0x80 {
		return "", 0, false
	}
	ve := j + 2 + int(d.b[j+1])
	if ve > e {
		return "", 0, false
	}
	return d.s[j+2 : ve], ve, true
}

// readStringMap decodes one entry {1: key, 2: value} of a
// map[string]string field into *m, making the map on first use.
func (d *decoder) readStringMap(m *map[string]string, i, end int, typ byte) (int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil {
		return 0, err
	}
	var k, v string
	// The common case: exactly a short key and a short value, read without
	// further calls (they are dear in WASM).
	fast := false
	if key, j, ok := d.shortKey(s, e); ok {
		if val, j, ok := d.shortValue(j, e); ok && j == e {
			k, v, fast = key, val, true
		}
	}
	for j := s; !fast && j < e; {
		num, typ, n, err := d.readKey(j, e)
		if err != nil {
			return 0, err
		}
		switch num {
		case 1:
			k, j, err = d.readString(n, e, typ)
		case 2:
			v, j, err = d.readString(n, e, typ)
		default:
			j, err = d.skip(n, e, typ)
		}
		if err != nil {
			return 0, err
		}
	}
	if *m == nil {
		*m = make(map[string]string, 4)
	} else if len(*m) >= MaxElements && !hasKey(*m, k) { // a lookup only at the limit: lookups are dear in WASM
		return 0, tooMany()
	}
	(*m)[k] = v
	return e, nil
}

// readStringsMap decodes one entry {1: key, 2: repeated value} of a
// map[string][]string field into *m, making the map on first use. The
// values of all entries are cut from one backing array (d.strs), each with
// its capacity cut to its length.
func (d *decoder) readStringsMap(m *map[string][]string, i, end int, typ byte) (int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil {
		return 0, err
	}
	first := len(d.strs)
	var k string
	// The common case: a short key, then short values up to the end of the
	// entry, read without further calls.
	fast := false
	if key, j, ok := d.shortKey(s, e); ok {
		for j < e && len(d.strs)-first < MaxElements {
			var v string
			if v, j, ok = d.shortValue(j, e); !ok {
				break
			}
			d.strs = append(d.strs, v)
		}
		if j == e {
			k, fast = key, true
		} else {
			d.strs = d.strs[:first] // start again on the slow path
		}
	}
	for j := s; !fast && j < e; {
		num, typ, n, err := d.readKey(j, e)
		if err != nil {
			return 0, err
		}
		switch num {
		case 1:
			k, j, err = d.readString(n, e, typ)
		case 2:
			var v string
			if len(d.strs)-first >= MaxElements {
				err = tooMany()
			} else if v, j, err = d.readString(n, e, typ); err == nil {
				d.strs = append(d.strs, v)
			}
		default:
			j, err = d.skip(n, e, typ)
		}
		if err != nil {
			return 0, err
		}
	}
	var vals []string
	if last := len(d.strs); last > first {
		vals = d.strs[first:last:last]
	}
	if *m == nil {
		*m = make(map[string][]string, 4)
	} else if len(*m) >= MaxElements && !hasKey(*m, k) { // a lookup only at the limit: lookups are dear in WASM
		return 0, tooMany()
	}
	(*m)[k] = vals
	return e, nil
}

// hasKey reports whether m holds k.
func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// readJSONMap decodes a JSON object field into *m. An empty object and
// null decode as a nil map, as an empty map is not written.
func (d *decoder) readJSONMap(m *map[string]any, i, end int, typ byte) (int, error) {
	s, e, err := d.readSpan(i, end, typ)
	if err != nil {
		return 0, err
	}
	obj, err := parseJSONObject(d, s, e)
	if err != nil {
		return 0, err
	}
	if len(obj) == 0 {
		obj = nil
	}
	*m = obj
	return e, nil
}

// run counts the fields of a repeated or map field that follow one another
// from k: the field whose key occupies b[k:j] and the length-delimited
// fields with the same key bytes right after it (how an encoder writes
// them), at most MaxElements. The decoders pre-size slices and maps with
// it, so that a repeated field costs one allocation rather than one per
// doubling. It reads nothing it cannot bound and never fails: a run it
// cannot follow ends there, and the count is only a size hint.
func (d *decoder) run(k, j, end int) int {
	kl := j - k
	n := 0
	for i := k; i < end && n < MaxElements; n++ {
		if !d.sameKey(i, k, j, end) {
			break
		}
		i += kl
		l, m, err := d.readVarint(i, end)
		if err != nil || l > uint64(end-m) { //nolint:gosec // G115: end >= m
			break
		}
		i = m + int(l) //nolint:gosec // G115: l <= end-m, an int
	}
	return max(n, 1)
}

// sameKey reports whether a key equal to b[k:j] starts at i and is
// followed by at least one byte before end.
func (d *decoder) sameKey(i, k, j, end int) bool {
	kl := j - k
	if end-i < kl+1 {
		return false
	}
	if kl == 1 {
		return d.b[i] == d.b[k]
	}
	return string(d.b[i:i+kl]) == string(d.b[k:j])
}

// makeStringsMap makes the map of a map[string][]string field whose first
// entry's key occupies b[k:j], sized for the entries of the run (see run),
// and makes sure d.strs has room for all their values, so that decoding the
// field allocates the map and at most one array of values.
func (d *decoder) makeStringsMap(k, j, end int) map[string][]string {
	kl := j - k
	entries, values := 0, 0
	for i := k; i < end && entries < MaxElements; entries++ {
		if !d.sameKey(i, k, j, end) {
			break
		}
		s, e, err := d.readSpan(i+kl, end, wireBytes)
		if err != nil {
			break
		}
		values += d.countValues(s, e)
		i = e
	}
	if need := min(values, MaxElements); cap(d.strs)-len(d.strs) < need {
		d.strs = make([]string, 0, need)
	}
	return make(map[string][]string, max(entries, 1))
}

// countValues counts the fields 2 (the values) of the map entry in
// [s, e), stopping at anything it cannot read.
func (d *decoder) countValues(s, e int) int {
	n := 0
	for i := s; i < e; {
		// The common case, a key or value shorter than 128 bytes, in place.
		if c := d.b[i]; (c == 1<<3|wireBytes || c == 2<<3|wireBytes) && e-i > 1 && d.b[i+1] < 0x80 {
			if c == 2<<3|wireBytes {
				n++
			}
			i += 2 + int(d.b[i+1])
			continue
		}
		num, typ, j, err := d.readKey(i, e)
		if err != nil {
			break
		}
		if num == 2 {
			n++
		}
		if i, err = d.skip(j, e, typ); err != nil {
			break
		}
	}
	return n
}

package abi

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// This file holds the JSON codec of open-ended claim values (the
// map[string]any fields: claims, attributes, extra members). It is written
// by hand, without reflection, for the types of the JSON data model that
// encoding/json itself produces (nil, bool, float64, string, []any,
// map[string]any), the Go integer and float types, []string,
// map[string]string, json.Number and json.RawMessage. Other values fall back
// to encoding/json.Marshal, which uses reflection: guests that must stay
// reflection-free put only the types above in their claims.
//
// Decoding yields the JSON data model, as encoding/json does: numbers are
// float64, arrays []any, objects map[string]any. Invalid UTF-8 in strings
// becomes U+FFFD, as in encoding/json.

// appendJSONObject appends m as a JSON object with its keys in ascending
// byte order.
func appendJSONObject(b []byte, m map[string]any, depth int) ([]byte, error) {
	if depth >= MaxDepth {
		return b, overLimit("claims nested deeper than " + itoa(MaxDepth))
	}
	var buf [8]entry[any]
	b = append(b, '{')
	for i, e := range sortedEntries(buf[:], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.k)
		b = append(b, ':')
		var err error
		if b, err = appendJSONValue(b, e.v, depth+1); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONValue appends v as JSON.
func appendJSONValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if v {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case string:
		return appendJSONString(b, v), nil
	case float64:
		return appendJSONFloat(b, v, 64)
	case float32:
		return appendJSONFloat(b, float64(v), 32)
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case json.Number:
		if !validJSONNumber(string(v)) {
			return b, &codecErr{kind: ErrUnencodable, msg: "invalid json.Number " + strconv.Quote(string(v))}
		}
		return append(b, v...), nil
	case json.RawMessage:
		return appendRawJSON(b, v, depth)
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendJSONObject(b, v, depth)
	case map[string]string:
		if v == nil {
			return append(b, "null"...), nil
		}
		if depth >= MaxDepth {
			return b, overLimit("claims nested deeper than " + itoa(MaxDepth))
		}
		var buf [8]entry[string]
		b = append(b, '{')
		for i, e := range sortedEntries(buf[:], v) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.k)
			b = append(b, ':')
			b = appendJSONString(b, e.v)
		}
		return append(b, '}'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		if depth >= MaxDepth {
			return b, overLimit("claims nested deeper than " + itoa(MaxDepth))
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		if depth >= MaxDepth {
			return b, overLimit("claims nested deeper than " + itoa(MaxDepth))
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		return append(b, ']'), nil
	}
	// Anything else (a struct, a typed slice, time.Time): the reflective
	// encoder. Never on the hot path of a guest that keeps to the types
	// above.
	raw, err := json.Marshal(v)
	if err != nil {
		return b, &codecErr{kind: ErrUnencodable, msg: "claim value: " + err.Error()}
	}
	return appendRawJSON(b, raw, depth)
}

// appendRawJSON appends raw, which must be one valid JSON value; it is
// parsed and re-encoded so that the output is canonical (sorted keys, no
// whitespace) whatever the input's form.
func appendRawJSON(b []byte, raw []byte, depth int) ([]byte, error) {
	p := jsonParser{b: raw, depth: depth}
	p.skipSpace()
	v, err := p.value()
	if err == nil {
		p.skipSpace()
		if p.i != len(p.b) {
			err = malformed("trailing data after JSON value")
		}
	}
	if err != nil {
		return b, &codecErr{kind: ErrUnencodable, msg: "invalid raw JSON claim: " + err.Error()}
	}
	return appendJSONValue(b, v, depth)
}

// appendJSONFloat appends f as encoding/json does (no exponent between 1e-6
// and 1e21), refusing NaN and the infinities, which JSON cannot express.
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, &codecErr{kind: ErrUnencodable, msg: "claim value " + strconv.FormatFloat(f, 'g', -1, bits) + " has no JSON form"}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Turn e-09 into e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, U+2028 and U+2029 escaped (for JavaScript
// consumers), invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validJSONNumber reports whether s is a JSON number (RFC 8259 section 6).
func validJSONNumber(s string) bool {
	p := jsonParser{b: []byte(s)}
	_, err := p.number()
	return err == nil && p.i == len(p.b)
}

// parseJSONObject parses d.b[start:end], which must hold one JSON object
// (or null, which yields a nil map), with optional surrounding whitespace.
func parseJSONObject(d *decoder, start, end int) (map[string]any, error) {
	p := jsonParser{b: d.b[start:end], d: d, base: start}
	p.skipSpace()
	var m map[string]any // null leaves it nil
	if !p.literal("null") {
		if p.i >= len(p.b) || p.b[p.i] != '{' {
			return nil, p.errorf("JSON object expected")
		}
		v, err := p.object()
		if err != nil {
			return nil, err
		}
		m = v
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, p.errorf("trailing data after JSON object")
	}
	return m, nil
}

// jsonParser is a strict RFC 8259 parser producing the JSON data model.
// With a decoder, strings without escapes are cut from the decoder's
// shared string (b starts at offset base of the decoder's input).
type jsonParser struct {
	b     []byte
	i     int
	depth int
	d     *decoder
	base  int
}

func (p *jsonParser) errorf(msg string) error {
	return malformed("invalid JSON at offset " + itoa(p.i) + ": " + msg)
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// literal consumes lit when the input continues with it.
func (p *jsonParser) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

func (p *jsonParser) value() (any, error) {
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	}
	return nil, p.errorf("unexpected character " + strconv.QuoteRune(rune(p.b[p.i])))
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return overLimit("JSON nested deeper than " + itoa(MaxDepth))
	}
	return nil
}

func (p *jsonParser) object() (map[string]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.i++ // '{'
	m := map[string]any{}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("object key expected")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("':' expected")
		}
		p.i++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; !dup && len(m) >= MaxElements {
			return nil, tooMany()
		}
		m[k] = v
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, p.errorf("',' or '}' expected")
		}
	}
}

func (p *jsonParser) array() ([]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.i++ // '['
	a := []any{}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if len(a) >= MaxElements {
			return nil, tooMany()
		}
		a = append(a, v)
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.errorf("',' or ']' expected")
		}
	}
}

// number parses a JSON number as a float64.
func (p *jsonParser) number() (float64, error) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return 0, p.errorf("digit expected")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return 0, p.errorf("digit expected after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return 0, p.errorf("digit expected in exponent")
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return 0, malformed("invalid JSON at offset " + itoa(start) + ": number out of range")
	}
	return f, nil
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// str parses a JSON string.
func (p *jsonParser) str() (string, error) {
	p.i++ // '"'
	start := p.i
	// Fast path: no escapes, valid UTF-8.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if utf8.Valid(s) {
				if p.d != nil {
					return p.d.str(p.base+start, p.base+p.i-1), nil
				}
				return string(s), nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	p.i = start
	return p.slowStrValue()
}

// slowStrValue parses a string with escapes or invalid UTF-8, starting
// after the opening quote.
func (p *jsonParser) slowStrValue() (string, error) {
	var out []byte
	for {
		if p.i >= len(p.b) {
			return "", p.errorf("unterminated string")
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return "", p.errorf("unterminated string")
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errorf("invalid \\u escape")
				}
				if r >= 0xD800 && r < 0xDC00 {
					// A high surrogate: a low one must follow to make a
					// pair; alone it becomes U+FFFD, as in encoding/json.
					save := p.i
					if p.literal(`\u`) {
						if r2, ok := p.hex4(); ok && r2 >= 0xDC00 && r2 < 0xE000 {
							r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						} else {
							p.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else if r >= 0xDC00 && r < 0xE000 {
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", p.errorf("invalid escape")
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.b[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
}

// hex4 reads four hex digits.
func (p *jsonParser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// stdJSON encodes v as encoding/json does, without HTML escaping (which
// the wire codec does not do: its JSON never lands in HTML).
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// TestJSONEncodingMatchesEncodingJSON checks the hand-written encoder
// against encoding/json, byte for byte, for the types it handles itself.
func TestJSONEncodingMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		v    map[string]any
	}{
		{"scalars", map[string]any{"s": "x", "t": true, "f": false, "n": nil}},
		{"floats", map[string]any{"a": 0.0, "b": math.Copysign(0, -1), "c": 1.5, "d": 1e20, "e": 1e21, "f": 1e-6, "g": 1e-7, "h": -123456789.125, "i": math.MaxFloat64, "j": math.SmallestNonzeroFloat64}},
		{"float32", map[string]any{"a": float32(0.1), "b": float32(1e-7), "c": float32(3.4e38)}},
		{"integers", map[string]any{"a": 1, "b": int8(-8), "c": int16(16), "d": int32(-32), "e": int64(math.MinInt64), "f": uint(1), "g": uint8(8), "h": uint16(16), "i": uint32(32), "j": uint64(math.MaxUint64)}},
		{"strings", map[string]any{"esc": "q\" b\\ n\n r\r t\t \x00 \x1f \x7f", "uni": "héllo \u2028 \u2029 😀", "bad": "a\xffb\xc3", "html": "<a&b>", "": "empty key"}},
		{"containers", map[string]any{"arr": []any{1.0, "x", []any{}, map[string]any{}}, "strs": []string{"a", "b"}, "m": map[string]string{"z": "1", "a": "2"}, "nil strs": []string(nil), "nil any": []any(nil), "nil map": map[string]any(nil), "nil smap": map[string]string(nil)}},
		{"number and raw", map[string]any{"num": json.Number("-1.5e3"), "raw": json.RawMessage(` { "b" : [ 1 , 2 ] , "a" : null } `)}},
		{"fallback", map[string]any{"time": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "struct": struct {
			B int `json:"b"`
			A string
		}{1, "x"}, "ints": []int{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendJSONObject(nil, tt.v, 0)
			if err != nil {
				t.Fatal(err)
			}
			// encoding/json keeps a RawMessage's whitespace and a struct's
			// field order; the wire codec re-encodes both canonically, so
			// compare through a decode.
			var want, back any
			if err := json.Unmarshal([]byte(stdJSON(t, tt.v)), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, got)
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("got %s\nwant %s", got, stdJSON(t, tt.v))
			}
			if tt.name != "number and raw" && tt.name != "fallback" {
				if w := stdJSON(t, tt.v); string(got) != w {
					t.Fatalf("bytes differ from encoding/json:\n got %s\nwant %s", got, w)
				}
			}
		})
	}
}

// FuzzJSONClaims checks the hand-written parser against encoding/json: it
// accepts exactly the JSON objects encoding/json accepts (within MaxDepth),
// yields the same values, and its output parses back to them.
func FuzzJSONClaims(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00\ud800x"}`,
		`{"a":-0.0e-0}`, ` { "x" : true , "y" : false } `, `{"a":"\/\b\f"}`, "{\"a\":\"\xff\"}", `{"a":1e400}`, `{"a":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := decoder{b: in}
		got, err := parseJSONObject(&d, 0, len(in))
		var want map[string]any
		stdErr := json.Unmarshal(in, &want)
		if err != nil {
			if errors.Is(err, ErrLimit) {
				return
			}
			if stdErr == nil {
				var obj map[string]any
				if json.Unmarshal(in, &obj) == nil {
					t.Fatalf("parser refused %q (%v), encoding/json accepts it", in, err)
				}
			}
			return
		}
		if stdErr != nil {
			t.Fatalf("parser accepted %q, encoding/json refuses it: %v", in, stdErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parser gave %#v, encoding/json %#v", got, want)
		}
		out, err := appendJSONObject(nil, got, 0)
		if got == nil {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		d2 := decoder{b: out}
		back, err := parseJSONObject(&d2, 0, len(out))
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoding %q gave %s, which parses to %#v, %v", in, out, back, err)
		}
	})
}

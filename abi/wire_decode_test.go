package abi

import (
	"reflect"
	"testing"
)

// entryInput wraps the content of one map entry as its length-delimited
// field value.
func entryInput(entry []byte) []byte {
	return append(appendVarint(nil, uint64(len(entry))), entry...)
}

// decodeEntry decodes one entry of each map kind, with the shared string
// ready (so the fast paths may run) or not (so only the slow path runs).
func decodeEntry(in []byte, shared bool) (map[string]string, map[string][]string, error, error) {
	d1, d2 := decoder{b: in}, decoder{b: in}
	if shared {
		d1.s, d2.s = string(in), string(in)
	}
	var sm map[string]string
	var ssm map[string][]string
	_, err1 := d1.readStringMap(&sm, 0, len(in), wireBytes)
	_, err2 := d2.readStringsMap(&ssm, 0, len(in), wireBytes)
	return sm, ssm, err1, err2
}

func TestMapEntries(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name  string
		entry []byte
		sm    map[string]string
		ssm   map[string][]string
	}{
		{"key and value", []byte{0x0a, 1, 'k', 0x12, 1, 'v'},
			map[string]string{"k": "v"}, map[string][]string{"k": {"v"}}},
		{"key and values", []byte{0x0a, 1, 'k', 0x12, 1, 'a', 0x12, 0, 0x12, 1, 'b'},
			map[string]string{"k": "b"}, map[string][]string{"k": {"a", "", "b"}}},
		{"key only", []byte{0x0a, 1, 'k'},
			map[string]string{"k": ""}, map[string][]string{"k": nil}},
		{"value only", []byte{0x12, 1, 'v'},
			map[string]string{"": "v"}, map[string][]string{"": {"v"}}},
		{"value before key", []byte{0x12, 1, 'v', 0x0a, 1, 'k'},
			map[string]string{"k": "v"}, map[string][]string{"k": {"v"}}},
		{"key twice", []byte{0x0a, 1, 'a', 0x12, 1, 'v', 0x0a, 1, 'b'},
			map[string]string{"b": "v"}, map[string][]string{"b": {"v"}}},
		{"unknown field", []byte{0x0a, 1, 'k', 0x18, 5, 0x12, 1, 'v'},
			map[string]string{"k": "v"}, map[string][]string{"k": {"v"}}},
		{"long key", append(append([]byte{0x0a, 0xc8, 0x01}, long...), 0x12, 1, 'v'),
			map[string]string{string(long): "v"}, map[string][]string{string(long): {"v"}}},
		{"long value", append(append([]byte{0x0a, 1, 'k', 0x12, 0xc8, 0x01}, long...), 0x12, 1, 'w'),
			map[string]string{"k": "w"}, map[string][]string{"k": {string(long), "w"}}},
		{"empty", []byte{},
			map[string]string{"": ""}, map[string][]string{"": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, shared := range []bool{true, false} {
				sm, ssm, err1, err2 := decodeEntry(entryInput(tt.entry), shared)
				if err1 != nil || err2 != nil {
					t.Fatalf("shared=%v: %v, %v", shared, err1, err2)
				}
				if !reflect.DeepEqual(sm, tt.sm) || !reflect.DeepEqual(ssm, tt.ssm) {
					t.Errorf("shared=%v: got %q and %q, want %q and %q", shared, sm, ssm, tt.sm, tt.ssm)
				}
			}
		})
	}
	t.Run("values are cut to their length", func(t *testing.T) {
		in := entryInput([]byte{0x0a, 1, 'k', 0x12, 1, 'a'})
		in = append(in, entryInput([]byte{0x0a, 1, 'l', 0x12, 1, 'b'})...)
		d := decoder{b: in, s: string(in)}
		var m map[string][]string
		i, err := d.readStringsMap(&m, 0, len(in), wireBytes)
		if err == nil {
			_, err = d.readStringsMap(&m, i, len(in), wireBytes)
		}
		if err != nil {
			t.Fatal(err)
		}
		m["k"] = append(m["k"], "c") // must not overwrite m["l"]
		if want := map[string][]string{"k": {"a", "c"}, "l": {"b"}}; !reflect.DeepEqual(m, want) {
			t.Fatalf("got %q, want %q", m, want)
		}
	})
}

// FuzzMapEntryFastPath checks that the fast paths of the map readers,
// which need the shared string, decode every entry exactly as the field by
// field slow path does.
func FuzzMapEntryFastPath(f *testing.F) {
	f.Add([]byte{0x0a, 1, 'k', 0x12, 1, 'v'})
	f.Add([]byte{0x0a, 1, 'k', 0x12, 1, 'a', 0x12, 0, 0x12, 1, 'b'})
	f.Add([]byte{0x0a, 3, 'k', 0x12, 1, 'v'})
	f.Add([]byte{0x0a, 1, 'k', 0x12, 5, 'v'})
	f.Fuzz(func(t *testing.T, entry []byte) {
		in := entryInput(entry)
		sm1, ssm1, e1, e2 := decodeEntry(in, true)
		sm2, ssm2, e3, e4 := decodeEntry(in, false)
		if (e1 == nil) != (e3 == nil) || (e2 == nil) != (e4 == nil) {
			t.Fatalf("fast and slow paths disagree on errors: %v, %v / %v, %v", e1, e2, e3, e4)
		}
		if !reflect.DeepEqual(sm1, sm2) || !reflect.DeepEqual(ssm1, ssm2) {
			t.Fatalf("fast path %q %q, slow path %q %q", sm1, ssm1, sm2, ssm2)
		}
	})
}

package oauth

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestMarshalClaims: marshalClaims writes what json.Marshal writes, for the
// values fosite's claims hold and for others.
func TestMarshalClaims(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
	}{
		{"empty", map[string]any{}},
		{"access token", map[string]any{
			"iss": "https://id.example/t/acme", "sub": "svc", "client_id": "svc", "aud": []string{"https://api.example", "orders"},
			"iat": int64(1763800000), "exp": int64(1763803600), "nbf": int64(1763800000), "jti": "0198c0de-0000-7000-8000-000000000000", "scope": "read write",
		}},
		{"escapes", map[string]any{
			"q": `a "quoted" \ value`, "html": "<b>&amp;</b>", "ctl": "line\nbreak\ttab\x00", "utf8": "zoë ✓ \u2028", "bad utf8": "\xff\xfe",
			"key with \"quote\"": "v", "aud": []string{"<x>", "é"},
		}},
		{"other values", map[string]any{
			"nil list": []string(nil), "empty list": []string{}, "int": 42, "neg": int64(-7), "float": 1.5, "big": 1e21, "bool": true, "null": nil,
			"cnf":  map[string]any{"jkt": "abc", "x5t#S256": "def"},
			"list": []any{"a", 1.0, map[string]any{"z": 1, "a": []int{1}}},
			"raw":  json.RawMessage(`{"b":1,"a":2}`),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshalClaims(tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
	if _, err := marshalClaims(map[string]any{"f": func() {}}); err == nil {
		t.Error("a value json cannot encode was encoded")
	}
}

// FuzzMarshalClaims: for any strings as keys and values, marshalClaims
// writes what json.Marshal writes.
func FuzzMarshalClaims(f *testing.F) {
	f.Add("sub", "svc", "aud", "https://api.example")
	f.Add("<", "\u2028", "\x00", "\xff")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		claims := map[string]any{k1: v1, k2: []string{v2, v1}}
		want, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalClaims(claims)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

package oauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// marshalClaims returns what json.Marshal returns for a JWT's claims, byte
// for byte: the keys sorted, strings escaped as encoding/json escapes them.
// The values fosite's claims hold (strings, string lists, Unix times) are
// written directly, which saves most of the reflection that encoding a
// map costs on every token; any other value goes through json.Marshal.
func marshalClaims(claims map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := make([]byte, 0, 64*len(claims))
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		var err error
		if buf, err = appendJSONValue(buf, claims[k]); err != nil {
			return nil, fmt.Errorf("encoding claim %q: %w", k, err)
		}
	}
	return append(buf, '}'), nil
}

// appendJSONValue appends v's JSON encoding.
func appendJSONValue(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendJSONString(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case nil:
		return append(buf, "null"...), nil
	case []string:
		if x == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		for i, s := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, s)
		}
		return append(buf, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, raw...), nil
}

// appendJSONString appends s as a JSON string. Printable ASCII other than
// '"', '\\', '<', '>' and '&' is copied; a string with anything else is
// left to json.Marshal, so the output is always encoding/json's.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always encodes
			return append(buf, raw...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

package notify

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary notification payloads (anything that can
// connect to the database can NOTIFY on the channel) to decode: it must
// not panic, must refuse what Validate refuses, and what it accepts must
// encode back to an equal change.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"t":"clients","k":"tenant"}`, `{"t":"deny"}`, `{}`, `{"t":"a","k":1}`, `null`, `"x"`, "\x00", `{"t":"a","k":"\u0000"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		c, err := decode(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("decode error %v is not ErrInvalidChange", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decode accepted an invalid change %+v: %v", c, err)
		}
		p, err := encode(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(p)
		if err != nil || back != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}

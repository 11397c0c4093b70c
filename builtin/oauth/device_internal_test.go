package oauth

import (
	"strings"
	"testing"
)

func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"BCDF-GHJK", "BCDF-GHJK"},
		{"bcdf ghjk", "BCDF-GHJK"},
		{"bcdfghjk", "BCDF-GHJK"},
		{" B-C-D-F-G-H-J-K ", "BCDF-GHJK"},
		{"BCDF-GHJ", ""},
		{"BCDF-GHJKL", ""},
		{"ABCD-EFGH", ""}, // vowels are never in a code
		{"BCDF-GHJ1", ""},
		{"", ""},
		{strings.Repeat("B", 40), ""},
		{"ВCDF-GHJK", ""}, // Cyrillic В
	} {
		if got := normalizeUserCode(tc.in); got != tc.want {
			t.Errorf("normalizeUserCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for range 100 {
		code, err := newUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if normalizeUserCode(code) != code || normalizeUserCode(strings.ToLower(code)) != code {
			t.Fatalf("generated code %q does not normalise to itself", code)
		}
	}
}

// FuzzUserCode feeds what users type into the user-code normaliser: the
// result is empty or a well-formed code that normalises to itself.
func FuzzUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "ÄBCD", "", "----", "bcdfghjkbcdfghjk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := normalizeUserCode(in)
		if out == "" {
			return
		}
		if len(out) != userCodeLength+1 || out[userCodeLength/2] != '-' || normalizeUserCode(out) != out {
			t.Fatalf("normalizeUserCode(%q) = %q", in, out)
		}
	})
}

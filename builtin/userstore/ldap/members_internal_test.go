package ldap

import "testing"

// TestRangeEnd reads the end of the range option a directory puts on a
// large attribute's name (Active Directory: "member;range=0-1499", the
// last slice "member;range=1500-*").
func TestRangeEnd(t *testing.T) {
	cases := []struct {
		name, opts, hi string
		ranged         bool
	}{
		{"the whole attribute", "", "", false},
		{"a first slice", "range=0-1499", "1499", true},
		{"the last slice", "range=1500-*", "*", true},
		{"the option in upper case", "Range=0-9", "9", true},
		{"beside another option", "binary;range=10-19", "19", true},
		{"another option only", "lang-en", "", false},
		{"no dash", "range=5", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hi, ok := rangeEnd(tc.opts)
			if hi != tc.hi || ok != tc.ranged {
				t.Errorf("rangeEnd(%q) = %q, %v; want %q, %v", tc.opts, hi, ok, tc.hi, tc.ranged)
			}
		})
	}
}

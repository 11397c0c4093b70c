package scim

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"eq", `userName eq "bjensen"`, `userName eq "bjensen"`},
		{"operator case", `userName EQ "x"`, `userName eq "x"`},
		{"pr", `title pr`, `title pr`},
		{"and binds tighter", `a eq 1 or b eq 2 and c eq 3`, `a eq 1 or (b eq 2 and c eq 3)`},
		{"parens", `(a eq 1 or b eq 2) and c eq 3`, `(a eq 1 or b eq 2) and c eq 3`},
		{"left assoc", `a pr and b pr and c pr`, `(a pr and b pr) and c pr`},
		{"not", `not (a eq "x")`, `not (a eq "x")`},
		{"not without space", `not(a pr)`, `not (a pr)`},
		{"value path", `emails[type eq "work" and value co "@x"]`, `emails[type eq "work" and value co "@x"]`},
		{"urn", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "1"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "1"`},
		{"sub attr", `name.familyName sw "J"`, `name.familyName sw "J"`},
		{"booleans and null", `active eq TRUE or x eq false or y eq null`, `(active eq true or x eq false) or y eq null`},
		{"numbers", `n gt -1.5e3`, `n gt -1.5e3`},
		{"escapes", `userName eq "a\"b\\c\u00e9"`, `userName eq "a\"b\\cé"`},
		{"attribute named not", `not eq "x"`, `not eq "x"`},
		{"extra spaces", `  a   eq   "x"  `, `a eq "x"`},
		{"dollar ref", `members.$ref pr`, `members.$ref pr`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseFilter(tc.in)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.in, err)
			}
			if got := e.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			e2, err := ParseFilter(e.String())
			if err != nil || !reflect.DeepEqual(e, e2) {
				t.Fatalf("round trip: %v, %#v != %#v", err, e, e2)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"missing value", `userName eq`},
		{"unknown operator", `userName like "x"`},
		{"unterminated string", `userName eq "x`},
		{"unbalanced paren", `(userName eq "x"`},
		{"extra paren", `userName eq "x")`},
		{"nested value path", `emails[value[type eq "x"]]`},
		{"no space before op", `userName"x"`},
		{"bare word value", `userName eq x`},
		{"dangling and", `a pr and`},
		{"sql injection", `userName eq "x"; DROP TABLE users`},
		{"equals sign", `userName = "x"`},
		{"bad number", `a eq 01`},
		{"bad urn", `urn::x:y eq "z"`},
		{"value path on sub", `name.givenName[value eq "x"]`},
		{"control char", "userName eq \"x\"\x00"},
		{"invalid utf8", "userName eq \"\xff\""},
		{"too long", `userName eq "` + strings.Repeat("a", MaxFilterLength) + `"`},
		{"too deep", strings.Repeat("(", maxFilterDepth+2) + "a pr" + strings.Repeat(")", maxFilterDepth+2)},
		{"not without parens", `not a pr`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := ParseFilter(tc.in); !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("ParseFilter(%q) = %v, %v; want ErrInvalidFilter", tc.in, e, err)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`members`, `members`},
		{`name.givenName`, `name.givenName`},
		{`members[value eq "2819c223"]`, `members[value eq "2819c223"]`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`},
		{`addresses[type eq "work" and primary eq true].streetAddress`, `addresses[type eq "work" and primary eq true].streetAddress`},
	} {
		p, err := ParsePath(tc.in)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tc.in, err)
		}
		if p.String() != tc.want {
			t.Fatalf("ParsePath(%q).String() = %q", tc.in, p.String())
		}
	}
	for _, in := range []string{``, ` members`, `members `, `members[`, `members[value eq "x"].`, `members[value eq "x"] .value`,
		`members.value[type eq "x"]`, `members[value eq "x"]value`, `"members"`, `members[value eq "x"].sub.more`, strings.Repeat("a", MaxPathLength+1)} {
		if _, err := ParsePath(in); !errors.Is(err, ErrInvalidFilter) {
			t.Fatalf("ParsePath(%q) = %v; want ErrInvalidFilter", in, err)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `name.familyName co "O'Malley"`, `userName sw "J"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `title pr`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`, `title pr and userType eq "Employee"`,
		`title pr or userType eq "Intern"`, `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
		`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		`a gt 1.5e-3 and b le -2`, `x eq null`, `not(a pr)`, `((a pr))`, `a eq "\u0000\n"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("error does not wrap ErrInvalidFilter: %v", err)
			}
			return
		}
		out := e.String()
		e2, err := ParseFilter(out)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", out, s, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed %q: %q -> %q", s, out, e2.String())
		}
	})
}

func FuzzPatchPath(f *testing.F) {
	for _, s := range []string{
		`members`, `name.familyName`, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`emails[type eq "work"].value`, `addresses[type eq "work"].streetAddress`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
		`emails[type eq "work" or not (primary eq true)].display`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("error does not wrap ErrInvalidFilter: %v", err)
			}
			return
		}
		out := p.String()
		p2, err := ParsePath(out)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", out, s, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip changed %q: %q -> %q", s, out, p2.String())
		}
	})
}

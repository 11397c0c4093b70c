package ldap

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// fuzzSettings is a settled configuration mapping the attributes the
// fuzz targets fill.
func fuzzSettings(t testing.TB, idFormat string, ad bool) *settings {
	t.Helper()
	s := &Store{
		URLs: []string{"ldaps://ldap.example.org"},
		Users: Users{
			BaseDN:     "ou=people,dc=example,dc=org",
			Attributes: UserAttributes{ID: "objectGUID", IDFormat: idFormat, Extra: map[string]string{"department": "departmentNumber", "photo": "jpegPhoto"}},
			State:      AccountState{ActiveDirectory: ad, LockedAttribute: "pwdAccountLockedTime"},
		},
		Groups: Groups{BaseDN: "ou=groups,dc=example,dc=org"},
	}
	if !ad {
		s.Users.State.DisabledAttribute = "employeeType"
		s.Users.State.DisabledValue = "disabled"
	}
	st, err := s.settle()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// FuzzEntryToUser maps directory entries with arbitrary values (as a
// hostile or broken directory could send them) to users and groups: it
// must never panic, must refuse entries without an id or username, and
// a GUID id must read back to the bytes it came from.
func FuzzEntryToUser(f *testing.F) {
	guid := []byte{0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8}
	f.Add(guid, "alice", "512", "disabled", "eng", []byte{0xff, 0xd8})
	f.Add([]byte("5b484fd4-7ad1-1041-8c1f-ff18336fe060"), "bob", "514", "", "", []byte(nil))
	f.Add([]byte{}, "", "x", "DISABLED", "a\x00b", []byte("text"))
	f.Add(guid[:15], "ü", "-1", "0", "", []byte{0x80})
	f.Fuzz(func(t *testing.T, id []byte, username, uac, state, dept string, photo []byte) {
		for _, format := range []string{IDFormatText, IDFormatGUID} {
			for _, ad := range []bool{false, true} {
				st := fuzzSettings(t, format, ad)
				attrs := []*goldap.EntryAttribute{
					{Name: "objectGUID", Values: []string{string(id)}, ByteValues: [][]byte{id}},
					{Name: "uid", Values: []string{username}, ByteValues: [][]byte{[]byte(username)}},
					{Name: "userAccountControl", Values: []string{uac}, ByteValues: [][]byte{[]byte(uac)}},
					{Name: "lockoutTime", Values: []string{state}, ByteValues: [][]byte{[]byte(state)}},
					{Name: "employeeType", Values: []string{state}, ByteValues: [][]byte{[]byte(state)}},
					{Name: "departmentNumber", Values: []string{dept, dept}, ByteValues: [][]byte{[]byte(dept), []byte(dept)}},
					{Name: "jpegPhoto", Values: []string{string(photo)}, ByteValues: [][]byte{photo}},
					{Name: "cn", Values: []string{username}, ByteValues: [][]byte{[]byte(username)}},
				}
				e := &goldap.Entry{DN: "uid=x,ou=people,dc=example,dc=org", Attributes: attrs}
				u, err := st.entryToUser(e)
				if g, gerr := st.entryToGroup(e); gerr == nil && (g.ID == "" || g.Name == "") {
					t.Fatalf("group without id or name: %+v", g)
				}
				if err != nil {
					continue
				}
				if u.ID == "" || u.Username == "" {
					t.Fatalf("user without id or username: %+v", u)
				}
				if _, err := json.Marshal(u); err != nil {
					t.Fatalf("user does not encode: %v", err)
				}
				if format == IDFormatGUID {
					back, err := parseGUID(u.ID)
					if err != nil || !bytes.Equal(back, id) {
						t.Fatalf("GUID %q reads back as %x, %v; want %x", u.ID, back, err, id)
					}
				}
				if !ad && u.Enabled == strings.EqualFold(state, "disabled") {
					t.Fatalf("state %q: enabled = %v", state, u.Enabled)
				}
			}
		}
	})
}

// FuzzFilterEscaping builds the filters the store sends from arbitrary
// usernames and ids: each must compile and hold exactly the one equality
// assertion with the value given, so no input can widen a search.
func FuzzFilterEscaping(f *testing.F) {
	for _, s := range []string{"alice", "*", "alice)(uid=*", "*)(|(uid=*", "a\x00b", "\\2a", "ü", "(&)", "x))(objectClass=*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		st := fuzzSettings(t, IDFormatText, false)
		check := func(filter, want string) {
			p, err := goldap.CompileFilter(filter)
			if err != nil {
				t.Fatalf("filter %q does not compile: %v", filter, err)
			}
			var eqs []*ber.Packet
			var walk func(p *ber.Packet)
			walk = func(p *ber.Packet) {
				switch p.Tag {
				case goldap.FilterAnd:
					for _, c := range p.Children {
						walk(c)
					}
				case goldap.FilterEqualityMatch:
					eqs = append(eqs, p)
				default:
					t.Fatalf("filter %q holds a %s", filter, goldap.FilterMap[uint64(p.Tag)])
				}
			}
			walk(p)
			last := eqs[len(eqs)-1]
			if got := last.Children[1].Data.String(); got != want {
				t.Fatalf("filter %q matches %q, want %q", filter, got, want)
			}
		}
		check(and([]string{"(objectClass=inetOrgPerson)", "(" + st.users.Attributes.Username + "=" + goldap.EscapeFilter(v) + ")"}), v)
		if f, ok := idFilter("entryUUID", IDFormatText, v); ok {
			check(f, v)
		}
		if f, ok := idFilter("objectGUID", IDFormatGUID, v); ok {
			b, _ := parseGUID(v)
			check(f, string(b))
		}
	})
}

// FuzzCursor reads arbitrary cursors: it never panics, and a cursor it
// accepts is the one it would have written.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", encodeCursor(1), encodeCursor(2100), "bzA", "bzE", "bw", "o1", "%%%", "bzAwMDAx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		n, err := decodeCursor(c)
		if err != nil || c == "" {
			return
		}
		if n <= 0 || n > maxOffset || encodeCursor(n) != c {
			t.Fatalf("cursor %q read as %d (written %q)", c, n, encodeCursor(n))
		}
	})
}

// FuzzConfig settles arbitrary configurations that passed the JSON
// decoding: it never panics, and a settled configuration has compiling
// filters and the defaults filled in.
func FuzzConfig(f *testing.F) {
	f.Add(`{"urls":["ldaps://x"],"users":{"base_dn":"dc=x"}}`)
	f.Add(`{"urls":["ldap://x:389"],"start_tls":true,"users":{"base_dn":"ou=p,dc=x","filter":"(&(objectClass=user)(!(x=y)))","attributes":{"id":"objectGUID","id_format":"guid","email":"-"}},"groups":{"base_dn":"dc=x","membership":"member_of"}}`)
	f.Add(`{"urls":["ldap://[::1"],"users":{"base_dn":"=,="}}`)
	f.Add(`{"urls":["ldaps://x/p?q"],"users":{"base_dn":"dc=x","scope":"one","state":{"active_directory":true,"disabled_attribute":"a"}}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var s Store
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return
		}
		s.TLS, s.BindPasswordFile = TLS{}, "" // no file reads
		st, err := s.settle()
		if err != nil {
			return
		}
		if _, err := goldap.CompileFilter(st.userFilter); err != nil {
			t.Fatalf("settled a user filter that does not compile: %q", st.userFilter)
		}
		if st.groups.BaseDN != "" {
			if _, err := goldap.CompileFilter(st.groupFilter); err != nil {
				t.Fatalf("settled a group filter that does not compile: %q", st.groupFilter)
			}
		}
		if len(st.urls) == 0 || st.users.Attributes.ID == "" || st.users.Attributes.Username == "" || st.poolSize <= 0 {
			t.Fatalf("settled an incomplete configuration: %+v", st)
		}
	})
}

func TestGUIDRoundTrip(t *testing.T) {
	// The objectGUID of MS-DTYP 2.3.4.2's example layout.
	raw := []byte{0x6d, 0x2d, 0x6b, 0xf7, 0x3a, 0x53, 0x4d, 0x4a, 0x98, 0x6d, 0x45, 0x7a, 0x3b, 0x11, 0x24, 0x56}
	s, err := formatGUID(raw)
	if err != nil || s != "f76b2d6d-533a-4a4d-986d-457a3b112456" {
		t.Fatalf("formatGUID = %q, %v", s, err)
	}
	back, err := parseGUID(s)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("parseGUID = %x, %v", back, err)
	}
	f, ok := idFilter("objectGUID", IDFormatGUID, s)
	if !ok || f != `(objectGUID=\6d\2d\6b\f7\3a\53\4d\4a\98\6d\45\7a\3b\11\24\56)` {
		t.Fatalf("idFilter = %q", f)
	}
}

func TestADBindOutcome(t *testing.T) {
	tests := []struct{ diag, want string }{
		{"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563", "locked"},
		{"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 533, v4563", "disabled"},
		{"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563", "invalid_credentials"},
		{"", "invalid_credentials"},
	}
	for _, tt := range tests {
		if got := adBindOutcome(tt.diag); got != tt.want {
			t.Errorf("adBindOutcome(%q) = %q, want %q", tt.diag, got, tt.want)
		}
	}
	if got := adPassword("ab"); got != "\"\x00a\x00b\x00\"\x00" {
		t.Errorf("adPassword = %q", got)
	}
}

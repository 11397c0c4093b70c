package outbox

import (
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func TestRulesCompile(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules Rules
		ok    bool
	}{
		{"empty", Rules{}, true},
		{"groups", Rules{Groups: []string{"eng"}}, true},
		{"filter", Rules{Filter: `userName sw "a" and (groups[display eq "eng"] or roles[value eq "admin"])`}, true},
		{"custom attribute", Rules{Filter: `attributes.department eq "R&D"`}, true},
		{"complex sub", Rules{Filter: `name.givenName pr`}, true},
		{"disable", Rules{Deprovision: "disable"}, true},
		{"bad deprovision", Rules{Deprovision: "archive"}, false},
		{"syntax", Rules{Filter: `userName eq`}, false},
		{"unknown attribute", Rules{Filter: `password eq "x"`}, false},
		{"schema urn", Rules{Filter: `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`}, false},
		{"unknown sub", Rules{Filter: `groups.secret eq "a"`}, false},
		{"bare attributes", Rules{Filter: `attributes pr`}, false},
		{"unknown sub in value filter", Rules{Filter: `emails[type eq "work"]`}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.rules
			if err := r.Compile(); (err == nil) != c.ok {
				t.Fatalf("Compile() = %v, want ok %v", err, c.ok)
			}
		})
	}
}

func TestRulesFilterMatch(t *testing.T) {
	u := store.User{ID: "u1", Username: "Alice", DisplayName: "Alice L", GivenName: "Alice", Email: "alice@example.com", Enabled: true,
		Attributes: map[string]any{"department": "R&D", "level": float64(3)}}
	groups := []store.Group{{ID: "g1", Name: "engineering"}}
	roles := []store.Role{{Name: "admin"}}
	view := userView(u, groups, roles)
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{`userName eq "alice"`, true}, // case-insensitive
		{`userName ne "alice"`, false},
		{`userName sw "al" and active eq true`, true},
		{`active eq false`, false},
		{`emails co "example.com"`, true},
		{`emails[value ew ".org"]`, false},
		{`groups[display eq "engineering"]`, true},
		{`groups[value eq "g1"]`, true},
		{`groups.display eq "sales"`, false},
		{`roles[value eq "admin"] and not (groups[display eq "sales"])`, true},
		{`attributes.department eq "r&d"`, true},
		{`attributes.level gt 2`, true},
		{`attributes.level le 2`, false},
		{`attributes.missing pr`, false},
		{`name.givenName eq "Alice" or userName eq "x"`, true},
		{`phoneNumbers pr`, false},
		{`displayName gt "A"`, true},
	} {
		r := Rules{Filter: c.filter}
		if err := r.Compile(); err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if got := match(r.filter, view); got != c.want {
			t.Errorf("%s: got %v, want %v", c.filter, got, c.want)
		}
	}
}

func TestRulesAttributes(t *testing.T) {
	u := store.User{Username: "bob", Enabled: true, Attributes: map[string]any{"department": "Sales", "n": float64(2)}}
	for k, want := range map[string]string{"username": "bob", "enabled": "true", "department": "Sales", "n": "2", "missing": ""} {
		if got := userField(u, k); got != want {
			t.Errorf("userField(%q) = %q, want %q", k, got, want)
		}
	}
}

// FuzzRulesFilter: any filter an operator writes compiles or is refused,
// and a compiled one evaluates without panicking.
func FuzzRulesFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `groups[display eq "x"] or not (active eq true)`, `attributes.k gt 1`, `emails[value co "@"]`, `((`, `a[b[c eq 1]]`} {
		f.Add(s)
	}
	view := userView(store.User{Username: "u", Enabled: true, Attributes: map[string]any{"k": "v"}}, []store.Group{{ID: "1", Name: "x"}}, nil)
	f.Fuzz(func(t *testing.T, s string) {
		r := Rules{Filter: s}
		if r.Compile() != nil {
			return
		}
		_ = match(r.filter, view)
	})
}

func TestParseRules(t *testing.T) {
	many := `{"groups":[` + strings.Repeat(`"g",`, maxRuleNames) + `"g"]}`
	for _, c := range []struct {
		name, raw string
		ok        bool
	}{
		{"groups and filter", `{"groups":["eng"],"filter":"userName sw \"a\"","deprovision":"disable"}`, true},
		{"empty", `{}`, true},
		{"unknown field", `{"group":["eng"]}`, false},
		{"wrong type", `{"groups":"eng"}`, false},
		{"two values", `{} {}`, false},
		{"too many groups", many, false},
		{"empty role", `{"roles":[""]}`, false},
		{"long attribute value", `{"attributes":{"a":"` + strings.Repeat("x", maxRuleValueLen+1) + `"}}`, false},
		{"bad filter", `{"filter":"password eq \"x\""}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRules([]byte(c.raw))
			if (err == nil) != c.ok {
				t.Fatalf("ParseRules = %+v, %v; want ok %v", r, err, c.ok)
			}
			if c.ok && r == nil {
				t.Fatal("no rules")
			}
		})
	}
}

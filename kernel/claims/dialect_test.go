package claims_test

import (
	"slices"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
)

func TestDialectsDefaults(t *testing.T) {
	d := claims.NewDialects(nil, nil)
	if got := d.Names(); !slices.Equal(got, []string{"oidc", "saml", "scim"}) {
		t.Fatalf("dialects %v", got)
	}
	for _, c := range d.LocalClaims() {
		if !c.BuiltIn {
			t.Errorf("%s is not marked built-in", c.URI)
		}
		for _, alias := range []string{c.URI, c.Name} {
			if got, ok := d.Local(alias); !ok || got.URI != c.URI {
				t.Errorf("Local(%q) = %v, %v", alias, got, ok)
			}
		}
	}
	for _, name := range d.Names() {
		for _, m := range d.Mappings(name) {
			if _, ok := d.Local(m.LocalURI); !ok {
				t.Errorf("%s %s maps to the unknown local claim %s", name, m.Claim, m.LocalURI)
			}
		}
	}
}

func TestDialectsTranslate(t *testing.T) {
	d := claims.NewDialects(
		[]claims.LocalClaim{
			{URI: "http://example.com/claims/cost_center", Name: "cost_center", AttributeMappings: map[string]string{"LDAP": "departmentNumber"}},
			// A stored record over a built-in claim keeps it built in.
			{URI: "http://wso2.org/claims/emailaddress", Name: "email", Description: "Work email"},
		},
		[]claims.Mapping{
			{Dialect: abi.DialectOIDC, Claim: "cost_center", LocalURI: "http://example.com/claims/cost_center"},
			{Dialect: abi.DialectOIDC, Claim: "email", LocalURI: "http://example.com/claims/cost_center"},
			{Dialect: "urn:example:crm", Claim: "cc", LocalURI: "http://example.com/claims/cost_center"},
		})
	if c, _ := d.Local("email"); !c.BuiltIn || c.Description != "Work email" {
		t.Errorf("stored built-in claim: %+v", c)
	}
	if got := d.Names(); !slices.Equal(got, []string{"oidc", "saml", "scim", "urn:example:crm"}) {
		t.Fatalf("dialects %v", got)
	}
	u := abi.User{ID: "u1", Username: "LDAP/alice", Email: "alice@example.org", GivenName: "Alice",
		Attributes: map[string]any{"cost_center": "stale", "department": "R&D", claims.ProfilesAttribute: map[string]any{
			"work": map[string]any{"http://wso2.org/claims/givenname": "Al", "department": "Lab"},
		}}}
	local := d.UserClaims(u, "LDAP", map[string]any{"departmentNumber": "42"}, []string{"LDAP/staff"}, "")
	want := map[string]any{"username": "LDAP/alice", "email": "alice@example.org", "email_verified": false,
		"given_name": "Alice", "groups": []string{"LDAP/staff"}, "department": "R&D", "cost_center": "42"}
	if len(local) != len(want) {
		t.Fatalf("local claims %v, want %v", local, want)
	}
	for k, v := range want {
		if k == "groups" {
			continue
		}
		if local[k] != v {
			t.Errorf("%s = %v, want %v", k, local[k], v)
		}
	}
	// The stored mapping of "email" replaces the built-in one.
	oidc := d.ToDialect(local, abi.DialectOIDC)
	if oidc["cost_center"] != "42" || oidc["email"] != "42" || oidc["preferred_username"] != "LDAP/alice" {
		t.Errorf("oidc %v", oidc)
	}
	if crm := d.ToDialect(local, "urn:example:crm"); len(crm) != 1 || crm["cc"] != "42" {
		t.Errorf("crm %v", crm)
	}
	// Another domain keeps the claim in the attribute of its name.
	if got := d.UserClaims(u, "PRIMARY", nil, nil, ""); got["cost_center"] != "stale" {
		t.Errorf("primary cost_center %v", got["cost_center"])
	}
	work := d.UserClaims(u, "LDAP", nil, nil, "work")
	if work["given_name"] != "Al" || work["department"] != "Lab" {
		t.Errorf("work profile %v", work)
	}
	if back := d.FromDialect(map[string]any{"cc": "7", "other": 1}, "urn:example:crm"); len(back) != 1 || back["cost_center"] != "7" {
		t.Errorf("from crm %v", back)
	}
	if c := d.Canonical(map[string]any{"http://wso2.org/claims/givenname": "x", "given_name": "y"}); c["given_name"] != "y" || len(c) != 1 {
		t.Errorf("canonical %v", c)
	}
}

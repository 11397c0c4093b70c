package ldap_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
)

// mapClaims runs the claims.dialect mapper as the claim mapping path does.
func (d *domains) mapClaims(t *testing.T, from, to, subject string, in map[string]any) map[string]any {
	t.Helper()
	out, err := claims.Check(d.mapper.Map(ctxT(t), abi.MapRequest{Tenant: domainTenant, From: from, To: to, Subject: subject, Claims: in}))
	if err != nil {
		t.Fatalf("mapping %s to %s: %v", from, to, err)
	}
	return out
}

// TestClaimDialects has an administrator define a custom local claim,
// map it to an LDAP attribute for the LDAP domain, to an OpenID Connect
// claim and to a SAML attribute, through the admin API; the claim mapping
// path then carries the directory's value into both dialects.
func TestClaimDialects(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	d.dir.KeepShadows(d.st)
	base := d.serve(t) + "/t/" + domainTenant + "/api/admin/v1"
	ctx := ctxT(t)

	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/claims/local", `{"uri":"http://example.com/claims/cost_center","name":"cost_center","description":"Cost center","attribute_mappings":{"LDAP":"departmentNumber"}}`},
		{"PUT", "/claims/dialects/oidc", `{"claim":"cost_center","local_claim":"http://example.com/claims/cost_center"}`},
		{"PUT", "/claims/dialects/saml", `{"claim":"urn:example:cost-center","local_claim":"cost_center"}`},
	} {
		if st, body := do(t, tc.method, base+tc.path, tc.body, asAdmin); st != http.StatusOK {
			t.Fatalf("%s %s: %d %v", tc.method, tc.path, st, body)
		}
	}
	st, body := do(t, "GET", base+"/claims/dialects", "", asAdmin)
	if got := strs(body["items"], "dialect"); st != 200 || !slices.Equal(got, []string{"oidc", "saml", "scim"}) {
		t.Fatalf("dialects: %d %v", st, body)
	}
	st, body = do(t, "GET", base+"/claims/local", "", asAdmin)
	if got := strs(body["items"], "uri"); st != 200 || !slices.Contains(got, "http://example.com/claims/cost_center") || !slices.Contains(got, "http://wso2.org/claims/emailaddress") {
		t.Fatalf("local claims: %d %v", st, body)
	}
	// Bad input is refused in the API's error form.
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/claims/local", `{"uri":"not a uri","name":"x"}`},
		{"PUT", "/claims/local", `{"uri":"http://wso2.org/claims/emailaddress","name":"mail"}`},
		{"PUT", "/claims/local", `{"uri":"urn:x:y","name":"email"}`},
		{"PUT", "/claims/local", `{"uri":"urn:x:y","name":"y","attribute_mappings":{"LDAP":"(bad)"}}`},
		{"PUT", "/claims/dialects/oidc", `{"claim":"x","local_claim":"no-such-claim"}`},
		{"PUT", "/claims/dialects/local", `{"claim":"x","local_claim":"email"}`},
	} {
		if st, body := do(t, tc.method, base+tc.path, tc.body, asAdmin); st != http.StatusBadRequest && st != http.StatusConflict {
			t.Errorf("%s %s %s: %d %v", tc.method, tc.path, tc.body, st, body)
		}
	}

	_, alice, err := d.dir.FindUser(ctx, domainTenant, "LDAP/alice")
	if err != nil {
		t.Fatal(err)
	}
	oidc := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, map[string]any{"sub": alice.ID})
	if oidc["cost_center"] != "engineering" || oidc["preferred_username"] != "LDAP/alice" || oidc["email"] != "alice@example.org" || oidc["sub"] != alice.ID {
		t.Fatalf("oidc claims of LDAP/alice: %v", oidc)
	}
	if g, _ := oidc["groups"].([]string); !slices.Equal(g, []string{"LDAP/admins", "LDAP/staff"}) {
		t.Errorf("groups %v", oidc["groups"])
	}
	// As the ID token and UserInfo ask: the granted scopes release the
	// claims (the custom claim goes with profile).
	scoped := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, map[string]any{"sub": alice.ID, "scope": "openid profile"})
	if scoped["cost_center"] != "engineering" || scoped["email"] != nil || scoped["groups"] != nil || scoped["given_name"] != "Alice" {
		t.Fatalf("claims for openid profile: %v", scoped)
	}
	scoped = d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, map[string]any{"scope": "openid email"})
	if scoped["cost_center"] != nil || scoped["email"] != "alice@example.org" || scoped["given_name"] != nil {
		t.Fatalf("claims for openid email: %v", scoped)
	}
	saml := d.mapClaims(t, abi.DialectLocal, abi.DialectSAML, alice.ID, nil)
	if saml["urn:example:cost-center"] != "engineering" || saml["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"] != "alice@example.org" {
		t.Fatalf("saml attributes of LDAP/alice: %v", saml)
	}
	scim := d.mapClaims(t, abi.DialectLocal, abi.DialectSCIM, alice.ID, nil)
	if scim["urn:ietf:params:scim:schemas:core:2.0:User:userName"] != "LDAP/alice" {
		t.Fatalf("scim claims of LDAP/alice: %v", scim)
	}

	// The primary store has no mapping for the claim: it is read from the
	// attribute named like the claim. Its other profile replaces values
	// for the applications that select it.
	dave := d.locals["dave"]
	dave.Attributes = map[string]any{"cost_center": "ops"}
	if _, err := d.st.UpdateUser(ctx, dave); err != nil {
		t.Fatal(err)
	}
	st, body = do(t, "PUT", base+"/users/"+dave.ID+"/profiles/work",
		`{"email":"dave@work.example","http://example.com/claims/cost_center":"work-cc"}`, asAdmin)
	if st != 200 {
		t.Fatalf("PUT profile: %d %v", st, body)
	}
	def := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, dave.ID, nil)
	if def["cost_center"] != "ops" || def["email"] != "dave@local.test" {
		t.Fatalf("dave's default profile: %v", def)
	}
	work := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, dave.ID, map[string]any{claims.ProfileClaim: "work"})
	if work["cost_center"] != "work-cc" || work["email"] != "dave@work.example" || work[claims.ProfileClaim] != nil {
		t.Fatalf("dave's work profile: %v", work)
	}
	// The admin API shows the default profile only, and keeps the others
	// when the attributes are replaced.
	st, body = do(t, "PATCH", base+"/users/"+dave.ID, `{"attributes":{"cost_center":"ops-2"}}`, asAdmin)
	attrs, _ := body["attributes"].(map[string]any)
	if st != 200 || attrs[claims.ProfilesAttribute] != nil || attrs["cost_center"] != "ops-2" {
		t.Fatalf("PATCH dave: %d %v", st, body)
	}
	st, body = do(t, "GET", base+"/users/"+dave.ID+"/profiles", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || !slices.Equal(got, []string{"work"}) {
		t.Fatalf("dave's profiles: %d %v", st, body)
	}
	if st, body = do(t, "PUT", base+"/users/"+dave.ID+"/profiles/default", `{}`, asAdmin); st != http.StatusBadRequest {
		t.Fatalf("PUT the default profile: %d %v", st, body)
	}
	// A directory user keeps its profiles on its shadow record, which
	// the first profile write creates; the mapper applies them.
	if st, body = do(t, "PUT", base+"/users/"+alice.ID+"/profiles/work", `{"email":"alice@work.example"}`, asAdmin); st != http.StatusOK {
		t.Fatalf("a profile for a directory user: %d %v", st, body)
	}
	work = d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, map[string]any{claims.ProfileClaim: "work"})
	if work["email"] != "alice@work.example" || work["cost_center"] != "engineering" {
		t.Fatalf("LDAP/alice's work profile: %v", work)
	}
	if def := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, nil); def["email"] != "alice@example.org" {
		t.Fatalf("LDAP/alice's default profile: %v", def)
	}

	// Local claim URIs are aliases; outside dialects map back to local
	// names.
	alias := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, "", map[string]any{"http://wso2.org/claims/givenname": "Al"})
	if alias["given_name"] != "Al" {
		t.Fatalf("URI alias: %v", alias)
	}
	back := d.mapClaims(t, abi.DialectSAML, abi.DialectLocal, "", map[string]any{"urn:example:cost-center": "cc-9"})
	if back["cost_center"] != "cc-9" {
		t.Fatalf("saml to local: %v", back)
	}

	// A subject that is no user of the stores (a client at the gateway)
	// gets the given claims translated, without an error.
	for _, sub := range []string{"LDAP:no-such-user", "some-client", "C:x"} {
		if got := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, sub, map[string]any{"given_name": "G"}); got["given_name"] != "G" {
			t.Fatalf("subject %q: %v", sub, got)
		}
	}

	// Deleting the mapping removes the claim from the OIDC dialect.
	if st, body := do(t, "DELETE", base+"/claims/dialects/oidc?claim="+url.QueryEscape("cost_center"), "", asAdmin); st != http.StatusNoContent {
		t.Fatalf("DELETE mapping: %d %v", st, body)
	}
	if oidc := d.mapClaims(t, abi.DialectLocal, abi.DialectOIDC, alice.ID, nil); oidc["cost_center"] != nil {
		t.Fatalf("unmapped claim still sent: %v", oidc)
	}
}

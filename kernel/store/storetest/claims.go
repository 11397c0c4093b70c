package storetest

import (
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testClaimDialects(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "other").ID

	dept := store.LocalClaim{TenantID: tid, URI: "http://wso2.org/claims/department", Name: "department",
		Description: "The department", AttributeMappings: map[string]string{"LDAP": "departmentNumber"}}
	got, err := s.PutLocalClaim(ctx, dept)
	ok(t, err, "PutLocalClaim")
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("PutLocalClaim: timestamps not set: %+v", got)
	}
	dept.CreatedAt, dept.UpdatedAt = got.CreatedAt, got.UpdatedAt
	same(t, "PutLocalClaim", got, dept)

	// Replacing keeps CreatedAt and swaps the mappings.
	dept.AttributeMappings = map[string]string{"LDAP": "ou", "PRIMARY": "dept"}
	dept.Description = ""
	again, err := s.PutLocalClaim(ctx, dept)
	ok(t, err, "PutLocalClaim again")
	if !again.CreatedAt.Equal(got.CreatedAt) || again.Description != "" || again.AttributeMappings["PRIMARY"] != "dept" || len(again.AttributeMappings) != 2 {
		t.Errorf("PutLocalClaim again: %+v", again)
	}
	_, err = s.PutLocalClaim(ctx, store.LocalClaim{TenantID: tid, URI: "urn:x:other", Name: "department"})
	is(t, err, store.ErrConflict, "PutLocalClaim with a taken name")
	_, err = s.PutLocalClaim(ctx, store.LocalClaim{TenantID: tid, URI: "urn:x:noname"})
	is(t, err, store.ErrInvalid, "PutLocalClaim without a name")
	_, err = s.PutLocalClaim(ctx, store.LocalClaim{TenantID: tid, URI: strings.Repeat("u", 513), Name: "long"})
	is(t, err, store.ErrInvalid, "PutLocalClaim with an oversized uri")
	_, err = s.PutLocalClaim(ctx, store.LocalClaim{TenantID: tid, URI: "urn:x:bad", Name: "bad", AttributeMappings: map[string]string{"LDAP": ""}})
	is(t, err, store.ErrInvalid, "PutLocalClaim with an empty attribute")
	_, err = s.PutLocalClaim(ctx, store.LocalClaim{TenantID: store.NewID(), URI: "urn:x:t", Name: "t"})
	if err == nil {
		t.Error("PutLocalClaim in a missing tenant: no error")
	}
	cost, err := s.PutLocalClaim(ctx, store.LocalClaim{TenantID: tid, URI: "http://example.com/claims/cost_center", Name: "cost_center"})
	ok(t, err, "PutLocalClaim cost_center")

	cs, err := s.ListLocalClaims(ctx, tid)
	ok(t, err, "ListLocalClaims")
	if len(cs) != 2 || cs[0].URI != cost.URI || cs[1].URI != dept.URI {
		t.Fatalf("ListLocalClaims: %+v", cs)
	}

	// Mappings of outside dialects.
	for _, m := range []store.ClaimMapping{
		{TenantID: tid, Dialect: "oidc", Claim: "department", LocalURI: dept.URI},
		{TenantID: tid, Dialect: "saml", Claim: "urn:oid:2.5.4.11", LocalURI: dept.URI},
		{TenantID: tid, Dialect: "oidc", Claim: "cost", LocalURI: cost.URI},
	} {
		_, err := s.PutClaimMapping(ctx, m)
		ok(t, err, "PutClaimMapping "+m.Dialect+" "+m.Claim)
	}
	_, err = s.PutClaimMapping(ctx, store.ClaimMapping{TenantID: tid, Dialect: "oidc", Claim: "cost", LocalURI: dept.URI})
	ok(t, err, "PutClaimMapping replacing")
	_, err = s.PutClaimMapping(ctx, store.ClaimMapping{TenantID: tid, Dialect: "oidc", Claim: "x"})
	is(t, err, store.ErrInvalid, "PutClaimMapping without a local claim")
	ms, err := s.ListClaimMappings(ctx, tid, "oidc")
	ok(t, err, "ListClaimMappings oidc")
	if len(ms) != 2 || ms[0].Claim != "cost" || ms[0].LocalURI != dept.URI || ms[1].Claim != "department" || ms[0].UpdatedAt.IsZero() {
		t.Fatalf("ListClaimMappings oidc: %+v", ms)
	}
	ms, err = s.ListClaimMappings(ctx, tid, "")
	ok(t, err, "ListClaimMappings")
	if len(ms) != 3 || ms[2].Dialect != "saml" {
		t.Fatalf("ListClaimMappings: %+v", ms)
	}

	// Tenants are isolated.
	cs, err = s.ListLocalClaims(ctx, other)
	ok(t, err, "ListLocalClaims of another tenant")
	ms2, err := s.ListClaimMappings(ctx, other, "")
	ok(t, err, "ListClaimMappings of another tenant")
	if len(cs) != 0 || len(ms2) != 0 {
		t.Fatalf("another tenant sees %v and %v", cs, ms2)
	}
	is(t, s.DeleteLocalClaim(ctx, other, dept.URI), store.ErrNotFound, "DeleteLocalClaim from another tenant")
	is(t, s.DeleteClaimMapping(ctx, other, "oidc", "department"), store.ErrNotFound, "DeleteClaimMapping from another tenant")

	// Deleting a local claim deletes the mappings to it.
	ok(t, s.DeleteClaimMapping(ctx, tid, "oidc", "department"), "DeleteClaimMapping")
	is(t, s.DeleteClaimMapping(ctx, tid, "oidc", "department"), store.ErrNotFound, "DeleteClaimMapping twice")
	ok(t, s.DeleteLocalClaim(ctx, tid, dept.URI), "DeleteLocalClaim")
	is(t, s.DeleteLocalClaim(ctx, tid, dept.URI), store.ErrNotFound, "DeleteLocalClaim twice")
	ms, err = s.ListClaimMappings(ctx, tid, "")
	ok(t, err, "ListClaimMappings after delete")
	if len(ms) != 0 {
		t.Fatalf("mappings to a deleted claim remain: %+v", ms)
	}

	// Deleting the tenant deletes its claims.
	ok(t, s.DeleteTenant(ctx, tid), "DeleteTenant")
	cs, err = s.ListLocalClaims(ctx, tid)
	ok(t, err, "ListLocalClaims of a deleted tenant")
	if len(cs) != 0 {
		t.Fatalf("claims of a deleted tenant remain: %+v", cs)
	}
}

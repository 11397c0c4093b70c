package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testLinks(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "other").ID
	alice := mkUser(t, s, tid, "alice")
	bob := mkUser(t, s, tid, "bob")

	want := store.Link{TenantID: tid, UserID: alice.ID, IdP: "corp-oidc", Subject: "248289761001",
		Email: "alice@corp.example", CreatedAt: time.Now().Add(-time.Hour)}
	got, err := s.CreateLink(ctx, want)
	ok(t, err, "CreateLink")
	same(t, "CreateLink", got, want)
	found, err := s.FindLink(ctx, tid, "corp-oidc", "248289761001")
	ok(t, err, "FindLink")
	same(t, "FindLink", found, want)

	// A second identity of the same person, without CreatedAt.
	saml, err := s.CreateLink(ctx, store.Link{TenantID: tid, UserID: alice.ID, IdP: "adfs", Subject: "ALICE@CORP"})
	ok(t, err, "CreateLink without CreatedAt")
	if saml.CreatedAt.IsZero() || time.Since(saml.CreatedAt).Abs() > time.Minute {
		t.Errorf("CreateLink without CreatedAt: got %v, want about now", saml.CreatedAt)
	}
	ls, err := s.ListLinks(ctx, tid, alice.ID)
	ok(t, err, "ListLinks")
	if len(ls) != 2 || ls[0].IdP != "adfs" || ls[1].IdP != "corp-oidc" {
		t.Fatalf("ListLinks: got %+v, want adfs then corp-oidc", ls)
	}
	same(t, "ListLinks[1]", ls[1], want)

	// One external identity, one local user.
	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: bob.ID, IdP: "corp-oidc", Subject: "248289761001"})
	is(t, err, store.ErrConflict, "CreateLink of an identity linked to another user")
	_, err = s.CreateLink(ctx, want)
	is(t, err, store.ErrConflict, "CreateLink twice")
	// Subjects are compared exactly: an upstream's subjects are opaque.
	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: bob.ID, IdP: "adfs", Subject: "alice@corp"})
	ok(t, err, "CreateLink of a subject differing only in case")

	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: store.NewID(), IdP: "x", Subject: "y"})
	is(t, err, store.ErrNotFound, "CreateLink for a missing user")
	_, err = s.CreateLink(ctx, store.Link{TenantID: other, UserID: alice.ID, IdP: "x", Subject: "y"})
	is(t, err, store.ErrInvalid, "CreateLink for another tenant's user")
	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: alice.ID, IdP: "x"})
	is(t, err, store.ErrInvalid, "CreateLink without a subject")
	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: alice.ID, Subject: "y"})
	is(t, err, store.ErrInvalid, "CreateLink without an idp")
	_, err = s.CreateLink(ctx, store.Link{TenantID: tid, UserID: alice.ID, IdP: "x", Subject: strings.Repeat("s", 513)})
	is(t, err, store.ErrInvalid, "CreateLink with an oversized subject")

	// Tenants are isolated.
	_, err = s.FindLink(ctx, other, "corp-oidc", "248289761001")
	is(t, err, store.ErrNotFound, "FindLink in another tenant")
	is(t, s.DeleteLink(ctx, other, "corp-oidc", "248289761001"), store.ErrNotFound, "DeleteLink in another tenant")
	ls, err = s.ListLinks(ctx, other, alice.ID)
	ok(t, err, "ListLinks in another tenant")
	if len(ls) != 0 {
		t.Errorf("ListLinks in another tenant: got %+v, want none", ls)
	}

	ok(t, s.DeleteLink(ctx, tid, "corp-oidc", "248289761001"), "DeleteLink")
	_, err = s.FindLink(ctx, tid, "corp-oidc", "248289761001")
	is(t, err, store.ErrNotFound, "FindLink after DeleteLink")
	is(t, s.DeleteLink(ctx, tid, "corp-oidc", "248289761001"), store.ErrNotFound, "DeleteLink twice")

	// Deleting the user deletes its links.
	ok(t, s.DeleteUser(ctx, tid, alice.ID), "DeleteUser")
	_, err = s.FindLink(ctx, tid, "adfs", "ALICE@CORP")
	is(t, err, store.ErrNotFound, "FindLink after deleting the user")
	if _, err := s.FindLink(ctx, tid, "adfs", "alice@corp"); err != nil {
		t.Errorf("FindLink of bob's link after deleting alice: %v", err)
	}
}

package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testWebAuthnCredentials(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "other").ID
	alice := mkUser(t, s, tid, "alice")
	bob := mkUser(t, s, tid, "bob")

	want := store.WebAuthnCredential{
		TenantID: tid, UserID: alice.ID, ID: "AQIDBAUGBwgJCgsMDQ4PEA", Authenticator: "authn.webauthn",
		PublicKey: []byte{0xa5, 0x01, 0x02, 0x03, 0x26}, AttestationType: "none", AttestationFormat: "none",
		AAGUID: "00000000-0000-0000-0000-000000000000", SignCount: 7, Transports: []string{"internal", "hybrid"},
		Attachment: "platform", UserVerified: true, BackupEligible: true, BackupState: true, Discoverable: true,
		Nickname: "Laptop", CreatedAt: time.Now().Add(-time.Hour),
	}
	got, err := s.CreateWebAuthnCredential(ctx, want)
	ok(t, err, "CreateWebAuthnCredential")
	same(t, "CreateWebAuthnCredential", got, want)
	found, err := s.GetWebAuthnCredential(ctx, tid, want.ID)
	ok(t, err, "GetWebAuthnCredential")
	same(t, "GetWebAuthnCredential", found, want)

	// A security key without transports, counters or a creation time.
	key, err := s.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{TenantID: tid, UserID: alice.ID, ID: "key-2",
		Authenticator: "authn.webauthn", PublicKey: []byte{1}})
	ok(t, err, "CreateWebAuthnCredential of a minimal credential")
	if key.CreatedAt.IsZero() || time.Since(key.CreatedAt).Abs() > time.Minute {
		t.Errorf("CreatedAt defaulted to %v, want about now", key.CreatedAt)
	}
	cs, err := s.ListWebAuthnCredentials(ctx, tid, alice.ID)
	ok(t, err, "ListWebAuthnCredentials")
	if len(cs) != 2 || cs[0].ID != want.ID || cs[1].ID != "key-2" || cs[1].Transports != nil {
		t.Fatalf("ListWebAuthnCredentials: got %+v, want the older credential first", cs)
	}
	if cs, err := s.ListWebAuthnCredentials(ctx, tid, bob.ID); err != nil || len(cs) != 0 {
		t.Fatalf("ListWebAuthnCredentials of a user without any: %v, %v", cs, err)
	}

	// A use moves the counter and the backup state, and stamps the time.
	used := time.Now().Add(-time.Minute)
	ok(t, s.UseWebAuthnCredential(ctx, tid, want.ID, store.WebAuthnUse{SignCount: 8, BackupState: false, UsedAt: used}), "UseWebAuthnCredential")
	found, err = s.GetWebAuthnCredential(ctx, tid, want.ID)
	ok(t, err, "GetWebAuthnCredential after use")
	if found.SignCount != 8 || found.BackupState || found.LastUsedAt.Sub(used).Abs() > time.Millisecond || found.CloneWarning {
		t.Errorf("after use: %+v", found)
	}
	is(t, s.UseWebAuthnCredential(ctx, tid, "missing", store.WebAuthnUse{}), store.ErrNotFound, "UseWebAuthnCredential of a missing credential")

	// Credential ids are unique per tenant.
	dup := want
	dup.UserID = bob.ID
	_, err = s.CreateWebAuthnCredential(ctx, dup)
	is(t, err, store.ErrConflict, "CreateWebAuthnCredential of a registered id")
	_, err = s.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{TenantID: tid, UserID: store.NewID(), ID: "x", Authenticator: "a", PublicKey: []byte{1}})
	is(t, err, store.ErrNotFound, "CreateWebAuthnCredential for a missing user")
	_, err = s.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{TenantID: other, UserID: alice.ID, ID: "x", Authenticator: "a", PublicKey: []byte{1}})
	is(t, err, store.ErrInvalid, "CreateWebAuthnCredential for another tenant's user")
	for name, c := range map[string]store.WebAuthnCredential{
		"without an id":         {TenantID: tid, UserID: alice.ID, Authenticator: "a", PublicKey: []byte{1}},
		"without a key":         {TenantID: tid, UserID: alice.ID, ID: "y", Authenticator: "a"},
		"with an oversized id":  {TenantID: tid, UserID: alice.ID, ID: strings.Repeat("i", 1367), Authenticator: "a", PublicKey: []byte{1}},
		"with a long nickname":  {TenantID: tid, UserID: alice.ID, ID: "y", Authenticator: "a", PublicKey: []byte{1}, Nickname: strings.Repeat("n", 65)},
		"with many transports":  {TenantID: tid, UserID: alice.ID, ID: "y", Authenticator: "a", PublicKey: []byte{1}, Transports: make([]string, 17)},
		"without authenticator": {TenantID: tid, UserID: alice.ID, ID: "y", PublicKey: []byte{1}},
	} {
		_, err = s.CreateWebAuthnCredential(ctx, c)
		is(t, err, store.ErrInvalid, "CreateWebAuthnCredential "+name)
	}

	// Tenants are isolated; only the owner's credential is deleted.
	_, err = s.GetWebAuthnCredential(ctx, other, want.ID)
	is(t, err, store.ErrNotFound, "GetWebAuthnCredential from another tenant")
	is(t, s.DeleteWebAuthnCredential(ctx, tid, bob.ID, want.ID), store.ErrNotFound, "DeleteWebAuthnCredential of another user's credential")
	ok(t, s.DeleteWebAuthnCredential(ctx, tid, alice.ID, want.ID), "DeleteWebAuthnCredential")
	_, err = s.GetWebAuthnCredential(ctx, tid, want.ID)
	is(t, err, store.ErrNotFound, "GetWebAuthnCredential after delete")

	// Deleting the user deletes its credentials.
	ok(t, s.DeleteUser(ctx, tid, alice.ID), "DeleteUser")
	_, err = s.GetWebAuthnCredential(ctx, tid, "key-2")
	is(t, err, store.ErrNotFound, "GetWebAuthnCredential after the user was deleted")
}

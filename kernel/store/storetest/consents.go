package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	u := mkUser(t, s, tid, "alice")
	want := store.Consent{TenantID: tid, UserID: u.ID, ClientID: "web", Scopes: []string{"openid", "email"},
		GrantedAt: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(30 * 24 * time.Hour)}
	ok(t, s.PutConsent(ctx, want), "PutConsent")
	got, err := s.GetConsent(ctx, tid, u.ID, "web")
	ok(t, err, "GetConsent")
	same(t, "GetConsent", got, want)

	// PutConsent replaces.
	want.Scopes, want.ExpiresAt = []string{"openid"}, time.Time{}
	want.GrantedAt = time.Now()
	ok(t, s.PutConsent(ctx, want), "PutConsent again")
	got, err = s.GetConsent(ctx, tid, u.ID, "web")
	ok(t, err, "GetConsent")
	same(t, "GetConsent after replacing", got, want)

	ok(t, s.PutConsent(ctx, store.Consent{TenantID: tid, UserID: u.ID, ClientID: "cli", Scopes: []string{"api"}}),
		"PutConsent without GrantedAt")
	cli, err := s.GetConsent(ctx, tid, u.ID, "cli")
	ok(t, err, "GetConsent")
	if cli.GrantedAt.IsZero() || time.Since(cli.GrantedAt).Abs() > time.Minute {
		t.Errorf("PutConsent without GrantedAt: stored %v, want about now", cli.GrantedAt)
	}
	cs, err := s.ListUserConsents(ctx, tid, u.ID)
	ok(t, err, "ListUserConsents")
	if len(cs) != 2 {
		t.Fatalf("ListUserConsents: got %d consents, want 2", len(cs))
	}
	for _, c := range cs {
		switch c.ClientID {
		case "web":
			same(t, "ListUserConsents web", c, want)
		case "cli":
			same(t, "ListUserConsents cli", c, cli)
		default:
			t.Errorf("ListUserConsents: unexpected client %q", c.ClientID)
		}
	}

	is(t, s.PutConsent(ctx, store.Consent{TenantID: tid, UserID: store.NewID(), ClientID: "web"}), store.ErrNotFound,
		"PutConsent for a missing user")
	is(t, s.PutConsent(ctx, store.Consent{TenantID: tid, UserID: u.ID}), store.ErrInvalid, "PutConsent without a client")
	_, err = s.GetConsent(ctx, tid, u.ID, "mobile")
	is(t, err, store.ErrNotFound, "GetConsent of a missing client")

	ok(t, s.DeleteConsent(ctx, tid, u.ID, "web"), "DeleteConsent")
	_, err = s.GetConsent(ctx, tid, u.ID, "web")
	is(t, err, store.ErrNotFound, "GetConsent after DeleteConsent")
	is(t, s.DeleteConsent(ctx, tid, u.ID, "web"), store.ErrNotFound, "DeleteConsent twice")
	cs, err = s.ListUserConsents(ctx, tid, u.ID)
	ok(t, err, "ListUserConsents")
	if len(cs) != 1 || cs[0].ClientID != "cli" {
		t.Errorf("ListUserConsents after DeleteConsent: got %+v, want only cli", cs)
	}
}

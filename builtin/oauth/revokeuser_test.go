package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// TestRevokeUserTokens: a user's refresh and access tokens end, for every
// client or for one; another user's stay.
func TestRevokeUserTokens(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	tn := sqlitetest.Tenant(t, st, "default")
	for _, id := range []string{"web", "app"} {
		if _, err := st.CreateClient(ctx, store.Client{TenantID: tn.ID, ClientID: id, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	s := &storage{st: st, maxLifetime: time.Hour}
	p := &Provider{d: Deps{Store: st}, storage: s}
	tctx := withTenant(ctx, tenantInfo{id: tn.ID, name: tn.Name, issuer: "https://id.example.com"})
	issue := func(subject, clientID, sig string) {
		t.Helper()
		sess := newSession()
		sess.Subject = subject
		sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
		sess.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
		r := fosite.NewRequest()
		r.Client = &client{id: clientID}
		r.Session = sess
		if err := s.CreateAccessTokenSession(tctx, "at-"+sig, r); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(tctx, "rt-"+sig, "at-"+sig, r); err != nil {
			t.Fatal(err)
		}
	}
	issue("alice", "web", "alice-web")
	issue("alice", "app", "alice-app")
	issue("bob", "web", "bob-web")
	live := func(sig string, want bool) {
		t.Helper()
		for _, kind := range []struct {
			get func(context.Context, string, fosite.Session) (fosite.Requester, error)
			sig string
		}{{s.GetAccessTokenSession, "at-" + sig}, {s.GetRefreshTokenSession, "rt-" + sig}} {
			_, err := kind.get(tctx, kind.sig, newSession())
			if got := err == nil; got != want || (!want && !errors.Is(err, fosite.ErrInactiveToken)) {
				t.Errorf("token %s: live=%v (%v), want %v", kind.sig, got, err, want)
			}
		}
	}

	n, err := p.RevokeUserTokens(ctx, tn.ID, "alice", "web")
	if err != nil || n != 2 {
		t.Fatalf("revoking alice's tokens of web: %d, %v; want 2", n, err)
	}
	live("alice-web", false)
	live("alice-app", true)
	live("bob-web", true)

	n, err = p.RevokeUserTokens(ctx, tn.ID, "alice", "")
	if err != nil || n != 2 {
		t.Fatalf("revoking all of alice's tokens: %d, %v; want 2", n, err)
	}
	live("alice-app", false)
	live("bob-web", true)

	if n, err := p.RevokeUserTokens(ctx, tn.ID, "", ""); err != nil || n != 0 {
		t.Fatalf("revoking without a user: %d, %v", n, err)
	}
	live("bob-web", true)
}

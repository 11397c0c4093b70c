package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// testTokensBySubject checks DeactivateBySubject: a user's tokens of one
// kind end, for every client or for one, and nobody else's.
func testTokensBySubject(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "globex").ID
	mk := func(tenant, kind, key, subject, client string, expires time.Time) {
		t.Helper()
		ok(t, s.CreateToken(ctx, store.Token{Kind: kind, Key: key, TenantID: tenant, Subject: subject, ClientID: client,
			Active: true, ExpiresAt: expires}), "CreateToken "+key)
	}
	mk(tid, "refresh", "r-alice-web", "alice", "web", hour())
	mk(tid, "refresh", "r-alice-app", "alice", "app", hour())
	mk(tid, "refresh", "r-bob-web", "bob", "web", hour())
	mk(tid, "access", "a-alice-web", "alice", "web", hour())
	mk(other, "refresh", "r-alice-web", "alice", "web", hour())
	mk(tid, "refresh", "r-alice-old", "alice", "web", time.Now().Add(-time.Minute))
	active := func(tenant, kind, key string, want bool) {
		t.Helper()
		tok, err := s.GetToken(ctx, tenant, kind, key)
		ok(t, err, "GetToken "+key)
		if tok.Active != want {
			t.Errorf("token %s/%s is active=%v, want %v", kind, key, tok.Active, want)
		}
	}

	n, err := s.DeactivateBySubject(ctx, tid, "refresh", "alice", "web")
	ok(t, err, "DeactivateBySubject of one client")
	if n != 1 {
		t.Errorf("DeactivateBySubject of one client: changed %d, want 1", n)
	}
	active(tid, "refresh", "r-alice-web", false)
	active(tid, "refresh", "r-alice-app", true)
	active(tid, "refresh", "r-bob-web", true)
	active(tid, "access", "a-alice-web", true)
	active(other, "refresh", "r-alice-web", true)

	n, err = s.DeactivateBySubject(ctx, tid, "refresh", "alice", "")
	ok(t, err, "DeactivateBySubject of every client")
	if n != 1 {
		t.Errorf("DeactivateBySubject of every client: changed %d, want 1 (one was inactive, one expired)", n)
	}
	active(tid, "refresh", "r-alice-app", false)
	active(tid, "refresh", "r-bob-web", true)
	active(tid, "access", "a-alice-web", true)
	active(other, "refresh", "r-alice-web", true)

	n, err = s.DeactivateBySubject(ctx, tid, "access", "alice", "")
	ok(t, err, "DeactivateBySubject of access tokens")
	if n != 1 {
		t.Errorf("DeactivateBySubject of access tokens: changed %d, want 1", n)
	}
	active(tid, "access", "a-alice-web", false)

	n, err = s.DeactivateBySubject(ctx, tid, "refresh", "", "")
	ok(t, err, "DeactivateBySubject without a subject")
	if n != 0 {
		t.Errorf("DeactivateBySubject without a subject: changed %d, want 0", n)
	}
	active(tid, "refresh", "r-bob-web", true)
	n, err = s.DeactivateBySubject(ctx, other, "refresh", "nobody", "")
	ok(t, err, "DeactivateBySubject of an unknown subject")
	if n != 0 {
		t.Errorf("DeactivateBySubject of an unknown subject: changed %d, want 0", n)
	}
}

package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	want := store.Token{
		Kind: "refresh", Key: "c2lnbmF0dXJl", TenantID: tid, RequestID: "req-1", ClientID: "web", Subject: "user-1",
		SessionID: "sess-1", Active: true, Data: []byte{0, 1, 2, 0xff, '{', '}'},
		CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("UTC+1", 3600)),
		ExpiresAt: time.Now().Add(24 * time.Hour),
	}
	ok(t, s.CreateToken(ctx, want), "CreateToken")
	got, err := s.GetToken(ctx, tid, "refresh", want.Key)
	ok(t, err, "GetToken")
	same(t, "GetToken", got, want)

	ok(t, s.CreateToken(ctx, store.Token{Kind: "access", Key: want.Key, TenantID: tid, Active: true}),
		"CreateToken of another kind with the same key")
	a, err := s.GetToken(ctx, tid, "access", want.Key)
	ok(t, err, "GetToken")
	if a.CreatedAt.IsZero() || time.Since(a.CreatedAt).Abs() > time.Minute {
		t.Errorf("CreateToken without CreatedAt: stored %v, want about now", a.CreatedAt)
	}
	is(t, s.CreateToken(ctx, store.Token{Kind: "refresh", Key: want.Key, TenantID: tid}), store.ErrConflict,
		"CreateToken with a taken kind and key")
	is(t, s.CreateToken(ctx, store.Token{Kind: "refresh", TenantID: tid}), store.ErrInvalid, "CreateToken without a key")
	is(t, s.CreateToken(ctx, store.Token{Key: "k", TenantID: tid}), store.ErrInvalid, "CreateToken without a kind")
	_, err = s.GetToken(ctx, tid, "code", want.Key)
	is(t, err, store.ErrNotFound, "GetToken of a missing kind")

	ok(t, s.DeactivateToken(ctx, tid, "refresh", want.Key), "DeactivateToken")
	got, err = s.GetToken(ctx, tid, "refresh", want.Key)
	ok(t, err, "GetToken after DeactivateToken")
	want.Active = false
	same(t, "GetToken after DeactivateToken", got, want)
	is(t, s.DeactivateToken(ctx, tid, "refresh", "nope"), store.ErrNotFound, "DeactivateToken of a missing key")

	// Three access tokens and a refresh token of one request, one access
	// token of another.
	mk := func(kind, key, req string, active bool) {
		t.Helper()
		ok(t, s.CreateToken(ctx, store.Token{Kind: kind, Key: key, TenantID: tid, RequestID: req, Active: active,
			ExpiresAt: hour()}), "CreateToken "+key)
	}
	mk("access", "a1", "req-2", true)
	mk("access", "a2", "req-2", true)
	mk("access", "a3", "req-2", false)
	mk("refresh", "r1", "req-2", true)
	mk("access", "b1", "req-3", true)
	n, err := s.DeactivateByRequestID(ctx, tid, "access", "req-2")
	ok(t, err, "DeactivateByRequestID")
	if n != 2 {
		t.Errorf("DeactivateByRequestID: changed %d, want 2 (one was already inactive)", n)
	}
	for key, active := range map[string]bool{"a1": false, "a2": false, "a3": false, "b1": true} {
		tok, err := s.GetToken(ctx, tid, "access", key)
		ok(t, err, "GetToken "+key)
		if tok.Active != active {
			t.Errorf("after DeactivateByRequestID token %s is active=%v, want %v", key, tok.Active, active)
		}
	}
	r1, err := s.GetToken(ctx, tid, "refresh", "r1")
	ok(t, err, "GetToken r1")
	if !r1.Active {
		t.Error("DeactivateByRequestID of access tokens deactivated a refresh token")
	}
	n, err = s.DeactivateByRequestID(ctx, tid, "access", "req-2")
	ok(t, err, "DeactivateByRequestID")
	if n != 0 {
		t.Errorf("DeactivateByRequestID twice: changed %d, want 0", n)
	}

	n, err = s.DeleteByRequestID(ctx, tid, "access", "req-2")
	ok(t, err, "DeleteByRequestID")
	if n != 3 {
		t.Errorf("DeleteByRequestID: removed %d, want 3", n)
	}
	_, err = s.GetToken(ctx, tid, "access", "a1")
	is(t, err, store.ErrNotFound, "GetToken after DeleteByRequestID")
	_, err = s.GetToken(ctx, tid, "refresh", "r1")
	ok(t, err, "GetToken of another kind after DeleteByRequestID")
	_, err = s.GetToken(ctx, tid, "access", "b1")
	ok(t, err, "GetToken of another request after DeleteByRequestID")

	ok(t, s.DeleteToken(ctx, tid, "refresh", "r1"), "DeleteToken")
	_, err = s.GetToken(ctx, tid, "refresh", "r1")
	is(t, err, store.ErrNotFound, "GetToken after DeleteToken")
	is(t, s.DeleteToken(ctx, tid, "refresh", "r1"), store.ErrNotFound, "DeleteToken twice")
}

func testTokenExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	mk := func(key string, expires time.Time) {
		t.Helper()
		ok(t, s.CreateToken(ctx, store.Token{Kind: "code", Key: key, TenantID: tid, RequestID: "req", Active: true,
			ExpiresAt: expires}), "CreateToken "+key)
	}
	mk("live", hour())
	mk("old", ago(2*time.Hour))
	mk("recent", ago(time.Minute))
	for _, key := range []string{"old", "recent"} {
		_, err := s.GetToken(ctx, tid, "code", key)
		is(t, err, store.ErrNotFound, "GetToken of an expired token")
		is(t, s.DeactivateToken(ctx, tid, "code", key), store.ErrNotFound, "DeactivateToken of an expired token")
	}
	is(t, s.CreateToken(ctx, store.Token{Kind: "code", Key: "old", TenantID: tid}), store.ErrConflict,
		"CreateToken over an expired token not yet purged")

	n, err := s.DeleteExpiredTokens(ctx, ago(30*time.Minute))
	ok(t, err, "DeleteExpiredTokens")
	if n != 1 {
		t.Errorf("DeleteExpiredTokens(30 minutes ago): removed %d, want 1", n)
	}
	n, err = s.DeleteExpiredTokens(ctx, time.Now())
	ok(t, err, "DeleteExpiredTokens")
	if n != 1 {
		t.Errorf("DeleteExpiredTokens(now): removed %d, want 1", n)
	}
	n, err = s.DeleteExpiredTokens(ctx, time.Now())
	ok(t, err, "DeleteExpiredTokens")
	if n != 0 {
		t.Errorf("DeleteExpiredTokens twice: removed %d, want 0", n)
	}
	_, err = s.GetToken(ctx, tid, "code", "live")
	ok(t, err, "GetToken of the live token after DeleteExpiredTokens")
	// The purged keys can be used again.
	ok(t, s.CreateToken(ctx, store.Token{Kind: "code", Key: "old", TenantID: tid, ExpiresAt: hour()}),
		"CreateToken over a purged token")
}

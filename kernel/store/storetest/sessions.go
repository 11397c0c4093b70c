package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	u, other := mkUser(t, s, tid, "alice"), mkUser(t, s, tid, "bob")
	want := store.Session{
		TenantID: tid, UserID: u.ID, ACR: "urn:mace:incommon:iap:silver", AMR: []string{"pwd", "otp"},
		AuthTime: time.Date(2029, 2, 3, 4, 5, 6, 789_012_345, time.FixedZone("UTC-3", -3*3600)),
		IP:       "2001:db8::1", UserAgent: "Mozilla/5.0",
		Data:      map[string]any{"idp": "local", "steps": []any{"password", "totp"}},
		ExpiresAt: time.Now().Add(2 * time.Hour),
	}
	got, err := s.CreateSession(ctx, want)
	ok(t, err, "CreateSession")
	if got.ID == "" || got.CreatedAt.IsZero() || time.Since(got.CreatedAt).Abs() > time.Minute {
		t.Fatalf("CreateSession did not set the id and a current CreatedAt: %+v", got)
	}
	want.ID, want.CreatedAt, want.LastSeenAt = got.ID, got.CreatedAt, got.LastSeenAt
	same(t, "CreateSession result", got, want)
	g, err := s.GetSession(ctx, tid, got.ID)
	ok(t, err, "GetSession")
	same(t, "GetSession", g, want)

	id := store.NewID()
	created := time.Now().Add(-time.Minute)
	kept, err := s.CreateSession(ctx, store.Session{ID: id, TenantID: tid, UserID: u.ID, CreatedAt: created,
		LastSeenAt: created, ExpiresAt: hour()})
	ok(t, err, "CreateSession with an id and times")
	if kept.ID != id {
		t.Errorf("CreateSession with id %q: got %q", id, kept.ID)
	}
	g, err = s.GetSession(ctx, tid, id)
	ok(t, err, "GetSession")
	same(t, "GetSession of a session with given times", g, kept)
	if g.CreatedAt.Sub(created).Abs() >= time.Millisecond {
		t.Errorf("CreateSession with CreatedAt %v: stored %v", created, g.CreatedAt)
	}
	_, err = s.CreateSession(ctx, store.Session{ID: id, TenantID: tid, UserID: u.ID, ExpiresAt: hour()})
	is(t, err, store.ErrConflict, "CreateSession with a taken id")
	_, err = s.CreateSession(ctx, store.Session{TenantID: tid, UserID: store.NewID(), ExpiresAt: hour()})
	is(t, err, store.ErrNotFound, "CreateSession for a missing user")
	_, err = s.CreateSession(ctx, store.Session{TenantID: tid, ExpiresAt: hour()})
	is(t, err, store.ErrInvalid, "CreateSession without a user")
	_, err = s.GetSession(ctx, tid, store.NewID())
	is(t, err, store.ErrNotFound, "GetSession of a missing id")

	seen, expires := time.Now().Add(time.Second), time.Now().Add(3*time.Hour)
	ok(t, s.TouchSession(ctx, tid, got.ID, seen, expires), "TouchSession")
	g, err = s.GetSession(ctx, tid, got.ID)
	ok(t, err, "GetSession after TouchSession")
	want.LastSeenAt, want.ExpiresAt = seen, expires
	same(t, "GetSession after TouchSession", g, want)
	is(t, s.TouchSession(ctx, tid, store.NewID(), seen, expires), store.ErrNotFound, "TouchSession of a missing id")

	ss, err := s.ListUserSessions(ctx, tid, u.ID)
	ok(t, err, "ListUserSessions")
	checkPaged(t, "ListUserSessions", ids(ss, func(s store.Session) string { return s.ID }), []string{got.ID, id})
	for _, x := range ss {
		if x.ID == got.ID {
			same(t, "ListUserSessions record", x, want)
		}
	}

	ok(t, s.DeleteSession(ctx, tid, id), "DeleteSession")
	_, err = s.GetSession(ctx, tid, id)
	is(t, err, store.ErrNotFound, "GetSession after DeleteSession")
	is(t, s.DeleteSession(ctx, tid, id), store.ErrNotFound, "DeleteSession twice")

	o1, o2 := mkSession(t, s, tid, other.ID, hour()), mkSession(t, s, tid, other.ID, hour())
	n, err := s.DeleteUserSessions(ctx, tid, other.ID)
	ok(t, err, "DeleteUserSessions")
	if n != 2 {
		t.Errorf("DeleteUserSessions: removed %d, want 2", n)
	}
	for _, x := range []store.Session{o1, o2} {
		_, err = s.GetSession(ctx, tid, x.ID)
		is(t, err, store.ErrNotFound, "GetSession after DeleteUserSessions")
	}
	n, err = s.DeleteUserSessions(ctx, tid, other.ID)
	ok(t, err, "DeleteUserSessions")
	if n != 0 {
		t.Errorf("DeleteUserSessions twice: removed %d, want 0", n)
	}
	_, err = s.GetSession(ctx, tid, got.ID)
	ok(t, err, "GetSession of another user's session after DeleteUserSessions")
}

func testSessionExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	u := mkUser(t, s, tid, "alice")
	live := mkSession(t, s, tid, u.ID, hour())
	old := mkSession(t, s, tid, u.ID, ago(2*time.Hour))
	recent := mkSession(t, s, tid, u.ID, ago(time.Minute))
	soon := mkSession(t, s, tid, u.ID, time.Now().Add(1500*time.Millisecond))

	for _, x := range []store.Session{old, recent} {
		_, err := s.GetSession(ctx, tid, x.ID)
		is(t, err, store.ErrNotFound, "GetSession of an expired session")
		is(t, s.TouchSession(ctx, tid, x.ID, time.Now(), hour()), store.ErrNotFound, "TouchSession of an expired session")
	}
	_, err := s.GetSession(ctx, tid, soon.ID)
	ok(t, err, "GetSession of a session that has not expired yet")
	ss, err := s.ListUserSessions(ctx, tid, u.ID)
	ok(t, err, "ListUserSessions")
	checkPaged(t, "ListUserSessions skips expired sessions", ids(ss, func(s store.Session) string { return s.ID }),
		[]string{live.ID, soon.ID})

	// Touching a session into the past ends it.
	ended := mkSession(t, s, tid, u.ID, hour())
	ok(t, s.TouchSession(ctx, tid, ended.ID, time.Now(), ago(time.Second)), "TouchSession into the past")
	_, err = s.GetSession(ctx, tid, ended.ID)
	is(t, err, store.ErrNotFound, "GetSession after TouchSession into the past")

	time.Sleep(time.Until(soon.ExpiresAt) + 100*time.Millisecond)
	_, err = s.GetSession(ctx, tid, soon.ID)
	is(t, err, store.ErrNotFound, "GetSession once the session expired")

	n, err := s.DeleteExpiredSessions(ctx, ago(30*time.Minute))
	ok(t, err, "DeleteExpiredSessions")
	if n != 1 {
		t.Errorf("DeleteExpiredSessions(30 minutes ago): removed %d, want 1 (only the one expired 2h ago)", n)
	}
	n, err = s.DeleteExpiredSessions(ctx, time.Now())
	ok(t, err, "DeleteExpiredSessions")
	if n != 3 {
		t.Errorf("DeleteExpiredSessions(now): removed %d, want 3", n)
	}
	n, err = s.DeleteExpiredSessions(ctx, time.Now())
	ok(t, err, "DeleteExpiredSessions")
	if n != 0 {
		t.Errorf("DeleteExpiredSessions twice: removed %d, want 0", n)
	}
	_, err = s.GetSession(ctx, tid, live.ID)
	ok(t, err, "GetSession of the live session after DeleteExpiredSessions")
}

package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	want := store.User{
		TenantID: tid, Username: "Alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA",
		Email: "Alice@Example.com", EmailVerified: true, PhoneNumber: "+15550100", DisplayName: "Alice A.",
		GivenName: "Alice", FamilyName: "Anders", Enabled: true,
		LockedUntil: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+5:30", 5*3600+1800)),
		Attributes:  map[string]any{"dept": "eng", "level": 3, "tags": []any{"a", "b"}, "manager": nil},
	}
	got, err := s.CreateUser(ctx, want)
	ok(t, err, "CreateUser")
	if got.ID == "" || got.Version != 1 || got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("CreateUser: got id %q version %d created %v updated %v, want an id, version 1 and equal times",
			got.ID, got.Version, got.CreatedAt, got.UpdatedAt)
	}
	want.ID, want.Version, want.CreatedAt, want.UpdatedAt = got.ID, 1, got.CreatedAt, got.UpdatedAt
	same(t, "CreateUser result", got, want)

	g, err := s.GetUser(ctx, tid, got.ID)
	ok(t, err, "GetUser")
	same(t, "GetUser", g, want)
	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		g, err := s.GetUserByUsername(ctx, tid, name)
		ok(t, err, "GetUserByUsername "+name)
		same(t, "GetUserByUsername "+name, g, want)
	}
	_, err = s.GetUserByUsername(ctx, tid, "alicia")
	is(t, err, store.ErrNotFound, "GetUserByUsername of a missing name")
	_, err = s.GetUser(ctx, tid, store.NewID())
	is(t, err, store.ErrNotFound, "GetUser of a missing id")

	for _, name := range []string{"Alice", "alice", "ALICE"} {
		_, err = s.CreateUser(ctx, store.User{TenantID: tid, Username: name})
		is(t, err, store.ErrConflict, "CreateUser with taken username "+name)
	}
	_, err = s.CreateUser(ctx, store.User{TenantID: tid})
	is(t, err, store.ErrInvalid, "CreateUser without a username")
	_, err = s.CreateUser(ctx, store.User{Username: "nobody"})
	is(t, err, store.ErrInvalid, "CreateUser without a tenant")

	id := store.NewID()
	bob, err := s.CreateUser(ctx, store.User{ID: id, TenantID: tid, Username: "bob", Email: "alice@example.COM"})
	ok(t, err, "CreateUser with an id")
	if bob.ID != id {
		t.Errorf("CreateUser with id %q: got id %q", id, bob.ID)
	}
	_, err = s.CreateUser(ctx, store.User{ID: id, TenantID: tid, Username: "bob2"})
	is(t, err, store.ErrConflict, "CreateUser with a taken id")
	carol := mkUser(t, s, tid, "carol")

	n, err := s.CountUsers(ctx, tid)
	ok(t, err, "CountUsers")
	if n != 3 {
		t.Errorf("CountUsers: got %d, want 3", n)
	}

	// Filters match case-insensitively.
	us, next, err := s.ListUsers(ctx, tid, store.UserQuery{Username: "ALICE"})
	ok(t, err, "ListUsers by username")
	if got := ids(us, userID); len(got) != 1 || got[0] != want.ID || next != "" {
		t.Errorf("ListUsers by username: got %q cursor %q, want only %q", got, next, want.ID)
	}
	us, _, err = s.ListUsers(ctx, tid, store.UserQuery{Email: "ALICE@example.com"})
	ok(t, err, "ListUsers by email")
	checkPaged(t, "ListUsers by email", ids(us, userID), []string{want.ID, bob.ID})
	us, _, err = s.ListUsers(ctx, tid, store.UserQuery{Username: "bob", Email: "alice@example.com"})
	ok(t, err, "ListUsers by username and email")
	checkPaged(t, "ListUsers by username and email", ids(us, userID), []string{bob.ID})
	us, _, err = s.ListUsers(ctx, tid, store.UserQuery{Email: "nobody@example.com"})
	ok(t, err, "ListUsers by a missing email")
	if len(us) != 0 {
		t.Errorf("ListUsers by a missing email: got %d users", len(us))
	}
	us, next, err = s.ListUsers(ctx, tid, store.UserQuery{})
	ok(t, err, "ListUsers")
	checkPaged(t, "ListUsers", ids(us, userID), []string{want.ID, bob.ID, carol.ID})
	if next != "" {
		t.Errorf("ListUsers of 3 users: got cursor %q, want none", next)
	}

	// Optimistic concurrency.
	upd := g
	upd.Username, upd.Email, upd.Enabled, upd.LockedUntil = "alice2", "", false, time.Time{}
	upd.Attributes = map[string]any{"dept": "ops"}
	v2, err := s.UpdateUser(ctx, upd)
	ok(t, err, "UpdateUser with the current version")
	if v2.Version != 2 {
		t.Errorf("UpdateUser: got version %d, want 2", v2.Version)
	}
	if !v2.CreatedAt.Equal(g.CreatedAt) || v2.UpdatedAt.Before(g.UpdatedAt) {
		t.Errorf("UpdateUser times: created %v updated %v, before created %v updated %v",
			v2.CreatedAt, v2.UpdatedAt, g.CreatedAt, g.UpdatedAt)
	}
	g, err = s.GetUser(ctx, tid, upd.ID)
	ok(t, err, "GetUser after UpdateUser")
	same(t, "GetUser after UpdateUser", g, v2)
	if g.Username != "alice2" || g.Attributes["dept"] != "ops" || !g.LockedUntil.IsZero() || g.Enabled {
		t.Errorf("UpdateUser did not replace the fields: %+v", g)
	}
	_, err = s.GetUserByUsername(ctx, tid, "alice")
	is(t, err, store.ErrNotFound, "GetUserByUsername of the old username")
	_, err = s.GetUserByUsername(ctx, tid, "ALICE2")
	ok(t, err, "GetUserByUsername of the new username")

	_, err = s.UpdateUser(ctx, upd) // still version 1
	is(t, err, store.ErrVersionMismatch, "UpdateUser with a stale version")
	upd.Version = 7
	_, err = s.UpdateUser(ctx, upd)
	is(t, err, store.ErrVersionMismatch, "UpdateUser with a future version")
	upd.Version = 0
	upd.Username = "ALICE2"
	v3, err := s.UpdateUser(ctx, upd)
	ok(t, err, "UpdateUser with version 0 and a new case of its own username")
	if v3.Version != 3 {
		t.Errorf("UpdateUser with version 0: got version %d, want 3", v3.Version)
	}
	upd.Username = "BOB"
	_, err = s.UpdateUser(ctx, upd)
	is(t, err, store.ErrConflict, "UpdateUser to a taken username")
	upd.Username = ""
	_, err = s.UpdateUser(ctx, upd)
	is(t, err, store.ErrInvalid, "UpdateUser to an empty username")
	for _, v := range []int64{0, 1} {
		_, err = s.UpdateUser(ctx, store.User{ID: store.NewID(), TenantID: tid, Username: "ghost", Version: v})
		is(t, err, store.ErrNotFound, fmt.Sprintf("UpdateUser of a missing id with version %d", v))
	}
	g, err = s.GetUser(ctx, tid, upd.ID)
	ok(t, err, "GetUser after failed updates")
	same(t, "GetUser after failed updates", g, v3)

	ok(t, s.DeleteUser(ctx, tid, carol.ID), "DeleteUser")
	_, err = s.GetUser(ctx, tid, carol.ID)
	is(t, err, store.ErrNotFound, "GetUser after DeleteUser")
	_, err = s.GetUserByUsername(ctx, tid, "carol")
	is(t, err, store.ErrNotFound, "GetUserByUsername after DeleteUser")
	is(t, s.DeleteUser(ctx, tid, carol.ID), store.ErrNotFound, "DeleteUser twice")
	mkUser(t, s, tid, "Carol") // the username is free again
	n, err = s.CountUsers(ctx, tid)
	ok(t, err, "CountUsers")
	if n != 3 {
		t.Errorf("CountUsers: got %d, want 3", n)
	}
}

func testUserPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "other").ID
	mkUser(t, s, other, "stranger")
	var want []string
	for i := range 250 {
		want = append(want, mkUser(t, s, tid, fmt.Sprintf("user-%03d", 249-i)).ID)
	}
	first, next, err := s.ListUsers(ctx, tid, store.UserQuery{})
	ok(t, err, "ListUsers with the default limit")
	if len(first) != store.DefaultPageLimit || next == "" {
		t.Errorf("ListUsers with the default limit: got %d users and cursor %q, want %d and a cursor",
			len(first), next, store.DefaultPageLimit)
	}
	for _, limit := range []int{0, 100, 7, 250, 1000, 5000} {
		keys := collectPages(t, limit, func(p store.Page) ([]store.User, string, error) {
			return s.ListUsers(ctx, tid, store.UserQuery{Page: p})
		}, userID)
		checkPaged(t, fmt.Sprintf("ListUsers by %d", limit), keys, want)
	}
	// The same cursor gives the same page: order is stable.
	a, _, err := s.ListUsers(ctx, tid, store.UserQuery{Page: store.Page{Limit: 10, After: next}})
	ok(t, err, "ListUsers")
	b, _, err := s.ListUsers(ctx, tid, store.UserQuery{Page: store.Page{Limit: 10, After: next}})
	ok(t, err, "ListUsers")
	if fmt.Sprint(ids(a, userID)) != fmt.Sprint(ids(b, userID)) || len(a) != 10 {
		t.Errorf("ListUsers twice with cursor %q: got %q then %q", next, ids(a, userID), ids(b, userID))
	}
	n, err := s.CountUsers(ctx, tid)
	ok(t, err, "CountUsers")
	if n != 250 {
		t.Errorf("CountUsers: got %d, want 250", n)
	}
}

func testUserCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	u1, u2 := mkUser(t, s, tid, "one"), mkUser(t, s, tid, "two")
	g := mkGroup(t, s, tid, "staff")
	r := mkRole(t, s, tid, "admin")
	for _, u := range []store.User{u1, u2} {
		ok(t, s.AddGroupMember(ctx, tid, g.ID, u.ID), "AddGroupMember")
		ok(t, s.AssignRole(ctx, tid, r.ID, store.SubjectUser, u.ID), "AssignRole")
		mkSession(t, s, tid, u.ID, hour())
		ok(t, s.PutConsent(ctx, store.Consent{TenantID: tid, UserID: u.ID, ClientID: "web", Scopes: []string{"openid"}}), "PutConsent")
	}
	s1, err := s.ListUserSessions(ctx, tid, u1.ID)
	ok(t, err, "ListUserSessions")
	if len(s1) != 1 {
		t.Fatalf("ListUserSessions: got %d sessions, want 1", len(s1))
	}

	ok(t, s.DeleteUser(ctx, tid, u1.ID), "DeleteUser")
	ms, _, err := s.ListGroupMembers(ctx, tid, g.ID, store.Page{})
	ok(t, err, "ListGroupMembers")
	checkPaged(t, "ListGroupMembers after DeleteUser", ids(ms, userID), []string{u2.ID})
	_, err = s.GetSession(ctx, tid, s1[0].ID)
	is(t, err, store.ErrNotFound, "GetSession of the deleted user's session")
	_, err = s.GetConsent(ctx, tid, u1.ID, "web")
	is(t, err, store.ErrNotFound, "GetConsent of the deleted user")

	// A new user with the same id inherits nothing: the rows are gone,
	// not hidden.
	_, err = s.CreateUser(ctx, store.User{ID: u1.ID, TenantID: tid, Username: "one"})
	ok(t, err, "CreateUser with the deleted user's id")
	gs, err := s.ListUserGroups(ctx, tid, u1.ID)
	ok(t, err, "ListUserGroups")
	rs, err := s.ListSubjectRoles(ctx, tid, store.SubjectUser, u1.ID)
	ok(t, err, "ListSubjectRoles")
	ss, err := s.ListUserSessions(ctx, tid, u1.ID)
	ok(t, err, "ListUserSessions")
	cs, err := s.ListUserConsents(ctx, tid, u1.ID)
	ok(t, err, "ListUserConsents")
	if len(gs)+len(rs)+len(ss)+len(cs) != 0 {
		t.Errorf("after DeleteUser the id still has %d groups, %d roles, %d sessions, %d consents",
			len(gs), len(rs), len(ss), len(cs))
	}

	// The other user keeps everything.
	gs, err = s.ListUserGroups(ctx, tid, u2.ID)
	ok(t, err, "ListUserGroups")
	rs, err = s.ListSubjectRoles(ctx, tid, store.SubjectUser, u2.ID)
	ok(t, err, "ListSubjectRoles")
	ss, err = s.ListUserSessions(ctx, tid, u2.ID)
	ok(t, err, "ListUserSessions")
	cs, err = s.ListUserConsents(ctx, tid, u2.ID)
	ok(t, err, "ListUserConsents")
	if len(gs) != 1 || len(rs) != 1 || len(ss) != 1 || len(cs) != 1 {
		t.Errorf("the other user has %d groups, %d roles, %d sessions, %d consents, want 1 of each",
			len(gs), len(rs), len(ss), len(cs))
	}
	_, err = s.GetRole(ctx, tid, r.ID)
	ok(t, err, "GetRole after DeleteUser")
	_, err = s.GetGroup(ctx, tid, g.ID)
	ok(t, err, "GetGroup after DeleteUser")
}

func testMissingTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := store.NewID()
	nf := func(err error, what string) {
		t.Helper()
		is(t, err, store.ErrNotFound, what+" in a missing tenant")
	}
	_, err := s.CreateUser(ctx, store.User{TenantID: tid, Username: "alice"})
	nf(err, "CreateUser")
	_, err = s.CreateGroup(ctx, store.Group{TenantID: tid, Name: "staff"})
	nf(err, "CreateGroup")
	_, err = s.CreateRole(ctx, store.Role{TenantID: tid, Name: "admin"})
	nf(err, "CreateRole")
	_, err = s.CreateClient(ctx, store.Client{TenantID: tid, ClientID: "web"})
	nf(err, "CreateClient")
	nf(s.CreateToken(ctx, store.Token{TenantID: tid, Kind: "code", Key: "k"}), "CreateToken")
	nf(s.CreateSigningKey(ctx, store.SigningKey{TenantID: tid, ID: "kid", Algorithm: "ES256", State: store.KeyNext}),
		"CreateSigningKey")
	_, err = s.CreateSession(ctx, store.Session{TenantID: tid, UserID: store.NewID()})
	nf(err, "CreateSession")
	nf(s.PutConsent(ctx, store.Consent{TenantID: tid, UserID: store.NewID(), ClientID: "web"}), "PutConsent")
}

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	zones := []*time.Location{time.UTC, time.FixedZone("UTC-7", -7*3600), time.FixedZone("UTC+13:45", 13*3600+45*60)}
	for i, loc := range zones {
		at := time.Date(2030, 12, 31, 23, 59, 59, 999_999_999, loc)
		u, err := s.CreateUser(ctx, store.User{TenantID: tid, Username: fmt.Sprint("user-", i), LockedUntil: at})
		ok(t, err, "CreateUser")
		g, err := s.GetUser(ctx, tid, u.ID)
		ok(t, err, "GetUser")
		if g.LockedUntil.Location() != time.UTC {
			t.Errorf("LockedUntil in %s: came back in %s, want UTC", loc, g.LockedUntil.Location())
		}
		if d := g.LockedUntil.Sub(at).Abs(); d >= time.Millisecond {
			t.Errorf("LockedUntil in %s: got %v, want %v (off by %v)", loc, g.LockedUntil, at, d)
		}
		for name, ts := range map[string]time.Time{"CreatedAt": g.CreatedAt, "UpdatedAt": g.UpdatedAt} {
			if ts.Location() != time.UTC || time.Since(ts).Abs() > time.Minute {
				t.Errorf("%s: got %v, want about now in UTC", name, ts)
			}
		}
	}
	// The zero time stays zero.
	u := mkUser(t, s, tid, "zero")
	g, err := s.GetUser(ctx, tid, u.ID)
	ok(t, err, "GetUser")
	if !g.LockedUntil.IsZero() {
		t.Errorf("a zero LockedUntil came back as %v", g.LockedUntil)
	}
}

func testConcurrentCreates(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	const n = 200
	var wg sync.WaitGroup
	users := make([]store.User, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			users[i], errs[i] = s.CreateUser(ctx, store.User{TenantID: tid, Username: fmt.Sprintf("user-%d", i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("concurrent CreateUser %d", i))
	}
	for _, u := range users {
		g, err := s.GetUser(ctx, tid, u.ID)
		ok(t, err, "GetUser after concurrent creates")
		same(t, "GetUser after concurrent creates", g, u)
	}
	count, err := s.CountUsers(ctx, tid)
	ok(t, err, "CountUsers")
	if count != n {
		t.Errorf("CountUsers after %d concurrent creates: got %d", n, count)
	}

	// Racing creates of one username, in different cases: one wins.
	const racers = 50
	errs = make([]error, racers)
	for i := range racers {
		name := []string{"dup", "DUP", "Dup", "dUp"}[i%4]
		wg.Go(func() {
			_, errs[i] = s.CreateUser(ctx, store.User{TenantID: tid, Username: name})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racing CreateUser: got %v, want nil or ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Errorf("racing CreateUser of one username: %d succeeded, want exactly 1", wins)
	}
	us, _, err := s.ListUsers(ctx, tid, store.UserQuery{Username: "dup"})
	ok(t, err, "ListUsers")
	if len(us) != 1 {
		t.Errorf("after racing creates, %d users are named dup, want 1", len(us))
	}
}

// testUserIDsPerTenant: a user id is unique per tenant only. Two tenants
// may hold a user with the same id (the shadows of one directory entry),
// each with its own memberships, roles and sessions; within one tenant the
// id stays unique.
func testUserIDsPerTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkTenant(t, s, "acme").ID, mkTenant(t, s, "globex").ID
	const id = "LDAP:5f0c2e1a-0000-4000-8000-000000000001"
	ua, err := s.CreateUser(ctx, store.User{ID: id, TenantID: a, Username: "LDAP/alice", Enabled: true})
	ok(t, err, "CreateUser in tenant A")
	ub, err := s.CreateUser(ctx, store.User{ID: id, TenantID: b, Username: "LDAP/alice", Enabled: true})
	ok(t, err, "CreateUser with the same id in tenant B")
	_, err = s.CreateUser(ctx, store.User{ID: id, TenantID: a, Username: "LDAP/other"})
	is(t, err, store.ErrConflict, "CreateUser with a taken id in the same tenant")

	ga, gb := mkGroup(t, s, a, "staff"), mkGroup(t, s, b, "staff")
	ra := mkRole(t, s, a, "admin")
	ok(t, s.AddGroupMember(ctx, a, ga.ID, id), "AddGroupMember in tenant A")
	ok(t, s.AddGroupMember(ctx, b, gb.ID, id), "AddGroupMember in tenant B")
	ok(t, s.AssignRole(ctx, a, ra.ID, store.SubjectUser, id), "AssignRole in tenant A")
	mkSession(t, s, b, id, hour())

	ua.DisplayName = "Alice of A"
	_, err = s.UpdateUser(ctx, ua)
	ok(t, err, "UpdateUser in tenant A")
	got, err := s.GetUser(ctx, b, id)
	ok(t, err, "GetUser in tenant B")
	if got.DisplayName != "" || got.Version != ub.Version {
		t.Errorf("updating tenant A's user changed tenant B's: %+v", got)
	}
	rs, err := s.ListEffectiveUserRoles(ctx, b, id)
	ok(t, err, "ListEffectiveUserRoles in tenant B")
	if len(rs) != 0 {
		t.Errorf("tenant B's user has tenant A's roles: %v", rs)
	}

	ok(t, s.DeleteUser(ctx, a, id), "DeleteUser in tenant A")
	_, err = s.GetUser(ctx, b, id)
	ok(t, err, "GetUser in tenant B after the delete in tenant A")
	ms, _, err := s.ListGroupMembers(ctx, b, gb.ID, store.Page{})
	ok(t, err, "ListGroupMembers in tenant B")
	checkPaged(t, "ListGroupMembers in tenant B after the delete in tenant A", ids(ms, userID), []string{id})
	ss, err := s.ListUserSessions(ctx, b, id)
	ok(t, err, "ListUserSessions in tenant B")
	if len(ss) != 1 {
		t.Errorf("tenant B's user has %d sessions after the delete in tenant A, want 1", len(ss))
	}
}

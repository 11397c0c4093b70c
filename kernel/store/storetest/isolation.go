package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// world is one tenant populated with a record of every kind.
type world struct {
	tenant  store.Tenant
	user    store.User
	group   store.Group
	role    store.Role
	client  store.Client
	session store.Session
	token   store.Token
	key     store.SigningKey
	consent store.Consent
}

const kvPlugin = "authn.test"

// populate creates a tenant with a record of every kind, the same names as
// any other populated tenant, and links between them.
func populate(t *testing.T, s store.Store, name string) world {
	t.Helper()
	ctx := t.Context()
	var w world
	var err error
	w.tenant = mkTenant(t, s, name)
	tid := w.tenant.ID
	w.user = mkUser(t, s, tid, "alice")
	w.group = mkGroup(t, s, tid, "staff")
	w.role = mkRole(t, s, tid, "admin")
	ok(t, s.AddGroupMember(ctx, tid, w.group.ID, w.user.ID), "AddGroupMember")
	ok(t, s.AssignRole(ctx, tid, w.role.ID, store.SubjectUser, w.user.ID), "AssignRole to user")
	ok(t, s.AssignRole(ctx, tid, w.role.ID, store.SubjectGroup, w.group.ID), "AssignRole to group")
	w.client, err = s.CreateClient(ctx, store.Client{TenantID: tid, ClientID: "web", Enabled: true})
	ok(t, err, "CreateClient")
	w.session = mkSession(t, s, tid, w.user.ID, hour())
	w.token = store.Token{Kind: "access", Key: "sig-1", TenantID: tid, RequestID: "req-1", ClientID: "web",
		Subject: w.user.ID, Active: true, ExpiresAt: hour()}
	ok(t, s.CreateToken(ctx, w.token), "CreateToken")
	w.key = store.SigningKey{ID: "kid-1", TenantID: tid, Algorithm: "ES256", State: store.KeyActive, PublicJWK: []byte(`{}`)}
	ok(t, s.CreateSigningKey(ctx, w.key), "CreateSigningKey")
	w.consent = store.Consent{TenantID: tid, UserID: w.user.ID, ClientID: "web", Scopes: []string{"openid"}}
	ok(t, s.PutConsent(ctx, w.consent), "PutConsent")
	ok(t, s.KVPut(ctx, kvPlugin, tid, store.KVEntry{Key: "k", Value: []byte(name)}), "KVPut")
	ok(t, s.AppendAudit(ctx, store.AuditEvent{TenantID: tid, Actor: "system", Action: "tenant.populate"}), "AppendAudit")
	return w
}

// checkIntact reports any record of w that can no longer be read, or whose
// links are gone.
func checkIntact(t *testing.T, s store.Store, w world) {
	t.Helper()
	ctx := t.Context()
	tid := w.tenant.ID
	_, err := s.GetTenant(ctx, tid)
	ok(t, err, "GetTenant")
	_, err = s.GetUser(ctx, tid, w.user.ID)
	ok(t, err, "GetUser")
	_, err = s.GetGroup(ctx, tid, w.group.ID)
	ok(t, err, "GetGroup")
	_, err = s.GetRole(ctx, tid, w.role.ID)
	ok(t, err, "GetRole")
	_, err = s.GetClient(ctx, tid, w.client.ID)
	ok(t, err, "GetClient")
	_, err = s.GetSession(ctx, tid, w.session.ID)
	ok(t, err, "GetSession")
	_, err = s.GetToken(ctx, tid, w.token.Kind, w.token.Key)
	ok(t, err, "GetToken")
	_, err = s.GetSigningKey(ctx, tid, w.key.ID)
	ok(t, err, "GetSigningKey")
	_, err = s.GetConsent(ctx, tid, w.user.ID, w.consent.ClientID)
	ok(t, err, "GetConsent")
	e, err := s.KVGet(ctx, kvPlugin, tid, "k")
	ok(t, err, "KVGet")
	if string(e.Value) != w.tenant.Name {
		t.Errorf("KVGet in tenant %s: got value %q", w.tenant.Name, e.Value)
	}
	gs, err := s.ListUserGroups(ctx, tid, w.user.ID)
	ok(t, err, "ListUserGroups")
	if len(gs) != 1 {
		t.Errorf("ListUserGroups in tenant %s: got %d groups, want 1", w.tenant.Name, len(gs))
	}
	rs, err := s.ListSubjectRoles(ctx, tid, store.SubjectGroup, w.group.ID)
	ok(t, err, "ListSubjectRoles")
	if len(rs) != 1 {
		t.Errorf("ListSubjectRoles of the group in tenant %s: got %d roles, want 1", w.tenant.Name, len(rs))
	}
	es, _, err := s.QueryAudit(ctx, store.AuditQuery{TenantID: tid})
	ok(t, err, "QueryAudit")
	if len(es) != 1 {
		t.Errorf("QueryAudit of tenant %s: got %d events, want 1", w.tenant.Name, len(es))
	}
}

func testTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := populate(t, s, "tenant-a")
	b := populate(t, s, "tenant-b")
	bid := b.tenant.ID
	nf := func(err error, what string) {
		t.Helper()
		is(t, err, store.ErrNotFound, what+" of tenant A's record through tenant B")
	}
	empty := func(n int, err error, what string) {
		t.Helper()
		ok(t, err, what)
		if n != 0 {
			t.Errorf("%s through tenant B: got %d of tenant A's records", what, n)
		}
	}

	_, err := s.GetUser(ctx, bid, a.user.ID)
	nf(err, "GetUser")
	u := a.user
	u.TenantID = bid
	_, err = s.UpdateUser(ctx, u)
	nf(err, "UpdateUser")
	nf(s.DeleteUser(ctx, bid, a.user.ID), "DeleteUser")

	_, err = s.GetGroup(ctx, bid, a.group.ID)
	nf(err, "GetGroup")
	g := a.group
	g.TenantID = bid
	g.Name = "renamed"
	_, err = s.UpdateGroup(ctx, g)
	nf(err, "UpdateGroup")
	nf(s.DeleteGroup(ctx, bid, a.group.ID), "DeleteGroup")
	ms, _, err := s.ListGroupMembers(ctx, bid, a.group.ID, store.Page{})
	empty(len(ms), err, "ListGroupMembers")
	gs, err := s.ListUserGroups(ctx, bid, a.user.ID)
	empty(len(gs), err, "ListUserGroups")

	_, err = s.GetRole(ctx, bid, a.role.ID)
	nf(err, "GetRole")
	r := a.role
	r.TenantID = bid
	r.Name = "renamed"
	_, err = s.UpdateRole(ctx, r)
	nf(err, "UpdateRole")
	nf(s.DeleteRole(ctx, bid, a.role.ID), "DeleteRole")
	rs, err := s.ListSubjectRoles(ctx, bid, store.SubjectUser, a.user.ID)
	empty(len(rs), err, "ListSubjectRoles")
	rs, err = s.ListEffectiveUserRoles(ctx, bid, a.user.ID)
	empty(len(rs), err, "ListEffectiveUserRoles")

	_, err = s.GetClient(ctx, bid, a.client.ID)
	nf(err, "GetClient")
	c := a.client
	c.TenantID = bid
	c.ClientID = "renamed"
	_, err = s.UpdateClient(ctx, c)
	nf(err, "UpdateClient")
	nf(s.DeleteClient(ctx, bid, a.client.ID), "DeleteClient")

	_, err = s.GetSession(ctx, bid, a.session.ID)
	nf(err, "GetSession")
	nf(s.TouchSession(ctx, bid, a.session.ID, time.Now(), hour()), "TouchSession")
	ss, err := s.ListUserSessions(ctx, bid, a.user.ID)
	empty(len(ss), err, "ListUserSessions")
	nf(s.DeleteSession(ctx, bid, a.session.ID), "DeleteSession")
	n, err := s.DeleteUserSessions(ctx, bid, a.user.ID)
	empty(n, err, "DeleteUserSessions")

	_, err = s.GetToken(ctx, bid, "access", "sig-1-a")
	nf(err, "GetToken of a key only tenant A has")
	nf(s.DeactivateToken(ctx, bid, "access", "sig-1-a"), "DeactivateToken of a key only tenant A has")
	nf(s.DeleteToken(ctx, bid, "access", "sig-1-a"), "DeleteToken of a key only tenant A has")
	ok(t, s.CreateToken(ctx, store.Token{Kind: "access", Key: "sig-1-a", TenantID: a.tenant.ID, RequestID: "req-a",
		Active: true, ExpiresAt: hour()}), "CreateToken")
	_, err = s.GetToken(ctx, bid, "access", "sig-1-a")
	nf(err, "GetToken")
	nf(s.DeactivateToken(ctx, bid, "access", "sig-1-a"), "DeactivateToken")
	nf(s.DeleteToken(ctx, bid, "access", "sig-1-a"), "DeleteToken")
	n, err = s.DeactivateByRequestID(ctx, bid, "access", "req-a")
	empty(n, err, "DeactivateByRequestID")
	n, err = s.DeleteByRequestID(ctx, bid, "access", "req-a")
	empty(n, err, "DeleteByRequestID")
	tok, err := s.GetToken(ctx, a.tenant.ID, "access", "sig-1-a")
	ok(t, err, "GetToken in tenant A")
	if !tok.Active {
		t.Error("DeactivateByRequestID through tenant B deactivated tenant A's token")
	}

	ok(t, s.CreateSigningKey(ctx, store.SigningKey{ID: "kid-a", TenantID: a.tenant.ID, Algorithm: "RS256",
		State: store.KeyNext}), "CreateSigningKey")
	_, err = s.GetSigningKey(ctx, bid, "kid-a")
	nf(err, "GetSigningKey")
	nf(s.RotateSigningKeys(ctx, bid, "kid-a", hour()), "RotateSigningKeys")
	ks, err := s.ListSigningKeys(ctx, bid)
	ok(t, err, "ListSigningKeys")
	if len(ks) != 1 || ks[0].TenantID != bid {
		t.Errorf("ListSigningKeys of tenant B: got %+v, want only its own key", ks)
	}

	ok(t, s.PutConsent(ctx, store.Consent{TenantID: a.tenant.ID, UserID: a.user.ID, ClientID: "only-a"}), "PutConsent")
	_, err = s.GetConsent(ctx, bid, a.user.ID, "only-a")
	nf(err, "GetConsent")
	cs, err := s.ListUserConsents(ctx, bid, a.user.ID)
	empty(len(cs), err, "ListUserConsents")
	nf(s.DeleteConsent(ctx, bid, a.user.ID, "only-a"), "DeleteConsent")

	ok(t, s.KVPut(ctx, kvPlugin, a.tenant.ID, store.KVEntry{Key: "only-a", Value: []byte("x")}), "KVPut")
	_, err = s.KVGet(ctx, kvPlugin, bid, "only-a")
	nf(err, "KVGet")
	nf(s.KVDelete(ctx, kvPlugin, bid, "only-a"), "KVDelete")
	kv, _, err := s.KVList(ctx, kvPlugin, bid, "only", store.Page{})
	empty(len(kv), err, "KVList")

	es, _, err := s.QueryAudit(ctx, store.AuditQuery{TenantID: bid})
	ok(t, err, "QueryAudit")
	for _, e := range es {
		if e.TenantID != bid {
			t.Errorf("QueryAudit of tenant B returned an event of tenant %s", e.TenantID)
		}
	}

	// Listings of tenant B hold only its own records.
	for _, l := range []struct {
		what string
		ids  []string
		want string
	}{
		{"ListUsers", listIDs(s.ListUsers(ctx, bid, store.UserQuery{})), b.user.ID},
		{"ListGroups", listIDs(s.ListGroups(ctx, bid, store.Page{})), b.group.ID},
		{"ListRoles", listIDs(s.ListRoles(ctx, bid, store.Page{})), b.role.ID},
		{"ListClients", listIDs(s.ListClients(ctx, bid, store.Page{})), b.client.ID},
	} {
		if len(l.ids) != 1 || l.ids[0] != l.want {
			t.Errorf("%s of tenant B: got %q, want only %q", l.what, l.ids, l.want)
		}
	}
	n, err = s.CountUsers(ctx, bid)
	ok(t, err, "CountUsers")
	if n != 1 {
		t.Errorf("CountUsers of tenant B: got %d, want 1", n)
	}

	// References to another tenant's records are refused.
	inv := func(err error, what string) {
		t.Helper()
		is(t, err, store.ErrInvalid, what+" naming tenant A's record in tenant B")
	}
	inv(s.AddGroupMember(ctx, bid, b.group.ID, a.user.ID), "AddGroupMember of a user")
	inv(s.AddGroupMember(ctx, bid, a.group.ID, b.user.ID), "AddGroupMember to a group")
	inv(s.AssignRole(ctx, bid, b.role.ID, store.SubjectUser, a.user.ID), "AssignRole to a user")
	inv(s.AssignRole(ctx, bid, b.role.ID, store.SubjectGroup, a.group.ID), "AssignRole to a group")
	inv(s.AssignRole(ctx, bid, a.role.ID, store.SubjectUser, b.user.ID), "AssignRole of a role")
	_, err = s.CreateSession(ctx, store.Session{TenantID: bid, UserID: a.user.ID, ExpiresAt: hour()})
	inv(err, "CreateSession for a user")
	inv(s.PutConsent(ctx, store.Consent{TenantID: bid, UserID: a.user.ID, ClientID: "web"}), "PutConsent for a user")

	// Nothing done through tenant B touched tenant A.
	checkIntact(t, s, a)
	checkIntact(t, s, b)
	_, err = s.GetConsent(ctx, a.tenant.ID, a.user.ID, "only-a")
	ok(t, err, "GetConsent in tenant A")
	_, err = s.KVGet(ctx, kvPlugin, a.tenant.ID, "only-a")
	ok(t, err, "KVGet in tenant A")
}

// listIDs returns the ids of a listing's records, or nil on error.
func listIDs[T any](items []T, _ string, err error) []string {
	if err != nil {
		return nil
	}
	return ids(items, func(it T) string {
		switch v := any(it).(type) {
		case store.User:
			return v.ID
		case store.Group:
			return v.ID
		case store.Role:
			return v.ID
		case store.Client:
			return v.ID
		}
		return ""
	})
}

func testTenantCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := populate(t, s, "tenant-a")
	b := populate(t, s, "tenant-b")
	aid := a.tenant.ID
	ok(t, s.DeleteTenant(ctx, aid), "DeleteTenant")

	nf := func(err error, what string) {
		t.Helper()
		is(t, err, store.ErrNotFound, what+" after DeleteTenant")
	}
	_, err := s.GetTenant(ctx, aid)
	nf(err, "GetTenant")
	_, err = s.GetUser(ctx, aid, a.user.ID)
	nf(err, "GetUser")
	_, err = s.GetGroup(ctx, aid, a.group.ID)
	nf(err, "GetGroup")
	_, err = s.GetRole(ctx, aid, a.role.ID)
	nf(err, "GetRole")
	_, err = s.GetClient(ctx, aid, a.client.ID)
	nf(err, "GetClient")
	_, err = s.GetSession(ctx, aid, a.session.ID)
	nf(err, "GetSession")
	_, err = s.GetToken(ctx, aid, a.token.Kind, a.token.Key)
	nf(err, "GetToken")
	_, err = s.GetSigningKey(ctx, aid, a.key.ID)
	nf(err, "GetSigningKey")
	_, err = s.GetConsent(ctx, aid, a.user.ID, a.consent.ClientID)
	nf(err, "GetConsent")
	_, err = s.KVGet(ctx, kvPlugin, aid, "k")
	nf(err, "KVGet")
	es, _, err := s.QueryAudit(ctx, store.AuditQuery{TenantID: aid})
	ok(t, err, "QueryAudit")
	if len(es) != 0 {
		t.Errorf("QueryAudit after DeleteTenant: got %d events of the deleted tenant", len(es))
	}
	n, err := s.CountUsers(ctx, aid)
	ok(t, err, "CountUsers")
	if n != 0 {
		t.Errorf("CountUsers after DeleteTenant: got %d", n)
	}
	ks, err := s.ListSigningKeys(ctx, aid)
	ok(t, err, "ListSigningKeys")
	if len(ks) != 0 {
		t.Errorf("ListSigningKeys after DeleteTenant: got %d keys", len(ks))
	}

	// The other tenant keeps everything, and the name can be used again
	// without meeting leftovers.
	checkIntact(t, s, b)
	again := populate(t, s, "tenant-a")
	checkIntact(t, s, again)
}

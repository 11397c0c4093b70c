package ldap_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/userstore/ldap"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// config returns the configuration the tests start from: StartTLS with
// the test CA, the service account, the people and groups of the seed.
func config(s *slapd) ldap.Store {
	return ldap.Store{
		URLs:         []string{s.url()},
		StartTLS:     true,
		TLS:          ldap.TLS{CAFile: s.caFile},
		BindDN:       serviceDN,
		BindPassword: servicePW,
		PageSize:     100,
		Users: ldap.Users{
			BaseDN: peopleDN,
			Attributes: ldap.UserAttributes{
				Extra: map[string]string{"department": "departmentNumber"},
			},
			State: ldap.AccountState{
				DisabledAttribute: "employeeType",
				DisabledValue:     "disabled",
				LockedAttribute:   "pwdAccountLockedTime",
			},
		},
		Groups: ldap.Groups{BaseDN: groupsDN},
	}
}

// load loads one userstore.ldap instance with cfg through a fresh
// registry, as the node does.
func load(tb testing.TB, cfg any) (*ldap.Store, error) {
	tb.Helper()
	return loadWith(tb, cfg, extension.LoadOptions{})
}

func loadWith(tb testing.TB, cfg any, opts extension.LoadOptions) (*ldap.Store, error) {
	tb.Helper()
	raw, ok := cfg.(string)
	if !ok {
		b, err := json.Marshal(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		raw = string(b)
	}
	r := extension.NewRegistry()
	r.Register(ldap.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: ldap.ID, Config: json.RawMessage(raw)},
	}, opts)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get(string(ldap.ID))
	st, ok := extension.As[*ldap.Store](inst)
	if !ok {
		tb.Fatalf("instance value is %T", inst.Value())
	}
	return st, nil
}

func mustLoad(tb testing.TB, cfg any) *ldap.Store {
	tb.Helper()
	st, err := load(tb, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestAuthenticateUser(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))
	tests := []struct {
		name, username, password string
		want                     string
	}{
		{"right password", "alice", "alice-password", abi.UserAuthenticated},
		{"username is case-insensitive", "ALICE", "alice-password", abi.UserAuthenticated},
		{"wrong password", "alice", "wrong", abi.UserInvalidCredentials},
		{"password of another user", "alice", "erin-password", abi.UserInvalidCredentials},
		{"unknown user", "mallory", "alice-password", abi.UserUnknown},
		{"empty password", "alice", "", abi.UserInvalidCredentials},
		{"empty password of unknown user", "mallory", "", abi.UserUnknown},
		{"empty username", "", "alice-password", abi.UserUnknown},
		{"over-long username", strings.Repeat("a", 300), "x", abi.UserUnknown},
		{"over-long password", "alice", strings.Repeat("p", 2000), abi.UserInvalidCredentials},
		{"disabled account", "bob", "bob-password", abi.UserDisabled},
		{"locked account", "carol", "carol-password", abi.UserLocked},
		{"injection: wildcard", "*", "alice-password", abi.UserUnknown},
		{"injection: prefix wildcard", "ali*", "alice-password", abi.UserUnknown},
		{"injection: closing the filter", "alice)(uid=*", "alice-password", abi.UserUnknown},
		{"injection: or-clause", "*)(|(uid=*", "alice-password", abi.UserUnknown},
		{"injection: NUL byte", "alice\x00", "alice-password", abi.UserUnknown},
		{"filter syntax in a real uid", "star*(x)", "star-password", abi.UserAuthenticated},
		{"filter syntax in a real uid, wrong password", "star*(x)", "alice-password", abi.UserInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := userstore.CheckAuthenticate(st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{
				Tenant: "acme", Username: tt.username, Password: tt.password,
			}))
			if err != nil {
				t.Fatalf("AuthenticateUser: %v", err)
			}
			if resp.Outcome != tt.want {
				t.Fatalf("outcome = %q, want %q", resp.Outcome, tt.want)
			}
			if tt.want == abi.UserAuthenticated {
				if resp.User == nil || resp.User.ID == "" || !strings.EqualFold(resp.User.Username, tt.username) {
					t.Fatalf("user = %+v", resp.User)
				}
			} else if resp.User != nil {
				t.Fatalf("a refused login returned a user: %+v", resp.User)
			}
		})
	}
}

// TestEmptyPasswordNeverBinds shows why the store refuses empty passwords
// itself: the directory accepts a bind with a DN and no password as an
// unauthenticated bind.
func TestEmptyPasswordNeverBinds(t *testing.T) {
	s := sharedSlapd(t)
	c, err := goldap.DialURL(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.UnauthenticatedBind("uid=alice," + peopleDN); err != nil {
		t.Fatalf("the directory refuses unauthenticated binds (%v); this test shows nothing", err)
	}
	st := mustLoad(t, config(s))
	resp, err := st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice"})
	if err != nil || resp.Outcome != abi.UserInvalidCredentials {
		t.Fatalf("empty password: %+v, %v", resp, err)
	}
}

func TestAuthenticatedUserMapping(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))
	resp, err := st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice", Password: "alice-password"})
	if err != nil || resp.User == nil {
		t.Fatalf("%+v, %v", resp, err)
	}
	u := *resp.User
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if !uuid.MatchString(u.ID) {
		t.Errorf("id %q is not an entryUUID", u.ID)
	}
	want := abi.User{
		ID: u.ID, Username: "alice", Email: "alice@example.org", PhoneNumber: "+15551230000",
		DisplayName: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell", Enabled: true,
		Attributes: map[string]any{"department": "engineering"},
	}
	if !jsonEqual(u, want) {
		t.Fatalf("user = %s\nwant   %s", mustJSON(u), mustJSON(want))
	}
	got, err := st.GetUser(ctxT(t), abi.GetUserRequest{ID: u.ID})
	if err != nil || !jsonEqual(got, want) {
		t.Fatalf("GetUser = %s, %v", mustJSON(got), err)
	}
}

func TestGetUser(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))
	for _, id := range []string{"", "00000000-0000-0000-0000-000000000000", "*", "x)(entryUUID=*", strings.Repeat("z", 500)} {
		_, err := st.GetUser(ctxT(t), abi.GetUserRequest{ID: id})
		if !errors.Is(err, userstore.ErrNotFound) {
			t.Errorf("GetUser(%q) = %v, want not found", id, err)
		}
	}
}

func TestFindUsers(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))
	tests := []struct {
		name string
		req  abi.FindUsersRequest
		want []string // usernames
	}{
		{"by username", abi.FindUsersRequest{Username: "alice"}, []string{"alice"}},
		{"by username, other case", abi.FindUsersRequest{Username: "Erin"}, []string{"erin"}},
		{"by email", abi.FindUsersRequest{Email: "BOB@example.org"}, []string{"bob"}},
		{"by username and email", abi.FindUsersRequest{Username: "alice", Email: "bob@example.org"}, nil},
		{"by mapped attribute", abi.FindUsersRequest{Attributes: map[string]string{"department": "engineering"}, Limit: 10},
			[]string{"alice", "bob", "carol", "erin", "star*(x)"}},
		{"by unmapped attribute", abi.FindUsersRequest{Attributes: map[string]string{"shoe_size": "42"}}, nil},
		{"wildcard is literal", abi.FindUsersRequest{Username: "*"}, nil},
		{"injection is literal", abi.FindUsersRequest{Username: "alice)(|(uid=*"}, nil},
		{"filter syntax in a real uid", abi.FindUsersRequest{Username: "star*(x)"}, []string{"star*(x)"}},
		{"unknown", abi.FindUsersRequest{Username: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := st.FindUsers(ctxT(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range resp.Users {
				got = append(got, u.Username)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || resp.Next != "" {
				t.Fatalf("users = %q next %q, want %q", got, resp.Next, tt.want)
			}
		})
	}
	for _, bad := range []abi.FindUsersRequest{
		{Limit: -1}, {Cursor: "nonsense"}, {Cursor: "bzA"}, {Cursor: strings.Repeat("A", 100)},
		{Username: strings.Repeat("a", 5000)}, {Attributes: map[string]string{"department": strings.Repeat("a", 5000)}},
	} {
		_, err := st.FindUsers(ctxT(t), bad)
		if fault.CodeOf(err) != fault.CodeInvalidRequest {
			t.Errorf("FindUsers(%+v) = %v, want invalid_request", bad, err)
		}
	}
}

// TestPaging lists every user of a directory whose size limit (500) is
// below the number of users: only RFC 2696 paging gets them all.
func TestPaging(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))

	// The service account cannot read them in one search.
	c, err := goldap.DialURL(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Bind(serviceDN, servicePW); err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(goldap.NewSearchRequest(peopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil))
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("an unpaged search of every user = %v, want the size limit exceeded", err)
	}

	for _, limit := range []int{1000, 333} {
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			resp, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			pages++
			if len(resp.Users) > limit {
				t.Fatalf("page %d has %d users, limit %d", pages, len(resp.Users), limit)
			}
			for _, u := range resp.Users {
				if seen[u.ID] {
					t.Fatalf("user %s listed twice", u.Username)
				}
				seen[u.ID] = true
			}
			if resp.Next == "" {
				break
			}
			cursor = resp.Next
		}
		want := bulkUsers + len(namedUsers)
		if len(seen) != want {
			t.Fatalf("limit %d: listed %d users in %d pages, want %d", limit, len(seen), pages, want)
		}
		if wantPages := (want + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
}

func TestListGroups(t *testing.T) {
	s := sharedSlapd(t)
	member := config(s)
	memberOf := config(s)
	memberOf.Groups.Membership = ldap.MembershipMemberOf
	for name, cfg := range map[string]ldap.Store{"member": member, "member_of": memberOf} {
		t.Run(name, func(t *testing.T) {
			st := mustLoad(t, cfg)
			ids := map[string]string{}
			for _, u := range []string{"alice", "bob", "carol", "erin"} {
				resp, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: u})
				if err != nil || len(resp.Users) != 1 {
					t.Fatalf("finding %s: %+v, %v", u, resp, err)
				}
				ids[u] = resp.Users[0].ID
			}
			tests := []struct {
				user string
				want []string
			}{
				{"alice", []string{"admins", "staff"}},
				{"bob", []string{"staff"}},
				{"carol", nil},
				{"erin", []string{"auditors", "staff"}},
			}
			for _, tt := range tests {
				resp, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{UserID: ids[tt.user]})
				if err != nil {
					t.Fatalf("%s: %v", tt.user, err)
				}
				if got := groupNames(resp.Groups); strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("groups of %s = %q, want %q", tt.user, got, tt.want)
				}
			}
			// Paging one user's groups.
			p1, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{UserID: ids["alice"], Limit: 1})
			if err != nil || len(p1.Groups) != 1 || p1.Next == "" {
				t.Fatalf("first page: %+v, %v", p1, err)
			}
			p2, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{UserID: ids["alice"], Limit: 1, Cursor: p1.Next})
			if err != nil || len(p2.Groups) != 1 || p2.Next != "" || p2.Groups[0].Name != "staff" {
				t.Fatalf("second page: %+v, %v", p2, err)
			}
			_, err = st.ListGroups(ctxT(t), abi.ListGroupsRequest{UserID: "00000000-0000-0000-0000-000000000000"})
			if !errors.Is(err, userstore.ErrNotFound) {
				t.Fatalf("groups of an unknown user: %v", err)
			}
		})
	}
	st := mustLoad(t, member)
	all, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{Limit: 2})
	if err != nil || len(all.Groups) != 2 || all.Next == "" {
		t.Fatalf("all groups, page 1: %+v, %v", all, err)
	}
	rest, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{Limit: 2, Cursor: all.Next})
	if err != nil || len(rest.Groups) != 1 || rest.Next != "" {
		t.Fatalf("all groups, page 2: %+v, %v", rest, err)
	}
	for _, g := range append(all.Groups, rest.Groups...) {
		if g.ID == "" || g.Description == "" {
			t.Errorf("group %+v lacks an id or description", g)
		}
	}
}

func groupNames(gs []abi.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s)) // mode defaults to read_only
	alice, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"})
	if err != nil || len(alice.Users) != 1 {
		t.Fatal(alice, err)
	}
	writes := map[string]func() error{
		"create": func() error {
			_, err := st.CreateUser(ctxT(t), abi.CreateUserRequest{User: abi.User{Username: "zed", Enabled: true}, Password: "pw"})
			return err
		},
		"update": func() error {
			u := alice.Users[0]
			u.Email = "changed@example.org"
			_, err := st.UpdateUser(ctxT(t), abi.UpdateUserRequest{User: u})
			return err
		},
		"delete": func() error {
			return st.DeleteUser(ctxT(t), abi.DeleteUserRequest{ID: alice.Users[0].ID})
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			err := write()
			if !errors.Is(err, userstore.ErrReadOnly) || fault.CodeOf(err) != fault.CodeUnsupported {
				t.Fatalf("err = %v, want ErrReadOnly", err)
			}
			if msg := fault.From(err).Message; !strings.Contains(msg, "read-only") || !strings.Contains(msg, `"mode": "read_write"`) {
				t.Fatalf("message %q does not say the store is read-only and how to change it", msg)
			}
		})
	}
	got, err := st.GetUser(ctxT(t), abi.GetUserRequest{ID: alice.Users[0].ID})
	if err != nil || got.Email != "alice@example.org" {
		t.Fatalf("alice changed: %+v, %v", got, err)
	}
}

func TestReadWrite(t *testing.T) {
	s := ownSlapd(t)
	cfg := config(s)
	cfg.Mode = "read_write"
	st := mustLoad(t, cfg)
	ctx := ctxT(t)

	created, err := st.CreateUser(ctx, abi.CreateUserRequest{
		User: abi.User{
			Username: "dave", Email: "dave@example.org", DisplayName: "Dave Dee", FamilyName: "Dee", GivenName: "Dave",
			Enabled: true, Attributes: map[string]any{"department": []any{"ops", "security"}},
		},
		Password: "dave-password-1",
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if created.ID == "" || created.Username != "dave" || !jsonEqual(created.Attributes["department"], []any{"ops", "security"}) {
		t.Fatalf("created = %s", mustJSON(created))
	}
	login := func(user, pw string) string {
		t.Helper()
		resp, err := st.AuthenticateUser(ctx, abi.AuthenticateUserRequest{Username: user, Password: pw})
		if err != nil {
			t.Fatalf("AuthenticateUser(%s): %v", user, err)
		}
		return resp.Outcome
	}
	if got := login("dave", "dave-password-1"); got != abi.UserAuthenticated {
		t.Fatalf("login with the initial password: %s", got)
	}
	// The server stored a hash, not the password (RFC 3062 operation).
	admin, err := s.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	res, err := admin.Search(goldap.NewSearchRequest("uid=dave,"+peopleDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"userPassword"}, nil))
	if err != nil || len(res.Entries) != 1 || !strings.HasPrefix(res.Entries[0].GetAttributeValue("userPassword"), "{SSHA}") {
		t.Fatalf("stored password: %+v, %v", res, err)
	}

	t.Run("conflict", func(t *testing.T) {
		_, err := st.CreateUser(ctx, abi.CreateUserRequest{User: abi.User{Username: "dave", FamilyName: "Other", DisplayName: "Other", Enabled: true}})
		if !errors.Is(err, userstore.ErrConflict) {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			req  abi.CreateUserRequest
			want fault.Code
		}{
			{"id chosen by the caller", abi.CreateUserRequest{User: abi.User{ID: "x", Username: "x1", FamilyName: "X", DisplayName: "X", Enabled: true}}, fault.CodeInvalidRequest},
			{"no username", abi.CreateUserRequest{User: abi.User{FamilyName: "X", Enabled: true}}, fault.CodeInvalidRequest},
			{"unmapped attribute", abi.CreateUserRequest{User: abi.User{Username: "x2", FamilyName: "X", DisplayName: "X", Enabled: true, Attributes: map[string]any{"shoe_size": "42"}}}, fault.CodeInvalidRequest},
			{"nested attribute", abi.CreateUserRequest{User: abi.User{Username: "x3", FamilyName: "X", DisplayName: "X", Enabled: true, Attributes: map[string]any{"department": map[string]any{"a": 1}}}}, fault.CodeInvalidRequest},
			{"missing required sn", abi.CreateUserRequest{User: abi.User{Username: "x4", DisplayName: "X", Enabled: true}}, fault.CodeInvalidRequest},
			{"DN syntax in the username", abi.CreateUserRequest{User: abi.User{Username: "x5,ou=evil", FamilyName: "X", DisplayName: "X", Enabled: true}}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u, err := st.CreateUser(ctx, tt.req)
				if tt.want == "" {
					// Escaped into one RDN value, the entry lands under people.
					if err != nil {
						t.Fatalf("CreateUser: %v", err)
					}
					if got, err := st.GetUser(ctx, abi.GetUserRequest{ID: u.ID}); err != nil || got.Username != tt.req.User.Username {
						t.Fatalf("GetUser: %+v, %v", got, err)
					}
					return
				}
				if fault.CodeOf(err) != tt.want {
					t.Fatalf("err = %v, want %s", err, tt.want)
				}
			})
		}
	})

	t.Run("update", func(t *testing.T) {
		u := created
		u.Username = "david"
		u.Email = "david@example.org"
		u.PhoneNumber = "+15559990000"
		u.Attributes = map[string]any{"department": "platform"}
		updated, err := st.UpdateUser(ctx, abi.UpdateUserRequest{User: u, Password: "dave-password-2"})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		if updated.ID != created.ID || updated.Username != "david" || updated.Email != "david@example.org" ||
			updated.PhoneNumber != "+15559990000" || updated.Attributes["department"] != "platform" {
			t.Fatalf("updated = %s", mustJSON(updated))
		}
		if got := login("dave", "dave-password-1"); got != abi.UserUnknown {
			t.Fatalf("the old username still logs in: %s", got)
		}
		if got := login("david", "dave-password-1"); got != abi.UserInvalidCredentials {
			t.Fatalf("the old password still works: %s", got)
		}
		if got := login("david", "dave-password-2"); got != abi.UserAuthenticated {
			t.Fatalf("the new password does not work: %s", got)
		}
		// Disable through the mapped state.
		updated.Enabled = false
		updated.Attributes = nil
		if _, err := st.UpdateUser(ctx, abi.UpdateUserRequest{User: updated}); err != nil {
			t.Fatal(err)
		}
		if got := login("david", "dave-password-2"); got != abi.UserDisabled {
			t.Fatalf("login of a disabled user: %s", got)
		}
		got, err := st.GetUser(ctx, abi.GetUserRequest{ID: created.ID})
		if err != nil || got.Enabled || got.Attributes != nil {
			t.Fatalf("after disabling: %s, %v", mustJSON(got), err)
		}
		// A stale version, an unknown user.
		got.Version = 3
		if _, err := st.UpdateUser(ctx, abi.UpdateUserRequest{User: got}); !errors.Is(err, userstore.ErrVersionMismatch) {
			t.Fatalf("update with a version: %v", err)
		}
		got.Version, got.ID = 0, "00000000-0000-0000-0000-000000000000"
		if _, err := st.UpdateUser(ctx, abi.UpdateUserRequest{User: got}); !errors.Is(err, userstore.ErrNotFound) {
			t.Fatalf("update of an unknown user: %v", err)
		}
	})

	t.Run("rename onto a taken name changes nothing", func(t *testing.T) {
		u, err := st.GetUser(ctx, abi.GetUserRequest{ID: created.ID})
		if err != nil {
			t.Fatal(err)
		}
		u.Username, u.Email = "alice", "new@example.org"
		if _, err := st.UpdateUser(ctx, abi.UpdateUserRequest{User: u}); !errors.Is(err, userstore.ErrConflict) {
			t.Fatalf("err = %v, want conflict", err)
		}
		got, err := st.GetUser(ctx, abi.GetUserRequest{ID: created.ID})
		if err != nil || got.Username != "david" || got.Email != "david@example.org" {
			t.Fatalf("after a refused rename: %s, %v", mustJSON(got), err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := st.DeleteUser(ctx, abi.DeleteUserRequest{ID: created.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetUser(ctx, abi.GetUserRequest{ID: created.ID}); !errors.Is(err, userstore.ErrNotFound) {
			t.Fatalf("GetUser after delete: %v", err)
		}
		if err := st.DeleteUser(ctx, abi.DeleteUserRequest{ID: created.ID}); !errors.Is(err, userstore.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

// TestPoolRecoversAfterRestart restarts the directory under a store with
// warm pools: the calls fail while it is down, with an error rather than
// an outcome, and succeed again once it is back, without a reload.
func TestPoolRecoversAfterRestart(t *testing.T) {
	s := ownSlapd(t)
	cfg := config(s)
	cfg.DialTimeoutMillis = 1000
	st := mustLoad(t, cfg)
	login := func() (abi.AuthenticateUserResponse, error) {
		return st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice", Password: "alice-password"})
	}
	// Warm both pools with several connections.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if resp, err := login(); err != nil || resp.Outcome != abi.UserAuthenticated {
				t.Errorf("before the restart: %+v, %v", resp, err)
			}
		})
	}
	wg.Wait()

	s.stop()
	if resp, err := login(); fault.CodeOf(err) != fault.CodeUnavailable {
		t.Fatalf("while down: %+v, %v; want unavailable", resp, err)
	}
	if err := st.Health(ctxT(t)); err == nil {
		t.Fatal("Health is nil while the directory is down")
	}

	s.restart(t)
	for i := range 8 {
		if resp, err := login(); err != nil || resp.Outcome != abi.UserAuthenticated {
			t.Fatalf("login %d after the restart: %+v, %v", i, resp, err)
		}
	}
	if err := st.Health(ctxT(t)); err != nil {
		t.Fatalf("Health after the restart: %v", err)
	}
}

// TestPoolIsBounded runs many logins at once through pools of two
// connections: all succeed, and no more than two connections per pool are
// ever open.
func TestPoolIsBounded(t *testing.T) {
	s := sharedSlapd(t)
	cfg := config(s)
	cfg.Pool.Size = 2
	reg := prometheus.NewRegistry()
	st, err := loadWith(t, cfg, extension.LoadOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			user, pw, want := "alice", "alice-password", abi.UserAuthenticated
			if i%2 == 1 {
				user, pw, want = "erin", "wrong", abi.UserInvalidCredentials
			}
			resp, err := st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: user, Password: pw})
			if err != nil || resp.Outcome != want {
				t.Errorf("login %d: %+v, %v", i, resp, err)
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "pool" || l.GetName() == "outcome" || l.GetName() == "result" {
					key += "/" + l.GetValue()
				}
			}
			switch {
			case m.Gauge != nil:
				found[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				found[key] = m.GetCounter().GetValue()
			}
		}
	}
	for _, p := range []string{"service", "auth"} {
		open, dials := found["latch_userstore_ldap_connections_open/"+p], found["latch_userstore_ldap_dials_total/"+p+"/ok"]
		if open < 1 || open > 2 || dials > 2 {
			t.Errorf("pool %s: %v open, %v dialled; want 1 to 2", p, open, dials)
		}
	}
	if found["latch_userstore_ldap_authentications_total/authenticated"] != 16 || found["latch_userstore_ldap_authentications_total/invalid_credentials"] != 16 {
		t.Errorf("authentication counts: %v", found)
	}
}

// TestTimeout freezes the directory (SIGSTOP): calls end by the
// configured timeout with a timeout fault, and work again once it thaws.
func TestTimeout(t *testing.T) {
	s := ownSlapd(t)
	cfg := config(s)
	cfg.TimeoutMillis = 300
	cfg.DialTimeoutMillis = 300
	st := mustLoad(t, cfg)
	if _, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.signal(t, syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			s.signal(t, syscall.SIGCONT)
		}
	}()
	_, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"})
	if code := fault.CodeOf(err); code != fault.CodeTimeout {
		t.Fatalf("search of a frozen directory: %v (code %s), want timeout", err, code)
	}
	_, err = st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice", Password: "alice-password"})
	if code := fault.CodeOf(err); code != fault.CodeTimeout && code != fault.CodeUnavailable {
		t.Fatalf("login at a frozen directory: %v (code %s), want timeout or unavailable", err, code)
	}
	s.signal(t, syscall.SIGCONT)
	thawed = true
	resp, err := st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice", Password: "alice-password"})
	if err != nil || resp.Outcome != abi.UserAuthenticated {
		t.Fatalf("after thawing: %+v, %v", resp, err)
	}
}

// TestRestartWhileIdle restarts the directory while the pooled
// connections sit idle: the first call after it must not fail.
func TestRestartWhileIdle(t *testing.T) {
	s := ownSlapd(t)
	st := mustLoad(t, config(s))
	if _, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.restart(t)
	resp, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"})
	if err != nil || len(resp.Users) != 1 {
		t.Fatalf("first search after the restart: %+v, %v", resp, err)
	}
}

func TestTLS(t *testing.T) {
	s := sharedSlapd(t)
	_, _, otherCA, err := newCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCAFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCAFile, otherCA, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(*ldap.Store)
		wantOK bool
	}{
		{"StartTLS with the right CA", func(*ldap.Store) {}, true},
		{"LDAPS with the right CA", func(c *ldap.Store) { c.URLs, c.StartTLS = []string{s.tlsURL()}, false }, true},
		{"StartTLS with a server name in the certificate", func(c *ldap.Store) { c.TLS.ServerName = "localhost" }, true},
		{"StartTLS with another CA", func(c *ldap.Store) { c.TLS.CAFile = otherCAFile }, false},
		{"LDAPS with another CA", func(c *ldap.Store) { c.URLs, c.StartTLS, c.TLS.CAFile = []string{s.tlsURL()}, false, otherCAFile }, false},
		{"StartTLS with a name not in the certificate", func(c *ldap.Store) { c.TLS.ServerName = "ldap.example.org" }, false},
		{"StartTLS with the system roots", func(c *ldap.Store) { c.TLS.CAFile = "" }, false},
		{"plain LDAP when allowed", func(c *ldap.Store) { c.StartTLS, c.AllowInsecure = false, true }, true},
		{"second URL when the first is down", func(c *ldap.Store) { c.URLs = []string{"ldap://127.0.0.1:1", s.url()} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(s)
			tt.edit(&cfg)
			st := mustLoad(t, cfg)
			resp, err := st.AuthenticateUser(ctxT(t), abi.AuthenticateUserRequest{Username: "alice", Password: "alice-password"})
			if tt.wantOK {
				if err != nil || resp.Outcome != abi.UserAuthenticated {
					t.Fatalf("%+v, %v", resp, err)
				}
				return
			}
			if fault.CodeOf(err) != fault.CodeUnavailable {
				t.Fatalf("%+v, %v; want unavailable", resp, err)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	s := sharedSlapd(t)
	st := mustLoad(t, config(s))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.FindUsers(ctx, abi.FindUsersRequest{Limit: 1000})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	// The store still works afterwards.
	if resp, err := st.FindUsers(ctxT(t), abi.FindUsersRequest{Username: "alice"}); err != nil || len(resp.Users) != 1 {
		t.Fatalf("%+v, %v", resp, err)
	}
}

func TestConfig(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"urls": []string{"ldaps://ldap.example.org"}, "users": map[string]any{"base_dn": peopleDN}}
	}
	tests := []struct {
		name string
		edit func(m map[string]any)
		want string // part of the error; "" for none
	}{
		{"minimal", func(map[string]any) {}, ""},
		{"only a mode", func(m map[string]any) { delete(m, "urls"); delete(m, "users"); m["mode"] = "read_write" }, "urls"},
		{"no urls", func(m map[string]any) { delete(m, "urls") }, "urls"},
		{"no users", func(m map[string]any) { delete(m, "users") }, "users"},
		{"unknown field", func(m map[string]any) { m["colour"] = "red" }, "colour"},
		{"http url", func(m map[string]any) { m["urls"] = []string{"http://x"} }, "urls"},
		{"plain ldap", func(m map[string]any) { m["urls"] = []string{"ldap://x"} }, "allow_insecure"},
		{"plain ldap allowed", func(m map[string]any) { m["urls"] = []string{"ldap://x"}; m["allow_insecure"] = true }, ""},
		{"starttls", func(m map[string]any) { m["urls"] = []string{"ldap://x"}; m["start_tls"] = true }, ""},
		{"starttls on ldaps", func(m map[string]any) { m["start_tls"] = true }, "start_tls"},
		{"bad filter", func(m map[string]any) { m["users"].(map[string]any)["filter"] = "(uid=a" }, "users.filter"},
		{"bad base", func(m map[string]any) { m["users"].(map[string]any)["base_dn"] = "not a dn" }, "base_dn"},
		{"attribute with filter syntax", func(m map[string]any) {
			m["users"].(map[string]any)["attributes"] = map[string]any{"username": "uid)(x"}
		}, "username"},
		{"bind dn without password", func(m map[string]any) { m["bind_dn"] = serviceDN }, "bind_password"},
		{"missing CA file", func(m map[string]any) { m["tls"] = map[string]any{"ca_file": "/nonexistent/ca.pem"} }, "ca_file"},
		{"bad mode", func(m map[string]any) { m["mode"] = "write" }, "mode"},
		{"guid ids", func(m map[string]any) {
			m["users"].(map[string]any)["attributes"] = map[string]any{"id": "objectGUID", "id_format": "guid"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.edit(m)
			_, err := load(t, m)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want an error about %s", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not name %s", err, tt.want)
			case tt.want != "" && fault.CodeOf(err) != fault.CodeInvalidRequest:
				t.Fatalf("error %v is not invalid_request", err)
			}
		})
	}
}

// TestREADMEExamples loads every JSON example of the README, and the
// instance configurations of its latch.yaml examples with the files they
// name made in a temporary folder.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(examples) < 4 {
		t.Fatalf("found %d JSON examples", len(examples))
	}
	for i, ex := range examples {
		if _, err := load(t, ex[1]); err != nil {
			t.Errorf("JSON example %d: %v\n%s", i+1, err, ex[1])
		}
	}

	for _, doc := range []string{"README.md", filepath.Join("..", "..", "..", "docs", "userstores.md")} {
		t.Run(filepath.Base(doc), func(t *testing.T) { loadYAMLExamples(t, doc) })
	}
}

// loadYAMLExamples loads the userstore.ldap instances of every latch.yaml
// example in the file, with the files under /etc/latch/ they name made in
// a temporary folder (a CA certificate for .pem, else a password).
func loadYAMLExamples(t *testing.T, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, _, caPEM, err := newCA("examples")
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = root.Close() }()
	for _, m := range regexp.MustCompile(`/etc/latch/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(string(b), -1) {
		content := []byte("secret\n")
		if strings.HasSuffix(m[1], ".pem") {
			content = caPEM
		}
		if err := root.WriteFile(m[1], content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yamls := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	loaded := 0
	for i, ex := range yamls {
		var doc struct {
			Extensions struct {
				Instances []struct {
					Module string         `yaml:"module"`
					Config map[string]any `yaml:"config"`
				} `yaml:"instances"`
			} `yaml:"extensions"`
		}
		if err := yaml.Unmarshal([]byte(strings.ReplaceAll(ex[1], "/etc/latch/", dir+"/")), &doc); err != nil {
			t.Fatalf("YAML example %d: %v", i+1, err)
		}
		for _, in := range doc.Extensions.Instances {
			if in.Module != string(ldap.ID) {
				continue
			}
			if _, err := load(t, in.Config); err != nil {
				t.Errorf("YAML example %d: %v", i+1, err)
			}
			loaded++
		}
	}
	if loaded == 0 {
		t.Fatalf("%s has no userstore.ldap example in latch.yaml form", file)
	}
}

// TestOff loads the module without configuration, as a node does when
// latch.yaml lists no instances: the instance knows no users.
func TestOff(t *testing.T) {
	for _, cfg := range []string{``, `{}`, `null`} {
		st := mustLoad(t, cfg)
		ctx := ctxT(t)
		if resp, err := st.AuthenticateUser(ctx, abi.AuthenticateUserRequest{Username: "alice", Password: "pw"}); err != nil || resp.Outcome != abi.UserUnknown {
			t.Errorf("%q: AuthenticateUser = %+v, %v", cfg, resp, err)
		}
		if resp, err := st.FindUsers(ctx, abi.FindUsersRequest{}); err != nil || len(resp.Users) != 0 || resp.Users == nil {
			t.Errorf("%q: FindUsers = %+v, %v", cfg, resp, err)
		}
		if _, err := st.GetUser(ctx, abi.GetUserRequest{ID: "x"}); !errors.Is(err, userstore.ErrNotFound) {
			t.Errorf("%q: GetUser = %v", cfg, err)
		}
		if resp, err := st.ListGroups(ctx, abi.ListGroupsRequest{}); err != nil || len(resp.Groups) != 0 {
			t.Errorf("%q: ListGroups = %+v, %v", cfg, resp, err)
		}
		if _, err := st.CreateUser(ctx, abi.CreateUserRequest{User: abi.User{Username: "x"}}); !errors.Is(err, userstore.ErrReadOnly) {
			t.Errorf("%q: CreateUser = %v", cfg, err)
		}
		if err := st.Health(ctx); err != nil {
			t.Errorf("%q: Health = %v", cfg, err)
		}
	}
}

func TestModuleInRegistry(t *testing.T) {
	m := ldap.Module()
	if m.ID != "userstore.ldap" || m.Kind != extension.KindUserStore || !extension.KindUserStore.ImplementedBy(m.New()) {
		t.Fatalf("module = %+v", m)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func jsonEqual(a, b any) bool { return mustJSON(a) == mustJSON(b) }

package ldap_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	authnpassword "github.com/latchid/latch/builtin/authn/password"
	claimsdialect "github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/builtin/userstore/ldap"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

const domainTenant = "acme"

// domains is a tenant with two user store domains: the local SQL store
// (primary) and a read-only LDAP directory (domain LDAP) after it, with
// the password authenticator wired to the router as the node wires it.
type domains struct {
	st     *sqlite.Store
	tid    string
	set    *extension.Instances
	dir    *router.Router
	authn  *authnpassword.Authenticator
	mapper *claimsdialect.Mapper
	locals map[string]store.User
}

func newDomains(t testing.TB, s *slapd, ldapCfg ldap.Store, localCfg string) *domains {
	t.Helper()
	ctx := ctxT(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: domainTenant, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	d := &domains{st: st, tid: tn.ID, locals: map[string]store.User{}}
	// The local alice shares her username with the directory's alice;
	// dave exists only locally.
	for _, name := range []string{"alice", "dave"} {
		h, err := hasher.Hash("local-" + name)
		if err != nil {
			t.Fatal(err)
		}
		u, err := st.CreateUser(ctx, store.User{TenantID: tn.ID, Username: name, Email: name + "@local.test", Enabled: true, PasswordHash: h})
		if err != nil {
			t.Fatal(err)
		}
		d.locals[name] = u
	}
	g, err := st.CreateGroup(ctx, store.Group{TenantID: tn.ID, Name: "operators"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddGroupMember(ctx, tn.ID, g.ID, d.locals["dave"].ID); err != nil {
		t.Fatal(err)
	}
	lc, err := json.Marshal(ldapCfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := extension.NewRegistry()
	reg.Register(local.Module())
	reg.Register(ldap.Module())
	reg.Register(authnpassword.Module())
	reg.Register(claimsdialect.Module())
	d.dir, err = router.New(func(tenant string) []*extension.Instance {
		return d.set.Enabled(tenant, extension.KindUserStore)
	}, router.Config{Domains: map[string]string{"corp": "LDAP"}})
	if err != nil {
		t.Fatal(err)
	}
	d.set, err = reg.Load(ctx, []extension.InstanceConfig{
		{Name: "local", Module: local.ID, Config: json.RawMessage(localCfg)},
		{Name: "corp", Module: ldap.ID, Config: lc},
		{Name: "password", Module: authnpassword.ID},
		{Name: "dialect", Module: claimsdialect.ID},
	}, extension.LoadOptions{
		Deps: map[string]any{
			local.DepStore: st, local.DepPasswordHasher: hasher,
			authnpassword.DepDirectory: d.dir,
			authnpassword.DepUserStores: authnpassword.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
				return d.set.Enabled(tenant, extension.KindUserStore)
			}),
		},
		Enablement: extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"local", "corp"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.set.Close(context.Background()) })
	inst, _ := d.set.Get("password")
	d.authn, _ = extension.As[*authnpassword.Authenticator](inst)
	inst, _ = d.set.Get("dialect")
	d.mapper, _ = extension.As[*claimsdialect.Mapper](inst)
	return d
}

// login runs the password login step as the login flow does.
func (d *domains) login(t *testing.T, username, pw string) abi.AuthenticateResponse {
	t.Helper()
	resp, err := d.authn.Authenticate(ctxT(t), abi.AuthenticateRequest{
		Tenant: domainTenant, Params: map[string][]string{"username": {username}, "password": {pw}},
	})
	if err != nil {
		t.Fatalf("login %q: %v", username, err)
	}
	return resp
}

func TestDomainsLogin(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	ctx := ctxT(t)

	ldapAlice, err := d.dir.View(func(m router.Member) bool { return m.Domain == "LDAP" }).
		FindUsers(ctx, domainTenant, abi.FindUsersRequest{Username: "LDAP/alice"})
	if err != nil || len(ldapAlice.Users) != 1 {
		t.Fatalf("finding LDAP/alice: %v %+v", err, ldapAlice)
	}
	ldapID := ldapAlice.Users[0].ID
	if !strings.HasPrefix(ldapID, "LDAP:") {
		t.Fatalf("LDAP id %q has no domain prefix", ldapID)
	}

	cases := []struct {
		name, username, password string
		outcome, subject, domain string
	}{
		{name: "plain alice is the first store's (local) alice", username: "alice", password: "local-alice",
			outcome: abi.OutcomeAuthenticated, subject: d.locals["alice"].ID, domain: router.PrimaryDomain},
		{name: "the directory's password does not reach past the first store that knows alice", username: "alice", password: "alice-password",
			outcome: abi.OutcomeNotAuthenticated},
		{name: "LDAP/alice goes to the directory only", username: "LDAP/alice", password: "alice-password",
			outcome: abi.OutcomeAuthenticated, subject: ldapID, domain: "LDAP"},
		{name: "the domain prefix is case-insensitive", username: "ldap/alice", password: "alice-password",
			outcome: abi.OutcomeAuthenticated, subject: ldapID, domain: "LDAP"},
		{name: "LDAP/alice with the local password is refused", username: "LDAP/alice", password: "local-alice",
			outcome: abi.OutcomeNotAuthenticated},
		{name: "plain erin falls through to the directory", username: "erin", password: "erin-password",
			outcome: abi.OutcomeAuthenticated, domain: "LDAP"},
		{name: "PRIMARY/erin asks the primary store only", username: "PRIMARY/erin", password: "erin-password",
			outcome: abi.OutcomeNotAuthenticated},
		{name: "LDAP/dave does not fall back to the local dave", username: "LDAP/dave", password: "local-dave",
			outcome: abi.OutcomeNotAuthenticated},
		{name: "PRIMARY/dave", username: "PRIMARY/dave", password: "local-dave",
			outcome: abi.OutcomeAuthenticated, subject: d.locals["dave"].ID, domain: router.PrimaryDomain},
		{name: "an unknown prefix is part of the username", username: "NOPE/alice", password: "alice-password",
			outcome: abi.OutcomeNotAuthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := d.login(t, tc.username, tc.password)
			if resp.Outcome != tc.outcome {
				t.Fatalf("outcome %q (%s), want %q", resp.Outcome, resp.Reason, tc.outcome)
			}
			if tc.outcome != abi.OutcomeAuthenticated {
				return
			}
			if tc.subject != "" && resp.Subject != tc.subject {
				t.Errorf("subject %q, want %q", resp.Subject, tc.subject)
			}
			if got := resp.Claims["user_store_domain"]; got != tc.domain {
				t.Errorf("user_store_domain %v, want %q", got, tc.domain)
			}
			// The subject leads back to the store that knows the user.
			m, u, err := d.dir.GetUser(ctxT(t), domainTenant, resp.Subject)
			if err != nil {
				t.Fatalf("getting the subject %q: %v", resp.Subject, err)
			}
			if m.Domain != tc.domain || u.ID != resp.Subject {
				t.Errorf("subject routes to %s user %q", m.Domain, u.ID)
			}
			if tc.domain == "LDAP" && !strings.HasPrefix(u.Username, "LDAP/") {
				t.Errorf("directory username %q has no domain prefix", u.Username)
			}
		})
	}
}

func TestDomainsListing(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	ctx := ctxT(t)

	// Every user of both stores, one small page at a time across the
	// boundary between the stores.
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		resp, err := d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Users) > 3 {
			t.Fatalf("page of %d users, limit 3", len(resp.Users))
		}
		for _, u := range resp.Users {
			names = append(names, u.Username)
		}
		if resp.Next == "" {
			break
		}
		cursor = resp.Next
	}
	slices.Sort(names)
	want := []string{"LDAP/alice", "LDAP/bob", "LDAP/carol", "LDAP/erin", "LDAP/star*(x)", "alice", "dave"}
	if !slices.Equal(names, want) {
		t.Fatalf("listed %v, want %v", names, want)
	}

	// A qualified username narrows to its store; email searches both.
	resp, err := d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Username: "LDAP/erin"})
	if err != nil || len(resp.Users) != 1 || resp.Users[0].Username != "LDAP/erin" {
		t.Fatalf("LDAP/erin: %v %+v", err, resp.Users)
	}
	resp, err = d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Username: "PRIMARY/erin"})
	if err != nil || len(resp.Users) != 0 {
		t.Fatalf("PRIMARY/erin: %v %+v", err, resp.Users)
	}
	resp, err = d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Username: "alice"})
	if err != nil || len(resp.Users) != 2 {
		t.Fatalf("alice in every store: %v %+v", err, resp.Users)
	}
	if _, err := d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Cursor: "9.x"}); fault.CodeOf(err) != fault.CodeInvalidRequest {
		t.Fatalf("a forged cursor: %v", err)
	}

	// Groups of both stores; a directory user's groups come from the
	// directory, carrying the domain.
	gs, err := d.dir.ListGroups(ctx, domainTenant, abi.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedGroupNames(gs.Groups); !slices.Equal(got, []string{"LDAP/admins", "LDAP/auditors", "LDAP/staff", "operators"}) {
		t.Fatalf("groups %v", got)
	}
	_, alice, err := d.dir.FindUser(ctx, domainTenant, "LDAP/alice")
	if err != nil {
		t.Fatal(err)
	}
	gs, err = d.dir.ListGroups(ctx, domainTenant, abi.ListGroupsRequest{UserID: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedGroupNames(gs.Groups); !slices.Equal(got, []string{"LDAP/admins", "LDAP/staff"}) {
		t.Fatalf("LDAP/alice's groups %v", got)
	}
	gs, err = d.dir.ListGroups(ctx, domainTenant, abi.ListGroupsRequest{UserID: d.locals["dave"].ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedGroupNames(gs.Groups); !slices.Equal(got, []string{"operators"}) {
		t.Fatalf("dave's groups %v", got)
	}
	gs, err = d.dir.ListGroups(ctx, domainTenant, abi.ListGroupsRequest{UserID: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs.Groups {
		if m, ok := d.dir.View(func(router.Member) bool { return true }).Owns(domainTenant, g.ID); !ok || m.Domain != "LDAP" {
			t.Errorf("group id %q does not route to LDAP", g.ID)
		}
	}
}

func TestDomainsWrites(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	ctx := ctxT(t)

	// New users go to the primary store unless a domain is named.
	u, err := d.dir.CreateUser(ctx, domainTenant, "", abi.CreateUserRequest{User: abi.User{Username: "frank", Enabled: true}, Password: "frank-password"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.ID, ":") || u.Username != "frank" {
		t.Fatalf("created %+v, want a primary user", u)
	}
	if _, err := d.st.GetUser(ctx, d.tid, u.ID); err != nil {
		t.Fatalf("frank is not in the SQL store: %v", err)
	}

	// The directory is read-only: every write is refused, naming the
	// domain, without reaching it.
	_, ldapAlice, err := d.dir.FindUser(ctx, domainTenant, "LDAP/alice")
	if err != nil {
		t.Fatal(err)
	}
	checkReadOnly := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, userstore.ErrReadOnly) {
			t.Fatalf("%s: %v, want ErrReadOnly", what, err)
		}
		var f *fault.Error
		if !errors.As(err, &f) || !strings.Contains(f.Message, "LDAP is read-only") {
			t.Fatalf("%s: message %v does not name the domain", what, err)
		}
	}
	_, err = d.dir.CreateUser(ctx, domainTenant, "LDAP", abi.CreateUserRequest{User: abi.User{Username: "zed", Enabled: true}})
	checkReadOnly("create in LDAP", err)
	_, err = d.dir.CreateUser(ctx, domainTenant, "", abi.CreateUserRequest{User: abi.User{Username: "LDAP/zed", Enabled: true}})
	checkReadOnly("create LDAP/zed", err)
	ldapAlice.DisplayName = "Changed"
	_, err = d.dir.UpdateUser(ctx, domainTenant, abi.UpdateUserRequest{User: ldapAlice})
	checkReadOnly("update LDAP/alice", err)
	checkReadOnly("delete LDAP/alice", d.dir.DeleteUser(ctx, domainTenant, ldapAlice.ID))
	if _, err := d.dir.CreateUser(ctx, domainTenant, "NOPE", abi.CreateUserRequest{User: abi.User{Username: "zed"}}); fault.CodeOf(err) != fault.CodeNotFound {
		t.Fatalf("an unknown domain: %v", err)
	}
	if _, err := d.dir.CreateUser(ctx, domainTenant, "PRIMARY", abi.CreateUserRequest{User: abi.User{Username: "LDAP/zed"}}); fault.CodeOf(err) != fault.CodeInvalidRequest {
		t.Fatalf("two domains: %v", err)
	}
}

func TestDomainsReadWriteDirectory(t *testing.T) {
	s := ownSlapd(t)
	cfg := config(s)
	cfg.Mode = "read_write"
	cfg.BindDN, cfg.BindPassword = adminDN, adminPW
	d := newDomains(t, s, cfg, `{"read_only": true}`)
	ctx := ctxT(t)

	u, err := d.dir.CreateUser(ctx, domainTenant, "ldap", abi.CreateUserRequest{
		User: abi.User{Username: "grace", GivenName: "Grace", FamilyName: "Hopper", DisplayName: "Grace Hopper", Email: "grace@example.org", Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.ID, "LDAP:") || u.Username != "LDAP/grace" {
		t.Fatalf("created %+v", u)
	}
	u.DisplayName = "Rear Admiral Hopper"
	u, err = d.dir.UpdateUser(ctx, domainTenant, abi.UpdateUserRequest{User: u, Password: "grace-password"})
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Rear Admiral Hopper" || u.Username != "LDAP/grace" {
		t.Fatalf("updated %+v", u)
	}
	if resp := d.login(t, "grace", "grace-password"); resp.Outcome != abi.OutcomeAuthenticated || resp.Subject != u.ID {
		t.Fatalf("login as the new directory user: %+v", resp)
	}
	if err := d.dir.DeleteUser(ctx, domainTenant, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.dir.GetUser(ctx, domainTenant, u.ID); !errors.Is(err, userstore.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// The primary (SQL) store is configured read-only this time.
	_, err = d.dir.CreateUser(ctx, domainTenant, "", abi.CreateUserRequest{User: abi.User{Username: "henry"}})
	if !errors.Is(err, userstore.ErrReadOnly) || !strings.Contains(err.Error(), "PRIMARY is read-only") {
		t.Fatalf("create in the read-only primary: %v", err)
	}
}

func TestDomainsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  router.Config
	}{
		{"lower case", router.Config{Domains: map[string]string{"corp": "ldap"}}},
		{"the primary's name", router.Config{Domains: map[string]string{"corp": "PRIMARY"}}},
		{"taken twice", router.Config{Domains: map[string]string{"a": "LDAP", "b": "LDAP"}}},
		{"a slash", router.Config{Domains: map[string]string{"a": "LD/AP"}}},
		{"a colon", router.Config{Domains: map[string]string{"a": "LD:AP"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := router.New(func(string) []*extension.Instance { return nil }, tc.cfg); !errors.Is(err, router.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

func sortedGroupNames(gs []abi.Group) []string {
	out := groupNames(gs)
	slices.Sort(out)
	return out
}

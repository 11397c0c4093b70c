package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

type env struct {
	st       store.Store
	tenant   store.Tenant
	accounts *federation.Accounts
	users    map[string]store.User
}

// newEnv is a SQLite store with the tenant acme, its users (alice, a
// disabled bob, carol and carol2 sharing an email, dave, and frank with
// an unverified email) and a userstore.local instance as the tenant's
// primary store.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t)
	tenant := sqlitetest.Tenant(t, st, "acme")
	e := &env{st: st, tenant: tenant, users: map[string]store.User{}}
	for _, u := range []store.User{
		{Username: "alice", Email: "alice@example.com", EmailVerified: true, Enabled: true},
		{Username: "bob", Email: "bob@example.com", EmailVerified: true, Enabled: false},
		{Username: "carol", Email: "carol@example.com", EmailVerified: true, Enabled: true},
		{Username: "carol2", Email: "carol@example.com", EmailVerified: true, Enabled: true},
		{Username: "dave", Enabled: true},
		{Username: "frank", Email: "frank@example.com", Enabled: true},
	} {
		u.TenantID = tenant.ID
		got, err := st.CreateUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		e.users[u.Username] = got
	}
	stores := loadUserStores(t, st, nil)
	e.accounts = accounts(t, map[string]any{
		federation.DepStore:      st,
		federation.DepUserStores: func(_ context.Context, tenant string) []*extension.Instance { return stores(tenant) },
	})
	return e
}

func TestResolve(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.st.CreateLink(ctx, store.Link{TenantID: e.tenant.ID, UserID: e.users["alice"].ID, IdP: "corp", Subject: "a-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateLink(ctx, store.Link{TenantID: e.tenant.ID, UserID: e.users["bob"].ID, IdP: "corp", Subject: "b-1"}); err != nil {
		t.Fatal(err)
	}
	create := federation.Policy{JIT: federation.JITCreate}
	linkOnly := federation.Policy{JIT: federation.JITLinkOnly}
	byEmail := federation.Policy{JIT: federation.JITLinkOnly, LinkByEmail: true}
	off := federation.Policy{JIT: federation.JITOff, LinkByEmail: true}
	tests := []struct {
		name   string
		id     federation.Identity
		policy federation.Policy
		known  string
		// want is the username signed in; or status and message of the
		// refusal.
		want        string
		wantCreated bool
		wantLinked  bool
		status      int
		message     string
	}{
		{name: "linked", id: federation.Identity{IDP: "corp", Subject: "a-1"}, policy: off, want: "alice"},
		{name: "linked but disabled", id: federation.Identity{IDP: "corp", Subject: "b-1"}, policy: create, status: 403, message: federation.MsgDisabled},
		{name: "linked to someone else than the signed-in user", id: federation.Identity{IDP: "corp", Subject: "a-1"}, policy: create, known: "dave", status: 403, message: federation.MsgLinkedElse},
		{name: "off refuses", id: federation.Identity{IDP: "corp", Subject: "new-1", Username: "newbie"}, policy: off, status: 403, message: federation.MsgNoAccount},
		{name: "off does not link the signed-in user", id: federation.Identity{IDP: "corp", Subject: "new-2"}, policy: off, known: "dave", status: 403, message: federation.MsgNoAccount},
		{name: "link_only refuses", id: federation.Identity{IDP: "corp", Subject: "new-3", Email: "x@example.com", EmailVerified: true}, policy: linkOnly, status: 403, message: federation.MsgNoAccount},
		{name: "the signed-in user links", id: federation.Identity{IDP: "corp", Subject: "d-1"}, policy: linkOnly, known: "dave", want: "dave", wantLinked: true},
		{name: "verified email links", id: federation.Identity{IDP: "social", Subject: "s-1", Email: "ALICE@example.com", EmailVerified: true}, policy: byEmail, want: "alice", wantLinked: true},
		{name: "unverified email does not link", id: federation.Identity{IDP: "social", Subject: "s-2", Email: "alice@example.com"}, policy: byEmail, status: 403, message: federation.MsgNoAccount},
		{name: "the local address is not verified", id: federation.Identity{IDP: "social", Subject: "s-5", Email: "frank@example.com", EmailVerified: true}, policy: byEmail, status: 403, message: federation.MsgNoAccount},
		{name: "two users share the email", id: federation.Identity{IDP: "social", Subject: "s-3", Email: "carol@example.com", EmailVerified: true}, policy: byEmail, status: 403, message: federation.MsgAmbiguous},
		{name: "email links to a disabled user", id: federation.Identity{IDP: "social", Subject: "s-4", Email: "bob@example.com", EmailVerified: true}, policy: byEmail, status: 403, message: federation.MsgDisabled},
		{name: "jit creates", id: federation.Identity{IDP: "corp", Subject: "e-1", Username: "erin", Email: "erin@corp.example", EmailVerified: true, GivenName: "Erin"}, policy: create, want: "erin", wantCreated: true, wantLinked: true},
		{name: "jit names a user without a usable username", id: federation.Identity{IDP: "corp", Subject: "f-1", Username: "has spaces"}, policy: create, want: federation.JITUsername(federation.Identity{IDP: "corp", Subject: "f-1"}), wantCreated: true, wantLinked: true},
		{name: "jit with a taken username", id: federation.Identity{IDP: "corp", Subject: "g-1", Username: "alice"}, policy: create, status: 403, message: federation.MsgNameTaken},
		{name: "no subject", id: federation.Identity{IDP: "corp"}, policy: create, status: 400, message: federation.MsgUnverified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := ""
			if tt.known != "" {
				known = e.users[tt.known].ID
			}
			acc, err := e.accounts.Resolve(ctx, e.tenant, tt.id, tt.policy, known)
			if tt.message != "" {
				var ref *federation.Refusal
				if !errors.As(err, &ref) || ref.Status != tt.status || ref.Message != tt.message {
					t.Fatalf("got %+v, %v; want refusal %d %q", acc, err, tt.status, tt.message)
				}
				if federation.StatusOf(err) != tt.status {
					t.Errorf("StatusOf = %d", federation.StatusOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if acc.Username != tt.want || acc.Created != tt.wantCreated || acc.Linked != tt.wantLinked {
				t.Fatalf("got %+v, want %s created=%v linked=%v", acc, tt.want, tt.wantCreated, tt.wantLinked)
			}
			l, err := e.st.FindLink(ctx, e.tenant.ID, tt.id.IDP, tt.id.Subject)
			if err != nil || l.UserID != acc.UserID {
				t.Fatalf("link after resolving: %+v %v", l, err)
			}
			// Resolving again uses the link.
			again, err := e.accounts.Resolve(ctx, e.tenant, tt.id, federation.Policy{JIT: federation.JITOff}, "")
			if err != nil || again.UserID != acc.UserID || again.Created || again.Linked {
				t.Fatalf("second resolve: %+v %v", again, err)
			}
		})
	}
	erin, err := e.st.GetUserByUsername(ctx, e.tenant.ID, "erin")
	if err != nil || erin.Email != "erin@corp.example" || !erin.EmailVerified || erin.GivenName != "Erin" || erin.Attributes["federated_idp"] != "corp" {
		t.Fatalf("the provisioned erin: %+v %v", erin, err)
	}
}

func TestPendingAndResults(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, err := federation.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p := federation.Pending{Instance: "corp", FlowID: "f-1", Return: "https://id.example.com/login?flow=f-1", Nonce: "n", Verifier: "v"}
	if err := federation.SavePending(ctx, e.st, e.tenant.ID, key, p); err != nil {
		t.Fatal(err)
	}
	// The record is stored under a hash: the key itself opens nothing.
	if _, err := e.st.GetToken(ctx, e.tenant.ID, "federation_pending", key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the key is stored in clear: %v", err)
	}
	if _, err := federation.TakePending(ctx, e.st, "another-tenant", key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("taken in another tenant: %v", err)
	}
	got, err := federation.TakePending(ctx, e.st, e.tenant.ID, key)
	if err != nil || got != p {
		t.Fatalf("TakePending: %+v %v", got, err)
	}
	if _, err := federation.TakePending(ctx, e.st, e.tenant.ID, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("taken twice: %v", err)
	}
	for _, k := range []string{"", strings.Repeat("k", 600)} {
		if _, err := federation.TakeResult(ctx, e.st, e.tenant.ID, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("TakeResult(%d bytes): %v", len(k), err)
		}
	}
	r := federation.Result{FlowID: "f-1", Instance: "corp", UserID: "u-1", Claims: map[string]any{"username": "alice"}}
	if err := federation.SaveResult(ctx, e.st, e.tenant.ID, key, r); err != nil {
		t.Fatal(err)
	}
	gr, err := federation.TakeResult(ctx, e.st, e.tenant.ID, key)
	if err != nil || gr.UserID != "u-1" || gr.Claims["username"] != "alice" {
		t.Fatalf("TakeResult: %+v %v", gr, err)
	}
}

func TestMap(t *testing.T) {
	up := map[string]any{
		"sub": "x", "preferred_username": "jane", "mail": []any{"jane@corp.example", "other@corp.example"},
		"email_verified": "TRUE", "name": strings.Repeat("n", 2000), "dept": 42.0, "groups": map[string]any{"a": 1},
	}
	id := federation.Map("corp", "https://op", "x", up,
		map[string]string{"email": "mail", "department": "dept", "groups": "groups"},
		map[string]string{"username": "preferred_username", "email": "email", "email_verified": "email_verified", "display_name": "name"})
	if id.Username != "jane" || id.Email != "jane@corp.example" || !id.EmailVerified || id.DisplayName != "" ||
		id.Attributes["department"] != "42" || id.Attributes["groups"] != nil {
		t.Fatalf("mapped %+v", id)
	}
}

func TestClaims(t *testing.T) {
	id := federation.Identity{
		IDP: "corp", Subject: "up-1", Username: "jane.up", Email: "jane@corp.example", EmailVerified: true,
		DisplayName: "Jane Doe", GivenName: "Jane", PhoneNumber: "+15550100",
		Attributes: map[string]any{"department": "42", "idp": "spoofed"},
	}
	got := federation.Claims(id, federation.Account{UserID: "u-1", Username: "jane"})
	want := map[string]any{
		"username": "jane", "idp": "corp", "idp_subject": "up-1", "email": "jane@corp.example", "email_verified": true,
		"display_name": "Jane Doe", "given_name": "Jane", "phone_number": "+15550100", "department": "42",
	}
	if len(got) != len(want) {
		t.Fatalf("claims %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestBaseFromCallback(t *testing.T) {
	for in, want := range map[string]string{
		"https://id.example.com/login?flow=abc":        "https://id.example.com",
		"https://id.example.com/t/acme/login?flow=abc": "https://id.example.com/t/acme",
		"https://id.example.com/base/t/x/login":        "https://id.example.com/base/t/x",
	} {
		if got, err := federation.BaseFromCallback(in); err != nil || got != want {
			t.Errorf("BaseFromCallback(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/login?flow=x", "https://id.example.com/authorize", "::"} {
		if _, err := federation.BaseFromCallback(bad); err == nil {
			t.Errorf("BaseFromCallback(%q) accepted", bad)
		}
	}
}

func FuzzMap(f *testing.F) {
	f.Add(`{"preferred_username":"jane","email":"j@x","email_verified":true}`, "username", "preferred_username")
	f.Add(`{"a":[1,"x"],"b":{"c":null}}`, "x", "a")
	f.Fuzz(func(t *testing.T, claims, local, remote string) {
		var up map[string]any
		if json.Unmarshal([]byte(claims), &up) != nil {
			return
		}
		id := federation.Map("corp", "iss", "sub", up, map[string]string{local: remote}, map[string]string{"email": "email"})
		for _, v := range []string{id.Username, id.Email, id.DisplayName, id.GivenName, id.FamilyName, id.PhoneNumber} {
			if len(v) > 1024 {
				t.Fatalf("an overlong value was mapped: %d bytes", len(v))
			}
		}
		if len(id.Attributes) > 64 {
			t.Fatalf("%d attributes", len(id.Attributes))
		}
		if u := federation.JITUsername(federation.Identity{IDP: "corp", Subject: "sub", Username: id.Username}); u == "" || len(u) > 128+1 && !strings.HasPrefix(u, "corp-") {
			t.Fatalf("JITUsername %q", u)
		}
	})
}

func FuzzBaseFromCallback(f *testing.F) {
	f.Add("https://id.example.com/t/acme/login?flow=abc")
	f.Add("http://[::1]:8080/login#x")
	f.Fuzz(func(t *testing.T, s string) {
		base, err := federation.BaseFromCallback(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(base, "?#") || strings.HasSuffix(base, "/login") {
			t.Fatalf("base %q from %q", base, s)
		}
	})
}

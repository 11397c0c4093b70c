package password_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/password"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	kpassword "github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// cheap are argon2id parameters for tests: the tests are about the
// authenticator, not the hash.
var cheap = kpassword.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// fakeStore is a user store whose answer its configuration sets: an
// outcome, or "error" for a store that is down. It counts its calls.
type fakeStore struct {
	Outcome string `json:"outcome"`

	calls atomic.Int64
}

func (f *fakeStore) GetUser(context.Context, abi.GetUserRequest) (abi.User, error) {
	return abi.User{}, fault.NotFound
}

func (f *fakeStore) FindUsers(context.Context, abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (f *fakeStore) AuthenticateUser(_ context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	f.calls.Add(1)
	switch f.Outcome {
	case "error":
		return abi.AuthenticateUserResponse{}, fault.Unavailable.WithMessage("directory unreachable")
	case abi.UserAuthenticated:
		return abi.AuthenticateUserResponse{Outcome: f.Outcome, User: &abi.User{ID: "fake-" + req.Username, Username: req.Username, Enabled: true}}, nil
	}
	return abi.AuthenticateUserResponse{Outcome: f.Outcome}, nil
}

type env struct {
	set   *extension.Instances
	users map[string]store.User
}

// newEnv loads, through one registry, a userstore.local instance "local"
// over a fresh SQLite store, fake stores "unknown", "anyone" and "down",
// and authn.password instances "password" (defaults) and "custom"
// (username_param "login"). The tenants' user store orders are:
//
//	acme:  local
//	beta:  unknown, local   (the search falls through)
//	gamma: down, local      (a failing store stops the search)
//	delta: local, anyone    (a wrong password stops the search)
//	empty: none
func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher := kpassword.NewHasher(cheap)
	e := &env{users: make(map[string]store.User)}
	for _, tn := range []string{"acme", "beta", "gamma", "delta", "empty"} {
		tenant, err := st.CreateTenant(ctx, store.Tenant{Name: tn, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []store.User{
			{Username: "alice", Email: "alice@example.com", EmailVerified: true, Enabled: true},
			{Username: "bob", Enabled: false},
			{Username: "carol", Enabled: true, LockedUntil: time.Now().Add(time.Hour)},
		} {
			u.TenantID = tenant.ID
			if u.PasswordHash, err = hasher.Hash("pw-" + u.Username); err != nil {
				t.Fatal(err)
			}
			u, err := st.CreateUser(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			e.users[tn+"/"+u.Username] = u
		}
	}

	r := extension.NewRegistry()
	r.Register(local.Module())
	r.Register(password.Module())
	r.Register(extension.Module{ID: "userstore.fake", New: func() any { return new(fakeStore) }})
	var current atomic.Pointer[extension.Instances]
	set, err := r.Load(ctx, []extension.InstanceConfig{
		{Name: "local", Module: local.ID},
		{Name: "unknown", Module: "userstore.fake", Config: json.RawMessage(`{"outcome":"unknown_user"}`)},
		{Name: "anyone", Module: "userstore.fake", Config: json.RawMessage(`{"outcome":"authenticated"}`)},
		{Name: "down", Module: "userstore.fake", Config: json.RawMessage(`{"outcome":"error"}`)},
		{Name: "password", Module: password.ID},
		{Name: "custom", Module: password.ID, Config: json.RawMessage(`{"username_param":"login"}`)},
	}, extension.LoadOptions{
		Deps: map[string]any{
			local.DepStore:          st,
			local.DepPasswordHasher: hasher,
			password.DepUserStores: password.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
				return current.Load().Enabled(tenant, extension.KindUserStore)
			}),
		},
		Enablement: extension.Enablement{Tenants: map[string]map[extension.Kind][]string{
			"acme":  {extension.KindUserStore: {"local"}},
			"beta":  {extension.KindUserStore: {"unknown", "local"}},
			"gamma": {extension.KindUserStore: {"down", "local"}},
			"delta": {extension.KindUserStore: {"local", "anyone"}},
			"empty": {extension.KindUserStore: {}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	current.Store(set)
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	e.set = set
	return e
}

func (e *env) instance(t testing.TB, name string) *extension.Instance {
	t.Helper()
	inst, ok := e.set.Get(name)
	if !ok {
		t.Fatalf("no instance %q", name)
	}
	return inst
}

// authenticate calls the instance as the kernel does: through
// extension.Call, then authn.Check.
func authenticate(ctx context.Context, inst *extension.Instance, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	a, _ := extension.As[authn.Authenticator](inst)
	var resp abi.AuthenticateResponse
	err := extension.Call(ctx, inst, abi.OpAuthenticate, func(ctx context.Context) error {
		var err error
		resp, err = authn.Check(a.Authenticate(ctx, req))
		return err
	})
	return resp, err
}

func form(kv ...string) map[string][]string {
	m := make(map[string][]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	return m
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	alice := e.users["acme/alice"]
	tests := []struct {
		name     string
		instance string // default "password"
		req      abi.AuthenticateRequest
		want     abi.AuthenticateResponse
		wantCode fault.Code // set: a technical failure with this code
		wantErr  string     // and this text in the error
	}{
		{
			name: "first visit shows the form",
			req:  abi.AuthenticateRequest{Tenant: "acme"},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{
				{Name: "username", Type: abi.FieldText, Label: "Username", Required: true},
				{Name: "password", Type: abi.FieldPassword, Label: "Password", Required: true},
			}}},
		},
		{
			name: "empty password shows the form again with the username",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", " alice ", "password", "")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{
				{Name: "username", Type: abi.FieldText, Label: "Username", Value: "alice", Required: true},
				{Name: "password", Type: abi.FieldPassword, Label: "Password", Required: true},
			}, Error: "Enter your username and password."}},
		},
		{
			name: "right password",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "alice", "password", "pw-alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: alice.ID, AMR: []string{"pwd"}, Claims: map[string]any{
				"username": "alice", "email": "alice@example.com", "email_verified": true, "user_store": "local",
			}},
		},
		{
			name: "wrong password",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "alice", "password", "guess")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials},
		},
		{
			name: "unknown user looks like a wrong password",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "mallory", "password", "guess")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials},
		},
		{
			name: "disabled account",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "bob", "password", "pw-bob")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonDisabled},
		},
		{
			name: "locked account",
			req:  abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "carol", "password", "pw-carol")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonLocked},
		},
		{
			name: "earlier step established someone else",
			req:  abi.AuthenticateRequest{Tenant: "acme", KnownSubject: "someone-else", Params: form("username", "alice", "password", "pw-alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials},
		},
		{
			name: "earlier step established the same user",
			req:  abi.AuthenticateRequest{Tenant: "acme", KnownSubject: alice.ID, Params: form("username", "alice", "password", "pw-alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: alice.ID, AMR: []string{"pwd"}, Claims: map[string]any{
				"username": "alice", "email": "alice@example.com", "email_verified": true, "user_store": "local",
			}},
		},
		{
			name: "a store that does not know the user passes to the next",
			req:  abi.AuthenticateRequest{Tenant: "beta", Params: form("username", "alice", "password", "pw-alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: e.users["beta/alice"].ID, AMR: []string{"pwd"}, Claims: map[string]any{
				"username": "alice", "email": "alice@example.com", "email_verified": true, "user_store": "local",
			}},
		},
		{
			name: "a wrong password stops the search",
			req:  abi.AuthenticateRequest{Tenant: "delta", Params: form("username", "alice", "password", "guess")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials},
		},
		{
			name: "an unknown user reaches the last store",
			req:  abi.AuthenticateRequest{Tenant: "delta", Params: form("username", "zed", "password", "x")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "fake-zed", AMR: []string{"pwd"}, Claims: map[string]any{
				"username": "zed", "user_store": "anyone",
			}},
		},
		{
			name:     "a store that is down is a technical failure",
			req:      abi.AuthenticateRequest{Tenant: "gamma", Params: form("username", "alice", "password", "pw-alice")},
			wantCode: fault.CodeUnavailable,
			wantErr:  `plugin/authn.password: calling authenticate on "password": authenticating against user store "down": plugin/userstore.fake: calling authenticate_user on "down": unavailable: directory unreachable`,
		},
		{
			name:     "a tenant without user stores is a technical failure",
			req:      abi.AuthenticateRequest{Tenant: "empty", Params: form("username", "alice", "password", "pw-alice")},
			wantCode: fault.CodeInternal,
			wantErr:  "no user store",
		},
		{
			name:     "configured parameter names",
			instance: "custom",
			req:      abi.AuthenticateRequest{Tenant: "acme", Params: form("login", "alice", "password", "pw-alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: alice.ID, AMR: []string{"pwd"}, Claims: map[string]any{
				"username": "alice", "email": "alice@example.com", "email_verified": true, "user_store": "local",
			}},
		},
		{
			name:     "configured parameter names, the default ones do not count",
			instance: "custom",
			req:      abi.AuthenticateRequest{Tenant: "acme", Params: form("username", "alice")},
			want: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{
				{Name: "login", Type: abi.FieldText, Label: "Username", Required: true},
				{Name: "password", Type: abi.FieldPassword, Label: "Password", Required: true},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.instance
			if name == "" {
				name = "password"
			}
			got, err := authenticate(t.Context(), e.instance(t, name), tt.req)
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v (code %q), want code %q and %q", err, fault.CodeOf(err), tt.wantCode, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gj, wj := mustJSON(t, got), mustJSON(t, tt.want); gj != wj {
				t.Errorf("response = %s\nwant       %s", gj, wj)
			}
		})
	}
}

// TestFailingStoreStopsTheSearch checks that the store after a failing
// one is never asked.
func TestFailingStoreStopsTheSearch(t *testing.T) {
	e := newEnv(t)
	fake, _ := extension.As[*fakeStore](e.instance(t, "anyone"))
	before := fake.calls.Load()
	// delta is local, anyone: a wrong password in local must not reach anyone.
	if _, err := authenticate(t.Context(), e.instance(t, "password"), abi.AuthenticateRequest{
		Tenant: "delta", Params: form("username", "alice", "password", "guess"),
	}); err != nil {
		t.Fatal(err)
	}
	if n := fake.calls.Load() - before; n != 0 {
		t.Errorf("the store after a refusal was asked %d times", n)
	}
}

func TestCanHandle(t *testing.T) {
	e := newEnv(t)
	a, _ := extension.As[authn.Recognizer](e.instance(t, "password"))
	tests := []struct {
		name   string
		params map[string][]string
		want   bool
	}{
		{name: "both parameters", params: form("username", "alice", "password", "pw"), want: true},
		{name: "both parameters, empty", params: form("username", "", "password", ""), want: true},
		{name: "username only", params: form("username", "alice")},
		{name: "password only", params: form("password", "pw")},
		{name: "none", params: nil},
		{name: "other parameters", params: form("otp", "123456")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.CanHandle(t.Context(), abi.AuthenticateRequest{Tenant: "acme", Params: tt.params}); got != tt.want {
				t.Errorf("CanHandle = %v, want %v", got, tt.want)
			}
		})
	}
}

// load loads one authn.password instance with cfg and the given deps.
func load(t testing.TB, cfg string, deps map[string]any) error {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(password.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: password.ID, Config: json.RawMessage(cfg)},
	}, extension.LoadOptions{Deps: deps})
	if err == nil {
		t.Cleanup(func() { _ = set.Close(context.Background()) })
	}
	return err
}

func TestConfigAndDependencies(t *testing.T) {
	noStores := password.UserStoresFunc(func(context.Context, string) []*extension.Instance { return nil })
	tests := []struct {
		name    string
		config  string
		deps    map[string]any
		wantErr string
		wantIs  error
	}{
		{name: "defaults", config: `{}`},
		{name: "all fields", config: `{"username_param":"u","password_param":"p","username_label":"Login","password_label":"Secret"}`},
		{name: "a plain function", config: `{}`, deps: map[string]any{password.DepUserStores: func(context.Context, string) []*extension.Instance { return nil }}},
		{name: "loaded instances", config: `{}`, deps: map[string]any{password.DepUserStores: &extension.Instances{}}},
		{name: "unknown field", config: `{"username_field":"u"}`, wantErr: "config.username_field: unknown field"},
		{name: "bad parameter name", config: `{"username_param":"user name"}`, wantErr: "config.username_param: must match the pattern"},
		{name: "same parameter twice", config: `{"username_param":"password"}`, wantErr: `config.password_param: must differ from username_param (both are "password")`},
		{name: "no user stores", config: `{}`, deps: map[string]any{}, wantIs: password.ErrDependency},
		{name: "user stores of the wrong type", config: `{}`, deps: map[string]any{password.DepUserStores: []string{"local"}}, wantIs: password.ErrDependency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps := tt.deps
			if deps == nil {
				deps = map[string]any{password.DepUserStores: noStores}
			}
			err := load(t, tt.config, deps)
			switch {
			case tt.wantIs != nil:
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("error = %v, want %v", err, tt.wantIs)
				}
			case tt.wantErr != "":
				var ce *extension.ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want a config error containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			}
		})
	}
}

// TestREADMEExamples loads every JSON example of the README, so that the
// documentation cannot drift from the schema.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	deps := map[string]any{password.DepUserStores: password.UserStoresFunc(func(context.Context, string) []*extension.Instance { return nil })}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if err := load(t, string(ex[1]), deps); err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	inst := e.instance(b, "password")
	for _, bb := range []struct{ name, tenant, user, pw string }{
		{"authenticated", "acme", "alice", "pw-alice"},
		{"wrong_password", "acme", "alice", "guess"},
		{"unknown_user", "acme", "mallory", "guess"},
		{"challenge", "acme", "", ""},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := abi.AuthenticateRequest{Tenant: bb.tenant}
			if bb.user != "" {
				req.Params = form("username", bb.user, "password", bb.pw)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := authenticate(context.Background(), inst, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

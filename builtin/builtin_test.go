package builtin_test

import (
	"bytes"
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

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin"
	authnpassword "github.com/latchid/latch/builtin/authn/password"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// modules lists what the table must hold: each module's id, kind and the
// folder of its README.
var modules = []struct {
	id   extension.ID
	kind extension.Kind
	dir  string
}{
	{"authn.password", extension.KindAuthenticator, "authn/password"},
	{"authn.totp", extension.KindAuthenticator, "authn/totp"},
	{"claims.dialect", extension.KindClaims, "claims/dialect"},
	{"claims.mapping", extension.KindClaims, "claims/mapping"},
	{"throttle.local", extension.KindThrottler, "throttle/local"},
	{"userstore.local", extension.KindUserStore, "userstore/local"},
}

func TestRegister(t *testing.T) {
	r := extension.NewRegistry()
	builtin.Register(r)
	got := r.Modules()
	if len(got) != len(modules) {
		t.Fatalf("%d modules registered, want %d", len(got), len(modules))
	}
	for i, want := range modules {
		t.Run(string(want.id), func(t *testing.T) {
			if got[i].ID != want.id || got[i].Kind != want.kind {
				t.Errorf("module %d = %s (%s), want %s (%s)", i, got[i].ID, got[i].Kind, want.id, want.kind)
			}
			if got[i].Description == "" || len(got[i].ConfigSchema) == 0 {
				t.Errorf("%s has no description or no config schema", want.id)
			}
		})
	}
}

// deps returns the builtin dependencies over a fresh SQLite store with the
// tenant "acme" and the user alice (password "pw-alice"), and the pointer
// the user stores are read from once loaded.
func deps(t testing.TB) (builtin.Deps, *atomic.Pointer[extension.Instances]) {
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
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	hash, err := hasher.Hash("pw-alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, store.User{TenantID: tn.ID, Username: "alice", PasswordHash: hash, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	current := new(atomic.Pointer[extension.Instances])
	box, err := secret.NewBox(bytes.Repeat([]byte{9}, secret.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return builtin.Deps{
		Store:          st,
		PasswordHasher: hasher,
		SecretBox:      box,
		UserStores: authnpassword.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
			return current.Load().Enabled(tenant, extension.KindUserStore)
		}),
	}, current
}

func load(t testing.TB, d builtin.Deps, configs ...extension.InstanceConfig) (*extension.Instances, error) {
	t.Helper()
	r := extension.NewRegistry()
	builtin.Register(r)
	set, err := r.Load(context.Background(), configs, extension.LoadOptions{Deps: d.Map()})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	return set, nil
}

var jsonFence = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestConfigSchemas checks, for every module, that each JSON example of
// its README loads, and that the same example with an unknown field is
// refused with a message naming the field.
func TestConfigSchemas(t *testing.T) {
	d, _ := deps(t)
	for _, m := range modules {
		b, err := os.ReadFile(filepath.Join(m.dir, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		examples := jsonFence.FindAllSubmatch(b, -1)
		if len(examples) == 0 {
			t.Fatalf("%s/README.md has no JSON examples", m.dir)
		}
		for i, ex := range examples {
			t.Run(string(m.id)+"/"+strconv.Itoa(i), func(t *testing.T) {
				if _, err := load(t, d, extension.InstanceConfig{Module: m.id, Config: json.RawMessage(ex[1])}); err != nil {
					t.Fatalf("loading README example %s: %v", ex[1], err)
				}
				var cfg map[string]any
				if err := json.Unmarshal(ex[1], &cfg); err != nil {
					t.Fatal(err)
				}
				cfg["no_such_field"] = true
				bad, err := json.Marshal(cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, err = load(t, d, extension.InstanceConfig{Module: m.id, Config: bad})
				var ce *extension.ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), "config.no_such_field: unknown field") {
					t.Fatalf("loading %s: error = %v, want a config error naming config.no_such_field", bad, err)
				}
			})
		}
	}
}

// TestWiring loads one instance of every builtin module without
// configuration in one Load, as a node with no extensions configured does,
// and logs alice in: authn.password finds userstore.local through Deps.
func TestWiring(t *testing.T) {
	d, current := deps(t)
	var configs []extension.InstanceConfig
	for _, m := range builtin.Modules() {
		configs = append(configs, extension.InstanceConfig{Module: m.ID})
	}
	set, err := load(t, d, configs...)
	if err != nil {
		t.Fatal(err)
	}
	current.Store(set)
	inst, _ := set.Get("authn.password")
	a, _ := extension.As[authn.Authenticator](inst)
	var resp abi.AuthenticateResponse
	err = extension.Call(t.Context(), inst, abi.OpAuthenticate, func(ctx context.Context) error {
		var err error
		resp, err = authn.Check(a.Authenticate(ctx, abi.AuthenticateRequest{
			Tenant: "acme", Params: map[string][]string{"username": {"alice"}, "password": {"pw-alice"}},
		}))
		return err
	})
	if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("Authenticate = %+v, %v", resp, err)
	}
	if _, err := set.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestDepsMapLeavesOutUnset(t *testing.T) {
	tests := []struct {
		name string
		deps builtin.Deps
		want []string
	}{
		{name: "none", deps: builtin.Deps{}, want: nil},
		{name: "user stores only", deps: builtin.Deps{UserStores: authnpassword.UserStoresFunc(nil)}, want: []string{"userstores"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.deps.Map()
			if len(m) != len(tt.want) {
				t.Fatalf("Map() = %v, want keys %v", m, tt.want)
			}
			for _, k := range tt.want {
				if _, ok := m[k]; !ok {
					t.Errorf("Map() lacks %q", k)
				}
			}
		})
	}
}

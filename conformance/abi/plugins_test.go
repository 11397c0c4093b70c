package abi_test

import (
	"context"
	"crypto/sha1" //nolint:gosec // G505: the breached-password range protocol's hash
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin"
	abiconf "github.com/latchid/latch/conformance/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
	"github.com/latchid/latch/kernel/wasmhost"
	"github.com/latchid/latch/sdk/plugintest"
)

// builds builds WASM modules once per test binary, one at a time (each
// build uses both cores).
var builds struct {
	mu   sync.Mutex
	dir  string
	done map[string][]byte
}

// buildModule builds the Go main package at pkgDir (relative to this
// folder) into a WASM module.
func buildModule(t *testing.T, pkgDir string) []byte {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if w, ok := builds.done[pkgDir]; ok {
		return w
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "conformance-modules-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.done = dir, map[string][]byte{}
	}
	w, err := plugintest.BuildWASM(pkgDir, filepath.Join(builds.dir, filepath.Base(pkgDir)+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	builds.done[pkgDir] = w
	return w
}

// kernelEnv is what the host services of the modules under test use: a
// real SQLite store with the tenant "acme".
type kernelEnv struct {
	st  store.Store
	box *secret.Box
	// dir answers the plugins' user look-ups; nil: unavailable.
	dir *router.Router
}

func newKernelEnv(t *testing.T) *kernelEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTenant(t.Context(), store.Tenant{ID: store.NewID(), Name: "acme", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox([]byte("conformance-master-key-32-bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	return &kernelEnv{st: st, box: box}
}

// load loads wasm as plugin id with grants, the host services of env (and
// secrets, http_hosts) and opts, and returns its extensions' registry.
func (e *kernelEnv) load(t *testing.T, id string, wasm []byte, opts wasmhost.ModuleOptions, hosts []string, secrets map[string][]byte) *extension.Registry {
	t.Helper()
	host, err := wasmhost.New(t.Context(), wasmhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(context.Background()) })
	calls, err := plugin.NewHostCalls(plugin.HostOptions{
		Plugin: id, Grants: opts.Grants, KV: e.st, Tenants: e.st, Box: e.box, Secrets: secrets,
		HTTP: plugin.HTTPOptions{Hosts: hosts},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.HostCaller = calls
	m, desc, err := plugin.LoadWASM(t.Context(), host, id, wasm, opts)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := plugin.Modules(id, desc, m)
	if err != nil {
		t.Fatal(err)
	}
	r := extension.NewRegistry()
	for _, mod := range mods {
		r.Register(mod)
		calls.Exclude(mod.ID)
	}
	return r
}

// grantLocal is the allow-list entry of a local test server.
func grantLocal(srv *httptest.Server) string {
	return "http://" + strings.TrimPrefix(srv.URL, "http://")
}

func TestRobustness(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	wasm := buildModule(t, "testdata/guests/misbehave")
	r := env.load(t, "misbehave", wasm, wasmhost.ModuleOptions{
		MinInstances: 3, MaxInstances: 3, MemoryLimitPages: 256, CallTimeout: time.Second,
		Grants: []string{abi.CapabilityConfig},
	}, nil, nil)
	a := loadInstance[authn.Authenticator](t, r, "authn.misbehave", `{}`)
	do := func(what string) abi.AuthenticateRequest {
		return abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Params: map[string][]string{"do": {what}}}
	}
	abiconf.RunRobustness(t, a, abiconf.RobustnessCases{
		Healthy: do("ok"),
		Subject: "u-ok",
		Misbehaviours: []abiconf.Misbehaviour{
			{Name: "endless loop stopped at its deadline", Request: do("loop"), WantCode: fault.CodeTimeout},
			{Name: "memory blow-up stopped at the cap", Request: do("hog"), WantCode: fault.CodeInternal},
			{Name: "panic", Request: do("panic"), WantCode: fault.CodeInternal},
			{Name: "garbage output", Request: do("garbage"), WantCode: fault.CodeInternal},
			{Name: "oversized output", Request: do("oversized"), WantCode: fault.CodeInternal},
			{Name: "ungranted host call refused", Request: do("ungranted"), Refusal: true, WantReason: abi.CodeForbidden},
		},
	})
}

func TestLoadRefusals(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	host, err := wasmhost.New(t.Context(), wasmhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(context.Background()) })
	calls, err := plugin.NewHostCalls(plugin.HostOptions{Plugin: "p", KV: env.st})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		wasm   []byte
		grants []string
		want   string
	}{
		{name: "garbage file", wasm: []byte("this is not a wasm module"), want: "loading wasm module"},
		// quota asks for kv and clock; only clock is granted.
		{name: "ungranted capability", wasm: buildModule(t, "../../plugins/quota"), grants: []string{abi.CapabilityClock, abi.CapabilityConfig},
			want: `requests capability "kv" which was not granted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := plugin.LoadWASM(t.Context(), host, "p", tt.wasm, wasmhost.ModuleOptions{Grants: tt.grants, HostCaller: calls})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBuiltinUserStore(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	r := extension.NewRegistry()
	builtin.Register(r)
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	deps := builtin.Deps{Store: env.st, PasswordHasher: hasher}.Map()
	newStore := func(t *testing.T) userstore.Store {
		// The kit tries wrong passwords on purpose; account lockout (a
		// policy of this store, tested in its package) is off here.
		insts, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: "userstore.local", Config: json.RawMessage(`{"max_failed_logins": 0}`)}}, extension.LoadOptions{Deps: deps})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = insts.Close(context.Background()) })
		s, _ := extension.As[userstore.Store](insts.All()[0])
		return s
	}
	w, ok := newStore(t).(userstore.Writer)
	if !ok {
		t.Fatal("userstore.local is not a Writer")
	}
	u, err := w.CreateUser(t.Context(), abi.CreateUserRequest{Tenant: "acme", User: abi.User{Username: "alice", Enabled: true}, Password: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	abiconf.RunUserStore(t, newStore, abiconf.UserStoreCases{
		Tenant: "acme", User: u, Password: "correct horse", UnknownID: store.NewID(), UnknownUsername: "nobody",
	})
}

// directory is a REST directory server for the restdir plugin.
func directory(t *testing.T) *httptest.Server {
	t.Helper()
	alice := abi.User{ID: "u-1", Username: "alice", Enabled: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != alice.ID {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(alice)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		users := []abi.User{}
		if r.URL.Query().Get("username") == alice.Username {
			users = append(users, alice)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"users": users})
	})
	mux.HandleFunc("POST /authenticate", func(w http.ResponseWriter, r *http.Request) {
		var c struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&c)
		switch {
		case c.Username != alice.Username:
			http.NotFound(w, r)
		case c.Password != "correct horse":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			_ = json.NewEncoder(w).Encode(alice)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer dir-token" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rangeServer answers k-anonymity range queries for one breached password.
func rangeServer(t *testing.T, breached string) *httptest.Server {
	t.Helper()
	sum := sha1.Sum([]byte(breached)) //nolint:gosec // the protocol's hash
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := strings.TrimPrefix(r.URL.Path, "/range/")
		fmt.Fprintf(w, "%s:0\r\n", strings.Repeat("F", 35))
		if prefix == h[:5] {
			fmt.Fprintf(w, "%s:1234\r\n", h[5:])
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExamplePlugins(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	pool := wasmhost.ModuleOptions{MaxInstances: 4, CallTimeout: 5 * time.Second}
	with := func(grants ...string) wasmhost.ModuleOptions { o := pool; o.Grants = grants; return o }

	t.Run("grant.apikey", func(t *testing.T) {
		r := env.load(t, "apikey", buildModule(t, "../../plugins/apikey"), pool, nil, nil)
		sum := sha256.Sum256([]byte("key-ci"))
		cfg := `{"keys":[{"sha256":"` + hex.EncodeToString(sum[:]) + `","subject":"svc-ci","scopes":["read"]}]}`
		tok := func(key string) abi.TokenRequest {
			return abi.TokenRequest{Tenant: "acme", GrantType: "urn:latch:params:oauth:grant-type:api-key", ClientID: "c", ClientAuthenticated: true,
				Params: map[string][]string{"api_key": {key}}}
		}
		abiconf.RunGrantType(t, func(t *testing.T) grant.Type { return loadInstance[grant.Type](t, r, "grant.apikey", cfg) },
			abiconf.GrantTypeCases{Accept: tok("key-ci"), Subject: "svc-ci", Reject: tok("key-wrong")})
	})
	t.Run("userstore.restdir", func(t *testing.T) {
		srv := directory(t)
		r := env.load(t, "restdir", buildModule(t, "../../plugins/restdir"), with(abi.CapabilityHTTP, abi.CapabilitySecrets),
			[]string{grantLocal(srv)}, map[string][]byte{"dir_token": []byte("dir-token")})
		cfg := `{"base_url":"` + srv.URL + `","token_secret":"dir_token"}`
		abiconf.RunUserStore(t, func(t *testing.T) userstore.Store {
			return loadInstance[userstore.Store](t, r, "userstore.restdir", cfg)
		},
			abiconf.UserStoreCases{Tenant: "acme", User: abi.User{ID: "u-1", Username: "alice"}, Password: "correct horse", UnknownID: "u-404", UnknownUsername: "nobody"})
	})
	t.Run("provision.webhook", func(t *testing.T) {
		var delivered atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("X-Latch-Signature"), "t=") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			delivered.Add(1)
			_, _ = w.Write([]byte(`{"id":"ext-1"}`))
		}))
		t.Cleanup(srv.Close)
		r := env.load(t, "webhook", buildModule(t, "../../plugins/webhook"), with(abi.CapabilityHTTP, abi.CapabilitySecrets, abi.CapabilityClock),
			[]string{grantLocal(srv)}, map[string][]byte{"hook": []byte("whsec")})
		cfg := `{"url":"` + srv.URL + `/hook","secret":"hook"}`
		abiconf.RunProvisioner(t, func(t *testing.T) provision.Provisioner {
			return loadInstance[provision.Provisioner](t, r, "provision.webhook", cfg)
		},
			abiconf.ProvisionerCases{
				Events: []abi.ProvisionEvent{
					{ID: "e-1", Tenant: "acme", Op: abi.ProvisionCreate, Resource: abi.ResourceUser, ResourceID: "u-1", User: &abi.User{ID: "u-1", Username: "alice", Enabled: true}},
					{ID: "e-2", Tenant: "acme", Op: abi.ProvisionDelete, Resource: abi.ResourceGroup, ResourceID: "g-1", Group: &abi.Group{ID: "g-1", Name: "ops"}},
				},
				Delivered: func(t *testing.T, pushes int) {
					if got := delivered.Load(); got < int64(pushes) {
						t.Errorf("the receiver got %d signed deliveries, want at least %d", got, pushes)
					}
				},
			})
	})
	t.Run("authn.breachedpw", func(t *testing.T) {
		srv := rangeServer(t, "password123")
		r := env.load(t, "breachedpw", buildModule(t, "../../plugins/breachedpw"), with(abi.CapabilityHTTP, abi.CapabilityLog), []string{grantLocal(srv)}, nil)
		cfg := `{"range_url":"` + srv.URL + `/range/","on_error":"deny"}`
		req := func(pw string) abi.AuthenticateRequest {
			return abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Step: 2, KnownSubject: "u-1", Params: map[string][]string{"password": {pw}}}
		}
		abiconf.RunAuthenticator(t, func(t *testing.T) authn.Authenticator {
			return loadInstance[authn.Authenticator](t, r, "authn.breachedpw", cfg)
		},
			abiconf.AuthenticatorCases{Accept: req("correct horse battery staple"), Subject: "u-1", Reject: req("password123"),
				Empty: abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Step: 2, KnownSubject: "u-1"}})
	})
	t.Run("authn.breachedpw refused off the allow-list", func(t *testing.T) {
		srv := rangeServer(t, "password123")
		// Granted by name: the name resolves to loopback, which the SSRF
		// guard refuses, so the check fails closed.
		port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
		r := env.load(t, "breachedpw", buildModule(t, "../../plugins/breachedpw"), with(abi.CapabilityHTTP, abi.CapabilityLog), []string{"http://localhost:" + port}, nil)
		a := loadInstance[authn.Authenticator](t, r, "authn.breachedpw", `{"range_url":"http://localhost:`+port+`/range/","on_error":"deny"}`)
		resp, err := authn.Check(a.Authenticate(t.Context(), abi.AuthenticateRequest{Tenant: "acme", KnownSubject: "u-1", Params: map[string][]string{"password": {"x"}}}))
		if err != nil || resp.Reason != "breach_check_failed" {
			t.Fatalf("outcome %q reason %q err %v, want breach_check_failed", resp.Outcome, resp.Reason, err)
		}
	})
	t.Run("throttle.quota", func(t *testing.T) {
		// One instance: the quota's read-modify-write of its counter is not
		// atomic across instances (see its README).
		o := with(abi.CapabilityKV, abi.CapabilityClock)
		o.MaxInstances = 1
		r := env.load(t, "quota", buildModule(t, "../../plugins/quota"), o, nil, nil)
		abiconf.RunThrottler(t, func(t *testing.T) throttle.Throttler {
			return loadInstance[throttle.Throttler](t, r, "throttle.quota", `{}`)
		},
			abiconf.ThrottlerCases{Tenant: "acme", Limit: abi.Limit{Rate: 3, PeriodMillis: 3_600_000}, Allowance: 3})
	})
	t.Run("claims.entraid", func(t *testing.T) {
		r := env.load(t, "entraid", buildModule(t, "../../plugins/entraid"), pool, nil, nil)
		abiconf.RunClaimsMapper(t, func(t *testing.T) claims.Mapper { return loadInstance[claims.Mapper](t, r, "claims.entraid", `{}`) },
			abiconf.ClaimsMapperCases{
				Requests: []abi.MapRequest{
					{Tenant: "acme", From: abi.DialectRemote, To: abi.DialectLocal, Issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
						Claims: map[string]any{"oid": "o-1", "upn": "a@contoso.com", "aio": "x"}},
					{Tenant: "acme", From: abi.DialectOIDC, To: abi.DialectSAML, Claims: map[string]any{"name": "alice"}},
				},
				Want: []map[string]any{
					{"object_id": "o-1", "upn": "a@contoso.com", "username": "a@contoso.com", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
					{"name": "alice"},
				},
			})
	})
}

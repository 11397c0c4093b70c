package oidcfed_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/authn/oidcfed"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	kpassword "github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// fakeOP is a minimal OpenID Provider that answers the token request with
// an ID token the test shapes: the negative cases need answers no
// conforming provider gives (the live suite in conformance/federation
// runs against a real one).
type fakeOP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	// other signs tokens that must fail verification.
	other *rsa.PrivateKey

	mu sync.Mutex
	// nonce is the last authorization request's; shape edits the claims
	// of the next ID token, sign picks its key.
	nonce string
	shape func(claims map[string]any)
	sign  *rsa.PrivateKey
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{key: k1, other: k2}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": op.srv.URL, "authorization_endpoint": op.srv.URL + "/authorize",
			"token_endpoint": op.srv.URL + "/token", "jwks_uri": op.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "latch" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("code") != "good-code" || r.PostForm.Get("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		op.mu.Lock()
		claims := map[string]any{
			"iss": op.srv.URL, "sub": "up-248289761001", "aud": "latch", "nonce": op.nonce,
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
			"preferred_username": "jane", "email": "jane@corp.example", "email_verified": true, "given_name": "Jane",
			"amr": []string{"pwd", "mfa"},
		}
		if op.shape != nil {
			op.shape(claims)
		}
		key := op.key
		if op.sign != nil {
			key = op.sign
		}
		op.mu.Unlock()
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		payload, _ := json.Marshal(claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		raw, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": raw})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

type env struct {
	st     store.Store
	tenant store.Tenant
	set    *extension.Instances
	op     *fakeOP
}

// newEnv loads a userstore.local "local" and authn.oidc_federation
// instances "jit" (jit create) and "strict" (jit off) against a fake OP,
// over a fresh SQLite store with the tenant acme.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t)
	tenant := sqlitetest.Tenant(t, st, "acme")
	op := newFakeOP(t)
	r := extension.NewRegistry()
	r.Register(local.Module())
	r.Register(oidcfed.Module())
	var current atomic.Pointer[extension.Instances]
	cfg := func(jit string) json.RawMessage {
		return json.RawMessage(`{"issuer":"` + op.srv.URL + `","client_id":"latch","client_secret":"s3cret","userinfo":false,"allow_private_networks":true,"jit":"` + jit + `"}`)
	}
	set, err := r.Load(ctx, []extension.InstanceConfig{
		{Name: "local", Module: local.ID},
		{Name: "jit", Module: oidcfed.ID, Config: cfg("create")},
		{Name: "strict", Module: oidcfed.ID, Config: cfg("off")},
	}, extension.LoadOptions{Deps: map[string]any{
		local.DepStore:          st, // also federation.DepStore
		local.DepPasswordHasher: kpassword.NewHasher(kpassword.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}),
		federation.DepUserStores: func(_ context.Context, tenant string) []*extension.Instance {
			return current.Load().Enabled(tenant, extension.KindUserStore)
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	current.Store(set)
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	return &env{st: st, tenant: tenant, set: set, op: op}
}

const callback = "https://id.example.com/t/acme/login?flow=flow-1"

func (e *env) inst(t *testing.T, name string) *oidcfed.Authenticator {
	t.Helper()
	i, ok := e.set.Get(name)
	if !ok {
		t.Fatalf("no instance %s", name)
	}
	a, _ := extension.As[*oidcfed.Authenticator](i)
	return a
}

// begin runs the first request of the step and returns the authorization
// request's query and the step state.
func (e *env) begin(t *testing.T, a *oidcfed.Authenticator) (url.Values, []byte) {
	t.Helper()
	resp, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "acme", FlowID: "flow-1", Step: 1, CallbackURL: callback}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Outcome != abi.OutcomeChallenge || resp.Challenge.Kind != abi.ChallengeRedirect {
		t.Fatalf("want a redirect, got %+v", resp)
	}
	u, err := url.Parse(resp.Challenge.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("authorization request without PKCE, nonce or state: %s", u)
	}
	if ru := q.Get("redirect_uri"); !strings.HasPrefix(ru, "https://id.example.com/t/acme/login/federated/") || !strings.HasSuffix(ru, "/callback") {
		t.Fatalf("redirect_uri %q", q.Get("redirect_uri"))
	}
	e.op.mu.Lock()
	e.op.nonce = q.Get("nonce")
	e.op.mu.Unlock()
	return q, resp.State
}

func (e *env) callback(a *oidcfed.Authenticator, params url.Values) (*federation.Response, error) {
	return a.ServeFederation(context.Background(), &federation.Request{
		Tenant: "acme", BaseURL: "https://id.example.com/t/acme", Op: oidcfed.OpCallback, Method: http.MethodGet, Params: params,
	})
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	a := e.inst(t, "jit")
	q, state := e.begin(t, a)
	resp, err := e.callback(a, url.Values{"code": {"good-code"}, "state": {q.Get("state")}})
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	if resp.Redirect != callback {
		t.Fatalf("redirect %q, want back to the flow", resp.Redirect)
	}
	// Another flow cannot take the result.
	other, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "acme", FlowID: "flow-2", Step: 1, CallbackURL: callback, State: state}))
	if err != nil || other.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("another flow with the state: %+v %v", other, err)
	}

	q, state = e.begin(t, a)
	if _, err := e.callback(a, url.Values{"code": {"good-code"}, "state": {q.Get("state")}}); err != nil {
		t.Fatal(err)
	}
	done, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "acme", FlowID: "flow-1", Step: 1, CallbackURL: callback, State: state}))
	if err != nil || done.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("back at the flow: %+v %v", done, err)
	}
	u, err := e.st.GetUser(context.Background(), e.tenant.ID, done.Subject)
	if err != nil {
		t.Fatalf("the provisioned user: %v", err)
	}
	if u.Username != "jane" || u.Email != "jane@corp.example" || !u.EmailVerified || u.GivenName != "Jane" {
		t.Errorf("provisioned %+v", u)
	}
	if done.Claims["idp"] != "jit" || done.Claims["idp_subject"] != "up-248289761001" || strings.Join(done.AMR, " ") != "pwd mfa" {
		t.Errorf("claims %v amr %v", done.Claims, done.AMR)
	}
	ls, _ := e.st.ListLinks(context.Background(), e.tenant.ID, u.ID)
	if len(ls) != 1 || ls[0].IdP != "jit" || ls[0].Subject != "up-248289761001" {
		t.Errorf("links %+v", ls)
	}
	// The result is single-use.
	again, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "acme", FlowID: "flow-1", Step: 1, CallbackURL: callback, State: state}))
	if err != nil || again.Outcome != abi.OutcomeChallenge {
		t.Fatalf("the result taken twice: %+v %v", again, err)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		instance string
		shape    func(map[string]any)
		otherKey bool
		params   func(q url.Values) url.Values
		status   int
		message  string
	}{
		{name: "nonce mismatch", shape: func(c map[string]any) { c["nonce"] = "someone-elses-nonce" }, status: 400, message: federation.MsgUnverified},
		{name: "no nonce", shape: func(c map[string]any) { delete(c, "nonce") }, status: 400, message: federation.MsgUnverified},
		{name: "wrong issuer", shape: func(c map[string]any) { c["iss"] = "https://evil.example" }, status: 400, message: federation.MsgUnverified},
		{name: "wrong audience", shape: func(c map[string]any) { c["aud"] = "another-client" }, status: 400, message: federation.MsgUnverified},
		{name: "expired", shape: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, status: 400, message: federation.MsgUnverified},
		{name: "bad signature", otherKey: true, status: 400, message: federation.MsgUnverified},
		{name: "bad at_hash", shape: func(c map[string]any) { c["at_hash"] = atHash("another-token") }, status: 400, message: federation.MsgUnverified},
		{name: "empty subject", shape: func(c map[string]any) { c["sub"] = "" }, status: 400, message: federation.MsgUnverified},
		{name: "state mismatch", params: func(q url.Values) url.Values {
			return url.Values{"code": {"good-code"}, "state": {q.Get("state") + "x"}}
		}, status: 400, message: federation.MsgExpired},
		{name: "no state", params: func(url.Values) url.Values { return url.Values{"code": {"good-code"}} }, status: 400, message: federation.MsgExpired},
		{name: "upstream error", params: func(q url.Values) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {q.Get("state")}}
		}, status: 401, message: federation.MsgCanceled},
		{name: "code refused upstream", params: func(q url.Values) url.Values {
			return url.Values{"code": {"bad-code"}, "state": {q.Get("state")}}
		}, status: 400, message: federation.MsgUnverified},
		{name: "jit off", instance: "strict", status: 403, message: federation.MsgNoAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.inst(t, cmpOr(tt.instance, "jit"))
			e.op.mu.Lock()
			e.op.shape, e.op.sign = tt.shape, nil
			if tt.otherKey {
				e.op.sign = e.op.other
			}
			e.op.mu.Unlock()
			q, _ := e.begin(t, a)
			params := url.Values{"code": {"good-code"}, "state": {q.Get("state")}}
			if tt.params != nil {
				params = tt.params(q)
			}
			_, err := e.callback(a, params)
			var ref *federation.Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("want a refusal, got %v", err)
			}
			if ref.Status != tt.status || ref.Message != tt.message {
				t.Fatalf("refusal %d %q, want %d %q (cause %v)", ref.Status, ref.Message, tt.status, tt.message, ref.Cause)
			}
			// Whatever happened, the state is spent.
			if tt.params == nil {
				_, err := e.callback(a, params)
				if !errors.As(err, &ref) || ref.Message != federation.MsgExpired {
					t.Fatalf("the state replayed: %v", err)
				}
			}
		})
	}
}

func atHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name, config, wantErr string
	}{
		{"http issuer refused", `{"issuer":"http://op.example","client_id":"x"}`, "config.issuer"},
		{"no client", `{"issuer":"https://op.example"}`, "client_id"},
		{"both secrets", `{"issuer":"https://op.example","client_id":"x","client_secret":"a","client_secret_file":"/dev/null"}`, "config.client_secret_file"},
		{"unknown field", `{"issuer":"https://op.example","client_id":"x","colour":"blue"}`, "colour"},
		{"bad jit", `{"issuer":"https://op.example","client_id":"x","jit":"sometimes"}`, "jit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := load(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}

func load(t *testing.T, cfg string) error {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(oidcfed.Module())
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	set, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: oidcfed.ID, Config: json.RawMessage(cfg)}},
		extension.LoadOptions{Deps: map[string]any{
			federation.DepStore:      st,
			federation.DepUserStores: func(context.Context, string) []*extension.Instance { return nil },
		}})
	if err == nil {
		t.Cleanup(func() { _ = set.Close(context.Background()) })
	}
	return err
}

// TestREADMEExamples loads every JSON example of the README.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if err := load(t, string(ex[1])); err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
		})
	}
}

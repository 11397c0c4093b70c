package oauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// Fixture secrets. Generated secrets are 43 characters of base64url; these
// have the same shape.
const (
	secretA = "secret-a-0123456789abcdefghijklmnopqrstuvwx"
	secretB = "secret-b-0123456789abcdefghijklmnopqrstuvwx"
	apiAud  = "https://api.example.com"
)

// auditRecorder is a hand-written Auditor that keeps what it is given.
type auditRecorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *auditRecorder) Publish(e event.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return true
}

func (r *auditRecorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

type env struct {
	t     testing.TB
	base  string // the public URL: the default tenant's issuer
	st    store.Store
	keys  *keys.Manager
	audit *auditRecorder
	p     *oauth.Provider
	// dir is the provider's cache of tenants and clients: a test that
	// writes them to st directly tells it, as a node does.
	dir  *oauth.Directory
	def  store.Tenant
	acme store.Tenant
	http *http.Client
}

// newEnv serves the provider over a real SQLite store, key manager and
// HTTP server on a loopback port, with two tenants ("default" and "acme")
// and a set of clients.
func newEnv(t testing.TB, opts ...func(*oauth.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t)
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	km := keys.NewManager(st, box, keys.Options{Logger: log})
	e := &env{t: t, st: st, keys: km, audit: &auditRecorder{}, dir: oauth.NewDirectory()}
	for _, tn := range []struct {
		name string
		out  *store.Tenant
	}{{store.DefaultTenantName, &e.def}, {"acme", &e.acme}} {
		*tn.out, err = st.CreateTenant(ctx, store.Tenant{Name: tn.name, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := km.EnsureKeys(ctx, tn.out.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateTenant(ctx, store.Tenant{Name: "off", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	cc := []string{"client_credentials"}
	scopes := []string{"read", "write", "latch:admin"}
	for _, c := range []store.Client{
		{TenantID: e.def.ID, ClientID: "svc-basic", SecretHash: secret.HashClientSecret(secretA), GrantTypes: cc, Scopes: scopes, Audience: []string{apiAud, "orders"}, TokenEndpointAuthMethod: "client_secret_basic", Enabled: true},
		{TenantID: e.def.ID, ClientID: "svc-post", SecretHash: secret.HashClientSecret(secretA), GrantTypes: cc, Scopes: scopes, TokenEndpointAuthMethod: "client_secret_post", Enabled: true},
		{TenantID: e.def.ID, ClientID: "svc any:1/é", SecretHash: secret.HashClientSecret(secretA + "+&:%"), GrantTypes: cc, Scopes: scopes, Enabled: true, Settings: map[string]any{oauth.ClientSettingAccessTokenLifetime: 120}},
		{TenantID: e.def.ID, ClientID: "svc-short", SecretHash: secret.HashClientSecret(secretA), GrantTypes: cc, Scopes: scopes, Enabled: true, Settings: map[string]any{oauth.ClientSettingAccessTokenLifetime: 1}},
		{TenantID: e.def.ID, ClientID: "svc-other", SecretHash: secret.HashClientSecret(secretB), GrantTypes: cc, Scopes: []string{"read"}, Enabled: true},
		{TenantID: e.def.ID, ClientID: "public-app", Public: true, GrantTypes: cc, Scopes: scopes, TokenEndpointAuthMethod: "none", Enabled: true},
		{TenantID: e.def.ID, ClientID: "web-app", SecretHash: secret.HashClientSecret(secretA), GrantTypes: []string{"authorization_code"}, Scopes: scopes, Enabled: true},
		{TenantID: e.def.ID, ClientID: "code-app", Public: true, GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{codeRedirect}, TokenEndpointAuthMethod: "none", Enabled: true},
		{TenantID: e.def.ID, ClientID: "disabled", SecretHash: secret.HashClientSecret(secretA), GrantTypes: cc, Scopes: scopes, Enabled: false},
		// The same client id in another tenant, with another secret.
		{TenantID: e.acme.ID, ClientID: "svc-basic", SecretHash: secret.HashClientSecret(secretB), GrantTypes: cc, Scopes: scopes, Enabled: true},
	} {
		if _, err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	srv, err := server.New(server.Config{
		BodyLimit:       64 << 10,
		ReadTimeout:     10 * time.Second,
		IdleTimeout:     10 * time.Second,
		ShutdownTimeout: time.Second,
	}, log, prometheus.NewRegistry(), st.Ping)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	lg, err := login.New(login.Deps{Store: st, Authenticators: noAuthenticators{}, PublicURL: e.base})
	if err != nil {
		t.Fatal(err)
	}
	deps := oauth.Deps{Store: st, Keys: km, PublicURL: e.base + "/", Log: log, Audit: e.audit, Login: lg, HMACKey: testHMACKey, Directory: e.dir}
	for _, o := range opts {
		o(&deps)
	}
	e.p, err = oauth.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	e.p.Mount(srv.App())
	lg.Mount(srv.App())
	go func() { _ = srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = srv.App().ShutdownWithTimeout(5 * time.Second) })
	tr := &http.Transport{MaxIdleConnsPerHost: 512}
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	// Cleanups run last-in first-out: idle client connections close
	// before the server drains.
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

// issuer returns a tenant's issuer.
func (e *env) issuer(tenant string) string {
	if tenant == "" || tenant == store.DefaultTenantName {
		return e.base
	}
	return e.base + "/t/" + tenant
}

// ccConfig is an x/oauth2 client credentials configuration.
func (e *env) ccConfig(tenant, id, sec string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: sec,
		TokenURL:     e.issuer(tenant) + oauth.PathToken,
		Scopes:       scopes,
		AuthStyle:    style,
	}
}

// fetch obtains a token with x/oauth2 or fails the test.
func (e *env) fetch(tenant, id, sec string, style oauth2.AuthStyle, params url.Values, scopes ...string) *oauth2.Token {
	e.t.Helper()
	cfg := e.ccConfig(tenant, id, sec, style, scopes...)
	cfg.EndpointParams = params
	tok, err := cfg.Token(e.ctx())
	if err != nil {
		e.t.Fatalf("getting token for %s: %v", id, err)
	}
	return tok
}

func (e *env) ctx() context.Context {
	return oidc.ClientContext(context.Background(), e.http)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// post sends a raw form POST. auth, when set, is the Authorization header.
func (e *env) post(path, contentType, body, auth string) response {
	e.t.Helper()
	return postTo(e.t, e.http, e.base+path, contentType, body, auth)
}

func postTo(t testing.TB, c *http.Client, u, contentType, body, auth string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return doWith(t, c, req)
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	return doWith(e.t, e.http, req)
}

func doWith(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// basic builds client_secret_basic credentials (RFC 6749 section 2.3.1).
func basic(id, sec string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
}

const formType = "application/x-www-form-urlencoded"

// introspect asks the default tenant's introspection endpoint (or
// tenant's) about tok as svc-other.
func (e *env) introspect(tenant, tok string) map[string]any {
	e.t.Helper()
	path := strings.TrimPrefix(e.issuer(tenant), e.base) + oauth.PathIntrospect
	id, sec := "svc-other", secretB
	if tenant == "acme" {
		id = "svc-basic"
	}
	r := e.post(path, formType, url.Values{"token": {tok}}.Encode(), basic(id, sec))
	if r.status != http.StatusOK {
		e.e(r, "introspection")
	}
	return r.json(e.t)
}

func (e *env) e(r response, what string) {
	e.t.Helper()
	e.t.Fatalf("%s: status %d: %s", what, r.status, r.body)
}

// header returns the protected header of a compact JWS.
func header(t testing.TB, raw string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parsing access token: %v", err)
	}
	return jws.Signatures[0].Protected
}

// verify checks raw against the tenant's discovery and JWKS with go-oidc
// and returns its claims.
func (e *env) verify(tenant, raw, aud string) (*oidc.IDToken, map[string]any, error) {
	e.t.Helper()
	prov, err := oidc.NewProvider(e.ctx(), e.issuer(tenant))
	if err != nil {
		e.t.Fatalf("discovering %s: %v", e.issuer(tenant), err)
	}
	v := prov.Verifier(&oidc.Config{ClientID: aud, SupportedSigningAlgs: []string{oidc.ES256}})
	tok, err := v.Verify(e.ctx(), raw)
	if err != nil {
		return nil, nil, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		e.t.Fatal(err)
	}
	return tok, claims, nil
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	for _, tenant := range []string{"default", "acme"} {
		t.Run(tenant, func(t *testing.T) {
			iss := e.issuer(tenant)
			prov, err := oidc.NewProvider(e.ctx(), iss)
			if err != nil {
				t.Fatalf("go-oidc discovery: %v", err)
			}
			var m map[string]any
			if err := prov.Claims(&m); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"issuer":                                iss,
				"jwks_uri":                              iss + oauth.PathJWKS,
				"token_endpoint":                        iss + oauth.PathToken,
				"introspection_endpoint":                iss + oauth.PathIntrospect,
				"revocation_endpoint":                   iss + oauth.PathRevoke,
				"authorization_endpoint":                iss + oauth.PathAuthorize,
				"userinfo_endpoint":                     iss + oauth.PathUserInfo,
				"end_session_endpoint":                  iss + oauth.PathEndSession,
				"pushed_authorization_request_endpoint": iss + oauth.PathPAR,
				"device_authorization_endpoint":         iss + oauth.PathDeviceAuthorization,
				"registration_endpoint":                 iss + oauth.PathRegister,
				"backchannel_logout_supported":          true,
				"request_parameter_supported":           true,
				"request_uri_parameter_supported":       false,
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			for k, v := range map[string][]any{
				"grant_types_supported":                         {"authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer"},
				"token_endpoint_auth_methods_supported":         {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
				"introspection_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "private_key_jwt"},
				"response_types_supported":                      {"code"},
				"code_challenge_methods_supported":              {"S256"},
				"id_token_signing_alg_values_supported":         {"ES256", "RS256", "EdDSA"},
			} {
				got, _ := m[k].([]any)
				if !slices.Equal(got, v) {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			// RFC 8414: the same document at the authorization server
			// path, in both placements for a tenant with a path.
			paths := []string{strings.TrimPrefix(iss, e.base) + oauth.PathAuthorizationServer}
			if tenant != "default" {
				paths = append(paths, oauth.PathAuthorizationServer+"/t/"+tenant)
			}
			for _, p := range paths {
				req, _ := http.NewRequest(http.MethodGet, e.base+p, nil)
				r := e.do(req)
				if r.status != 200 || r.json(t)["issuer"] != iss {
					t.Errorf("GET %s: %d %s", p, r.status, r.body)
				}
			}
		})
	}
	t.Run("methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodHead, e.base+oauth.PathOpenIDConfiguration, nil)
		if r := e.do(req); r.status != http.StatusOK {
			t.Errorf("HEAD discovery: %d", r.status)
		}
		for _, p := range []string{oauth.PathOpenIDConfiguration, "/t/acme" + oauth.PathJWKS, oauth.PathAuthorizationServer + "/t/acme"} {
			r := e.post(p, formType, "a=b", "")
			checkError(t, r, http.StatusMethodNotAllowed, "invalid_request")
			if r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("POST %s: Allow %q", p, r.header.Get("Allow"))
			}
		}
	})
	for _, p := range []string{"/t/nope", "/t/off", "/t/default", "/t/BAD"} {
		req, _ := http.NewRequest(http.MethodGet, e.base+p+oauth.PathOpenIDConfiguration, nil)
		r := e.do(req)
		if r.status != http.StatusNotFound || r.json(t)["error"] != "invalid_request" {
			t.Errorf("GET %s: %d %s, want 404 invalid_request", p, r.status, r.body)
		}
	}
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	seen := map[string]string{}
	for _, tenant := range []string{"default", "acme"} {
		req, _ := http.NewRequest(http.MethodGet, e.issuer(tenant)+oauth.PathJWKS, nil)
		r := e.do(req)
		if r.status != 200 {
			e.e(r, "jwks")
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(r.body, &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].Use != "sig" || set.Keys[0].Algorithm != "ES256" {
			t.Fatalf("%s JWKS = %s", tenant, r.body)
		}
		if strings.Contains(string(r.body), `"d"`) {
			t.Fatalf("%s JWKS holds a private key: %s", tenant, r.body)
		}
		if other, ok := seen[set.Keys[0].KeyID]; ok {
			t.Fatalf("tenants %s and %s share key %s", other, tenant, set.Keys[0].KeyID)
		}
		seen[set.Keys[0].KeyID] = tenant
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name     string
		tenant   string
		id, sec  string
		style    oauth2.AuthStyle
		scopes   []string
		params   url.Values
		aud      []string
		lifetime time.Duration
	}{
		{name: "basic", id: "svc-basic", sec: secretA, style: oauth2.AuthStyleInHeader, scopes: []string{"read", "latch:admin"}, aud: []string{apiAud, "orders"}, lifetime: time.Hour},
		{name: "post", id: "svc-post", sec: secretA, style: oauth2.AuthStyleInParams, scopes: []string{"write"}, aud: []string{e.base}, lifetime: time.Hour},
		{name: "basic with encoded id and secret", id: "svc any:1/é", sec: secretA + "+&:%", style: oauth2.AuthStyleInHeader, aud: []string{e.base}, lifetime: 2 * time.Minute},
		{name: "post with encoded id and secret", id: "svc any:1/é", sec: secretA + "+&:%", style: oauth2.AuthStyleInParams, scopes: []string{"read"}, aud: []string{e.base}, lifetime: 2 * time.Minute},
		{name: "audience parameter", id: "svc-basic", sec: secretA, style: oauth2.AuthStyleInHeader, params: url.Values{"audience": {"orders"}}, aud: []string{"orders"}, lifetime: time.Hour},
		{name: "resource parameter (RFC 8707)", id: "svc-basic", sec: secretA, style: oauth2.AuthStyleInHeader, params: url.Values{"resource": {apiAud}}, aud: []string{apiAud}, lifetime: time.Hour},
		{name: "second tenant", tenant: "acme", id: "svc-basic", sec: secretB, style: oauth2.AuthStyleInHeader, scopes: []string{"read"}, aud: []string{e.base + "/t/acme"}, lifetime: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			tok := e.fetch(tc.tenant, tc.id, tc.sec, tc.style, tc.params, tc.scopes...)
			if tok.TokenType != "Bearer" || tok.RefreshToken != "" {
				t.Errorf("token type %q, refresh token %q", tok.TokenType, tok.RefreshToken)
			}
			if d := time.Until(tok.Expiry); d < tc.lifetime-5*time.Second || d > tc.lifetime+time.Second {
				t.Errorf("expires_in gives %v, want about %v", d, tc.lifetime)
			}
			h := header(t, tok.AccessToken)
			if h.ExtraHeaders[jose.HeaderType] != "at+jwt" || h.KeyID == "" || h.Algorithm != "ES256" {
				t.Errorf("header = typ %v kid %q alg %q, want at+jwt, a kid, ES256", h.ExtraHeaders[jose.HeaderType], h.KeyID, h.Algorithm)
			}
			idt, claims, err := e.verify(tc.tenant, tok.AccessToken, tc.aud[0])
			if err != nil {
				t.Fatalf("go-oidc verification against the JWKS: %v", err)
			}
			if idt.Issuer != e.issuer(tc.tenant) || idt.Subject != tc.id || !slices.Equal(idt.Audience, tc.aud) {
				t.Errorf("iss %q sub %q aud %v, want %q %q %v", idt.Issuer, idt.Subject, idt.Audience, e.issuer(tc.tenant), tc.id, tc.aud)
			}
			if exp := idt.Expiry.Sub(before.Truncate(time.Second)); exp < tc.lifetime-2*time.Second || exp > tc.lifetime+2*time.Second {
				t.Errorf("exp - now = %v, want %v", exp, tc.lifetime)
			}
			if idt.IssuedAt.Before(before.Add(-2*time.Second)) || idt.IssuedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("iat %v not around now", idt.IssuedAt)
			}
			if claims["client_id"] != tc.id || claims["jti"] == "" || claims["jti"] == nil {
				t.Errorf("client_id %v jti %v", claims["client_id"], claims["jti"])
			}
			scope, hasScope := claims["scope"]
			if len(tc.scopes) == 0 && hasScope {
				t.Errorf("scope %v granted without being requested", scope)
			}
			if len(tc.scopes) > 0 && scope != strings.Join(tc.scopes, " ") {
				t.Errorf("scope %v, want %q", scope, strings.Join(tc.scopes, " "))
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	cc := "grant_type=client_credentials"
	for _, tc := range []struct {
		name   string
		path   string
		ctype  string
		body   string
		auth   string
		status int
		code   string
	}{
		{"wrong secret", "", formType, cc, basic("svc-basic", secretB), 401, "invalid_client"},
		{"unknown client", "", formType, cc, basic("nobody", secretA), 401, "invalid_client"},
		{"disabled client", "", formType, cc, basic("disabled", secretA), 401, "invalid_client"},
		{"client of another tenant", "/t/acme", formType, cc, basic("svc-post", secretA), 401, "invalid_client"},
		{"secret of another tenant", "/t/acme", formType, cc, basic("svc-basic", secretA), 401, "invalid_client"},
		{"empty secret", "", formType, cc, basic("svc-basic", ""), 401, "invalid_client"},
		{"no credentials", "", formType, cc, "", 401, "invalid_client"},
		{"malformed basic", "", formType, cc, "Basic !!!", 401, "invalid_client"},
		{"bearer instead of basic", "", formType, cc, "Bearer abc", 401, "invalid_client"},
		{"post for a basic-only client", "", formType, cc + "&client_id=svc-basic&client_secret=" + secretA, "", 401, "invalid_client"},
		{"basic for a post-only client", "", formType, cc, basic("svc-post", secretA), 401, "invalid_client"},
		{"public client with a secret", "", formType, cc, basic("public-app", secretA), 401, "invalid_client"},
		{"confidential client without secret", "", formType, cc + "&client_id=svc-other", "", 401, "invalid_client"},
		{"public client", "", formType, cc + "&client_id=public-app", "", 400, "unauthorized_client"},
		{"client without the grant", "", formType, cc, basic("web-app", secretA), 400, "unauthorized_client"},
		{"client without the grant asking a bad scope", "", formType, cc + "&scope=nope", basic("web-app", secretA), 400, "unauthorized_client"},
		{"scope outside the client's", "", formType, cc + "&scope=read+admin", basic("svc-basic", secretA), 400, "invalid_scope"},
		{"audience outside the client's", "", formType, cc + "&audience=https%3A%2F%2Fevil.example", basic("svc-basic", secretA), 400, "invalid_target"},
		{"resource outside the client's", "", formType, cc + "&resource=https%3A%2F%2Fevil.example", basic("svc-basic", secretA), 400, "invalid_target"},
		{"relative resource", "", formType, cc + "&resource=orders", basic("svc-basic", secretA), 400, "invalid_target"},
		{"resource with fragment", "", formType, cc + "&resource=https%3A%2F%2Fapi.example.com%23x", basic("svc-basic", secretA), 400, "invalid_target"},
		{"unsupported grant", "", formType, "grant_type=password&username=a&password=b", basic("svc-basic", secretA), 400, "unsupported_grant_type"},
		{"two grant types", "", formType, "grant_type=client_credentials+password", basic("svc-basic", secretA), 400, "unsupported_grant_type"},
		{"no grant_type", "", formType, "scope=read", basic("svc-basic", secretA), 400, "invalid_request"},
		{"empty body", "", formType, "", basic("svc-basic", secretA), 400, "invalid_request"},
		{"malformed body", "", formType, "grant_type=%zz", basic("svc-basic", secretA), 400, "invalid_request"},
		{"json body", "", "application/json", `{"grant_type":"client_credentials"}`, basic("svc-basic", secretA), 400, "invalid_request"},
		{"no content type", "", "", cc, basic("svc-basic", secretA), 400, "invalid_request"},
		{"repeated parameter", "", formType, cc + "&" + cc, basic("svc-basic", secretA), 400, "invalid_request"},
		{"credentials in header and body", "", formType, cc + "&client_secret=" + secretA, basic("svc-basic", secretA), 400, "invalid_request"},
		{"unknown tenant", "/t/nope", formType, cc, basic("svc-basic", secretA), 404, "invalid_request"},
		{"disabled tenant", "/t/off", formType, cc, basic("svc-basic", secretA), 404, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.path+oauth.PathToken, tc.ctype, tc.body, tc.auth)
			checkError(t, r, tc.status, tc.code)
		})
	}

	t.Run("unknown client answers like a wrong secret", func(t *testing.T) {
		a := e.post(oauth.PathToken, formType, cc, basic("svc-basic", secretB))
		b := e.post(oauth.PathToken, formType, cc, basic("nobody", secretB))
		if a.status != b.status || !bytes.Equal(a.body, b.body) || a.header.Get("WWW-Authenticate") != b.header.Get("WWW-Authenticate") {
			t.Errorf("wrong secret: %d %s; unknown client: %d %s", a.status, a.body, b.status, b.body)
		}
	})

	t.Run("other methods", func(t *testing.T) {
		for _, p := range []string{oauth.PathToken, oauth.PathIntrospect, oauth.PathRevoke, "/t/acme" + oauth.PathToken} {
			req, _ := http.NewRequest(http.MethodGet, e.base+p, nil)
			r := e.do(req)
			checkError(t, r, http.StatusMethodNotAllowed, "invalid_request")
			if r.header.Get("Allow") != "POST" {
				t.Errorf("GET %s: Allow %q", p, r.header.Get("Allow"))
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		var denied int
		for _, ev := range e.audit.all() {
			data, _ := json.Marshal(ev)
			for _, s := range []string{secretA, secretB} {
				if strings.Contains(string(data), s) {
					t.Fatalf("audit event holds a secret: %s", data)
				}
			}
			if ev.Action == oauth.ActionTokenDeny {
				denied++
			}
			if ev.Action == oauth.ActionTokenDeny && ev.Actor == "client:svc-basic" && ev.Detail["error"] == "invalid_client" && ev.Outcome != event.OutcomeFailure {
				t.Errorf("invalid_client recorded as %s", ev.Outcome)
			}
		}
		if denied < 20 {
			t.Errorf("%d token.deny events, want one per refused request", denied)
		}
	})
}

// checkError asserts an RFC 6749 section 5.2 error response.
func checkError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Fatalf("error %v, want %s: %s", m["error"], code, r.body)
	}
	for k := range m {
		if k != "error" && k != "error_description" {
			t.Errorf("unexpected member %q in %s", k, r.body)
		}
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("content type %q", r.header.Get("Content-Type"))
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("401 without a Basic WWW-Authenticate: %q", r.header.Get("WWW-Authenticate"))
	}
}

func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	tok := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read", "latch:admin").AccessToken
	acmeTok := e.fetch("acme", "svc-basic", secretB, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	revoked := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil).AccessToken
	if r := e.post(oauth.PathRevoke, formType, url.Values{"token": {revoked}}.Encode(), basic("svc-basic", secretA)); r.status != 200 {
		e.e(r, "revoking")
	}
	short := e.fetch("", "svc-short", secretA, oauth2.AuthStyleInHeader, nil).AccessToken
	// A token re-signed with a different key but the signature of a
	// real one: its record is found but the JWT does not verify.
	forged := forge(t, tok)

	t.Run("active", func(t *testing.T) {
		m := e.introspect("", tok)
		want := map[string]any{"active": true, "client_id": "svc-basic", "sub": "svc-basic", "scope": "read latch:admin", "iss": e.base, "token_type": "Bearer"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		for _, k := range []string{"exp", "iat", "jti", "aud"} {
			if m[k] == nil {
				t.Errorf("%s missing: %v", k, m)
			}
		}
		if exp, _ := m["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 59*time.Minute {
			t.Errorf("exp %v", m["exp"])
		}
	})

	time.Sleep(2100 * time.Millisecond) // let svc-short's 1s token expire
	for _, tc := range []struct {
		name, tenant, token string
	}{
		{"unknown token", "", "abc"},
		{"garbage JWT", "", "a.b.c"},
		{"revoked", "", revoked},
		{"expired", "", short},
		{"forged with a real signature", "", forged},
		{"token of acme at default", "", acmeTok},
		{"token of default at acme", "acme", tok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.introspect(tc.tenant, tc.token)
			if len(m) != 1 || m["active"] != false {
				t.Errorf("got %v, want only active=false", m)
			}
		})
	}
	t.Run("acme token at acme", func(t *testing.T) {
		m := e.introspect("acme", acmeTok)
		if m["active"] != true || m["iss"] != e.base+"/t/acme" {
			t.Errorf("got %v", m)
		}
	})

	for _, tc := range []struct {
		name   string
		body   string
		auth   string
		status int
		code   string
	}{
		{"no credentials", url.Values{"token": {tok}}.Encode(), "", 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {tok}}.Encode(), basic("svc-other", secretA), 401, "invalid_client"},
		{"public client", url.Values{"token": {tok}, "client_id": {"public-app"}}.Encode(), "", 401, "invalid_client"},
		{"post credentials", url.Values{"token": {tok}, "client_id": {"svc-post"}, "client_secret": {secretA}}.Encode(), "", 200, ""},
		{"no token", "token_type_hint=access_token", basic("svc-other", secretB), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(oauth.PathIntrospect, formType, tc.body, tc.auth)
			if tc.status == 200 {
				if r.status != 200 || r.json(t)["active"] != true {
					e.e(r, "introspection")
				}
				return
			}
			checkError(t, r, tc.status, tc.code)
		})
	}
}

// forge returns a JWT with tok's header, claims and signature part but a
// body signed by nobody: the store finds a record under the signature,
// and the signature check must refuse it.
func forge(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatal(err)
	}
	claims["scope"] = "read write latch:admin"
	body, _ = json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	tok := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	other := e.fetch("", "svc-post", secretA, oauth2.AuthStyleInParams, nil).AccessToken

	// Another client may not revoke it (RFC 7009 section 2.1).
	r := e.post(oauth.PathRevoke, formType, url.Values{"token": {tok}}.Encode(), basic("svc-other", secretB))
	checkError(t, r, 400, "unauthorized_client")
	if e.introspect("", tok)["active"] != true {
		t.Fatal("token revoked by another client")
	}
	for _, tc := range []struct {
		name   string
		body   string
		auth   string
		status int
		code   string
	}{
		{"no credentials", url.Values{"token": {tok}}.Encode(), "", 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {tok}}.Encode(), basic("svc-basic", secretB), 401, "invalid_client"},
		{"no token", "token_type_hint=access_token", basic("svc-basic", secretA), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.post(oauth.PathRevoke, formType, tc.body, tc.auth), tc.status, tc.code)
		})
	}
	for _, tc := range []struct{ name, body, auth string }{
		{"by its client", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode(), basic("svc-basic", secretA)},
		{"again", url.Values{"token": {tok}}.Encode(), basic("svc-basic", secretA)},
		{"unknown token", url.Values{"token": {"nope"}}.Encode(), basic("svc-basic", secretA)},
		{"post credentials", url.Values{"token": {other}, "client_id": {"svc-post"}, "client_secret": {secretA}}.Encode(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(oauth.PathRevoke, formType, tc.body, tc.auth)
			if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
				e.e(r, "revocation")
			}
		})
	}
	for _, raw := range []string{tok, other} {
		if m := e.introspect("", raw); m["active"] != false {
			t.Errorf("revoked token still active: %v", m)
		}
		if _, err := e.p.ValidateAccessToken(context.Background(), e.def.ID, raw); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("ValidateAccessToken of a revoked token: %v", err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	// Warm go-oidc's key cache with the old key only.
	prov, err := oidc.NewProvider(e.ctx(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	verifier := prov.Verifier(&oidc.Config{ClientID: apiAud, SupportedSigningAlgs: []string{oidc.ES256}})
	if _, err := verifier.Verify(e.ctx(), before); err != nil {
		t.Fatal(err)
	}
	newKID, err := e.keys.Rotate(ctx, e.def.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	after := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	if kb, ka := header(t, before).KeyID, header(t, after).KeyID; kb == ka || ka != newKID {
		t.Fatalf("kid before %s, after %s, rotated to %s", kb, ka, newKID)
	}
	for name, raw := range map[string]string{"signed before rotation": before, "signed after rotation": after} {
		t.Run(name, func(t *testing.T) {
			if _, err := verifier.Verify(e.ctx(), raw); err != nil {
				t.Errorf("go-oidc: %v", err)
			}
			if m := e.introspect("", raw); m["active"] != true {
				t.Errorf("introspection: %v", m)
			}
			if _, err := e.p.ValidateAccessToken(ctx, e.def.ID, raw); err != nil {
				t.Errorf("ValidateAccessToken: %v", err)
			}
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	def := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	acme := e.fetch("acme", "svc-basic", secretB, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	if _, _, err := e.verify("acme", acme, e.base+"/t/acme"); err != nil {
		t.Fatalf("acme token at acme: %v", err)
	}
	if _, _, err := e.verify("", acme, e.base+"/t/acme"); err == nil {
		t.Error("acme token verified with the default tenant's discovery and keys")
	}
	if _, _, err := e.verify("acme", def, apiAud); err == nil {
		t.Error("default token verified with acme's discovery and keys")
	}
	if _, err := e.p.ValidateAccessToken(context.Background(), e.acme.ID, def); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Errorf("default token validated for acme: %v", err)
	}
	if _, err := e.p.ValidateAccessToken(context.Background(), e.def.ID, acme); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Errorf("acme token validated for default: %v", err)
	}
}

func TestValidateAccessToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, url.Values{"audience": {"orders"}}, "read", "latch:admin").AccessToken
	info, err := e.p.ValidateAccessToken(ctx, e.def.ID, tok)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClientID != "svc-basic" || info.Subject != "svc-basic" || info.Issuer != e.base ||
		!slices.Equal(info.Audience, []string{"orders"}) || !info.HasScope("latch:admin") || info.HasScope("write") ||
		info.ID == "" || time.Until(info.ExpiresAt) < 59*time.Minute || time.Since(info.IssuedAt) > time.Minute {
		t.Errorf("TokenInfo = %+v", info)
	}
	for _, tc := range []struct{ name, tenant, token string }{
		{"garbage", e.def.ID, "not a token"},
		{"empty", e.def.ID, ""},
		{"forged", e.def.ID, forge(t, tok)},
		{"unknown tenant", "no-such-tenant", tok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.p.ValidateAccessToken(ctx, tc.tenant, tc.token); !errors.Is(err, oauth.ErrInvalidToken) {
				t.Errorf("got %v, want ErrInvalidToken", err)
			}
		})
	}
	t.Run("client disabled after issuance", func(t *testing.T) {
		cl, err := e.st.GetClientByClientID(ctx, e.def.ID, "svc-basic")
		if err != nil {
			t.Fatal(err)
		}
		cl.Enabled = false
		if _, err := e.st.UpdateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
		e.dir.ForgetClients(e.def.ID)
		if _, err := e.p.ValidateAccessToken(ctx, e.def.ID, tok); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("got %v, want ErrInvalidToken", err)
		}
	})
}

func TestAuditAndStorage(t *testing.T) {
	e := newEnv(t)
	tok := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	var issued *event.Event
	for _, ev := range e.audit.all() {
		if ev.Action == oauth.ActionTokenIssue {
			issued = &ev
		}
		data, _ := json.Marshal(ev)
		if strings.Contains(string(data), tok) || strings.Contains(string(data), secretA) {
			t.Fatalf("audit event holds the token or the secret: %s", data)
		}
	}
	if issued == nil {
		t.Fatal("no token.issue event")
	}
	jti, _ := e.claims(tok)["jti"].(string)
	if issued.Actor != "client:svc-basic" || issued.Target != "token:"+jti || issued.Tenant != e.def.ID ||
		issued.Outcome != event.OutcomeSuccess || issued.Detail["scope"] != "read" || issued.Detail["grant_type"] != "client_credentials" {
		t.Errorf("token.issue event = %+v", *issued)
	}

	// The record is kept under the signature, never the token, and holds
	// neither the token nor the secret.
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	rec, err := e.st.GetToken(context.Background(), e.def.ID, "access", sig)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Active || rec.ClientID != "svc-basic" || rec.Subject != "svc-basic" || rec.RequestID == "" || time.Until(rec.ExpiresAt) < 59*time.Minute {
		t.Errorf("record = %+v", rec)
	}
	if bytes.Contains(rec.Data, []byte(tok)) || bytes.Contains(rec.Data, []byte(secretA)) {
		t.Errorf("record data holds the token or the secret: %s", rec.Data)
	}
	if _, err := e.st.GetToken(context.Background(), e.acme.ID, "access", sig); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record visible from another tenant: %v", err)
	}
}

// claims decodes a JWT's claims without verifying it.
func (e *env) claims(raw string) map[string]any {
	e.t.Helper()
	parts := strings.Split(raw, ".")
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// noAuthenticators is a tenant set with no authenticator: these tests do
// not sign users in (conformance/oidc does, against a live server).
type noAuthenticators struct{}

func (noAuthenticators) Enabled(string, extension.Kind) []*extension.Instance { return nil }

var testHMACKey = bytes.Repeat([]byte{7}, 32)

func TestNew(t *testing.T) {
	st := struct{ oauth.Store }{}
	lg := &login.Service{}
	for _, tc := range []struct {
		name string
		d    oauth.Deps
	}{
		{"no store", oauth.Deps{PublicURL: "https://id.example.com"}},
		{"no keys", oauth.Deps{Store: st, PublicURL: "https://id.example.com"}},
		{"no public url", oauth.Deps{Store: st, Keys: &keys.Manager{}}},
		{"relative public url", oauth.Deps{Store: st, Keys: &keys.Manager{}, PublicURL: "/x"}},
		{"public url with query", oauth.Deps{Store: st, Keys: &keys.Manager{}, PublicURL: "https://id.example.com/?a=b"}},
		{"lifetime above maximum", oauth.Deps{Store: st, Keys: &keys.Manager{}, Login: lg, HMACKey: testHMACKey, PublicURL: "https://id.example.com", AccessTokenLifetime: 48 * time.Hour}},
		{"no login", oauth.Deps{Store: st, Keys: &keys.Manager{}, HMACKey: testHMACKey, PublicURL: "https://id.example.com"}},
		{"short hmac key", oauth.Deps{Store: st, Keys: &keys.Manager{}, Login: lg, HMACKey: testHMACKey[:16], PublicURL: "https://id.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := oauth.New(tc.d); err == nil {
				t.Error("New accepted bad dependencies")
			}
		})
	}
	p, err := oauth.New(oauth.Deps{Store: st, Keys: &keys.Manager{}, Login: lg, HMACKey: testHMACKey, PublicURL: "https://id.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer("default") != "https://id.example.com" || p.Issuer("acme") != "https://id.example.com/t/acme" {
		t.Errorf("issuers %q %q", p.Issuer("default"), p.Issuer("acme"))
	}
}

package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCORS(t *testing.T) {
	up, s := newEcho(t)
	_, gw := newTestGateway(t, strings.ReplaceAll(`
apis:
  - name: web
    base_path: /web
    upstream: up
    security: {none: true}
    cors:
      allow_origins: ["https://app.example.com", "https://*.shop.example"]
      allow_methods: [GET, PUT]
      allow_headers: [Content-Type, X-Request-Id]
      expose_headers: [X-Total]
      allow_credentials: true
      max_age: 10m
    routes:
      - {path: /items, methods: [GET, PUT]}
  - name: plain
    base_path: /plain
    upstream: up
    security: {none: true}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}"}]
`, "{{UP}}", up.URL))

	preflight := func(origin, method, headers string) result {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		r, _ := do(t, http.MethodOptions, gw.URL+"/web/items", nil, h)
		return r
	}
	before := len(s.paths)
	r := preflight("https://app.example.com", "PUT", "content-type, x-request-id")
	if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" || r.Header.Get("Access-Control-Max-Age") != "600" ||
		r.Header.Get("Access-Control-Allow-Methods") != "GET, PUT" || r.Header.Get("Access-Control-Allow-Headers") != "content-type, x-request-id" {
		t.Fatalf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := preflight("https://eu.shop.example", "GET", ""); r.Header.Get("Access-Control-Allow-Origin") != "https://eu.shop.example" {
		t.Fatalf("pattern origin refused: %v", r.Header)
	}
	for _, c := range []struct{ origin, method, headers string }{
		{"https://evil.example", "GET", ""},                      // origin not listed
		{"https://a.b.shop.example", "GET", ""},                  // '*' is one label
		{"https://app.example.com", "DELETE", ""},                // method not allowed
		{"https://app.example.com", "GET", "authorization, x-y"}, // header not allowed
		{"http://app.example.com", "GET", ""},                    // scheme differs
	} {
		r := preflight(c.origin, c.method, c.headers)
		if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("refused preflight %+v answered with CORS headers: %d %v", c, r.StatusCode, r.Header)
		}
	}
	s.mu.Lock()
	after := len(s.paths)
	s.mu.Unlock()
	if after != before {
		t.Fatalf("preflights reached the upstream (%d requests)", after-before)
	}

	// Actual requests: CORS headers for an allowed origin only.
	r, body := do(t, http.MethodGet, gw.URL+"/web/items", nil, map[string]string{"Origin": "https://app.example.com"})
	if r.StatusCode != http.StatusOK || body != "ok" || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Expose-Headers") != "X-Total" {
		t.Fatalf("actual request: %d %v", r.StatusCode, r.Header)
	}
	r, _ = do(t, http.MethodGet, gw.URL+"/web/items", nil, map[string]string{"Origin": "https://evil.example"})
	if r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("disallowed origin got CORS headers: %v", r.Header)
	}
	// The gateway's own errors carry the headers too, so scripts can read them.
	r, _ = do(t, http.MethodDelete, gw.URL+"/web/items", nil, map[string]string{"Origin": "https://app.example.com"})
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("error answer: %d %v", r.StatusCode, r.Header)
	}
	// An API without CORS passes OPTIONS to the upstream untouched.
	r, _ = do(t, http.MethodOptions, gw.URL+"/plain/x", nil, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
	if r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("API without CORS: %d %v", r.StatusCode, r.Header)
	}
}

func TestCORSConfigErrors(t *testing.T) {
	for _, c := range []struct{ cors, want string }{
		{`{allow_origins: ["*"], allow_credentials: true}`, `"*" cannot be combined with allow_credentials`},
		{`{allow_origins: []}`, "at least one origin"},
		{`{allow_origins: ["app.example.com"]}`, "is not an origin"},
		{`{allow_origins: ["https://**.example"]}`, "'**' is not allowed"},
		{`{allow_origins: ["*"], allow_methods: [get]}`, "upper-case"},
		{`{allow_origins: ["*"], max_age: 48h}`, "max_age"},
	} {
		_, err := ParseConfig([]byte(`
apis: [{name: a, upstream: u, security: {none: true}, cors: ` + c.cors + `}]
upstreams: [{name: u, endpoints: [{url: "http://127.0.0.1:1"}]}]
`))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "apis[0].cors") {
			t.Errorf("cors %s: got %v, want %q", c.cors, err, c.want)
		}
	}
}

func TestPolicy(t *testing.T) {
	up, _ := newEcho(t)
	_, gw := newTestGateway(t, strings.ReplaceAll(`
apis:
  - name: ops
    base_path: /ops
    upstream: up
    security: {none: true}
    policy: 'request.headers["x-env"] == "prod"'
    routes:
      - {path: /read, policy: 'request.method == "GET"'}
      - {path: /any}
      - {path: /claims, policy: 'claims.scope.contains("admin")'}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}"}]
`, "{{UP}}", up.URL))
	for _, c := range []struct {
		method, path, env string
		want              int
	}{
		{"GET", "/ops/read", "prod", 200},
		{"POST", "/ops/read", "prod", 403}, // route policy
		{"GET", "/ops/read", "dev", 403},   // API policy
		{"GET", "/ops/read", "", 403},      // missing header: an evaluation error refuses
		{"POST", "/ops/any", "prod", 200},
		{"GET", "/ops/claims", "prod", 403}, // no claims on an open route: missing key refuses
	} {
		hdr := map[string]string{}
		if c.env != "" {
			hdr["X-Env"] = c.env
		}
		r, body := do(t, c.method, gw.URL+c.path, nil, hdr)
		if r.StatusCode != c.want {
			t.Errorf("%s %s env=%q: %d %s, want %d", c.method, c.path, c.env, r.StatusCode, body, c.want)
		}
		if c.want == 403 && (!strings.Contains(body, `"code":"forbidden"`) || r.Header.Get("Content-Type") != "application/json") {
			t.Errorf("denial body %q", body)
		}
	}
}

func TestPolicyCompileErrors(t *testing.T) {
	for _, c := range []struct{ policy, want string }{
		{`request.method ==`, "compiling the CEL expression"},
		{`request.method`, "must be a boolean"},
		{`nosuchvar == 1`, "undeclared reference"},
		{strings.Repeat("true && ", 600) + "true", "longer than"},
	} {
		_, err := ParseConfig([]byte(`
apis: [{name: a, upstream: u, security: {none: true}, routes: [{path: /x, policy: '` + c.policy + `'}]}]
upstreams: [{name: u, endpoints: [{url: "http://127.0.0.1:1"}]}]
`))
		if err == nil || !strings.Contains(err.Error(), "apis[0].routes[0].policy") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("policy %.40q: got %v, want %q", c.policy, err, c.want)
		}
	}
}

func TestPolicyCostLimit(t *testing.T) {
	// A comprehension over a large list runs past the cost limit and is
	// refused at evaluation.
	p, err := compilePolicy(`request.headers.all(k, [1,2,3,4,5,6,7,8,9,10].all(i, [1,2,3,4,5,6,7,8,9,10].all(j, [1,2,3,4,5,6,7,8,9,10].all(l, k != "")))) `)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{}
	for i := range 50 {
		hdr[strings.Repeat("h", i+1)] = "v"
	}
	ok, err := p.allows(map[string]any{"request": map[string]any{"headers": hdr}, "claims": map[string]any{}})
	if ok || err == nil || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("over the cost limit: %v %v", ok, err)
	}
}

// BenchmarkPolicy measures one policy evaluation per request, with the
// building of its variables.
func BenchmarkPolicy(b *testing.B) {
	p, err := compilePolicy(`claims.scope.contains("admin") && request.method == "GET"`)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/ops/read?x=1", nil)
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "application/json")
	a := &apiRT{cfg: &APIConfig{Name: "ops"}}
	route := &routeRT{name: "read"}
	pr := &principal{claims: map[string]any{"sub": "alice", "scope": "read admin", "client_id": "app"}}
	ip := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.allows(policyVars(r, a, route, pr, ip, []*policy{p}))
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// TestUpstreamMTLS proxies to a real TLS upstream that requires client
// certificates: the configured certificate gets through, none does not.
func TestUpstreamMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	serverCert := issue(t, ca, caKey, "upstream", x509.ExtKeyUsageServerAuth, filepath.Join(dir, "server"))
	issue(t, ca, caKey, "latch-gateway", x509.ExtKeyUsageClientAuth, filepath.Join(dir, "client"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var seenCN string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenCN = r.TLS.PeerCertificates[0].Subject.CommonName
		_, _ = w.Write([]byte("secure"))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	up.StartTLS()
	t.Cleanup(up.Close)

	routes := strings.NewReplacer("{{UP}}", up.URL, "{{DIR}}", dir).Replace(`
apis:
  - {name: mtls, base_path: /mtls, upstream: mtls, strip_base_path: true, security: {none: true}}
  - {name: nocert, base_path: /nocert, upstream: nocert, strip_base_path: true, security: {none: true}}
upstreams:
  - name: mtls
    endpoints: [{url: "{{UP}}"}]
    tls: {ca_file: "{{DIR}}/ca.pem", cert_file: "{{DIR}}/client.pem", key_file: "{{DIR}}/client-key.pem", server_name: upstream}
  - name: nocert
    endpoints: [{url: "{{UP}}"}]
    tls: {ca_file: "{{DIR}}/ca.pem", server_name: upstream}
`)
	_, gw := newTestGateway(t, routes)
	r, body := do(t, http.MethodGet, gw.URL+"/mtls/x", nil, nil)
	if r.StatusCode != http.StatusOK || body != "secure" || seenCN != "latch-gateway" {
		t.Fatalf("mTLS call: %d %q (client cert %q)", r.StatusCode, body, seenCN)
	}
	if r, _ := do(t, http.MethodGet, gw.URL+"/nocert/x", nil, nil); r.StatusCode != http.StatusBadGateway {
		t.Fatalf("call without a client certificate: %d, want 502", r.StatusCode)
	}

	// Bad TLS files are refused at load, naming the upstream.
	_, err := New(t.Context(), Deps{}, writeRoutes(t, strings.ReplaceAll(routes, "client-key.pem", "missing.pem")))
	if err == nil || !strings.Contains(err.Error(), `upstreams "mtls"`) {
		t.Fatalf("missing key file: %v", err)
	}
	if _, err := ParseConfig([]byte(`upstreams: [{name: u, endpoints: [{url: "https://x"}], tls: {cert_file: a.pem}}]`)); err == nil || !strings.Contains(err.Error(), "cert_file and key_file go together") {
		t.Fatalf("cert without key: %v", err)
	}
}

func writeRoutes(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// issue signs a leaf certificate for cn and writes it to base.pem and
// base-key.pem.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage, base string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, base+".pem", "CERTIFICATE", der)
	writePEM(t, base+"-key.pem", "PRIVATE KEY", kb)
	c, err := tls.LoadX509KeyPair(base+".pem", base+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPathTemplates(t *testing.T) {
	up, s := newEcho(t)
	_, gw := newTestGateway(t, strings.ReplaceAll(`
apis:
  - name: pets
    base_path: /pets
    upstream: up
    strip_base_path: true
    security: {none: true}
    routes:
      - {name: one, path: "/{id}", methods: [GET]}
      - {name: mine, path: /mine, methods: [GET]}
      - {name: reviews, path: "/{id}/reviews", methods: [GET]}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}"}]
`, "{{UP}}", up.URL))
	for _, c := range []struct {
		path string
		want int
	}{{"/pets/7", 200}, {"/pets/mine", 200}, {"/pets/7/reviews", 200}, {"/pets/7/other", 404}, {"/pets/7/reviews/x", 404}, {"/pets//reviews", 404}} {
		r, _ := do(t, http.MethodGet, gw.URL+c.path, nil, nil)
		if r.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, r.StatusCode, c.want)
		}
	}
	if p, _ := s.last(); p != "/7/reviews" {
		t.Fatalf("forwarded %q", p)
	}
	if _, err := ParseConfig([]byte(`
apis: [{name: a, upstream: u, security: {none: true}, routes: [{path: "/x{id}"}]}]
upstreams: [{name: u, endpoints: [{url: "http://127.0.0.1:1"}]}]`)); err == nil || !strings.Contains(err.Error(), "whole {param}") {
		t.Fatalf("partial template segment: %v", err)
	}
}

// BenchmarkPolicyEval measures the evaluation alone, variables prebuilt.
func BenchmarkPolicyEval(b *testing.B) {
	p, err := compilePolicy(`claims.scope.contains("admin") && request.method == "GET"`)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{"request": map[string]any{"method": "GET"}, "claims": map[string]any{"scope": "read admin"}}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.allows(vars); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

package gateway_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2/clientcredentials"
)

const routesTemplate = `
token_cache_ttl: -1s   # every request validates its token in full
deny_poll_interval: 200ms
issuers:
  - name: latch
    issuer: {{LATCH}}
    jwks_uri: {{LATCH}}/.well-known/jwks.json
    audiences: [orders-api]
    algorithms: [ES256, RS256, EdDSA]
    allow_http: true
    allow_private_network: true
    jwks_min_refetch: 50ms
  - name: partner
    issuer: https://partner.example
    jwks_uri: {{JWKS}}/jwks
    audiences: [orders-api]
    algorithms: [RS256]
    allow_http: true
    allow_private_network: true
    jwks_ttl: 1h
    jwks_min_refetch: 50ms
  - name: unreachable
    issuer: https://unreachable.example
    jwks_uri: http://127.0.0.1:1/jwks
    audiences: [orders-api]
    algorithms: [RS256]
    allow_http: true
    allow_private_network: true
    jwks_min_refetch: 50ms
apis:
  - name: orders
    base_path: /orders
    strip_base_path: true
    upstream: echo
    security: {scopes: [orders:read]}
    backend_jwt: {claims: [sub, client_id, email, employee_id]}
  - name: subscribed
    base_path: /subscribed
    strip_base_path: true
    upstream: echo
    subscription: true
  - name: open-limited
    base_path: /limited
    upstream: echo
    security: {none: true}
    throttle: {rate: 20, period: 1h, key: api}
  - name: breaker
    base_path: /breaker
    strip_base_path: true
    upstream: flaky
    security: {none: true}
  - name: retry
    base_path: /retry
    strip_base_path: true
    upstream: retrying
    security: {none: true}
  - name: retry-post
    base_path: /retry-post
    strip_base_path: true
    upstream: retrying-post
    security: {none: true}
{{SHARED}}
upstreams:
  - name: echo
    endpoints: [{url: "{{UP}}"}]
  - name: flaky
    endpoints: [{url: "{{UP}}"}]
    breaker: {min_requests: 4, failure_ratio: 0.5, window: 1m, open_for: 300ms, half_open_probes: 1}
  - name: retrying
    endpoints: [{url: "{{UP}}"}]
    retries: {attempts: 3, on: ["503"], backoff_base: 1ms, backoff_max: 5ms}
  - name: retrying-post
    endpoints: [{url: "{{UP}}"}]
    retries: {attempts: 3, on: ["503"], backoff_base: 1ms, backoff_max: 5ms, non_idempotent: true}
`

const sharedAPI = `  - name: shared
    base_path: /shared
    upstream: echo
    security: {none: true}
    throttle: {rate: 30, period: 1h, key: "header:X-Run", throttler: throttle.redis}
`

func latchYAML(redisAddr, prefix string) string {
	s := `extensions:
  instances:
    - {name: userstore.local, module: userstore.local}
    - {name: authn.password, module: authn.password}
    - name: claims.mapping
      module: claims.mapping
      config: {mappings: [{from: local, to: backend_jwt, rules: [{from: sub, to: employee_id, copy: true}]}]}
    - {name: throttle.local, module: throttle.local}
`
	if redisAddr != "" {
		s += fmt.Sprintf("    - {name: throttle.redis, module: throttle.redis, config: {addr: %q, key_prefix: %q}}\n", redisAddr, prefix)
	}
	return s
}

// TestGateway runs the gateway role inside `latch serve` against a real
// upstream, Latch's own OIDC provider and a second issuer with its own
// keys, and a standalone `latch gateway` sharing Redis for the cross-node
// rate limit.
func TestGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	redisAddr := os.Getenv("LATCH_TEST_REDIS_ADDR")
	dir := t.TempDir()
	up := newUpstream(t)
	partner := newJWKSServer(t)
	addr, gwAddr := freeAddr(t), freeAddr(t)
	latchURL := "http://" + addr

	shared := ""
	if redisAddr != "" {
		shared = sharedAPI
	}
	routes := strings.NewReplacer("{{LATCH}}", latchURL, "{{JWKS}}", partner.URL, "{{UP}}", up.URL, "{{SHARED}}", shared).Replace(routesTemplate)
	routesFile := filepath.Join(dir, "routes.yaml")
	must(t, os.WriteFile(routesFile, []byte(routes), 0o600))
	prefix := fmt.Sprintf("gwconf:%d:", time.Now().UnixNano())
	cfgFile := filepath.Join(dir, "latch.yaml")
	must(t, os.WriteFile(cfgFile, []byte(latchYAML(redisAddr, prefix)), 0o600))

	a := startNode(t, addr, gwAddr, []string{"LATCH_GATEWAY_ROUTES_FILE=" + routesFile},
		"serve", "--config", cfgFile, "--data", filepath.Join(dir, "a"))

	// A client of Latch's OIDC provider, allowed the orders-api audience.
	var client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if st := adminJSON(t, a.url, "POST", "/clients", map[string]any{
		"name": "orders-app", "scopes": []string{"orders:read", "orders:write"}, "audience": []string{"orders-api"},
		"grant_types": []string{"client_credentials"},
	}, &client); st != http.StatusCreated {
		t.Fatalf("creating client: %d", st)
	}
	latchToken := func(scopes ...string) string {
		cc := clientcredentials.Config{ClientID: client.ClientID, ClientSecret: client.ClientSecret, TokenURL: latchURL + "/oauth2/token",
			Scopes: scopes, EndpointParams: map[string][]string{"audience": {"orders-api"}}}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		return tok.AccessToken
	}
	orders := a.gw + "/orders/items/1"

	t.Run("latch token and backend JWT", func(t *testing.T) {
		// This node's own keys are fetched once its listener is up; until
		// then the issuer fails closed.
		tok := latchToken("orders:read")
		eventually(t, "Latch's keys are fetched", func() bool {
			st, _, _ := call(t, "GET", orders, tok, nil)
			return st != http.StatusServiceUnavailable
		})
		st, body, _ := call(t, "GET", orders, tok, nil)
		if st != http.StatusOK {
			t.Fatalf("status %d: %s\n%s", st, body, a.stderr.String())
		}
		var e echo
		must(t, json.Unmarshal([]byte(body), &e))
		if e.Path != "/items/1" || e.Assertion == "" {
			t.Fatalf("upstream saw %+v", e)
		}
		// The backend JWT verifies against Latch's published keys.
		claims := verifyBackendJWT(t, latchURL, e.Assertion)
		if claims["aud"] != "orders" || claims["iss"] != latchURL || claims["client_id"] != client.ClientID || claims["employee_id"] != claims["sub"] {
			t.Fatalf("backend JWT claims %v", claims)
		}
		// The same token again gets the cached backend JWT.
		_, body2, _ := call(t, "GET", orders, latchToken("orders:read"), nil)
		_ = body2
	})

	t.Run("tokens", func(t *testing.T) {
		pub := &partner.key("partner-1").PublicKey
		der, err := x509.MarshalPKIXPublicKey(pub)
		must(t, err)
		other := newJWKSServer(t) // keys nobody trusts
		tests := []struct {
			name   string
			token  string
			status int
			reason string
		}{
			{"partner valid", partner.sign(t, "partner-1", partnerClaims(nil)), 200, ""},
			{"latch without scope", latchToken("orders:write"), 403, "insufficient_scope"},
			{"expired", partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), 401, "expired"},
			{"not yet valid", partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), 401, "not valid yet"},
			{"wrong audience", partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["aud"] = "billing-api" })), 401, "audience"},
			{"wrong issuer", partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["iss"] = "https://evil.example" })), 401, "issuer"},
			{"issuer's name, other keys", other.sign(t, "partner-1", partnerClaims(nil)), 401, "signature"},
			{"alg none", noneToken(partnerClaims(nil)), 401, "invalid_token"},
			{"HS256 keyed with the public key", signWith(t, jose.HS256, der, "partner-1", partnerClaims(nil)), 401, "invalid_token"},
			{"unknown kid", signWith(t, jose.RS256, partner.key("partner-1"), "nope", partnerClaims(nil)), 401, "unknown"},
			{"malformed", "not.a.jwt!", 401, "invalid_token"},
			{"garbage", strings.Repeat("x", 20000), 401, "invalid_token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, body, h := call(t, "GET", orders, tt.token, nil)
				if st != tt.status || !strings.Contains(body+h.Get("WWW-Authenticate"), tt.reason) {
					t.Fatalf("status %d body %s challenge %q; want %d mentioning %q", st, body, h.Get("WWW-Authenticate"), tt.status, tt.reason)
				}
				if st != 200 && !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
					t.Fatalf("error without JSON body: %q", h.Get("Content-Type"))
				}
			})
		}
		if st, body, h := call(t, "GET", orders, "", nil); st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("no token: %d %s", st, body)
		}
	})

	t.Run("huge header", func(t *testing.T) {
		st, _, _ := call(t, "GET", orders, "", map[string]string{"X-Big": strings.Repeat("a", 100<<10)})
		if st != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", st)
		}
	})

	t.Run("key rotation without restart", func(t *testing.T) {
		partner.addKey(t, "partner-2")
		tok := partner.sign(t, "partner-2", partnerClaims(nil))
		// The unknown kid makes the gateway refetch, at most once per
		// jwks_min_refetch (50ms here).
		eventually(t, "the rotated key is accepted", func() bool {
			st, body, _ := call(t, "GET", orders, tok, nil)
			if st != 200 && st != 401 {
				t.Fatalf("token of the rotated key: %d %s", st, body)
			}
			return st == 200
		})
	})

	t.Run("issuer down keeps last good keys", func(t *testing.T) {
		partner.down.Store(true)
		defer partner.down.Store(false)
		before := partner.hits.Load()
		// An unknown kid makes the gateway refetch (at most once per
		// jwks_min_refetch), which fails...
		tok := signWith(t, jose.RS256, partner.key("partner-1"), "partner-3", partnerClaims(nil))
		eventually(t, "the unknown kid makes the gateway refetch", func() bool {
			if st, _, _ := call(t, "GET", orders, tok, nil); st != 401 {
				t.Fatalf("unknown kid with the issuer down: %d", st)
			}
			return partner.hits.Load() > before
		})
		// ...but the known keys keep working.
		if st, body, _ := call(t, "GET", orders, partner.sign(t, "partner-1", partnerClaims(nil)), nil); st != 200 {
			t.Fatalf("known key with the issuer down: %d %s", st, body)
		}
	})

	t.Run("fail closed without keys", func(t *testing.T) {
		tok := partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["iss"] = "https://unreachable.example" }))
		st, body, _ := call(t, "GET", orders, tok, nil)
		if st != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
			t.Fatalf("issuer never reachable: %d %s", st, body)
		}
	})

	t.Run("deny policy without restart", func(t *testing.T) {
		tok := partner.sign(t, "partner-1", partnerClaims(nil))
		var created struct{ ID string }
		if st := adminJSON(t, a.url, "POST", "/gateway/deny", map[string]any{"kind": "client", "value": "partner-app", "reason": "test"}, &created); st != 201 {
			t.Fatalf("adding a deny policy: %d", st)
		}
		eventually(t, "the client is denied", func() bool { st, _, _ := call(t, "GET", orders, tok, nil); return st == 403 })
		if st, _, _ := call(t, "GET", orders, latchToken("orders:read"), nil); st != 200 {
			t.Fatalf("another client is denied too: %d", st)
		}
		if st := adminJSON(t, a.url, "DELETE", "/gateway/deny/"+created.ID, nil, nil); st != 204 {
			t.Fatalf("removing the policy: %d", st)
		}
		eventually(t, "the client is let in again", func() bool { st, _, _ := call(t, "GET", orders, tok, nil); return st == 200 })

		if st := adminJSON(t, a.url, "POST", "/gateway/deny", map[string]any{"kind": "cidr", "value": "127.0.0.0/8"}, &created); st != 201 {
			t.Fatalf("adding a CIDR policy: %d", st)
		}
		eventually(t, "loopback is denied", func() bool { st, _, _ := call(t, "GET", a.gw+"/limited/x", "", nil); return st == 403 })
		adminJSON(t, a.url, "DELETE", "/gateway/deny/"+created.ID, nil, nil)
		eventually(t, "loopback is let in again", func() bool { st, _, _ := call(t, "GET", a.gw+"/retry/ok", "", nil); return st == 200 })
		if st := adminJSON(t, a.url, "POST", "/gateway/deny", map[string]any{"kind": "cidr", "value": "300.0.0.0/8"}, nil); st != 400 {
			t.Fatalf("a bad CIDR: %d, want 400", st)
		}
	})

	t.Run("subscriptions", func(t *testing.T) {
		tok := latchToken("orders:read")
		url := a.gw + "/subscribed/x"
		if st, body, _ := call(t, "GET", url, tok, nil); st != 403 || !strings.Contains(body, "not subscribed") {
			t.Fatalf("unsubscribed client: %d %s", st, body)
		}
		if st := adminJSON(t, a.url, "POST", "/gateway/subscriptions", map[string]any{"api": "subscribed", "client_id": client.ClientID}, nil); st != 201 {
			t.Fatalf("subscribing: %d", st)
		}
		eventually(t, "the subscription is in force", func() bool { st, _, _ := call(t, "GET", url, tok, nil); return st == 200 })
		if st, _, _ := call(t, "GET", url, partner.sign(t, "partner-1", partnerClaims(nil)), nil); st != 403 {
			t.Fatalf("another client got in: %d", st)
		}
	})

	t.Run("throttling exact under concurrency", func(t *testing.T) {
		allowed, refused := hammer(t, []string{a.gw + "/limited/x"}, 64, 5, nil)
		if allowed != 20 || refused != 64*5-20 {
			t.Fatalf("allowed %d, refused %d; want exactly 20 of %d", allowed, refused, 64*5)
		}
		st, body, h := call(t, "GET", a.gw+"/limited/x", "", nil)
		if st != 429 || h.Get("Retry-After") == "" || h.Get("RateLimit-Remaining") != "0" || !strings.Contains(body, `"code":"rate_limited"`) {
			t.Fatalf("refusal: %d %s %v", st, body, h)
		}
	})

	t.Run("breaker opens, half-opens and closes", func(t *testing.T) {
		up.failStatus.Store(http.StatusInternalServerError)
		path := "GET /fail/b"
		for i := range 4 {
			if st, _, _ := call(t, "GET", a.gw+"/breaker/fail/b", "", nil); st != 500 {
				t.Fatalf("request %d: %d, want the upstream's 500", i, st)
			}
		}
		if st, _, _ := call(t, "GET", a.gw+"/breaker/fail/b", "", nil); st != 503 {
			t.Fatalf("after 4 failures: %d, want 503 from the open breaker", st)
		}
		if n := up.count(path); n != 4 {
			t.Fatalf("upstream saw %d requests, want 4 (the open breaker sends none)", n)
		}
		// After open_for, one probe is let through (half-open); it fails
		// and the breaker opens again.
		eventually(t, "a half-open probe", func() bool { call(t, "GET", a.gw+"/breaker/fail/b", "", nil); return up.count(path) == 5 })
		if st, _, _ := call(t, "GET", a.gw+"/breaker/fail/b", "", nil); st != 503 || up.count(path) != 5 {
			t.Fatalf("after a failed probe: %d with %d upstream hits, want 503 and 5", st, up.count(path))
		}
		// The upstream recovers: the next probe closes the breaker.
		up.failStatus.Store(http.StatusOK)
		eventually(t, "the breaker closes", func() bool { st, _, _ := call(t, "GET", a.gw+"/breaker/fail/b", "", nil); return st == 200 })
		var routes struct {
			Items []struct {
				API     string `json:"api"`
				Breaker string `json:"breaker"`
			} `json:"items"`
		}
		adminJSON(t, a.url, "GET", "/gateway/routes", nil, &routes)
		found := false
		for _, r := range routes.Items {
			if r.API == "breaker" {
				found = true
				if r.Breaker != "closed" {
					t.Fatalf("breaker state %q, want closed", r.Breaker)
				}
			}
		}
		if !found {
			t.Fatalf("routes listing lacks the breaker API: %+v", routes)
		}
	})

	t.Run("retries never repeat POST unless configured", func(t *testing.T) {
		up.failStatus.Store(http.StatusServiceUnavailable)
		tests := []struct {
			method, api string
			hits        int
		}{
			{"GET", "retry", 3},
			{"PUT", "retry", 3},
			{"POST", "retry", 1},
			{"PATCH", "retry", 1},
			{"POST", "retry-post", 3},
		}
		for _, tt := range tests {
			p := fmt.Sprintf("/fail/%s-%s", tt.api, strings.ToLower(tt.method))
			if st, _, _ := call(t, tt.method, a.gw+"/"+tt.api+p, "", nil); st != 503 {
				t.Fatalf("%s %s: %d, want the upstream's 503", tt.method, tt.api, st)
			}
			if n := up.count(tt.method + " " + p); n != tt.hits {
				t.Errorf("%s on %s reached the upstream %d times, want %d", tt.method, tt.api, n, tt.hits)
			}
		}
	})

	t.Run("throttling exact across two nodes sharing redis", func(t *testing.T) {
		if redisAddr == "" {
			t.Skip("LATCH_TEST_REDIS_ADDR is not set; set it to run the cross-node throttling test")
		}
		dirB := filepath.Join(dir, "b")
		cfgB := filepath.Join(dir, "latch-b.yaml")
		must(t, os.WriteFile(cfgB, []byte(latchYAML(redisAddr, prefix)), 0o600))
		b := startNode(t, freeAddr(t), freeAddr(t), nil, "gateway", "--config", cfgB, "--data", dirB, "--routes", routesFile)
		run := map[string]string{"X-Run": fmt.Sprint(time.Now().UnixNano())}
		allowed, refused := hammer(t, []string{a.gw + "/shared/x", b.gw + "/shared/x"}, 64, 5, run)
		if allowed != 30 || refused != 64*5-30 {
			t.Fatalf("allowed %d, refused %d across two nodes; want exactly 30 of %d", allowed, refused, 64*5)
		}
	})

	t.Run("bad reload is refused, good reload applies", func(t *testing.T) {
		errorsBefore := reloadCount(t, a.url, "error")
		must(t, os.WriteFile(routesFile, []byte(routes+"\nbogus_key: 1\n"), 0o600))
		eventually(t, "the bad file is refused", func() bool { return reloadCount(t, a.url, "error") > errorsBefore })
		if st, _, _ := call(t, "GET", a.gw+"/breaker/ok", "", nil); st != 200 {
			t.Fatalf("after a refused reload the running routes stopped serving: %d", st)
		}
		next := strings.Replace(routes, "upstreams:", `  - name: added
    base_path: /added
    upstream: echo
    security: {none: true}
upstreams:`, 1)
		must(t, os.WriteFile(routesFile, []byte(next), 0o600))
		eventually(t, "the new API is served", func() bool { st, _, _ := call(t, "GET", a.gw+"/added/x", "", nil); return st == 200 })
	})
}

// hammer sends per requests from each of conc goroutines, spread over urls,
// and counts 200s and 429s; any other status fails the test.
func hammer(t *testing.T, urls []string, conc, per int, hdr map[string]string) (allowed, refused int64) {
	t.Helper()
	var ok, no atomic.Int64
	var wg sync.WaitGroup
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				req, _ := http.NewRequestWithContext(context.Background(), "GET", urls[g%len(urls)], nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					no.Add(1)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), no.Load()
}

func reloadCount(t *testing.T, base, result string) float64 {
	t.Helper()
	_, body, _ := call(t, "GET", base+"/metrics", "", nil)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `latch_gateway_config_reloads_total{result="`+result+`"}`) {
			var v float64
			_, _ = fmt.Sscan(strings.Fields(line)[1], &v)
			return v
		}
	}
	return 0
}

// verifyBackendJWT checks tok against Latch's JWKS and returns its claims.
func verifyBackendJWT(t *testing.T, latchURL, tok string) map[string]any {
	t.Helper()
	resp, err := http.Get(latchURL + "/.well-known/jwks.json") //nolint:noctx // test
	must(t, err)
	defer func() { _ = resp.Body.Close() }()
	var set jose.JSONWebKeySet
	must(t, json.NewDecoder(resp.Body).Decode(&set))
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	must(t, err)
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) == 0 {
		t.Fatalf("backend JWT kid %q is not published", parsed.Headers[0].KeyID)
	}
	var claims map[string]any
	must(t, parsed.Claims(keys[0].Key, &claims))
	return claims
}

// noneToken builds an unsigned token (alg "none").
func noneToken(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := func(b []byte) string { return strings.TrimRight(jwtB64(b), "=") }
	return enc([]byte(`{"alg":"none","typ":"JWT","kid":"partner-1"}`)) + "." + enc(b) + "."
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func jwtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

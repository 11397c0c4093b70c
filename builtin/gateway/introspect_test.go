package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestIntrospection(t *testing.T) {
	t.Setenv("LATCH_TEST_INTROSPECT_SECRET", "s3cret")
	var hits atomic.Int64
	var down atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gateway" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ans := map[string]any{"active": false}
		switch r.PostFormValue("token") {
		case "opaque-good":
			ans = map[string]any{"active": true, "scope": "orders:read", "client_id": "app", "sub": "alice",
				"aud": "orders-api", "iss": "https://idp.example", "exp": time.Now().Add(time.Hour).Unix()}
		case "opaque-other-issuer":
			ans = map[string]any{"active": true, "aud": "orders-api", "iss": "https://evil.example", "scope": "orders:read"}
		case "opaque-no-scope":
			ans = map[string]any{"active": true, "aud": "orders-api", "iss": "https://idp.example"}
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
	defer idp.Close()
	up, _ := newEcho(t)
	_, gw := newTestGateway(t, `
issuers:
  - name: idp
    issuer: https://idp.example
    audiences: [orders-api]
    allow_http: true
    allow_private_network: true
    introspection:
      endpoint: `+idp.URL+`
      client_id: gateway
      client_secret_env: LATCH_TEST_INTROSPECT_SECRET
      negative_cache_ttl: 1h
apis:
  - {name: orders, base_path: /orders, upstream: up, security: {scopes: [orders:read]}}
upstreams:
  - {name: up, endpoints: [{url: "`+up.URL+`"}]}
`)
	call := func(tok string) int {
		resp, _ := do(t, "GET", gw.URL+"/orders/x", nil, map[string]string{"Authorization": "Bearer " + tok})
		return resp.StatusCode
	}
	tests := []struct {
		token  string
		status int
	}{
		{"opaque-good", 200},
		{"opaque-unknown", 401},
		{"opaque-other-issuer", 401},
		{"opaque-no-scope", 403},
		{"a.b.c", 401}, // a JWT-shaped token of an issuer without keys
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			if got := call(tt.token); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
		})
	}
	// Positive and negative answers are cached: the endpoint being down
	// changes nothing for tokens already seen.
	down.Store(true)
	before := hits.Load()
	if call("opaque-good") != 200 || call("opaque-unknown") != 401 || hits.Load() != before {
		t.Fatalf("cached answers were not reused (%d new calls)", hits.Load()-before)
	}
	// A new token with the endpoint down fails closed.
	if got := call("opaque-new"); got != http.StatusServiceUnavailable {
		t.Fatalf("introspection down: %d, want 503", got)
	}
}

func TestIntrospectionConfig(t *testing.T) {
	base := `
issuers:
  - name: idp
    issuer: https://idp.example
    audiences: [a]
    introspection: {endpoint: ENDPOINT, client_id: gw}
apis: [{name: a, upstream: up}]
upstreams: [{name: up, endpoints: [{url: "http://10.0.0.1"}]}]
`
	for _, tt := range []struct{ endpoint, want string }{
		{"http://idp.example/introspect", "must use https"},
		{"ftp://idp.example/x", "is not http(s)"},
		{"https://u:p@idp.example/x", "without credentials"},
	} {
		_, err := ParseConfig([]byte(strings.Replace(base, "ENDPOINT", tt.endpoint, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("endpoint %s: %v, want %q", tt.endpoint, err, tt.want)
		}
	}
	if _, err := ParseConfig([]byte(strings.Replace(base, "ENDPOINT", "https://idp.example/introspect", 1))); err != nil {
		t.Fatalf("an introspection-only issuer: %v", err)
	}
}

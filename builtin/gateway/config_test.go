package gateway

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const minimalRoutes = `
issuers:
  - name: idp
    issuer: https://idp.example
    jwks_uri: https://idp.example/jwks
    audiences: [api]
    algorithms: [RS256]
apis:
  - name: orders
    base_path: /orders
    upstream: up
upstreams:
  - name: up
    endpoints: [{url: "http://10.0.0.5:8080"}]
`

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimalRoutes))
	if err != nil {
		t.Fatal(err)
	}
	is, up, api := c.Issuers[0], c.Upstreams[0], c.APIs[0]
	switch {
	case is.ClockSkew != DefaultClockSkew, is.JWKSTTL != DefaultJWKSTTL, is.OnKeysUnavailable != FailClosed:
		t.Errorf("issuer defaults: %+v", is)
	case up.Timeouts.Connect != DefaultConnectTimeout, up.Retries.Attempts != 1, *up.Endpoints[0].Weight != 1:
		t.Errorf("upstream defaults: %+v", up)
	case api.MaxBodyBytes != DefaultMaxBodyBytes, c.DenyPollInterval != DefaultDenyPollInterval:
		t.Errorf("api defaults: %+v", api)
	}
}

func TestParseConfigErrors(t *testing.T) {
	edit := func(from, to string) string { return strings.Replace(minimalRoutes, from, to, 1) }
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"not yaml", "{", "decoding"},
		{"unknown field", minimalRoutes + "bogus: 1\n", "field bogus not found"},
		{"unknown nested field", edit("base_path: /orders", "base_path: /orders\n    basepath: /x"), "field basepath not found"},
		{"two documents", minimalRoutes + "---\nissuers: []\n", "more than one"},
		{"hs256 pinned", edit("[RS256]", "[HS256]"), `"HS256" is not one of`},
		{"none pinned", edit("[RS256]", "[none]"), `"none" is not one of`},
		{"no algorithms", edit("algorithms: [RS256]", "algorithms: []"), "algorithms: required"},
		{"no audiences", edit("audiences: [api]", "audiences: []"), "audiences: required"},
		{"http jwks", edit("https://idp.example/jwks", "http://idp.example/jwks"), "must use https"},
		{"jwks with credentials", edit("https://idp.example/jwks", "https://u:p@idp.example/jwks"), "without credentials"},
		{"unknown upstream", edit("upstream: up", "upstream: nope"), `no upstream is named "nope"`},
		{"unknown issuer", edit("upstream: up", "upstream: up\n    security: {issuers: [nope]}"), `no issuer is named "nope"`},
		{"bad base path", edit("/orders", "orders"), "base_path"},
		{"bad endpoint", edit("http://10.0.0.5:8080", "ftp://x"), "endpoints[0].url"},
		{"bad retry condition", edit(`endpoints: [{url: "http://10.0.0.5:8080"}]`, `endpoints: [{url: "http://10.0.0.5:8080"}]`+"\n    retries: {on: [\"404\"]}"), `"404" is not`},
		{"bad throttle key", edit("upstream: up", "upstream: up\n    throttle: {rate: 1, key: color}"), `"color" is not`},
		{"zero rate", edit("upstream: up", "upstream: up\n    throttle: {rate: 0}"), "rate: must be > 0"},
		{"bad header", edit("upstream: up", "upstream: up\n    request_headers: {add: {\"bad header\": x}}"), "not a header name"},
		{"header injection", edit("upstream: up", "upstream: up\n    request_headers: {add: {X-A: \"a\\r\\nb\"}}"), "control character"},
		{"bad route path", edit("upstream: up", "upstream: up\n    routes: [{path: \"/a*b\"}]"), "routes[0].path"},
		{"duplicate api", strings.Replace(minimalRoutes, "upstreams:", "  - {name: orders, upstream: up}\nupstreams:", 1), `"orders" is used twice`},
		{"security none with scopes", edit("upstream: up", "upstream: up\n    security: {none: true, scopes: [a]}"), "none cannot be combined"},
		{"bad fail mode", edit("algorithms: [RS256]", "algorithms: [RS256]\n    on_keys_unavailable: maybe"), "on_keys_unavailable"},
		{"lifetime too short", edit("upstream: up", "upstream: up\n    backend_jwt: {lifetime: 1s}"), "lifetime"},
		{"bad duration", edit("algorithms: [RS256]", "algorithms: [RS256]\n    clock_skew: soon"), "decoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for try := range 30 {
		d := backoff(10*time.Millisecond, time.Second, try)
		if d < 0 || d > time.Second {
			t.Fatalf("backoff(%d) = %v, outside [0, 1s]", try, d)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	b := newRetryBudget(0.5, 2)
	b.unix = func() int64 { return 1 }
	// The floor: two retries a second with no deposits.
	for i := range 2 {
		if !b.withdraw() {
			t.Fatalf("retry %d of the per-second floor was refused", i)
		}
	}
	if b.withdraw() {
		t.Fatal("a third retry without deposits was allowed")
	}
	for range 4 {
		b.deposit()
	}
	got := 0
	for range 3 {
		if b.withdraw() {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("four requests at ratio 0.5 funded %d retries, want 2", got)
	}
}

func TestUnderBaseAndJoin(t *testing.T) {
	tests := []struct {
		path, base, rest string
		ok               bool
	}{
		{"/orders", "/orders", "/", true},
		{"/orders/1", "/orders", "/1", true},
		{"/ordersx", "/orders", "", false},
		{"/x", "/", "/x", true},
	}
	for _, tt := range tests {
		rest, ok := underBase(tt.path, tt.base)
		if rest != tt.rest || ok != tt.ok {
			t.Errorf("underBase(%q, %q) = %q, %v", tt.path, tt.base, rest, ok)
		}
	}
	if got := singleJoin("/v1/", "/items"); got != "/v1/items" {
		t.Errorf("singleJoin = %q", got)
	}
}

// FuzzParseConfig: no routes file makes the parser panic, and what it
// accepts is valid on a second pass.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalRoutes))
	f.Add([]byte("apis: [{name: a}]"))
	f.Add([]byte("issuers: [{name: x, algorithms: [none]}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("accepted config fails validation again: %v", err)
		}
	})
}

// FuzzParseJWKS: no JWK Set makes the parser panic, and it never keeps a
// private or symmetric key.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"e"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseJWKS(b)
		if err != nil {
			return
		}
		for kid, k := range ks.byKid {
			if !k.IsPublic() || kid == "" {
				t.Fatalf("kept key %q that is not public", kid)
			}
		}
	})
}

// TestDocsExample parses the routes file of docs/gateway.md, so that the
// operator guide cannot drift from the decoder.
func TestDocsExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1) {
		if !bytes.Contains(m[1], []byte("\nupstreams:")) {
			continue // a fragment
		}
		n++
		if _, err := ParseConfig(m[1]); err != nil {
			t.Errorf("the routes file in docs/gateway.md does not load: %v", err)
		}
	}
	if n == 0 {
		t.Fatal("docs/gateway.md has no complete routes file")
	}
}

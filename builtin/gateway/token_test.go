package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type testIssuer struct {
	key *ecdsa.PrivateKey
	v   *validator
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	t.Cleanup(srv.Close)
	cfg := IssuerConfig{Name: "idp", Issuer: "https://idp.example", JWKSURI: srv.URL, Audiences: []string{"api"},
		Algorithms: []string{"ES256"}, AllowHTTP: true, AllowPrivateNetwork: true}
	if err := cfg.validate("issuers[0]"); err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuerRT{cfg: cfg, algs: []jose.SignatureAlgorithm{jose.ES256}, keys: newJWKSCache(cfg, slog.New(slog.DiscardHandler), m)}
	v := &validator{byIss: map[string]*issuerRT{cfg.Issuer: is}, allAlgs: is.algs, cache: newTokenCache(time.Minute, 100)}
	return &testIssuer{key: key, v: v}
}

func (ti *testIssuer) sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claimsWith(mod func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": "api", "scope": "a b", "azp": "app",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestValidate(t *testing.T) {
	ti := newTestIssuer(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&ti.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, token, want string
	}{
		{"valid", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(nil)), ""},
		{"expired", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), "expired"},
		{"within skew", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })), ""},
		{"not yet valid", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), "not valid yet"},
		{"no exp", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"untrusted issuer", ti.sign(t, jose.ES256, ti.key, "k1", claimsWith(func(c map[string]any) { c["iss"] = "https://evil.example" })), "not trusted"},
		{"unknown kid", ti.sign(t, jose.ES256, ti.key, "k9", claimsWith(nil)), "unknown"},
		{"no kid", ti.sign(t, jose.ES256, ti.key, "", claimsWith(nil)), "no kid"},
		{"hs256 with the public key", ti.sign(t, jose.HS256, pubDER, "k1", claimsWith(nil)), "not accepted"},
		{"alg none", b64(`{"alg":"none","kid":"k1"}`) + "." + b64(`{"iss":"https://idp.example","exp":9999999999}`) + ".", "not accepted"},
		{"not a jwt", "abc", "compact"},
		{"too long", strings.Repeat("a.", maxTokenBytes), "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, terr := ti.v.validate(t.Context(), tt.token, time.Now())
			if tt.want == "" {
				if terr != nil {
					t.Fatalf("refused: %v", terr)
				}
				if p.subject != "alice" || p.clientID != "app" || len(p.scopes) != 2 || !p.audience.Contains("api") {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if terr == nil || !strings.Contains(terr.reason, tt.want) {
				t.Fatalf("got %v, want a refusal mentioning %q", terr, tt.want)
			}
		})
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(time.Minute, 32)
	now := time.Now()
	for i := range 1000 {
		c.put(strings.Repeat("x", i), &principal{expiry: now.Add(time.Hour)}, now)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > 32 {
		t.Fatalf("cache holds %d tokens, bound 32", n)
	}
	p := &principal{expiry: now.Add(time.Second)}
	c.put("short", p, now)
	if c.get("short", now.Add(2*time.Second)) != nil {
		t.Fatal("a token is served from the cache past its expiry")
	}
}

// FuzzValidate: no bearer token makes the validator panic, and none but the
// signed one is accepted.
func FuzzValidate(f *testing.F) {
	ti := newTestIssuer(f)
	good := ti.sign(f, jose.ES256, ti.key, "k1", claimsWith(nil))
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(good[:len(good)-3] + "AAA")
	f.Fuzz(func(t *testing.T, tok string) {
		_, terr := ti.v.validate(t.Context(), tok, time.Now())
		if terr == nil && tok != good {
			// Base64url padding bits may differ and still decode alike;
			// anything else accepted is a forgery.
			if len(tok) != len(good) || tok[:len(tok)-2] != good[:len(good)-2] {
				t.Fatalf("accepted a token that was not signed: %q", tok)
			}
		}
	})
}

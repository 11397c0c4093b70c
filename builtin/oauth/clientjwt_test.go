package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/store"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a client's signing key with its public JWK Set.
type clientKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newClientKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) clientKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{priv: priv, alg: alg, kid: kid}
}

// jwks returns the public JWK Set as the decoded JSON a client's settings
// hold.
func (k clientKey) jwks(t testing.TB) map[string]any {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sign signs claims with the key, as a client library would.
func (k clientKey) sign(t testing.TB, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertion returns the claims of a valid client assertion for id at aud.
func assertion(id, aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": id, "sub": id, "aud": aud, "jti": rand.Text(),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	if v == nil {
		delete(m, k)
	}
	return m
}

func (e *env) addClient(c store.Client) {
	e.t.Helper()
	c.TenantID = e.def.ID
	c.Enabled = true
	if c.GrantTypes == nil {
		c.GrantTypes = []string{"client_credentials"}
	}
	c.Scopes = []string{"read"}
	if _, err := e.st.CreateClient(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
}

func assertionForm(raw string, extra ...string) string {
	v := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {raw}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

// TestPrivateKeyJWT covers the edge cases of client assertions (RFC 7523
// section 3) and of finding the client's keys. The cases a relying party
// meets (a valid assertion, another key, another audience, an expired
// one, alg none, a replay, a secret client sending an assertion) run
// against the live server, with an independent client, in
// conformance/oidc's TestClientAuthPrivateKeyJWT, and are not repeated
// here.
func TestPrivateKeyJWT(t *testing.T) {
	jwksServer := func(k clientKey) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(k.jwks(t))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	es := newClientKey(t, jose.ES256, "es-1")
	ed := newClientKey(t, jose.EdDSA, "ed-1")
	edServer := jwksServer(ed)

	for _, allow := range []bool{false, true} {
		e := newEnv(t, func(d *oauth.Deps) { d.AllowPrivateNetworks = allow })
		e.addClient(store.Client{ClientID: "pkj", TokenEndpointAuthMethod: "private_key_jwt", Settings: map[string]any{oauth.ClientSettingJWKS: es.jwks(t)}})
		e.addClient(store.Client{ClientID: "pkj-pinned", TokenEndpointAuthMethod: "private_key_jwt", Settings: map[string]any{oauth.ClientSettingJWKS: es.jwks(t), oauth.ClientSettingTokenEndpointAuthSigningAlg: "RS256"}})
		e.addClient(store.Client{ClientID: "pkj-uri", TokenEndpointAuthMethod: "private_key_jwt", Settings: map[string]any{oauth.ClientSettingJWKSURI: edServer.URL}})
		e.addClient(store.Client{ClientID: "csj", TokenEndpointAuthMethod: "client_secret_jwt"})
		tokenURL := e.base + oauth.PathToken
		tests := []struct {
			name   string
			body   string
			auth   string
			status int
			code   string
		}{
			{"inline ES256", assertionForm(es.sign(t, assertion("pkj", tokenURL))), "", 200, ""},
			{"issuer as audience", assertionForm(es.sign(t, assertion("pkj", e.base))), "", 200, ""},
			{"client_id matches", assertionForm(es.sign(t, assertion("pkj", tokenURL)), "client_id", "pkj"), "", 200, ""},
			{"client_id differs", assertionForm(es.sign(t, assertion("pkj", tokenURL)), "client_id", "pkj-pinned"), "", 401, "invalid_client"},
			{"no exp", assertionForm(es.sign(t, with(assertion("pkj", tokenURL), "exp", nil))), "", 401, "invalid_client"},
			{"exp too far", assertionForm(es.sign(t, with(assertion("pkj", tokenURL), "exp", time.Now().Add(48*time.Hour).Unix()))), "", 401, "invalid_client"},
			{"no jti", assertionForm(es.sign(t, with(assertion("pkj", tokenURL), "jti", nil))), "", 401, "invalid_client"},
			{"iss is not sub", assertionForm(es.sign(t, with(assertion("pkj", tokenURL), "iss", "someone"))), "", 401, "invalid_client"},
			{"HS256 over the public key", assertionForm(hmacSigned(t, mustJSON(t, es.jwks(t)), assertion("pkj", tokenURL))), "", 401, "invalid_client"},
			{"pinned algorithm differs", assertionForm(es.sign(t, assertion("pkj-pinned", tokenURL))), "", 401, "invalid_client"},
			{"client_secret_jwt", assertionForm(hmacSigned(t, []byte("0123456789abcdef0123456789abcdef"), assertion("csj", tokenURL))), "", 401, "invalid_client"},
			{"unknown client", assertionForm(es.sign(t, assertion("nobody", tokenURL))), "", 401, "invalid_client"},
			{"wrong assertion type", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:x"}, "client_assertion": {es.sign(t, assertion("pkj", tokenURL))}}.Encode(), "", 401, "invalid_client"},
			{"assertion and basic", assertionForm(es.sign(t, assertion("pkj", tokenURL))), basic("svc-basic", secretA), 400, "invalid_request"},
			{"garbage", assertionForm("a.b.c"), "", 401, "invalid_client"},
		}
		if allow {
			tests = append(tests, struct {
				name   string
				body   string
				auth   string
				status int
				code   string
			}{"jwks_uri EdDSA", assertionForm(ed.sign(t, assertion("pkj-uri", tokenURL))), "", 200, ""})
		} else {
			tests = append(tests, struct {
				name   string
				body   string
				auth   string
				status int
				code   string
			}{"jwks_uri on loopback refused", assertionForm(ed.sign(t, assertion("pkj-uri", tokenURL))), "", 401, "invalid_client"})
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.post(oauth.PathToken, formType, tc.body, tc.auth)
				if tc.status != 200 {
					checkError(t, r, tc.status, tc.code)
					return
				}
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if tok, _ := r.json(t)["access_token"].(string); tok == "" {
					t.Fatalf("no access token: %s", r.body)
				}
			})
		}
	}

	t.Run("introspection", func(t *testing.T) {
		// The introspection endpoint accepts the same method.
		e := newEnv(t)
		e.addClient(store.Client{ClientID: "pkj", TokenEndpointAuthMethod: "private_key_jwt", Settings: map[string]any{oauth.ClientSettingJWKS: es.jwks(t)}})
		tok := e.post(oauth.PathToken, formType, assertionForm(es.sign(t, assertion("pkj", e.base+oauth.PathToken))), "").json(t)["access_token"].(string)
		r := e.post(oauth.PathIntrospect, formType, url.Values{"token": {tok}, "client_assertion_type": {assertionType}, "client_assertion": {es.sign(t, assertion("pkj", e.base+oauth.PathIntrospect))}}.Encode(), "")
		if r.status != 200 || r.json(t)["active"] != true {
			t.Fatalf("introspection: %d %s", r.status, r.body)
		}
	})
}

// hmacSigned signs claims with HS256 under key.
func hmacSigned(t testing.TB, key []byte, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

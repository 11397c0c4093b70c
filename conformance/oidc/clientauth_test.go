package oidc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// rpKey is a relying party's signing key, made and used with go-jose
// only, as an RP library would.
type rpKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newRPKey(t testing.TB, kid string) rpKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return rpKey{priv: k, kid: kid}
}

// publicJWKS is the key's public JWK Set as a decoded JSON object.
func (k rpKey) publicJWKS(t testing.TB) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sign makes a compact ES256 JWS of claims.
func (k rpKey) sign(t testing.TB, claims any) string {
	t.Helper()
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, claims)
}

// signJWT makes a compact JWS of claims (typ JWT) with go-jose only, as
// an RP library would; rpKey and hmacSign sign client assertions, request
// objects and JWT bearer grants with it.
func signJWT(t testing.TB, key jose.SigningKey, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// clientAssertion is the claim set of RFC 7523 section 3 for client id at
// audience aud.
func clientAssertion(id, aud string, ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{"iss": id, "sub": id, "aud": aud, "jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
}

// TestClientAuthPrivateKeyJWT runs private_key_jwt (OpenID Connect Core
// 1.0 section 9, RFC 7523 section 2.2) against the live server with
// x/oauth2 carrying the assertion.
func TestClientAuthPrivateKeyJWT(t *testing.T) {
	o := setup(t)
	key := newRPKey(t, "rp-1")
	intruder := newRPKey(t, "rp-1")
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(key.publicJWKS(t))
	}))
	t.Cleanup(jwksSrv.Close)
	for _, c := range []map[string]any{
		{
			"client_id": "jwt-svc", "name": "JWT service", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "private_key_jwt", "enabled": true,
			"settings": map[string]any{"jwks": key.publicJWKS(t), "token_endpoint_auth_signing_alg": "ES256"},
		},
		{
			"client_id": "jwt-uri", "name": "JWT service on loopback", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "private_key_jwt", "enabled": true,
			"settings": map[string]any{"jwks_uri": jwksSrv.URL},
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	tokenURL := o.provider.Endpoint().TokenURL
	cfg := func(id, assertion string) *clientcredentials.Config {
		return &clientcredentials.Config{
			ClientID: id, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams, Scopes: []string{"read"},
			EndpointParams: url.Values{"client_assertion_type": {jwtBearerAssertion}, "client_assertion": {assertion}},
		}
	}

	t.Run("Config/DiscoveryListsPrivateKeyJWT", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		methods, _ := m["token_endpoint_auth_methods_supported"].([]any)
		algs, _ := m["token_endpoint_auth_signing_alg_values_supported"].([]any)
		if !containsAny(methods, "private_key_jwt") || !containsAny(algs, "ES256") {
			t.Errorf("discovery: methods %v, algs %v", methods, algs)
		}
		// client_secret_jwt (and its HMAC algorithms) is implemented:
		// TestClientAuthSecretJWT.
		if !containsAny(methods, "client_secret_jwt") || !containsAny(algs, "HS256") {
			t.Errorf("discovery: methods %v, algs %v, want client_secret_jwt with HS256", methods, algs)
		}
		if containsAny(algs, "none") {
			t.Errorf("discovery lists alg none: %v", algs)
		}
	})

	t.Run("Basic/PrivateKeyJWT", func(t *testing.T) {
		tok, err := cfg("jwt-svc", key.sign(t, clientAssertion("jwt-svc", tokenURL, time.Minute))).Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if !o.introspect(t, tok.AccessToken) {
			t.Error("the token is not active")
		}
	})

	assertion := key.sign(t, clientAssertion("jwt-svc", tokenURL, time.Minute))
	if _, err := cfg("jwt-svc", assertion).Token(ctx()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, assertion string
	}{
		{"Negative/ReplayedAssertion", "jwt-svc", assertion},
		{"Negative/WrongKey", "jwt-svc", intruder.sign(t, clientAssertion("jwt-svc", tokenURL, time.Minute))},
		{"Negative/WrongAudience", "jwt-svc", key.sign(t, clientAssertion("jwt-svc", "https://rp.example/token", time.Minute))},
		{"Negative/ExpiredAssertion", "jwt-svc", key.sign(t, clientAssertion("jwt-svc", tokenURL, -5*time.Minute))},
		{"Negative/AlgNone", "jwt-svc", unsignedJWT(clientAssertion("jwt-svc", tokenURL, time.Minute))},
		{"Negative/SecretClientWithAssertion", "web", key.sign(t, clientAssertion("web", tokenURL, time.Minute))},
		// The SSRF guard refuses to fetch keys from a loopback address.
		{"Negative/JWKSURIOnLoopback", "jwt-uri", key.sign(t, clientAssertion("jwt-uri", tokenURL, time.Minute))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cfg(tc.id, tc.assertion).Token(ctx())
			wantOAuthError(t, err, "invalid_client")
		})
	}
}

// unsignedJWT is claims as a JWT with alg none.
func unsignedJWT(claims any) string {
	b, _ := json.Marshal(claims)
	return encodeSegment([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + encodeSegment(b) + "."
}

func encodeSegment(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hmacSign makes a compact JWS of claims MACed with secret, with go-jose
// only, as an RP library would for client_secret_jwt.
func hmacSign(t testing.TB, alg jose.SignatureAlgorithm, secret string, claims any) string {
	t.Helper()
	return signJWT(t, jose.SigningKey{Algorithm: alg, Key: []byte(secret)}, claims)
}

// TestClientAuthSecretJWT runs client_secret_jwt (OpenID Connect Core 1.0
// section 9; RFC 7523 section 2.2 with HS256) against the live server:
// the client MACs its assertion with its secret, which Latch keeps sealed
// for such clients only.
func TestClientAuthSecretJWT(t *testing.T) {
	o := setup(t)
	const sec = "secret-jwt-client-secret-0123456789abcdefghij"
	var created struct {
		ID string `json:"id"`
	}
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "hmac-svc", "client_secret": sec, "name": "HMAC service", "grant_types": []string{"client_credentials"},
		"scopes": []string{"read"}, "token_endpoint_auth_method": "client_secret_jwt", "enabled": true,
	}, &created); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	tokenURL := o.provider.Endpoint().TokenURL
	cfg := func(assertion string) *clientcredentials.Config {
		return &clientcredentials.Config{
			ClientID: "hmac-svc", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams, Scopes: []string{"read"},
			EndpointParams: url.Values{"client_assertion_type": {jwtBearerAssertion}, "client_assertion": {assertion}},
		}
	}

	t.Run("Basic/SecretJWT", func(t *testing.T) {
		for _, alg := range []jose.SignatureAlgorithm{jose.HS256} { // HS384 and HS512 need a longer secret (RFC 7518 section 3.2)
			tok, err := cfg(hmacSign(t, alg, sec, clientAssertion("hmac-svc", tokenURL, time.Minute))).Token(ctx())
			if err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
			if !o.introspect(t, tok.AccessToken) {
				t.Errorf("%s: the token is not active", alg)
			}
		}
	})

	assertion := hmacSign(t, jose.HS256, sec, clientAssertion("hmac-svc", tokenURL, time.Minute))
	if _, err := cfg(assertion).Token(ctx()); err != nil {
		t.Fatal(err)
	}
	key := newRPKey(t, "k1")
	for _, tc := range []struct{ name, assertion string }{
		{"Negative/ReplayedAssertion", assertion},
		{"Negative/WrongSecret", hmacSign(t, jose.HS256, "not-the-secret-0123456789abcdefghijklmnop", clientAssertion("hmac-svc", tokenURL, time.Minute))},
		{"Negative/WrongAudience", hmacSign(t, jose.HS256, sec, clientAssertion("hmac-svc", "https://rp.example/token", time.Minute))},
		{"Negative/Expired", hmacSign(t, jose.HS256, sec, clientAssertion("hmac-svc", tokenURL, -5*time.Minute))},
		{"Negative/AlgNone", unsignedJWT(clientAssertion("hmac-svc", tokenURL, time.Minute))},
		{"Negative/AsymmetricForSecretClient", key.sign(t, clientAssertion("hmac-svc", tokenURL, time.Minute))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cfg(tc.assertion).Token(ctx())
			wantOAuthError(t, err, "invalid_client")
		})
	}

	t.Run("Negative/SecretBasicForSecretJWTClient", func(t *testing.T) {
		_, err := (&clientcredentials.Config{ClientID: "hmac-svc", ClientSecret: sec, TokenURL: tokenURL, Scopes: []string{"read"}}).Token(ctx())
		wantOAuthError(t, err, "invalid_client")
	})

	t.Run("Basic/RotatedSecret", func(t *testing.T) {
		const next = "secret-jwt-rotated-secret-0123456789abcdefghij"
		if code := o.Admin(http.MethodPost, "/clients/"+created.ID+"/secret", map[string]any{"client_secret": next}, nil); code != http.StatusOK {
			t.Fatalf("rotating the secret: %d", code)
		}
		_, err := cfg(hmacSign(t, jose.HS256, sec, clientAssertion("hmac-svc", tokenURL, time.Minute))).Token(ctx())
		wantOAuthError(t, err, "invalid_client")
		if _, err := cfg(hmacSign(t, jose.HS256, next, clientAssertion("hmac-svc", tokenURL, time.Minute))).Token(ctx()); err != nil {
			t.Errorf("with the rotated secret: %v", err)
		}
	})
}

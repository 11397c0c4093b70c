package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// Client settings of JWT-based client authentication and request objects
// (keys of store.Client.Settings; names as in RFC 7591 section 2 and
// OpenID Connect Dynamic Client Registration 1.0 section 2).
const (
	// ClientSettingJWKS holds the client's public keys inline: a JWK Set
	// object ({"keys":[...]}).
	ClientSettingJWKS = "jwks"
	// ClientSettingJWKSURI is the https URL of the client's JWK Set. It is
	// fetched through the SSRF guard and cached. A client sets jwks or
	// jwks_uri, not both.
	ClientSettingJWKSURI = "jwks_uri"
	// ClientSettingTokenEndpointAuthSigningAlg pins the JWS algorithm of
	// the client's assertions (private_key_jwt); empty accepts every
	// asymmetric algorithm of assertionAlgorithms.
	ClientSettingTokenEndpointAuthSigningAlg = "token_endpoint_auth_signing_alg"
	// ClientSettingRequestObjectSigningAlg pins the JWS algorithm of the
	// client's request objects (RFC 9101); empty accepts every asymmetric
	// algorithm of assertionAlgorithms. "none" is never accepted.
	ClientSettingRequestObjectSigningAlg = "request_object_signing_alg"
)

// Client authentication with a JWT (RFC 7523 section 2.2, OpenID Connect
// Core 1.0 section 9).
const (
	authMethodPrivateKeyJWT = "private_key_jwt"
	authMethodSecretJWT     = "client_secret_jwt"
	// assertionTypeJWTBearer is the client_assertion_type of RFC 7523
	// section 2.2.
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" //nolint:gosec // G101: a URN, not a credential.
	// maxAssertionBytes bounds a client assertion or request object.
	maxAssertionBytes = 16 << 10
	// maxAssertionLifetime bounds exp - now of a client assertion: the
	// replay cache keeps each jti that long.
	maxAssertionLifetime = time.Hour
	// assertionLeeway is the clock skew tolerated on exp, nbf and iat.
	assertionLeeway = 30 * time.Second
)

// assertionAlgorithms are the JWS algorithms accepted for client
// assertions and request objects signed with a client's keys: asymmetric
// only. "none" and the HMAC algorithms are never accepted with public
// keys (RFC 8725 section 3.1).
var assertionAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// assertionAlgorithmNames lists assertionAlgorithms for discovery.
func assertionAlgorithmNames() []string {
	out := make([]string, len(assertionAlgorithms))
	for i, a := range assertionAlgorithms {
		out[i] = string(a)
	}
	return out
}

// authSigningAlgs lists, for discovery, the algorithms of client
// assertions: the asymmetric ones, and the HMAC ones of client_secret_jwt
// when the node supports it.
func (p *Provider) authSigningAlgs() []string {
	out := assertionAlgorithmNames()
	if p.secretBox != nil {
		for _, a := range secretJWTAlgorithms {
			out = append(out, string(a))
		}
	}
	return out
}

// clientKeys are a client's registered public keys: inline or at a URI.
type clientKeys struct {
	set *jose.JSONWebKeySet
	uri string
}

// readClientKeys reads the jwks and jwks_uri settings. A malformed jwks
// yields an empty set: the client then has no usable key.
func readClientKeys(settings map[string]any) clientKeys {
	var k clientKeys
	if v, ok := settings[ClientSettingJWKS]; ok && v != nil {
		k.set = &jose.JSONWebKeySet{}
		if raw, err := json.Marshal(v); err == nil {
			if err := json.Unmarshal(raw, k.set); err != nil {
				k.set = &jose.JSONWebKeySet{}
			}
		}
	}
	if s, ok := settings[ClientSettingJWKSURI].(string); ok {
		k.uri = s
	}
	return k
}

// settingString reads a string client setting.
func settingString(settings map[string]any, key string) string {
	s, _ := settings[key].(string)
	return s
}

// keyFits reports whether k may verify a signature made with alg: a valid
// public signing key of the matching type (and curve), whose own "alg",
// when set, is alg. RSA keys must have at least 2048 bits.
func keyFits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(alg)) {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return key.N.BitLen() >= 2048
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return key.Curve == elliptic.P256()
		case jose.ES384:
			return key.Curve == elliptic.P384()
		case jose.ES512:
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// candidateKeys returns the client's keys that may verify a JWS with
// header kid and alg. With a jwks_uri, an unknown kid makes the set be
// fetched again (at most every jwksRefetchInterval), so a client may
// rotate its keys.
func (p *Provider) candidateKeys(ctx context.Context, ck clientKeys, kid string, alg jose.SignatureAlgorithm) ([]jose.JSONWebKey, error) {
	pick := func(set *jose.JSONWebKeySet) []jose.JSONWebKey {
		var out []jose.JSONWebKey
		for _, k := range set.Keys {
			if (kid == "" || k.KeyID == kid) && keyFits(k, alg) {
				out = append(out, k)
			}
		}
		return out
	}
	switch {
	case ck.set != nil:
		return pick(ck.set), nil
	case ck.uri != "":
		if err := safehttp.CheckURL(ck.uri, p.d.AllowPrivateNetworks); err != nil {
			return nil, err
		}
		set, err := p.clientJWKS.get(ctx, ck.uri, false)
		if err != nil {
			return nil, err
		}
		if keys := pick(set); len(keys) > 0 {
			return keys, nil
		}
		set, err = p.clientJWKS.get(ctx, ck.uri, true)
		if err != nil {
			return nil, err
		}
		return pick(set), nil
	}
	return nil, errors.New("the client registered no keys")
}

// verifyClientJWT checks the signature of a compact JWS made by the
// client with one of its registered keys, accepting only the algorithms
// in algs, and decodes its claims into each of dest.
func (p *Provider) verifyClientJWT(ctx context.Context, raw string, ck clientKeys, algs []jose.SignatureAlgorithm, dest ...any) error {
	if len(raw) > maxAssertionBytes {
		return errors.New("the JWT is too large")
	}
	tok, err := josejwt.ParseSigned(raw, algs)
	if err != nil {
		return fmt.Errorf("parsing JWT: %w", err)
	}
	if len(tok.Headers) != 1 {
		return errors.New("the JWT must have exactly one signature")
	}
	h := tok.Headers[0]
	keys, err := p.candidateKeys(ctx, ck, h.KeyID, jose.SignatureAlgorithm(h.Algorithm))
	if err != nil {
		return fmt.Errorf("finding the client's keys: %w", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("no registered key fits kid %q and alg %q", h.KeyID, h.Algorithm)
	}
	for _, k := range keys {
		if err := tok.Claims(k.Key, dest...); err == nil {
			return nil
		}
	}
	return errors.New("the signature does not verify with any registered key")
}

// pinnedAlgorithms returns the algorithms a client may sign with: the
// pinned one when set (and asymmetric), else all assertionAlgorithms. A
// pin to anything else, "none" included, allows nothing.
func pinnedAlgorithms(pin string) []jose.SignatureAlgorithm {
	if pin == "" {
		return assertionAlgorithms
	}
	if slices.Contains(assertionAlgorithms, jose.SignatureAlgorithm(pin)) {
		return []jose.SignatureAlgorithm{jose.SignatureAlgorithm(pin)}
	}
	return nil
}

// assertionClaims are the claims of a client assertion (RFC 7523 section
// 3).
type assertionClaims struct {
	josejwt.Claims
}

// clientAuthAudiences are the audiences a client assertion may carry: the
// tenant's issuer or one of its endpoints that authenticate clients (RFC
// 7523 section 3 item 3; OpenID Connect Core 1.0 section 9 names the
// token endpoint).
func clientAuthAudiences(t tenantInfo) []string {
	return []string{t.issuer, t.issuer + PathToken, t.issuer + PathIntrospect, t.issuer + PathRevoke, t.issuer + PathPAR}
}

// authenticateAssertion authenticates a client with a JWT it signed
// (private_key_jwt, RFC 7523 section 2.2) or MACed with its secret
// (client_secret_jwt). The client is the assertion's sub (and client_id,
// when sent); it must be registered for the method, the JWT must be signed
// with one of its keys and an allowed asymmetric algorithm, or MACed with
// HS256, HS384 or HS512 and its secret, iss and sub must be its id, aud one of
// clientAuthAudiences, exp present and at most maxAssertionLifetime
// ahead, and jti unused. Every failure is invalid_client; the reason goes
// to the audit event.
func (p *Provider) authenticateAssertion(ctx context.Context, r *http.Request, form url.Values, info *requestInfo) (*client, error) {
	info.method = authMethodPrivateKeyJWT
	fail := func(reason string) (*client, error) {
		info.reason = reason
		return nil, fosite.ErrInvalidClient
	}
	switch {
	case form.Get("client_assertion_type") != assertionTypeJWTBearer:
		return fail("unsupported client_assertion_type")
	case form.Get("client_assertion") == "":
		return fail("client_assertion missing")
	case r.Header.Get("Authorization") != "" || form.Get("client_secret") != "":
		info.reason = "more than one authentication method"
		return nil, errMultipleAuthMethods
	}
	raw := form.Get("client_assertion")
	if len(raw) > maxAssertionBytes {
		return fail("client assertion too large")
	}
	unverified, err := josejwt.ParseSigned(raw, append(slices.Clone(assertionAlgorithms), jose.HS256, jose.HS384, jose.HS512))
	if err != nil {
		return fail("client assertion is not a JWS with an allowed algorithm")
	}
	var peek josejwt.Claims
	if err := unverified.UnsafeClaimsWithoutVerification(&peek); err != nil {
		return fail("client assertion claims are malformed")
	}
	id := form.Get("client_id")
	if id == "" {
		id = peek.Subject
	}
	info.clientID = id
	if id == "" || peek.Subject != id || peek.Issuer != id {
		return fail("client assertion iss and sub must be the client id")
	}
	cl, err := p.storage.client(ctx, id)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return fail("unknown or disabled client")
	case err != nil:
		return nil, err
	}
	t, err := mustTenant(ctx)
	if err != nil {
		return nil, err
	}
	var claims assertionClaims
	switch cl.authMethod {
	case authMethodPrivateKeyJWT:
		algs := pinnedAlgorithms(cl.authSigningAlg)
		if !slices.Contains(algs, jose.SignatureAlgorithm(unverified.Headers[0].Algorithm)) {
			return fail("client assertion algorithm not allowed for the client")
		}
		if err := p.verifyClientJWT(ctx, raw, cl.keys, algs, &claims); err != nil {
			if errors.Is(err, safehttp.ErrForbiddenAddress) {
				p.d.Log.WarnContext(ctx, "client jwks_uri refused by the SSRF guard", "client_id", cl.id)
			}
			return fail("client assertion signature: " + err.Error())
		}
	case authMethodSecretJWT:
		info.method = authMethodSecretJWT
		if err := p.verifySecretJWT(ctx, t, cl, raw, &claims); err != nil {
			if errors.Is(err, errStorage) {
				return nil, err
			}
			return fail("client assertion MAC: " + err.Error())
		}
	default:
		return fail("client must authenticate with " + cl.authMethod)
	}
	now := time.Now()
	if err := claims.ValidateWithLeeway(josejwt.Expected{
		Issuer: id, Subject: id, AnyAudience: clientAuthAudiences(t), Time: now,
	}, assertionLeeway); err != nil {
		return fail("client assertion claims: " + err.Error())
	}
	switch {
	case claims.Expiry == nil:
		return fail("client assertion has no exp")
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime)):
		return fail("client assertion exp is too far ahead")
	case claims.ID == "" || len(claims.ID) > 256:
		return fail("client assertion jti missing or too long")
	}
	if err := p.storage.SetClientAssertionJWT(ctx, assertionJTIKey(id, claims.ID), claims.Expiry.Time().Add(assertionLeeway)); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return fail("client assertion jti replayed")
		}
		return nil, err
	}
	return cl, nil
}

// assertionJTIKey is the replay-cache key of a client's assertion: jti is
// unique per issuer only (RFC 7519 section 4.1.7).
func assertionJTIKey(clientID, jti string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + jti))
	return hex.EncodeToString(sum[:])
}

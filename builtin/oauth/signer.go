package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"
)

// accessTokenType is the JWS "typ" of access tokens (RFC 9068 section
// 2.1). RFC 9068 section 4 also accepts the full media type on input.
const (
	accessTokenType      = "at+jwt"
	accessTokenMediaType = "application/at+jwt"
	// idTokenType is the JWS "typ" of ID tokens: plain "JWT", never at+jwt.
	idTokenType              = "JWT"
	maxCachedSigners         = 1024
	publicKeyCacheTTL        = time.Minute
	signingMethodLengthBytes = sha256.Size
)

// signatureAlgorithms are the JWS algorithms the key manager signs with,
// and the only ones accepted on input (RFC 8725 section 3.1).
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// tokenSigner is fosite's jwt.Signer over the kernel's key manager. It
// signs with the active key of the context's tenant, putting its "kid" and
// typ at+jwt in the protected header, and verifies against every key the
// tenant publishes (active, next and retiring), so tokens signed before a
// rotation verify until their key stops being published. fosite's own
// DefaultSigner cannot do either: it signs with one key, without a kid,
// verifies only against that key, and knows no EdDSA.
type tokenSigner struct {
	keys KeySource

	mu sync.RWMutex
	// signers caches one typ-setting go-jose signer per key id (key ids
	// are UUIDv7, unique across tenants).
	signers map[string]jose.Signer
	// public caches each tenant's published keys by key id.
	public map[string]publicKeys
}

type publicKeys struct {
	byKID   map[string]jose.JSONWebKey
	fetched time.Time
}

func newTokenSigner(k KeySource) *tokenSigner {
	return &tokenSigner{keys: k, signers: map[string]jose.Signer{}, public: map[string]publicKeys{}}
}

// Generate signs claims as a compact JWS and returns it with its
// signature, the key its record is stored under.
func (s *tokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return "", "", fmt.Errorf("signing access token: %w", err)
	}
	ks, err := s.keys.Signer(ctx, t.id, "")
	if err != nil {
		return "", "", fmt.Errorf("signing access token: %w: %w", errStorage, err)
	}
	typ := accessTokenType
	if header != nil {
		if h, _ := header.ToMap()["typ"].(string); h == idTokenType || h == logoutTokenType {
			typ = h
		}
	}
	js, err := s.typedSigner(ks.KeyID(), typ, ks.WithOptions)
	if err != nil {
		return "", "", fmt.Errorf("signing access token: %w", err)
	}
	if s, ok := claims["scope"].(string); ok && s == "" {
		// RFC 9068 section 2.2.3: no scope claim when no scope was granted.
		delete(claims, "scope")
	}
	payload, err := marshalClaims(claims)
	if err != nil {
		return "", "", fmt.Errorf("signing access token: encoding claims: %w", err)
	}
	jws, err := js.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("signing access token: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", "", fmt.Errorf("signing access token: serialising: %w", err)
	}
	return token, signatureOf(token), nil
}

// typedSigner returns the cached signer of key kid that sets typ, making
// it with build on a miss.
func (s *tokenSigner) typedSigner(kid, typ string, build func(*jose.SignerOptions) (jose.Signer, error)) (jose.Signer, error) {
	cacheKey := typ + " " + kid
	s.mu.RLock()
	js := s.signers[cacheKey]
	s.mu.RUnlock()
	if js != nil {
		return js, nil
	}
	js, err := build((&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, fmt.Errorf("making %s signer for key %q: %w", typ, kid, err)
	}
	s.mu.Lock()
	if len(s.signers) >= maxCachedSigners {
		clear(s.signers)
	}
	s.signers[cacheKey] = js
	s.mu.Unlock()
	return js, nil
}

// Validate verifies a token and returns its signature.
func (s *tokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return signatureOf(token), nil
}

// Decode verifies a compact JWS access token of the context's tenant: one
// of the accepted algorithms, typ at+jwt, a kid the tenant publishes, a
// valid signature, and the tenant's issuer. The time claims are checked by
// the caller (fosite calls Claims.Valid). Failures are
// *jwt.ValidationError, as fosite's strategies expect; a failure to load
// the keys is not.
func (s *tokenSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return s.decode(ctx, token, func(typ string) bool {
		return strings.EqualFold(typ, accessTokenType) || strings.EqualFold(typ, accessTokenMediaType)
	})
}

// decode verifies a compact JWS of the context's tenant whose typ header
// passes typOK.
func (s *tokenSigner) decode(ctx context.Context, token string, typOK func(string) bool) (*jwt.Token, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("verifying access token: %w", err)
	}
	jws, err := jose.ParseSignedCompact(token, signatureAlgorithms)
	if err != nil {
		return nil, invalidToken(jwt.ValidationErrorMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalidToken(jwt.ValidationErrorMalformed, errors.New("not exactly one signature"))
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !typOK(typ) {
		return nil, invalidToken(jwt.ValidationErrorMalformed, fmt.Errorf("typ %q is not accepted here", typ))
	}
	key, found, err := s.publicKey(ctx, t.id, h.KeyID)
	if err != nil {
		return nil, fmt.Errorf("verifying access token: %w", err)
	}
	if !found || key.Algorithm != h.Algorithm {
		return nil, invalidToken(jwt.ValidationErrorUnverifiable, errors.New("signing key is not published by the tenant"))
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, invalidToken(jwt.ValidationErrorSignatureInvalid, err)
	}
	claims := jwt.MapClaims{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, invalidToken(jwt.ValidationErrorMalformed, err)
	}
	if iss, _ := claims["iss"].(string); iss != t.issuer {
		return nil, invalidToken(jwt.ValidationErrorIssuer, errors.New("issuer is not the tenant's"))
	}
	return &jwt.Token{
		Header: map[string]any{"alg": h.Algorithm, "kid": h.KeyID, "typ": typ},
		Claims: claims,
		Method: josev3.SignatureAlgorithm(h.Algorithm),
	}, nil
}

// publicKey finds a published key of the tenant by kid, refreshing the
// cached set when it is stale or does not hold kid. Tokens reach this only
// after their record was found in the store, so unknown kids cannot be
// used to hammer the key store.
func (s *tokenSigner) publicKey(ctx context.Context, tenantID, kid string) (jose.JSONWebKey, bool, error) {
	s.mu.RLock()
	set, ok := s.public[tenantID]
	s.mu.RUnlock()
	if ok && time.Since(set.fetched) < publicKeyCacheTTL {
		if k, found := set.byKID[kid]; found {
			return k, true, nil
		}
	}
	jwks, err := s.keys.PublicJWKS(ctx, tenantID)
	if err != nil {
		return jose.JSONWebKey{}, false, fmt.Errorf("loading public keys: %w: %w", errStorage, err)
	}
	set = publicKeys{byKID: make(map[string]jose.JSONWebKey, len(jwks.Keys)), fetched: time.Now()}
	for _, k := range jwks.Keys {
		set.byKID[k.KeyID] = k
	}
	s.mu.Lock()
	if len(s.public) >= maxCachedSigners {
		clear(s.public)
	}
	s.public[tenantID] = set
	s.mu.Unlock()
	k, found := set.byKID[kid]
	return k, found, nil
}

// GetSignature returns the signature part of a compact JWS.
func (s *tokenSigner) GetSignature(ctx context.Context, token string) (string, error) {
	sig := signatureOf(token)
	if sig == "" {
		return "", invalidToken(jwt.ValidationErrorMalformed, errors.New("not a compact JWS"))
	}
	return sig, nil
}

// Hash returns the SHA-256 of in.
func (s *tokenSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSigningMethodLength returns the length of Hash's output.
func (s *tokenSigner) GetSigningMethodLength(ctx context.Context) int {
	return signingMethodLengthBytes
}

// signatureOf returns the third part of a compact JWS, or "" when token
// does not have three parts.
func signatureOf(token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	return token[strings.LastIndexByte(token, '.')+1:]
}

func invalidToken(kind uint32, err error) *jwt.ValidationError {
	return &jwt.ValidationError{Errors: kind, Inner: err}
}

// opaqueTokensUnsupported is the refresh token and authorization code
// strategy of this slice, which issues neither: signatures are empty (no
// record is ever found under one), generation fails, validation says
// inactive. fosite's HMAC strategy would need a node-wide secret that
// nothing else here uses.
type opaqueTokensUnsupported struct{}

var errOpaqueUnsupported = fosite.ErrServerError.WithHint("Refresh tokens and authorization codes are not issued by this server yet.")

func (opaqueTokensUnsupported) AccessTokenSignature(ctx context.Context, token string) string {
	return ""
}

func (opaqueTokensUnsupported) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	return "", "", errOpaqueUnsupported
}

func (opaqueTokensUnsupported) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	return fosite.ErrInactiveToken
}

func (opaqueTokensUnsupported) RefreshTokenSignature(ctx context.Context, token string) string {
	return ""
}

func (opaqueTokensUnsupported) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	return "", "", errOpaqueUnsupported
}

func (opaqueTokensUnsupported) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	return fosite.ErrInactiveToken
}

func (opaqueTokensUnsupported) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return ""
}

func (opaqueTokensUnsupported) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	return "", "", errOpaqueUnsupported
}

func (opaqueTokensUnsupported) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	return fosite.ErrInactiveToken
}

var (
	_ jwt.Signer          = (*tokenSigner)(nil)
	_ oauth2.CoreStrategy = opaqueTokensUnsupported{}
)

// idTokenSigner is the signer of ID tokens: it signs as tokenSigner does,
// with typ JWT (the session's IDTokenHeaders set it), and decodes only ID
// tokens, for id_token_hint.
type idTokenSigner struct{ *tokenSigner }

// Decode verifies an ID token of the context's tenant. Its time claims are
// not checked: an expired ID token is a valid id_token_hint (OpenID
// Connect Core 1.0 section 3.1.2.1).
func (s idTokenSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return s.decode(ctx, token, func(typ string) bool { return typ == "" || strings.EqualFold(typ, idTokenType) })
}

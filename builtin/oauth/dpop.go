package oauth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/kernel/store"
)

// DPoP, OAuth 2.0 Demonstrating Proof of Possession (RFC 9449): a client
// that sends a DPoP proof (a JWT signed with a key it holds, in the DPoP
// header) to the token endpoint gets access tokens bound to that key
// (token_type "DPoP", claim cnf.jkt); each use of such a token must come
// with a fresh proof made with the same key.
const (
	// headerDPoP is the request header of a proof (section 4.1).
	headerDPoP = "DPoP"
	// dpopType is the proof's JWS typ (section 4.2).
	dpopType = "dpop+jwt"
	// tokenTypeDPoP is the token_type of bound tokens (section 5).
	tokenTypeDPoP = "DPoP"
	// kindDPoPJTI is the store.Token kind of the proofs' jti replay cache.
	kindDPoPJTI = "dpop_jti"
	// dpopMaxAge and dpopLeeway bound a proof's iat: at most dpopMaxAge
	// old, at most dpopLeeway ahead (section 11.1). The replay cache keeps
	// each jti until the proof could no longer be accepted.
	dpopMaxAge = time.Minute
	dpopLeeway = 10 * time.Second
	// maxDPoPBytes bounds a proof.
	maxDPoPBytes = 8 << 10
	// ClientSettingDPoPBoundAccessTokens, a JSON true, makes the client's
	// token requests need a DPoP proof (RFC 9449 section 5.2,
	// dpop_bound_access_tokens).
	ClientSettingDPoPBoundAccessTokens = "dpop_bound_access_tokens" //nolint:gosec // G101: a setting name, not a credential.
)

// dpopAlgorithms are the proofs' JWS algorithms: asymmetric only (section
// 4.2); "none" and MACs are refused.
var dpopAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.PS256, jose.EdDSA,
}

// dpopAlgorithmNames lists dpopAlgorithms for discovery.
func dpopAlgorithmNames() []string {
	out := make([]string, len(dpopAlgorithms))
	for i, a := range dpopAlgorithms {
		out[i] = string(a)
	}
	return out
}

// errInvalidDPoPProof is the error of section 5.1 (and 12.2).
var errInvalidDPoPProof = &fosite.RFC6749Error{ErrorField: "invalid_dpop_proof", DescriptionField: "The DPoP proof is not valid.", CodeField: http.StatusBadRequest}

// dpopProof is a checked proof.
type dpopProof struct {
	// JKT is the SHA-256 JWK thumbprint (RFC 7638) of the proof's key,
	// base64url: the cnf.jkt of bound tokens.
	JKT string
	// JTI and IssuedAt come from the proof's claims.
	JTI      string
	IssuedAt time.Time
	// Nonce is the proof's nonce claim, or "" (section 8).
	Nonce string
}

// dpopClaims are the claims of a proof (section 4.2).
type dpopClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.Number     `json:"iat"`
	ATH   string          `json:"ath,omitempty"`
	Nonce json.RawMessage `json:"nonce,omitempty"`
}

// parseDPoPProof checks a proof's form, signature and claims for a
// request with method htm to URL htu at time now, and, when accessToken
// is not empty, that its ath is that token's hash (section 4.3). It does
// not check replay (useDPoPProof does).
func parseDPoPProof(raw, htm, htu, accessToken string, now time.Time) (dpopProof, error) {
	fail := func(format string, args ...any) (dpopProof, error) {
		return dpopProof{}, errInvalidDPoPProof.WithHintf(format, args...)
	}
	if raw == "" || len(raw) > maxDPoPBytes {
		return fail("The DPoP proof is missing or too large.")
	}
	jws, err := jose.ParseSignedCompact(raw, dpopAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return fail("The DPoP proof is not a JWS signed with an allowed algorithm.")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != dpopType {
		return fail("The DPoP proof's typ must be %s.", dpopType)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !keyFits(*h.JSONWebKey, jose.SignatureAlgorithm(h.Algorithm)) {
		return fail("The DPoP proof's jwk must be a public key that fits its alg.")
	}
	payload, err := jws.Verify(h.JSONWebKey.Key)
	if err != nil {
		return fail("The DPoP proof's signature does not verify with its jwk.")
	}
	var c dpopClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return fail("The DPoP proof's claims are malformed.")
	}
	iat, err := c.IAT.Int64()
	switch {
	case c.JTI == "" || len(c.JTI) > 256:
		return fail("The DPoP proof's jti is missing or too long.")
	case c.HTM != htm:
		return fail("The DPoP proof's htm is not the request's method.")
	case !sameHTU(c.HTU, htu):
		return fail("The DPoP proof's htu is not the request's URL.")
	case err != nil:
		return fail("The DPoP proof's iat is missing or not a number.")
	}
	issued := time.Unix(iat, 0)
	if issued.Before(now.Add(-dpopMaxAge)) || issued.After(now.Add(dpopLeeway)) {
		return fail("The DPoP proof's iat is too old or in the future.")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return fail("The DPoP proof's ath is not the access token's hash.")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return fail("The DPoP proof's jwk has no thumbprint.")
	}
	return dpopProof{JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: c.JTI, IssuedAt: issued, Nonce: proofNonce(c.Nonce)}, nil
}

// sameHTU compares a proof's htu with the request's URL without their
// query and fragment (section 4.3, item 9).
func sameHTU(claim, want string) bool {
	u, err := url.Parse(claim)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return false
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return u.String() == want
}

// useDPoPProof records the proof's jti, refusing a replay (section 11.1).
func (p *Provider) useDPoPProof(ctx context.Context, t tenantInfo, proof dpopProof) error {
	sum := sha256.Sum256([]byte(proof.JKT + "\x00" + proof.JTI))
	err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kindDPoPJTI, Key: hex.EncodeToString(sum[:]), TenantID: t.id, Active: true,
		CreatedAt: time.Now().UTC(), ExpiresAt: proof.IssuedAt.Add(dpopMaxAge + dpopLeeway),
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return errInvalidDPoPProof.WithHint("The DPoP proof was used before.")
	case err != nil:
		return fmt.Errorf("recording a DPoP proof: %w: %w", errStorage, err)
	}
	return nil
}

// tokenDPoP reads and checks the DPoP proof of a token request, when
// there is one: it returns nil without a proof. Its jti is recorded later
// (useDPoPProof), once the client has authenticated, so that anonymous
// requests write nothing.
func (p *Provider) tokenDPoP(c *fiber.Ctx, t tenantInfo) (*dpopProof, error) {
	headers := c.Request().Header.PeekAll(headerDPoP)
	switch len(headers) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errInvalidDPoPProof.WithHint("Send one DPoP header.")
	}
	proof, err := parseDPoPProof(string(headers[0]), http.MethodPost, t.issuer+PathToken, "", time.Now())
	if err != nil {
		return nil, err
	}
	return &proof, nil
}

// bindDPoP binds the tokens about to be issued for ar to the proof's key,
// or leaves them Bearer tokens without a proof. It refuses a request
// without a proof from a client that must send one, and a refresh of a
// public client's bound grant without a proof from the same key (section
// 5: those refresh tokens are bound too). It returns the token_type.
func bindDPoP(ar fosite.AccessRequester, proof *dpopProof) (string, error) {
	sess, ok := ar.GetSession().(*session)
	if !ok || sess.JWTClaims == nil {
		return "", fmt.Errorf("session of type %T", ar.GetSession())
	}
	if sess.JWTClaims.Extra == nil {
		sess.JWTClaims.Extra = map[string]any{}
	}
	cl, _ := ar.GetClient().(*client)
	if sess.CodeJKT != "" {
		// The authorization request named the key (section 10); the
		// code's tokens, refresh tokens included, stay bound to it.
		if proof == nil || subtle.ConstantTimeCompare([]byte(sess.CodeJKT), []byte(proof.JKT)) != 1 {
			return "", errInvalidDPoPProof.WithHint("The authorization code is bound to a DPoP key (dpop_jkt): send a proof made with it.")
		}
	}
	previous := jktOf(sess)
	if previous != "" && ar.GetClient().IsPublic() {
		if proof == nil {
			return "", errInvalidDPoPProof.WithHint("The grant is bound to a DPoP key: send a DPoP proof.")
		}
		if subtle.ConstantTimeCompare([]byte(previous), []byte(proof.JKT)) != 1 {
			return "", errInvalidDPoPProof.WithHint("The DPoP proof's key is not the one the grant is bound to.")
		}
	}
	if proof == nil {
		if cl != nil && cl.requireDPoP {
			return "", errInvalidDPoPProof.WithHint("This client must send a DPoP proof.")
		}
		delete(sess.JWTClaims.Extra, "cnf")
		return "Bearer", nil
	}
	sess.JWTClaims.Extra["cnf"] = map[string]any{"jkt": proof.JKT}
	return tokenTypeDPoP, nil
}

// jktOf returns the cnf.jkt of a session's access token claims, or "".
func jktOf(s *session) string {
	if s == nil || s.JWTClaims == nil {
		return ""
	}
	switch cnf := s.JWTClaims.Extra["cnf"].(type) {
	case map[string]any:
		jkt, _ := cnf["jkt"].(string)
		return jkt
	case map[string]string:
		return cnf["jkt"]
	}
	return ""
}

// dpopChallenge is the WWW-Authenticate challenge of a DPoP-protected
// resource (section 7.1); code use_dpop_nonce asks for a nonce (section
// 9).
func dpopChallenge(code, desc string) string {
	v := `DPoP algs="` + strings.Join(dpopAlgorithmNames(), " ") + `"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
	}
	return v
}

// checkDPoPUse checks the DPoP proof that comes with a bound access token
// at a resource of this server (section 7.1): method and URL, the
// token's hash, the key of the token's cnf.jkt, the nonce when
// nonceRequired (section 9; errUseDPoPNonce), and replay.
func (p *Provider) checkDPoPUse(ctx context.Context, c *fiber.Ctx, t tenantInfo, path, token, jkt string, nonceRequired bool) error {
	headers := c.Request().Header.PeekAll(headerDPoP)
	if len(headers) != 1 {
		return errInvalidDPoPProof.WithHint("Send one DPoP header.")
	}
	proof, err := parseDPoPProof(string(headers[0]), c.Method(), t.issuer+path, token, time.Now())
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(proof.JKT), []byte(jkt)) != 1 {
		return errInvalidDPoPProof.WithHint("The DPoP proof's key is not the token's.")
	}
	if nonceRequired {
		if err := p.checkDPoPNonce(c, t, &proof); err != nil {
			return err
		}
	}
	return p.useDPoPProof(ctx, t, proof)
}

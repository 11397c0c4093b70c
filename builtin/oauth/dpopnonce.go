package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/kernel/store"
)

// DPoP nonces (RFC 9449 sections 8 and 9): a server may make clients put
// a value it chose into their proofs, which bounds how far ahead a proof
// can be made. The nonces are stateless, so that every node of a cluster
// accepts those of the others without a store write: a nonce is the time
// it was issued and a MAC over that time and the tenant, under a key
// derived from Deps.HMACKey for the hour of issue (the key rotates every
// dpopNonceEpoch). It is valid for dpopNonceLifetime; a response carries a
// fresh one in DPoP-Nonce whenever the proof's nonce has less than
// dpopNonceRefresh left, or was missing or not valid.
const (
	// headerDPoPNonce carries a nonce to the client (section 8.1).
	headerDPoPNonce = "DPoP-Nonce"
	// dpopNonceLifetime is how long a nonce is accepted.
	dpopNonceLifetime = 5 * time.Minute
	// dpopNonceRefresh is the remaining life below which a successful
	// response carries the next nonce (section 8.2).
	dpopNonceRefresh = time.Minute
	// dpopNonceLeeway tolerates a nonce from a node whose clock is ahead.
	dpopNonceLeeway = 10 * time.Second
	// dpopNonceEpoch is the period of the nonce key.
	dpopNonceEpoch = time.Hour
	// dpopNonceMACLen is the length of a nonce's truncated MAC.
	dpopNonceMACLen = 16
	// ClientSettingDPoPNonceRequired, a JSON true in store.Client.Settings,
	// makes the client's DPoP proofs need a nonce of this server at the
	// token endpoint and at the UserInfo endpoint for its tokens.
	ClientSettingDPoPNonceRequired = "dpop_nonce_required"
	// TenantSettingDPoPNonceRequired, a JSON true in store.Tenant.Settings,
	// does the same for every client of the tenant.
	TenantSettingDPoPNonceRequired = "dpop_nonce_required"
)

// errUseDPoPNonce is the error of section 8 (token endpoint, 400) and 9
// (resources, 401 with the DPoP challenge).
var errUseDPoPNonce = &fosite.RFC6749Error{
	ErrorField:       "use_dpop_nonce",
	DescriptionField: "The DPoP proof must carry the nonce in the DPoP-Nonce header of this response.",
	CodeField:        http.StatusBadRequest,
}

// nonceKey returns the MAC key of the nonces issued during epoch.
func (p *Provider) nonceKey(epoch int64) []byte {
	m := hmac.New(sha256.New, p.d.HMACKey)
	m.Write([]byte("latch dpop-nonce key\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(epoch)) //nolint:gosec // G115: an epoch count of a time after 1970.
	m.Write(b[:])
	return m.Sum(nil)
}

// nonceMAC is the MAC of a nonce issued at unix second issued for the
// tenant tenantID.
func (p *Provider) nonceMAC(tenantID string, issued int64) []byte {
	m := hmac.New(sha256.New, p.nonceKey(issued/int64(dpopNonceEpoch/time.Second)))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(issued)) //nolint:gosec // G115: a unix time after 1970.
	m.Write(b[:])
	m.Write([]byte(tenantID))
	return m.Sum(nil)[:dpopNonceMACLen]
}

// newDPoPNonce returns a nonce of tenant t issued at now.
func (p *Provider) newDPoPNonce(t tenantInfo, now time.Time) string {
	issued := now.Unix()
	buf := make([]byte, 8, 8+dpopNonceMACLen)
	binary.BigEndian.PutUint64(buf, uint64(issued)) //nolint:gosec // G115: a unix time after 1970.
	return base64.RawURLEncoding.EncodeToString(append(buf, p.nonceMAC(t.id, issued)...))
}

// dpopNonceIssued returns when nonce was issued for tenant t, and whether
// it is one of this server's for t that is valid at now.
func (p *Provider) dpopNonceIssued(t tenantInfo, nonce string, now time.Time) (time.Time, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+dpopNonceMACLen {
		return time.Time{}, false
	}
	secs := binary.BigEndian.Uint64(raw[:8])
	if secs > uint64(now.Add(dpopNonceLeeway).Unix()) { //nolint:gosec // G115: a unix time after 1970.
		return time.Time{}, false
	}
	issued := int64(secs) //nolint:gosec // G115: bounded by now above.
	if subtle.ConstantTimeCompare(raw[8:], p.nonceMAC(t.id, issued)) != 1 {
		return time.Time{}, false
	}
	at := time.Unix(issued, 0)
	return at, now.Before(at.Add(dpopNonceLifetime))
}

// dpopNonceRequired reports whether DPoP proofs for tenant t and client
// settings clientSettings (nil when unknown) must carry a nonce: on the
// whole node (Deps.DPoPNonceRequired), for the tenant, or for the client.
func (p *Provider) dpopNonceRequired(t tenantInfo, clientSettings map[string]any) bool {
	return p.d.DPoPNonceRequired || t.settings[TenantSettingDPoPNonceRequired] == true ||
		clientSettings[ClientSettingDPoPNonceRequired] == true
}

// checkDPoPNonce checks the nonce of proof, which must carry one, and sets
// the DPoP-Nonce response header to a fresh nonce when the proof's is
// missing, not valid, or about to expire. It returns errUseDPoPNonce for a
// proof without a valid nonce (section 8).
func (p *Provider) checkDPoPNonce(c *fiber.Ctx, t tenantInfo, proof *dpopProof) error {
	now := time.Now()
	issued, ok := time.Time{}, false
	if proof.Nonce != "" {
		issued, ok = p.dpopNonceIssued(t, proof.Nonce, now)
	}
	if !ok || now.After(issued.Add(dpopNonceLifetime-dpopNonceRefresh)) {
		c.Set(headerDPoPNonce, p.newDPoPNonce(t, now))
	}
	if !ok {
		return errUseDPoPNonce
	}
	return nil
}

// proofNonce reads a proof's nonce claim: a string, else "".
func proofNonce(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// tokenDPoPNonce checks the nonce of a token request's proof, when the
// node, the tenant or the client the request names needs one (section
// 8). It runs before the grant is handled, because handling it uses up
// one-time state (a PKCE verifier, a client assertion's jti) that the
// client's retry with the nonce must still find. A request without a
// proof, or whose client is unknown, needs no nonce here.
func (p *Provider) tokenDPoPNonce(ctx context.Context, c *fiber.Ctx, t tenantInfo, r *http.Request, form url.Values, proof *dpopProof) error {
	if proof == nil {
		return nil
	}
	required := p.dpopNonceRequired(t, nil)
	if !required {
		cl, err := p.storage.client(ctx, claimedClientID(r, form))
		switch {
		case errors.Is(err, fosite.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		required = p.dpopNonceRequired(t, cl.settings)
	}
	if !required {
		return nil
	}
	return p.checkDPoPNonce(c, t, proof)
}

// claimedClientID is the client_id a token request names, before it is
// authenticated: in the form, in HTTP Basic, or as a client assertion's
// sub.
func claimedClientID(r *http.Request, form url.Values) string {
	if id := form.Get("client_id"); id != "" {
		return id
	}
	if id, _, _, err := clientCredentials(r, form); err == nil && id != "" {
		return id
	}
	raw := form.Get("client_assertion")
	if raw == "" || len(raw) > maxAssertionBytes {
		return ""
	}
	tok, err := josejwt.ParseSigned(raw, append(slices.Clone(assertionAlgorithms), secretJWTAlgorithms...))
	if err != nil {
		return ""
	}
	var claims josejwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return ""
	}
	return claims.Subject
}

// resourceNonceRequired reports whether the DPoP proofs that come with the
// access tokens of client clientID at this server's resources must carry a
// nonce (section 9).
func (p *Provider) resourceNonceRequired(ctx context.Context, t tenantInfo, clientID string) (bool, error) {
	if p.dpopNonceRequired(t, nil) {
		return true, nil
	}
	cl, err := p.d.Store.GetClientByClientID(ctx, t.id, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("loading client: %w: %w", errStorage, err)
	}
	return p.dpopNonceRequired(t, cl.Settings), nil
}

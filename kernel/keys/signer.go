package keys

import (
	"crypto"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Signer signs with one key. It implements jose.Signer, so it can be passed
// to go-jose's jwt.Signed; every signature carries the key's "kid" in its
// protected header. It is safe for concurrent use and cheap to keep: the
// Manager caches one per key.
type Signer struct {
	kid    string
	alg    string
	key    crypto.Signer
	signer jose.Signer
}

var _ jose.Signer = (*Signer)(nil)

func newSigner(key crypto.Signer, kid, alg string) (*Signer, error) {
	js, err := joseSigner(key, kid, alg, nil)
	if err != nil {
		return nil, err
	}
	return &Signer{kid: kid, alg: alg, key: key, signer: js}, nil
}

func joseSigner(key crypto.Signer, kid, alg string, opts *jose.SignerOptions) (jose.Signer, error) {
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(alg),
		Key:       jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("creating %s signer for key %q: %w", alg, kid, err)
	}
	return js, nil
}

// KeyID returns the key's id, the "kid" in signatures and in the JWKS.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm returns the JWS algorithm ("ES256", "RS256" or "EdDSA").
func (s *Signer) Algorithm() string { return s.alg }

// Sign signs payload as a JWS (RFC 7515) whose protected header holds alg
// and kid. Serialize it with CompactSerialize.
func (s *Signer) Sign(payload []byte) (*jose.JSONWebSignature, error) {
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("signing with key %q: %w", s.kid, err)
	}
	return jws, nil
}

// Options returns the options of the default signer (none beyond kid).
func (s *Signer) Options() jose.SignerOptions { return s.signer.Options() }

// WithOptions returns a go-jose signer over the same key and kid with extra
// options, such as a "typ" header: opts.WithType("at+jwt") for RFC 9068
// access tokens or "logout+jwt" for back-channel logout tokens. Creating it
// does not decrypt anything; keep it for as long as the Signer.
func (s *Signer) WithOptions(opts *jose.SignerOptions) (jose.Signer, error) {
	return joseSigner(s.key, s.kid, s.alg, opts)
}

// PublicKey returns the public half as a JWK with kid, alg and use "sig".
func (s *Signer) PublicKey() jose.JSONWebKey {
	return publicJWK(s.key, s.kid, s.alg)
}

// PrivateKey returns the private key, for libraries that sign by
// themselves (fosite's GetPrivateKey hooks, SAML). Never log it, copy it to
// storage, or hand it to an extension.
func (s *Signer) PrivateKey() crypto.Signer { return s.key }

package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// Self-signed certificate mutual-TLS client authentication (RFC 8705
// section 2.2), where Latch terminates TLS and accepts any client
// certificate (tls.self_signed_client_certs): no CA vouches for the
// certificate, so the client registers it beforehand, as the first
// certificate of an x5c (or as the x5t#S256) of a key in its jwks or
// jwks_uri, and authenticates by presenting exactly that certificate. The
// TLS handshake proves the client holds its private key.
const (
	// authMethodSelfSignedTLS is self-signed certificate mutual-TLS client
	// authentication (RFC 8705 section 2.2).
	authMethodSelfSignedTLS = "self_signed_tls_client_auth"
)

// registeredCertThumbprints returns the SHA-256 thumbprints of the
// certificates registered in keys: each key's first x5c certificate, or
// its x5t#S256 without an x5c (RFC 8705 section 2.2.2).
func registeredCertThumbprints(keys []jose.JSONWebKey) [][]byte {
	var out [][]byte
	for _, k := range keys {
		switch {
		case len(k.Certificates) > 0:
			sum := sha256.Sum256(k.Certificates[0].Raw)
			out = append(out, sum[:])
		case len(k.CertificateThumbprintSHA256) == sha256.Size:
			out = append(out, k.CertificateThumbprintSHA256)
		}
	}
	return out
}

// certRegistered reports whether cert is one of the certificates whose
// thumbprints are given. Every thumbprint is compared, in constant time.
func certRegistered(cert *x509.Certificate, thumbprints [][]byte) bool {
	sum := sha256.Sum256(cert.Raw)
	found := 0
	for _, tp := range thumbprints {
		found |= subtle.ConstantTimeCompare(sum[:], tp)
	}
	return found == 1
}

// selfSignedMatches reports whether cert is registered in the client's
// keys. With a jwks_uri, an unregistered certificate makes the set be
// fetched again (at most every jwksRefetchInterval), so a client may
// rotate its certificate.
func (p *Provider) selfSignedMatches(ctx context.Context, ck clientKeys, cert *x509.Certificate) (bool, error) {
	switch {
	case ck.set != nil:
		return certRegistered(cert, registeredCertThumbprints(ck.set.Keys)), nil
	case ck.uri != "":
		if err := safehttp.CheckURL(ck.uri, p.d.AllowPrivateNetworks); err != nil {
			return false, err
		}
		for _, force := range []bool{false, true} {
			set, err := p.clientJWKS.get(ctx, ck.uri, force)
			if err != nil {
				return false, err
			}
			if certRegistered(cert, registeredCertThumbprints(set.Keys)) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, errors.New("the client registered no keys")
}

// authenticateSelfSignedTLS authenticates a self_signed_tls_client_auth
// client by the certificate of the connection (RFC 8705 section 2.2): it
// must be within its validity period and be one the client registered.
// No chain is built. Every failure is invalid_client; the reason goes to
// the audit event.
func (p *Provider) authenticateSelfSignedTLS(ctx context.Context, cl *client, info *requestInfo) (*client, error) {
	info.method = authMethodSelfSignedTLS
	fail := func(reason string) (*client, error) {
		info.reason = reason
		return nil, fosite.ErrInvalidClient
	}
	cert := presentedCert(ctx)
	now := time.Now()
	switch {
	case !p.d.SelfSignedMutualTLS:
		return fail("self-signed client certificates are not enabled on this node")
	case cert == nil:
		return fail("no client certificate")
	case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
		return fail("the client certificate is expired or not yet valid")
	}
	ok, err := p.selfSignedMatches(ctx, cl.keys, cert)
	switch {
	case err != nil:
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			p.d.Log.WarnContext(ctx, "client jwks_uri refused by the SSRF guard", "client_id", cl.id)
		}
		return fail("finding the client's certificates: " + err.Error())
	case !ok:
		return fail("the client certificate is not one the client registered")
	}
	return cl, nil
}

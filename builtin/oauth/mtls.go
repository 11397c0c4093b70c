package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"
)

// Mutual-TLS client authentication and certificate-bound access tokens
// (RFC 8705), where Latch terminates TLS and asks for client certificates
// (tls.client_ca_file): the TLS handshake verifies the certificate chain
// against those CAs, and a client registered for tls_client_auth is then
// the one whose registered subject DN or subject alternative name the
// certificate carries.
const (
	// authMethodTLS is PKI mutual-TLS client authentication (section
	// 2.1).
	authMethodTLS = "tls_client_auth"
	// cnfX5T is the confirmation member of certificate-bound tokens: the
	// SHA-256 thumbprint of the client certificate (section 3.1).
	cnfX5T = "x5t#S256"
)

// Client settings of tls_client_auth (RFC 8705 section 2.1.2): exactly one
// names the certificate the client authenticates with.
const (
	// ClientSettingTLSSubjectDN is the certificate's subject distinguished
	// name, in the RFC 4514 string form Go writes
	// ("CN=svc,O=Example,C=DE").
	ClientSettingTLSSubjectDN = "tls_client_auth_subject_dn"
	// ClientSettingTLSSANDNS is a dNSName subject alternative name.
	ClientSettingTLSSANDNS = "tls_client_auth_san_dns"
	// ClientSettingTLSSANURI is a uniformResourceIdentifier SAN.
	ClientSettingTLSSANURI = "tls_client_auth_san_uri"
	// ClientSettingTLSSANIP is an iPAddress SAN.
	ClientSettingTLSSANIP = "tls_client_auth_san_ip"
	// ClientSettingTLSSANEmail is an rfc822Name SAN.
	ClientSettingTLSSANEmail = "tls_client_auth_san_email"
)

// peerCertKey carries the verified client certificate of a request;
// presentedCertKey the certificate the client presented, verified or not.
type (
	peerCertKey      struct{}
	presentedCertKey struct{}
)

// withPeerCert returns ctx carrying the client certificate of c's TLS
// connection: as presented, and as verified when the handshake (or the
// server's listener, with self-signed certificates allowed) verified it.
func withPeerCert(ctx context.Context, c *fiber.Ctx) context.Context {
	st := c.Context().TLSConnectionState()
	if st == nil || len(st.PeerCertificates) == 0 {
		return ctx
	}
	ctx = context.WithValue(ctx, presentedCertKey{}, st.PeerCertificates[0])
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ctx
	}
	return context.WithValue(ctx, peerCertKey{}, st.VerifiedChains[0][0])
}

// presentedCert returns the certificate the client presented in the TLS
// handshake, whose key the handshake proved the client holds, or nil.
func presentedCert(ctx context.Context) *x509.Certificate {
	cert, _ := ctx.Value(presentedCertKey{}).(*x509.Certificate)
	return cert
}

// peerCert returns the request's verified client certificate, or nil.
func peerCert(ctx context.Context) *x509.Certificate {
	cert, _ := ctx.Value(peerCertKey{}).(*x509.Certificate)
	return cert
}

// certThumbprint is the base64url SHA-256 of a certificate's DER: its
// x5t#S256.
func certThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// certMatches reports whether cert is the one the client's settings name.
func certMatches(cert *x509.Certificate, settings map[string]any) bool {
	if dn := settingString(settings, ClientSettingTLSSubjectDN); dn != "" {
		return cert.Subject.String() == dn
	}
	if v := settingString(settings, ClientSettingTLSSANDNS); v != "" {
		return slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, v) })
	}
	if v := settingString(settings, ClientSettingTLSSANURI); v != "" {
		return slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == v })
	}
	if v := settingString(settings, ClientSettingTLSSANIP); v != "" {
		ip := net.ParseIP(v)
		return ip != nil && slices.ContainsFunc(cert.IPAddresses, func(a net.IP) bool { return a.Equal(ip) })
	}
	if v := settingString(settings, ClientSettingTLSSANEmail); v != "" {
		return slices.Contains(cert.EmailAddresses, v)
	}
	return false
}

// authenticateTLS authenticates a tls_client_auth client by the verified
// certificate of the connection (RFC 8705 section 2.1). Every failure is
// invalid_client; the reason goes to the audit event.
func (p *Provider) authenticateTLS(ctx context.Context, cl *client, info *requestInfo) (*client, error) {
	info.method = authMethodTLS
	cert := peerCert(ctx)
	switch {
	case !p.d.MutualTLS:
		info.reason = "mutual TLS is not enabled on this node"
		return nil, fosite.ErrInvalidClient
	case cert == nil:
		info.reason = "no verified client certificate"
		return nil, fosite.ErrInvalidClient
	case !certMatches(cert, cl.settings):
		info.reason = "the client certificate is not the client's"
		return nil, fosite.ErrInvalidClient
	}
	return cl, nil
}

// bindCertificate binds the tokens about to be issued for ar to the
// client certificate the client authenticated with (tls_client_auth or
// self_signed_tls_client_auth; RFC 8705 section 3),
// adding x5t#S256 to the access token's cnf.
func bindCertificate(ctx context.Context, ar fosite.AccessRequester, info *requestInfo) {
	sess, ok := ar.GetSession().(*session)
	if !ok || sess.JWTClaims == nil {
		return
	}
	cert := presentedCert(ctx)
	if (info.method != authMethodTLS && info.method != authMethodSelfSignedTLS) || cert == nil {
		if cnf, ok := sess.JWTClaims.Extra["cnf"].(map[string]any); ok {
			delete(cnf, cnfX5T)
			if len(cnf) == 0 {
				delete(sess.JWTClaims.Extra, "cnf")
			}
		}
		return
	}
	cnf, ok := sess.JWTClaims.Extra["cnf"].(map[string]any)
	if !ok {
		cnf = map[string]any{}
	}
	cnf[cnfX5T] = certThumbprint(cert)
	sess.JWTClaims.Extra["cnf"] = cnf
}

// x5tOf returns the cnf x5t#S256 of a session's access token claims, or "".
func x5tOf(s *session) string {
	if s == nil || s.JWTClaims == nil {
		return ""
	}
	switch cnf := s.JWTClaims.Extra["cnf"].(type) {
	case map[string]any:
		v, _ := cnf[cnfX5T].(string)
		return v
	case map[string]string:
		return cnf[cnfX5T]
	}
	return ""
}

// certBindingHolds reports whether the request's client certificate is the
// one a certificate-bound token is bound to (RFC 8705 section 3). The
// presented certificate counts, verified or self-signed: the handshake
// proved the client holds its key, and the thumbprint names it exactly.
func certBindingHolds(ctx context.Context, x5t string) bool {
	cert := presentedCert(ctx)
	return cert != nil && subtle.ConstantTimeCompare([]byte(certThumbprint(cert)), []byte(x5t)) == 1
}

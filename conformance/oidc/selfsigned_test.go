package oidc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/conformance/internal/live"
)

// selfSigned makes a self-signed client certificate for cn, valid from
// notBefore to notAfter.
func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// certJWKS is the JWK Set that registers certs (RFC 8705 section 2.2.2:
// the certificate in x5c), as go-jose writes it.
func certJWKS(t *testing.T, certs ...tls.Certificate) map[string]any {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, c := range certs {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: c.Leaf.PublicKey, Certificates: []*x509.Certificate{c.Leaf}, Use: "sig"})
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSelfSignedTLSClientAuth runs RFC 8705 section 2.2 against a live
// server that terminates TLS and accepts self-signed client certificates
// (tls.self_signed_client_certs), with Go's crypto/tls and x/oauth2:
// clients registered through the admin API and dynamic registration with
// their certificate in jwks (x5c), certificate-bound access tokens, and
// the negative cases (another certificate, an expired registered one, no
// certificate, a CA-less tls_client_auth registration).
func TestSelfSignedTLSClientAuth(t *testing.T) {
	ca := newCA(t, "server CA")
	certFile, keyFile, _ := ca.serverFiles(t, t.TempDir())
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}
	s := live.StartWith(t, live.Options{HTTPS: true, Client: client(), Env: []string{
		"LATCH_TLS_CERT_FILE=" + certFile, "LATCH_TLS_KEY_FILE=" + keyFile, "LATCH_TLS_SELF_SIGNED_CLIENT_CERTS=true",
	}})

	now := time.Now()
	svcCert := selfSigned(t, "svc", now.Add(-time.Hour), now.Add(time.Hour))
	rotated := selfSigned(t, "svc-next", now.Add(-time.Hour), now.Add(time.Hour))
	otherCert := selfSigned(t, "svc", now.Add(-time.Hour), now.Add(time.Hour)) // same name, other key
	expired := selfSigned(t, "old", now.Add(-2*time.Hour), now.Add(-time.Hour))
	dcrCert := selfSigned(t, "dynamic", now.Add(-time.Hour), now.Add(time.Hour))
	for _, c := range []map[string]any{
		{
			"client_id": "ss-svc", "name": "self-signed mTLS", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "self_signed_tls_client_auth", "enabled": true,
			"settings": map[string]any{"jwks": certJWKS(t, svcCert, rotated)},
		},
		{
			"client_id": "ss-expired", "name": "expired certificate", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "self_signed_tls_client_auth", "enabled": true,
			"settings": map[string]any{"jwks": certJWKS(t, expired)},
		},
	} {
		if code := s.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating %v: %d", c["client_id"], code)
		}
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(context.Background(), client()), s.URL)
	if err != nil {
		t.Fatalf("discovery over TLS: %v", err)
	}
	tokenURL := provider.Endpoint().TokenURL
	token := func(id string, httpClient *http.Client, scopes ...string) (*oauth2.Token, error) {
		if len(scopes) == 0 {
			scopes = []string{"read"}
		}
		c := context.WithValue(context.Background(), oauth2.HTTPClient, httpClient)
		return (&clientcredentials.Config{ClientID: id, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams, Scopes: scopes}).Token(c)
	}
	x5t := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Certificate[0])
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}

	t.Run("Config/DiscoveryListsSelfSigned", func(t *testing.T) {
		var m map[string]any
		if err := provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		methods, _ := m["token_endpoint_auth_methods_supported"].([]any)
		if !containsAny(methods, "self_signed_tls_client_auth") || containsAny(methods, "tls_client_auth") || m["tls_client_certificate_bound_access_tokens"] != true {
			t.Errorf("discovery: %v, bound %v", methods, m["tls_client_certificate_bound_access_tokens"])
		}
	})

	t.Run("SelfSigned/CertificateBoundToken", func(t *testing.T) {
		for _, cert := range []tls.Certificate{svcCert, rotated} {
			tok, err := token("ss-svc", client(cert))
			if err != nil {
				t.Fatalf("self_signed_tls_client_auth with %s: %v", cert.Leaf.Subject.CommonName, err)
			}
			at, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(oidc.ClientContext(context.Background(), client()), tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				CNF map[string]string `json:"cnf"`
			}
			if err := at.Claims(&claims); err != nil || claims.CNF["x5t#S256"] != x5t(cert) {
				t.Errorf("cnf %v (%v), want x5t#S256 %s", claims.CNF, err, x5t(cert))
			}
		}
	})

	for name, tc := range map[string]struct {
		id string
		c  *http.Client
	}{
		"Negative/NoCertificate":       {"ss-svc", client()},
		"Negative/OtherCertificate":    {"ss-svc", client(otherCert)},
		"Negative/UnregisteredCert":    {"ss-svc", client(dcrCert)},
		"Negative/ExpiredRegistered":   {"ss-expired", client(expired)},
		"Negative/OtherClientsCert":    {"ss-expired", client(svcCert)},
		"Negative/CertificateNoClient": {"no-such-client", client(svcCert)},
	} {
		t.Run("SelfSigned/"+name, func(t *testing.T) {
			_, err := token(tc.id, tc.c)
			wantOAuthError(t, err, "invalid_client")
		})
	}

	t.Run("SelfSigned/AdminRefusesNoCertificate", func(t *testing.T) {
		if code := s.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": "ss-nocert", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "self_signed_tls_client_auth",
			"settings": map[string]any{"jwks": map[string]any{"keys": []any{}}},
		}, nil); code != http.StatusBadRequest {
			t.Errorf("a self-signed client without a certificate: %d, want 400", code)
		}
	})

	t.Run("Dynamic/SelfSignedRegistration", func(t *testing.T) {
		var it struct {
			Token string `json:"initial_access_token"`
		}
		if code := s.Admin(http.MethodPost, "/registration/tokens", map[string]any{"ttl_seconds": 600}, &it); code != http.StatusCreated {
			t.Fatalf("issuing an initial access token: %d", code)
		}
		register := func(meta map[string]any) (int, map[string]any) {
			body, _ := json.Marshal(meta)
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/register", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+it.Token)
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		// Refused ones do not use the initial access token up.
		for name, meta := range map[string]map[string]any{
			"NoKeys":        {"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "self_signed_tls_client_auth"},
			"NoCertificate": {"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": map[string]any{"keys": []any{jwkOnly(t, dcrCert)}}},
			"PKIMethod":     {"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "tls_client_auth", "jwks": certJWKS(t, dcrCert)},
		} {
			if status, out := register(meta); status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
				t.Errorf("%s: %d %v", name, status, out)
			}
		}
		status, out := register(map[string]any{
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "self_signed_tls_client_auth",
			"jwks": certJWKS(t, dcrCert), "client_name": "dynamic self-signed",
		})
		id, _ := out["client_id"].(string)
		if status != http.StatusCreated || id == "" || out["token_endpoint_auth_method"] != "self_signed_tls_client_auth" {
			t.Fatalf("registration: %d %v", status, out)
		}
		if _, err := token(id, client(dcrCert), "openid"); err != nil {
			t.Errorf("the registered client with its certificate: %v", err)
		}
		_, err := token(id, client(svcCert), "openid")
		wantOAuthError(t, err, "invalid_client")
	})
}

// jwkOnly is the public key of c as a JWK without its certificate.
func jwkOnly(t *testing.T, c tls.Certificate) map[string]any {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKey{Key: c.Leaf.PublicKey, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

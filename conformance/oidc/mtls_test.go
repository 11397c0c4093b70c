package oidc_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestMutualTLSClientAuth runs RFC 8705 against a live server that
// terminates TLS and asks for client certificates (tls.client_ca_file):
// tls_client_auth by subject alternative name and by subject DN, with Go's
// crypto/tls client certificates and x/oauth2; certificate-bound access
// tokens (cnf x5t#S256), seen by go-oidc and introspection, and refused
// without the certificate.
func TestMutualTLSClientAuth(t *testing.T) {
	ca := newCA(t, "mTLS test CA")
	certFile, keyFile, caFile := ca.serverFiles(t, t.TempDir())

	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	svcCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, DNSNames: []string{"svc.example.com"}, ExtKeyUsage: clientAuth})
	dnCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mtls-dn", Organization: []string{"Example"}}, ExtKeyUsage: clientAuth})
	otherCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "other"}, DNSNames: []string{"other.example.com"}, ExtKeyUsage: clientAuth})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}
	s := live.StartWith(t, live.Options{HTTPS: true, Client: client(), Env: []string{
		"LATCH_TLS_CERT_FILE=" + certFile, "LATCH_TLS_KEY_FILE=" + keyFile, "LATCH_TLS_CLIENT_CA_FILE=" + caFile,
	}})
	for _, c := range []map[string]any{
		{
			"client_id": "mtls-svc", "name": "mTLS by SAN", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "tls_client_auth", "enabled": true,
			"settings": map[string]any{"tls_client_auth_san_dns": "svc.example.com"},
		},
		{
			"client_id": "mtls-dn", "name": "mTLS by DN", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "tls_client_auth", "enabled": true,
			"settings": map[string]any{"tls_client_auth_subject_dn": "CN=mtls-dn,O=Example"},
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
	token := func(id string, httpClient *http.Client) (*oauth2.Token, error) {
		c := context.WithValue(context.Background(), oauth2.HTTPClient, httpClient)
		return (&clientcredentials.Config{ClientID: id, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams, Scopes: []string{"read"}}).Token(c)
	}
	x5t := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Certificate[0])
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}

	t.Run("Config/DiscoveryListsMTLS", func(t *testing.T) {
		var m map[string]any
		if err := provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		methods, _ := m["token_endpoint_auth_methods_supported"].([]any)
		if !containsAny(methods, "tls_client_auth") || m["tls_client_certificate_bound_access_tokens"] != true {
			t.Errorf("discovery: %v, bound %v", methods, m["tls_client_certificate_bound_access_tokens"])
		}
	})

	tok, err := token("mtls-svc", client(svcCert))
	if err != nil {
		t.Fatalf("tls_client_auth by SAN: %v", err)
	}

	t.Run("MTLS/CertificateBoundToken", func(t *testing.T) {
		at, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(oidc.ClientContext(context.Background(), client()), tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			CNF map[string]string `json:"cnf"`
		}
		if err := at.Claims(&claims); err != nil || claims.CNF["x5t#S256"] != x5t(svcCert) {
			t.Errorf("cnf %v (%v), want x5t#S256 %s", claims.CNF, err, x5t(svcCert))
		}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}, "client_id": {"mtls-svc"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client(svcCert).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var in struct {
			Active bool              `json:"active"`
			CNF    map[string]string `json:"cnf"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || !in.Active || in.CNF["x5t#S256"] != x5t(svcCert) {
			t.Errorf("introspection with mTLS client auth: %+v %v", in, err)
		}
	})

	t.Run("MTLS/BoundTokenNeedsItsCertificate", func(t *testing.T) {
		status := func(c *http.Client) int {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/oauth2/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		// With the certificate the token is valid (and has no end-user:
		// 403); without it, or with another, it is not (401).
		if got := status(client(svcCert)); got != http.StatusForbidden {
			t.Errorf("with the certificate: %d, want 403", got)
		}
		if got := status(client()); got != http.StatusUnauthorized {
			t.Errorf("without a certificate: %d, want 401", got)
		}
		if got := status(client(otherCert)); got != http.StatusUnauthorized {
			t.Errorf("with another certificate: %d, want 401", got)
		}
	})

	t.Run("MTLS/SubjectDN", func(t *testing.T) {
		if _, err := token("mtls-dn", client(dnCert)); err != nil {
			t.Errorf("tls_client_auth by subject DN: %v", err)
		}
	})

	for name, tc := range map[string]struct {
		id string
		c  *http.Client
	}{
		"Negative/NoCertificate":    {"mtls-svc", client()},
		"Negative/OtherCertificate": {"mtls-svc", client(otherCert)},
		"Negative/OtherClientsCert": {"mtls-dn", client(svcCert)},
	} {
		t.Run("MTLS/"+name, func(t *testing.T) {
			_, err := token(tc.id, tc.c)
			wantOAuthError(t, err, "invalid_client")
		})
	}
}

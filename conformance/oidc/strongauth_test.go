package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// userID returns the id of the user with the username.
func userID(t *testing.T, s *live.Server, username string) string {
	t.Helper()
	var users struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if code := s.Admin(http.MethodGet, "/users?username="+username, nil, &users); code != http.StatusOK || len(users.Items) != 1 {
		t.Fatalf("finding %s: %d %v", username, code, users)
	}
	return users.Items[0].ID
}

// codeFrom returns the authorization code of a redirect to the client.
func codeFrom(t *testing.T, p page, redirect, state string) string {
	t.Helper()
	if !strings.HasPrefix(p.Location, redirect) {
		t.Fatalf("expected a redirect to %s, got %d %s\n%s", redirect, p.Status, p.Location, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("state") != state || u.Query().Get("code") == "" {
		t.Fatalf("callback %s", p.Location)
	}
	return u.Query().Get("code")
}

// TestIdentifierFirst runs identifier-first logins as plain HTML forms
// (no JavaScript): the first step asks only for the username and routes
// the second by the user; later steps must sign in the named user; a
// domain mapped to passkeys goes to the passkey step; an unknown name is
// refused like a wrong password; and a flow whose steps prove nothing
// issues no code.
func TestIdentifierFirst(t *testing.T) {
	s := webauthnServer(t)
	for _, u := range []map[string]any{
		{"username": "bob", "password": "bob-password-42", "enabled": true},
		{"username": "carol", "password": "carol-password-42", "email": "carol@example.org", "enabled": true},
	} {
		if code := s.Admin(http.MethodPost, "/users", u, nil); code != http.StatusCreated {
			t.Fatalf("creating %v: %d", u["username"], code)
		}
	}
	const redirect = "http://127.0.0.1:9/idf/callback"
	for id, steps := range map[string][]any{
		"idf":      {map[string]any{"options": []string{"identifier"}}, map[string]any{"options": []string{"password", "webauthn"}}},
		"idf-only": {map[string]any{"options": []string{"identifier"}}},
	} {
		if code := s.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": id, "public": true, "first_party": true, "token_endpoint_auth_method": "none", "enabled": true,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
			"settings": map[string]any{"authentication": map[string]any{"steps": steps}},
		}, nil); code != http.StatusCreated {
			t.Fatalf("creating client %s: %d", id, code)
		}
	}
	cfg := func(client string) *oauth2.Config {
		return &oauth2.Config{ClientID: client, RedirectURL: redirect, Scopes: []string{"openid"},
			Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	}
	start := func(client, state, verifier string) (*browser, page) {
		b := newBrowser(t)
		p := b.Get(cfg(client).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), redirect)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="username"`) || strings.Contains(p.Body, `name="password"`) {
			t.Fatalf("%s: the first step should ask for the username only: %d\n%s", state, p.Status, p.Body)
		}
		return b, p
	}

	t.Run("routes to the password of a user without passkey", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		b, p := start("idf", "idf-state-1", verifier)
		p = b.Submit(p, map[string]string{"username": "alice"}, redirect)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) || !strings.Contains(p.Body, `value="alice"`) {
			t.Fatalf("second step: %d\n%s", p.Status, p.Body)
		}
		p = b.Submit(p, map[string]string{"password": alicePass}, redirect)
		code := codeFrom(t, p, redirect, "idf-state-1")
		tok, err := cfg("idf").Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchanging the code: %v", err)
		}
		if claims := idTokenClaims(t, tok); claims["sub"] != userID(t, s, "alice") {
			t.Errorf("sub %v, want alice", claims["sub"])
		}
	})

	t.Run("the next step must sign in the named user", func(t *testing.T) {
		b, p := start("idf", "idf-state-2", oauth2.GenerateVerifier())
		p = b.Submit(p, map[string]string{"username": "alice"}, redirect)
		p = b.Submit(p, map[string]string{"username": "bob", "password": "bob-password-42"}, redirect)
		if p.Status != http.StatusUnauthorized || strings.HasPrefix(p.Location, redirect) {
			t.Fatalf("bob's password after naming alice: %d %s", p.Status, p.Location)
		}
	})

	t.Run("an unknown name is refused", func(t *testing.T) {
		b, p := start("idf", "idf-state-3", oauth2.GenerateVerifier())
		p = b.Submit(p, map[string]string{"username": "nobody"}, redirect)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "not correct") || !strings.Contains(p.Body, `name="username"`) {
			t.Fatalf("unknown user: %d\n%s", p.Status, p.Body)
		}
	})

	t.Run("a mapped email domain goes to passkeys", func(t *testing.T) {
		b, p := start("idf", "idf-state-4", oauth2.GenerateVerifier())
		p = b.Submit(p, map[string]string{"username": "carol@example.org"}, redirect)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "data-challenge=") || strings.Contains(p.Body, `name="password"`) {
			t.Fatalf("carol@example.org: %d\n%s", p.Status, p.Body)
		}
	})

	t.Run("naming a user alone signs nobody in", func(t *testing.T) {
		b, p := start("idf-only", "idf-state-5", oauth2.GenerateVerifier())
		p = b.Submit(p, map[string]string{"username": "alice"}, redirect)
		if strings.HasPrefix(p.Location, redirect) || p.Status < 400 {
			t.Fatalf("an identifier-only flow completed: %d %s", p.Status, p.Location)
		}
	})
}

// pki is a test certificate authority made with crypto/x509.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverFiles issues a server certificate for 127.0.0.1 and writes it,
// its key and the CA's certificate as PEM files into dir.
func (ca *pki) serverFiles(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	server := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	keyDER, err := x509.MarshalECPrivateKey(server.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("server.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]})),
		write("server.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		write("ca.pem", ca.pem)
}

// issue signs a leaf certificate for tmpl's names.
func (ca *pki) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestX509ClientCertificate signs in over real TLS with a client
// certificate: Latch serves HTTPS and asks for client certificates from
// its CA (tls.client_ca_file); authn.x509 maps the certificate's email
// address to alice. A browser without a certificate sees why and can use
// the password; a certificate of an unknown user is refused; one from
// another CA fails the handshake.
func TestX509ClientCertificate(t *testing.T) {
	ca, rogue := newCA(t, "Latch test CA"), newCA(t, "Rogue CA")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile, caFile := ca.serverFiles(t, dir)
	cfg := write("latch.yaml", []byte(`tls:
  cert_file: "`+certFile+`"
  key_file: "`+keyFile+`"
  client_ca_file: "`+caFile+`"
extensions:
  instances:
    - name: authn.x509
      module: authn.x509
      config: {ca_files: ["`+caFile+`"]}
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
`))
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}
	s := live.StartWith(t, live.Options{HTTPS: true, Client: client(), Env: []string{"LATCH_CONFIG=" + cfg}})
	if code := s.Admin(http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true, "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d", code)
	}
	const redirect = "http://127.0.0.1:9/cert/callback"
	if code := s.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "cert-app", "public": true, "first_party": true, "token_endpoint_auth_method": "none", "enabled": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"x509", "password"}},
		}}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	oauth := &oauth2.Config{ClientID: "cert-app", RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	withCert := func(c *http.Client) *browser {
		b := newBrowser(t)
		b.Client.Transport = c.Transport
		return b
	}
	aliceCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Alice Liddell"},
		EmailAddresses: []string{"alice@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	t.Run("certificate signs alice in", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		b := withCert(client(aliceCert))
		p := b.Get(oauth.AuthCodeURL("cert-state-1", oauth2.S256ChallengeOption(verifier)), redirect)
		code := codeFrom(t, p, redirect, "cert-state-1")
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client())
		tok, err := oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchanging the code: %v", err)
		}
		claims := idTokenClaims(t, tok)
		if claims["sub"] != userID(t, s, "alice") || !strings.Contains(strings.Join(amrOf(claims), " "), "swk") {
			t.Errorf("sub %v amr %v, want alice by certificate", claims["sub"], claims["amr"])
		}
	})

	t.Run("no certificate", func(t *testing.T) {
		b := withCert(client())
		p := b.Get(oauth.AuthCodeURL("cert-state-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "did not present a client certificate") || !strings.Contains(p.Body, "option=authn.password") {
			t.Fatalf("without a certificate: %d\n%s", p.Status, p.Body)
		}
	})

	t.Run("certificate of an unknown user", func(t *testing.T) {
		stranger := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Mallory"},
			EmailAddresses: []string{"mallory@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		b := withCert(client(stranger))
		p := b.Get(oauth.AuthCodeURL("cert-state-3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
		if p.Status != http.StatusUnauthorized || strings.HasPrefix(p.Location, redirect) {
			t.Fatalf("unknown user's certificate: %d %s", p.Status, p.Location)
		}
	})

	t.Run("certificate of another CA", func(t *testing.T) {
		forged := rogue.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Alice"},
			EmailAddresses: []string{"alice@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		// Go's client would send no certificate the server's CA list does
		// not name; this one insists, as a hostile client would.
		insist := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &forged, nil },
		}}}
		resp, err := insist.Get(oauth.AuthCodeURL("cert-state-4", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err == nil {
			_ = resp.Body.Close()
			t.Fatalf("the handshake accepted a certificate of another CA: %d", resp.StatusCode)
		}
	})
}

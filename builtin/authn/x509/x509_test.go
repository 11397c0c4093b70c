package x509

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/internal/lookuptest"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/store"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB) *ca {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{cert: c, key: key}
}

func (c *ca) file(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// header issues a client certificate from tmpl and encodes it the way the
// login service passes it.
func (c *ca) header(t testing.TB, tmpl *x509.Certificate) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

func TestAuthenticate(t *testing.T) {
	f := lookuptest.NewFixture(t)
	alice := f.AddUser(t, store.User{Username: "alice", Email: "alice@example.com", Enabled: true})
	f.AddUser(t, store.User{Username: "dora", Email: "dora@example.com", Enabled: false})
	trusted, other := newCA(t), newCA(t)
	load := func(config string) *Authenticator {
		t.Helper()
		v, err := f.Load(t, Module(), config)
		if err != nil {
			t.Fatal(err)
		}
		return v.(*Authenticator)
	}
	byEmail := load(`{"ca_files": ["` + trusted.file(t) + `"]}`)
	byCN := load(`{"ca_files": ["` + trusted.file(t) + `"], "source": "subject_cn", "amr": ["hwk"]}`)

	emailOID := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	tests := []struct {
		name    string
		a       *Authenticator
		header  string
		known   string
		outcome string
		reason  string
		amr     []string
	}{
		{name: "no certificate", a: byEmail, outcome: abi.OutcomeChallenge},
		{name: "SAN email", a: byEmail, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}}), outcome: abi.OutcomeAuthenticated, amr: []string{"swk"}},
		{name: "subject emailAddress", a: byEmail, header: trusted.header(t, &x509.Certificate{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: emailOID, Value: "alice@example.com"}}}}), outcome: abi.OutcomeAuthenticated, amr: []string{"swk"}},
		{name: "common name", a: byCN, header: trusted.header(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}}), outcome: abi.OutcomeAuthenticated, amr: []string{"hwk"}},
		{name: "second factor", a: byEmail, known: alice, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}}), outcome: abi.OutcomeAuthenticated, amr: []string{"swk", "mfa"}},
		{name: "another user than the known one", a: byEmail, known: "someone-else", header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "another CA", a: byEmail, header: other.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "expired", a: byEmail, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "server certificate", a: byEmail, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"alice@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "unknown user", a: byEmail, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"mallory@example.com"}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "disabled user", a: byEmail, header: trusted.header(t, &x509.Certificate{EmailAddresses: []string{"dora@example.com"}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonDisabled},
		{name: "no name in it", a: byEmail, header: trusted.header(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}}), outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "garbage", a: byEmail, header: "%%%", outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := abi.AuthenticateRequest{Tenant: "acme", KnownSubject: tt.known, Headers: map[string][]string{}}
			if tt.header != "" {
				req.Headers[abi.HeaderClientCertificate] = []string{tt.header}
			}
			resp, err := authn.Check(tt.a.Authenticate(context.Background(), req))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.outcome || resp.Reason != tt.reason {
				t.Fatalf("got %+v", resp)
			}
			if tt.outcome == abi.OutcomeAuthenticated && (resp.Subject != alice || !slices.Equal(resp.AMR, tt.amr)) {
				t.Errorf("subject %s amr %v, want alice %v", resp.Subject, resp.AMR, tt.amr)
			}
		})
	}
}

func TestProvisionErrors(t *testing.T) {
	f := lookuptest.NewFixture(t)
	ca := newCA(t).file(t)
	for name, cfg := range map[string]string{
		"no CA":          `{"ca_files": []}`,
		"missing file":   `{"ca_files": ["/nonexistent/ca.pem"]}`,
		"not PEM":        `{"ca_files": ["x509_test.go"]}`,
		"bad source":     `{"ca_files": ["` + ca + `"], "source": "serial"}`,
		"bad match":      `{"ca_files": ["` + ca + `"], "match": "attribute:"}`,
		"unknown field":  `{"ca_files": ["` + ca + `"], "crl": true}`,
		"missing config": ``,
	} {
		if _, err := f.Load(t, Module(), cfg); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

var jsonFence = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestREADMEExamples loads every JSON example of the README.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	f := lookuptest.NewFixture(t)
	examples := jsonFence.FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for _, ex := range examples {
		if _, err := f.Load(t, Module(), string(ex[1])); err != nil {
			t.Errorf("README example %s: %v", ex[1], err)
		}
	}
}

// FuzzParseChain feeds the client certificate header's parser arbitrary
// input: it must never panic, and what it accepts is 1..8 certificates.
func FuzzParseChain(f *testing.F) {
	c := newCA(f)
	f.Add(c.header(f, &x509.Certificate{EmailAddresses: []string{"a@b"}}))
	f.Add("")
	f.Add("%")
	f.Add(url.QueryEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add(url.QueryEscape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, raw string) {
		certs, err := ParseChain(raw)
		if err == nil && (len(certs) == 0 || len(certs) > maxChain) {
			t.Fatalf("accepted %d certificates", len(certs))
		}
	})
}

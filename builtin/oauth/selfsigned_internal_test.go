package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// selfSignedCert makes a self-signed certificate with go's crypto/x509.
func selfSignedCert(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "svc"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertRegistered reads registered certificates the way a client's
// settings hold them (JSON decoded into a map), by x5c and by x5t#S256.
func TestCertRegistered(t *testing.T) {
	cert, other := selfSignedCert(t), selfSignedCert(t)
	sum := sha256.Sum256(cert.Raw)
	settingsWith := func(k jose.JSONWebKey) map[string]any {
		raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return map[string]any{ClientSettingJWKS: v}
	}
	for name, tc := range map[string]struct {
		key  jose.JSONWebKey
		cert *x509.Certificate
		want bool
	}{
		"X5C":             {jose.JSONWebKey{Key: cert.PublicKey, Certificates: []*x509.Certificate{cert}}, cert, true},
		"X5TS256":         {jose.JSONWebKey{Key: cert.PublicKey, CertificateThumbprintSHA256: sum[:]}, cert, true},
		"OtherCertX5C":    {jose.JSONWebKey{Key: other.PublicKey, Certificates: []*x509.Certificate{other}}, cert, false},
		"KeyWithoutCert":  {jose.JSONWebKey{Key: cert.PublicKey}, cert, false},
		"SameKeyOtherX5T": {jose.JSONWebKey{Key: cert.PublicKey, CertificateThumbprintSHA256: make([]byte, sha256.Size)}, cert, false},
	} {
		t.Run(name, func(t *testing.T) {
			ck := readClientKeys(settingsWith(tc.key))
			if ck.set == nil {
				t.Fatal("no key set read")
			}
			if got := certRegistered(tc.cert, registeredCertThumbprints(ck.set.Keys)); got != tc.want {
				t.Errorf("registered = %v, want %v", got, tc.want)
			}
		})
	}
}

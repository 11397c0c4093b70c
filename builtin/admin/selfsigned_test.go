package admin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"
)

// TestSelfSignedClientNeedsCertificate checks that a
// self_signed_tls_client_auth client is refused unless it registers its
// certificate: jwks_uri, or a jwks key with x5c or x5t#S256.
func TestSelfSignedClientNeedsCertificate(t *testing.T) {
	e := newEnv(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "svc"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	sum := sha256.Sum256(der)
	jwk := map[string]any{
		"kty": "EC", "crv": "P-256",
		"x": b64(key.X.FillBytes(make([]byte, 32))), "y": b64(key.Y.FillBytes(make([]byte, 32))),
	}
	withX5C := map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(der)}}
	withX5T := map[string]any{"x5t#S256": b64(sum[:])}
	for k, v := range jwk {
		withX5C[k], withX5T[k] = v, v
	}
	for name, tc := range map[string]struct {
		settings map[string]any
		want     int
	}{
		"X5C":        {map[string]any{"jwks": map[string]any{"keys": []any{withX5C}}}, 201},
		"X5TS256":    {map[string]any{"jwks": map[string]any{"keys": []any{withX5T}}}, 201},
		"JWKSURI":    {map[string]any{"jwks_uri": "https://svc.example/jwks"}, 201},
		"KeyOnly":    {map[string]any{"jwks": map[string]any{"keys": []any{jwk}}}, 400},
		"NoKeys":     {map[string]any{}, 400},
		"Both":       {map[string]any{"jwks": map[string]any{"keys": []any{withX5C}}, "jwks_uri": "https://svc.example/jwks"}, 400},
		"NotAJWKSet": {map[string]any{"jwks": "nope"}, 400},
		"NoSettings": {nil, 400},
	} {
		t.Run(name, func(t *testing.T) {
			body := map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "self_signed_tls_client_auth"}
			if tc.settings != nil {
				body["settings"] = tc.settings
			}
			if r := e.call("POST", "/api/admin/v1/clients", body); r.status != tc.want {
				t.Errorf("got %d %s, want %d", r.status, r.body, tc.want)
			}
		})
	}
}

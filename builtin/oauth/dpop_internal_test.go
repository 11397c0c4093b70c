package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
)

const testHTU = "https://id.example.com/oauth2/token"

// signProof makes a DPoP proof with go-jose: typ, alg and the public jwk
// in the header.
func signProof(t testing.TB, key *ecdsa.PrivateKey, typ string, embed any, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("jwk", embed)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParseDPoPProof(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &key.PublicKey}
	now := time.Now()
	claims := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"jti": "j-1", "htm": "POST", "htu": testHTU, "iat": now.Unix()}
		if mod != nil {
			mod(m)
		}
		return m
	}
	tok := "access-token-value"
	sum := sha256.Sum256([]byte(tok))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])

	good := signProof(t, key, dpopType, pub, claims(nil))
	p, err := parseDPoPProof(good, "POST", testHTU, "", now)
	if err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	tp, _ := pub.Thumbprint(crypto.SHA256)
	if p.JKT != base64.RawURLEncoding.EncodeToString(tp) || p.JTI != "j-1" {
		t.Errorf("proof %+v", p)
	}
	if _, err := parseDPoPProof(signProof(t, key, dpopType, pub, claims(func(m map[string]any) { m["htu"] = testHTU + "?x=1#f" })), "POST", testHTU, "", now); err != nil {
		t.Errorf("htu with query and fragment: %v", err)
	}
	if _, err := parseDPoPProof(signProof(t, key, dpopType, pub, claims(func(m map[string]any) { m["htm"] = "GET"; m["ath"] = ath })), "GET", testHTU, tok, now); err != nil {
		t.Errorf("with ath: %v", err)
	}

	for _, tc := range []struct {
		name, raw, htm, token string
	}{
		{"WrongType", signProof(t, key, "JWT", pub, claims(nil)), "POST", ""},
		{"PrivateJWK", signProof(t, key, dpopType, jose.JSONWebKey{Key: key}, claims(nil)), "POST", ""},
		{"OtherKeysJWK", signProof(t, key, dpopType, jose.JSONWebKey{Key: &other.PublicKey}, claims(nil)), "POST", ""},
		{"WrongMethod", good, "GET", ""},
		{"WrongURL", signProof(t, key, dpopType, pub, claims(func(m map[string]any) { m["htu"] = "https://evil.example/oauth2/token" })), "POST", ""},
		{"Old", signProof(t, key, dpopType, pub, claims(func(m map[string]any) { m["iat"] = now.Add(-5 * time.Minute).Unix() })), "POST", ""},
		{"Future", signProof(t, key, dpopType, pub, claims(func(m map[string]any) { m["iat"] = now.Add(5 * time.Minute).Unix() })), "POST", ""},
		{"NoJTI", signProof(t, key, dpopType, pub, claims(func(m map[string]any) { delete(m, "jti") })), "POST", ""},
		{"NoIAT", signProof(t, key, dpopType, pub, claims(func(m map[string]any) { delete(m, "iat") })), "POST", ""},
		{"MissingATH", good, "POST", tok},
		{"AlgNone", "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.eyJqdGkiOiJ4In0.", "POST", ""},
		{"Empty", "", "POST", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDPoPProof(tc.raw, tc.htm, testHTU, tc.token, now)
			var rfc *fosite.RFC6749Error
			if !errors.As(err, &rfc) || rfc.ErrorField != "invalid_dpop_proof" {
				t.Errorf("err = %v, want invalid_dpop_proof", err)
			}
		})
	}
}

// FuzzDPoPProof feeds arbitrary proofs to the parser: it must answer
// invalid_dpop_proof or a proof, and never panic.
func FuzzDPoPProof(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	f.Add(signProof(f, key, dpopType, jose.JSONWebKey{Key: &key.PublicKey}, map[string]any{"jti": "a", "htm": "POST", "htu": testHTU, "iat": now.Unix()}), "POST")
	f.Add("eyJhbGciOiJFUzI1NiIsInR5cCI6ImRwb3Arand0IiwiandrIjp7fX0.e30.AAAA", "POST")
	f.Add("a.b.c", "GET")
	f.Add("", "POST")
	f.Fuzz(func(t *testing.T, raw, htm string) {
		p, err := parseDPoPProof(raw, htm, testHTU, "", now)
		if err == nil && p.JKT == "" {
			t.Fatal("a proof without a thumbprint")
		}
		var rfc *fosite.RFC6749Error
		if err != nil && (!errors.As(err, &rfc) || rfc.ErrorField != "invalid_dpop_proof") {
			t.Fatalf("err = %v", err)
		}
	})
}

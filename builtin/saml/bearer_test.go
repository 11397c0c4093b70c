package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

const bearerTokenURL = "https://latch.example/oauth2/token"

// bearerSigner is an external IdP: it builds assertions with crewjam's
// types and signs them with goxmldsig.
type bearerSigner struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newBearerSigner(t testing.TB) *bearerSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ext-idp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &bearerSigner{key: k, cert: c}
}

func (b *bearerSigner) build(t testing.TB, now time.Time, mut func(*csaml.Assertion), sign bool) string {
	t.Helper()
	exp := now.Add(5 * time.Minute)
	a := &csaml.Assertion{
		ID: "_a1", IssueInstant: now, Version: "2.0",
		Issuer: csaml.Issuer{Value: "https://ext-idp"},
		Subject: &csaml.Subject{
			NameID: &csaml.NameID{Value: "alice"},
			SubjectConfirmations: []csaml.SubjectConfirmation{{Method: methodBearer,
				SubjectConfirmationData: &csaml.SubjectConfirmationData{NotOnOrAfter: exp, Recipient: bearerTokenURL}}},
		},
		Conditions: &csaml.Conditions{NotBefore: now.Add(-time.Minute), NotOnOrAfter: exp,
			AudienceRestrictions: []csaml.AudienceRestriction{{Audience: csaml.Audience{Value: bearerTokenURL}}}},
		AttributeStatements: []csaml.AttributeStatement{{Attributes: []csaml.Attribute{{Name: "email", Values: []csaml.AttributeValue{{Value: "alice@example.com"}}}}}},
	}
	if mut != nil {
		mut(a)
	}
	el := a.Element()
	if sign {
		sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore{PrivateKey: b.key, Certificate: [][]byte{b.cert.Raw}})
		var err error
		if el, err = sc.SignEnveloped(el); err != nil {
			t.Fatal(err)
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

func (b *bearerSigner) policy(now time.Time) BearerPolicy {
	return BearerPolicy{Issuer: "https://ext-idp", Certificates: []*x509.Certificate{b.cert}, Audiences: []string{bearerTokenURL, "https://latch.example"},
		Recipient: bearerTokenURL, Now: now, ClockSkew: 30 * time.Second, MaxLifetime: time.Hour}
}

func verifyParam(param string, pol BearerPolicy) (*BearerAssertion, error) {
	doc, _, err := DecodeBearerAssertion(param)
	if err != nil {
		return nil, err
	}
	return VerifyBearerAssertion(doc, pol)
}

// TestBearerAssertion covers VerifyBearerAssertion's checks one by one,
// including the clock skew's edges.
func TestBearerAssertion(t *testing.T) {
	s := newBearerSigner(t)
	now := time.Now().UTC().Truncate(time.Second)
	a, err := verifyParam(s.build(t, now, nil, true), s.policy(now))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "_a1" || a.Subject != "alice" || a.Issuer != "https://ext-idp" || a.Attributes["email"][0] != "alice@example.com" || !a.NotOnOrAfter.Equal(now.Add(5*time.Minute)) {
		t.Errorf("assertion %+v", a)
	}
	// Padded base64url is accepted too.
	padded := base64.URLEncoding.EncodeToString(mustDecode(t, s.build(t, now, nil, true)))
	if _, err := verifyParam(padded, s.policy(now)); err != nil {
		t.Errorf("padded: %v", err)
	}
	// Within the skew after expiry: accepted; beyond: refused.
	if _, err := verifyParam(s.build(t, now, nil, true), s.policy(now.Add(5*time.Minute+20*time.Second))); err != nil {
		t.Errorf("inside the skew: %v", err)
	}
	for name, tc := range map[string]struct {
		mut  func(*csaml.Assertion)
		sign bool
		pol  func(*BearerPolicy)
	}{
		"unsigned":          {sign: false},
		"expired past skew": {sign: true, pol: func(p *BearerPolicy) { p.Now = now.Add(5*time.Minute + 31*time.Second) }},
		"not yet valid":     {sign: true, pol: func(p *BearerPolicy) { p.Now = now.Add(-2 * time.Minute) }},
		"wrong audience":    {sign: true, pol: func(p *BearerPolicy) { p.Audiences = []string{"https://other"} }},
		"wrong recipient":   {sign: true, pol: func(p *BearerPolicy) { p.Recipient = "https://other/token" }},
		"wrong issuer":      {sign: true, pol: func(p *BearerPolicy) { p.Issuer = "https://other-idp" }},
		"no certificate":    {sign: true, pol: func(p *BearerPolicy) { p.Certificates = nil }},
		"too long-lived":    {sign: true, pol: func(p *BearerPolicy) { p.MaxLifetime = time.Minute }},
		"holder-of-key": {sign: true, mut: func(a *csaml.Assertion) {
			a.Subject.SubjectConfirmations[0].Method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
		}},
		"in response to": {sign: true, mut: func(a *csaml.Assertion) { a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "x" }},
		"no confirmation exp": {sign: true, mut: func(a *csaml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = time.Time{}
		}},
		"no audience":  {sign: true, mut: func(a *csaml.Assertion) { a.Conditions.AudienceRestrictions = nil }},
		"no name id":   {sign: true, mut: func(a *csaml.Assertion) { a.Subject.NameID.Value = "" }},
		"future issue": {sign: true, mut: func(a *csaml.Assertion) { a.IssueInstant = now.Add(time.Hour) }},
	} {
		pol := s.policy(now)
		if tc.pol != nil {
			tc.pol(&pol)
		}
		if _, err := verifyParam(s.build(t, now, tc.mut, tc.sign), pol); !errors.Is(err, ErrBearerAssertion) {
			t.Errorf("%s: err %v, want ErrBearerAssertion", name, err)
		}
	}
	other := newBearerSigner(t)
	if _, err := verifyParam(other.build(t, now, nil, true), s.policy(now)); !errors.Is(err, ErrBearerAssertion) {
		t.Errorf("foreign key: %v", err)
	}
	for name, p := range map[string]string{
		"not base64": "%%%", "not an assertion": base64.RawURLEncoding.EncodeToString([]byte(seedLogoutRequest)),
		"dtd": base64.RawURLEncoding.EncodeToString([]byte(`<!DOCTYPE a><a/>`)),
	} {
		if _, _, err := DecodeBearerAssertion(p); !errors.Is(err, ErrBearerAssertion) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzBearerAssertion feeds arbitrary grant assertion parameters through
// decoding and verification: never a panic, and nothing unsigned by the
// trusted key is ever accepted.
func FuzzBearerAssertion(f *testing.F) {
	s := newBearerSigner(f)
	now := time.Now().UTC()
	f.Add(s.build(f, now, nil, true))
	f.Add(s.build(f, now, nil, false))
	for _, seed := range fuzzSeeds {
		f.Add(base64.RawURLEncoding.EncodeToString([]byte(seed)))
	}
	pol := s.policy(now)
	f.Fuzz(func(t *testing.T, param string) {
		doc, _, err := DecodeBearerAssertion(param)
		if err != nil {
			return
		}
		a, err := VerifyBearerAssertion(doc, pol)
		if err == nil && (a.Subject == "" || a.Issuer != pol.Issuer) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

package saml_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

const saml2Bearer = "urn:ietf:params:oauth:grant-type:saml2-bearer"

// extIDP is an external SAML IdP the server trusts for the SAML 2.0
// bearer grant: it builds assertions with crewjam/saml's types and signs
// them with goxmldsig (enveloped, RSA-SHA256, exclusive c14n).
type extIDP struct {
	entityID string
	key      *rsa.PrivateKey
	cert     *x509.Certificate
}

type assertionOpts struct {
	subject, audience, recipient string
	notOnOrAfter                 time.Time
	unsigned                     bool
}

func (x *extIDP) assertion(t *testing.T, o assertionOpts) *etree.Element {
	t.Helper()
	now := time.Now().UTC()
	id := "_" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") + o.subject
	a := &csaml.Assertion{
		ID: id, IssueInstant: now, Version: "2.0",
		Issuer: csaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: x.entityID},
		Subject: &csaml.Subject{
			NameID: &csaml.NameID{Format: string(csaml.UnspecifiedNameIDFormat), Value: o.subject},
			SubjectConfirmations: []csaml.SubjectConfirmation{{
				Method:                  "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &csaml.SubjectConfirmationData{NotOnOrAfter: o.notOnOrAfter, Recipient: o.recipient},
			}},
		},
		Conditions: &csaml.Conditions{
			NotBefore: now.Add(-time.Minute), NotOnOrAfter: o.notOnOrAfter,
			AudienceRestrictions: []csaml.AudienceRestriction{{Audience: csaml.Audience{Value: o.audience}}},
		},
		AuthnStatements: []csaml.AuthnStatement{{AuthnInstant: now, AuthnContext: csaml.AuthnContext{
			AuthnContextClassRef: &csaml.AuthnContextClassRef{Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"}}}},
	}
	el := a.Element()
	if o.unsigned {
		return el
	}
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore{PrivateKey: x.key, Certificate: [][]byte{x.cert.Raw}})
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := sc.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func encodeAssertion(t *testing.T, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestSAML2BearerGrant: RFC 7522 at the live token endpoint. A client
// trusting an external IdP (its issuer and certificate in the client's
// settings.saml2_bearer_issuers) trades a signed assertion for an access
// token for the local user the NameID names, once; unsigned, wrapped,
// tampered, expired, wrongly addressed, foreign-signed and replayed
// assertions get invalid_grant as OAuth 2.0 JSON errors.
func TestSAML2BearerGrant(t *testing.T) {
	i := setup(t)
	k, c := newKeyCert(t, "external-idp")
	x := &extIDP{entityID: "https://idp.partner.example/saml", key: k, cert: c}
	const secret = "bearer-client-secret-0123456789abcdef"
	if code := i.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "bearer-app", "client_secret": secret, "name": "SAML bearer app", "enabled": true,
		"grant_types": []string{saml2Bearer}, "scopes": []string{"read", "write"},
		"settings": map[string]any{"saml2_bearer_issuers": []any{map[string]any{
			"issuer": x.entityID, "certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})), "scopes": []string{"read"},
		}}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	tokenURL := i.URL + "/oauth2/token"
	token := func(assertion, scope string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {saml2Bearer}, "assertion": {assertion}}
		if scope != "" {
			form.Set("scope", scope)
		}
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bearer-app", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
		}
		return resp.StatusCode, m
	}
	good := assertionOpts{subject: "alice", audience: tokenURL, recipient: tokenURL, notOnOrAfter: time.Now().Add(5 * time.Minute)}

	signed := x.assertion(t, good)
	enc := encodeAssertion(t, signed)
	code, m := token(enc, "read")
	if code != http.StatusOK || m["access_token"] == nil || m["token_type"] != "bearer" && m["token_type"] != "Bearer" || m["scope"] != "read" {
		t.Fatalf("valid assertion: %d %v", code, m)
	}
	parts := strings.Split(m["access_token"].(string), ".")
	if len(parts) == 3 {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		if json.Unmarshal(payload, &claims) == nil && (claims["sub"] == "alice" || claims["sub"] == "" || claims["client_id"] != "bearer-app") {
			t.Errorf("access token claims %v: want alice's user id as sub", claims)
		}
	}

	wantInvalidGrant := func(name, assertion string) {
		t.Helper()
		code, m := token(assertion, "")
		if code != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", name, code, m)
		}
	}
	wantInvalidGrant("replayed", enc)
	with := func(mut func(*assertionOpts)) assertionOpts {
		o := good
		mut(&o)
		return o
	}
	wantInvalidGrant("unsigned", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.unsigned = true }))))
	wantInvalidGrant("expired", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.notOnOrAfter = time.Now().Add(-5 * time.Minute) }))))
	wantInvalidGrant("wrong audience", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.audience = "https://other.example/token" }))))
	wantInvalidGrant("wrong recipient", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.recipient = "https://other.example/token" }))))
	wantInvalidGrant("too far ahead", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.notOnOrAfter = time.Now().Add(48 * time.Hour) }))))
	wantInvalidGrant("unknown user", encodeAssertion(t, x.assertion(t, with(func(o *assertionOpts) { o.subject = "nobody" }))))
	k2, c2 := newKeyCert(t, "impostor")
	wantInvalidGrant("foreign signature", encodeAssertion(t, (&extIDP{entityID: x.entityID, key: k2, cert: c2}).assertion(t, good)))
	wantInvalidGrant("untrusted issuer", encodeAssertion(t, (&extIDP{entityID: "https://evil.example", key: k, cert: c}).assertion(t, good)))
	wantInvalidGrant("not base64url", "%%%")
	wantInvalidGrant("DTD", base64.RawURLEncoding.EncodeToString([]byte(`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`)))

	// Tampered: the signed assertion with its NameID changed.
	fresh := x.assertion(t, good)
	tampered := fresh.Copy()
	tampered.FindElement("./Subject/NameID").SetText("admin")
	wantInvalidGrant("tampered", encodeAssertion(t, tampered))

	// Wrapped (XSW): an unsigned assertion for another subject as the
	// root, carrying the genuine signature and the genuine signed
	// assertion inside. The signature's reference is not the root.
	evil := x.assertion(t, with(func(o *assertionOpts) { o.subject = "admin"; o.unsigned = true }))
	genuine := x.assertion(t, good)
	sig := genuine.FindElement("./Signature").Copy()
	evil.InsertChildAt(1, sig)
	ext := evil.CreateElement("saml:Advice")
	ext.AddChild(genuine.Copy())
	wantInvalidGrant("wrapped", encodeAssertion(t, evil))
	// Wrapped the other way: the genuine signed assertion as root with a
	// second, unsigned Subject appended.
	w2 := x.assertion(t, good).Copy()
	extra := w2.FindElement("./Subject").Copy()
	extra.FindElement("./NameID").SetText("admin")
	w2.AddChild(extra)
	wantInvalidGrant("second subject", encodeAssertion(t, w2))

	// The genuine fresh assertion still works once.
	if code, m := token(encodeAssertion(t, genuine), ""); code != http.StatusOK {
		t.Errorf("genuine assertion after the attacks: %d %v", code, m)
	}
	// Discovery lists the grant.
	resp, err := http.Get(i.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var disc struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&disc)
	found := false
	for _, g := range disc.GrantTypes {
		found = found || g == saml2Bearer
	}
	if !found {
		t.Errorf("grant_types_supported %v lacks %s", disc.GrantTypes, saml2Bearer)
	}
}

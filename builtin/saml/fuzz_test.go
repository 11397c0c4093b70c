package saml

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	csaml "github.com/crewjam/saml"
)

const seedAuthnRequest = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://idp/saml2/sso" AssertionConsumerServiceURL="https://sp/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>https://sp</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/></samlp:AuthnRequest>`

const seedSignedLooking = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a" Version="2.0"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sp</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:Reference URI="#b"/></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></samlp:AuthnRequest>`

const seedLogoutRequest = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-2" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://sp</saml:Issuer><saml:NameID>abc</saml:NameID><samlp:SessionIndex>_1</samlp:SessionIndex></samlp:LogoutRequest>`

const seedLogoutResponse = `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-3" InResponseTo="id-2" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://sp</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`

const seedMetadata = `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false" WantAssertionsSigned="true"><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp/acs" index="1"/><SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp/slo"/></SPSSODescriptor></EntityDescriptor>`

var fuzzSeeds = []string{
	seedAuthnRequest, seedSignedLooking, seedLogoutRequest, seedLogoutResponse, seedMetadata,
	`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]><x>&a;</x>`,
	`<a xmlns:x="y"><x:b/></a>`, ``, `<`,
}

// fuzzSP is an SP with a signing certificate, to drive verification.
func fuzzSP(t testing.TB, requireSigned bool) *sp {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: a throwaway fuzzing key; size does not matter here.
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &sp{entityID: "https://sp", signingCerts: []*x509.Certificate{c}, requireSigned: requireSigned}
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// checkAllBindings decodes doc as param over both bindings and hands each
// decoded message to use.
func checkAllBindings(param string, doc []byte, use func(*message)) {
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflate(doc))) + "&RelayState=r&SigAlg=x&Signature=AAAA"
	if m, err := decodeMessage(param, q, nil, false); err == nil {
		use(m)
	}
	form := url.Values{param: {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {"r"}}
	if m, err := decodeMessage(param, "", form, true); err == nil {
		use(m)
	}
}

// predecoded is m decoded before verification, as the handlers do to find
// the SP; nil when it does not decode.
func predecoded[T any](m *message) *T {
	v := new(T)
	if xmlUnmarshal(m.xml, v) != nil {
		return nil
	}
	return v
}

// FuzzAuthnRequest feeds arbitrary documents through the AuthnRequest
// decoding and verification of both bindings.
func FuzzAuthnRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	open, strict := fuzzSP(f, false), fuzzSP(f, true)
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkAllBindings("SAMLRequest", doc, func(m *message) {
			for _, p := range []*sp{open, strict} {
				req, signed, err := verifyMessage(m, p, predecoded[csaml.AuthnRequest](m), authnRequestIssuer)
				if err == nil && p.requireSigned && !signed {
					t.Fatal("an unsigned request passed where a signature is required")
				}
				if err == nil && req == nil {
					t.Fatal("nil request without error")
				}
			}
		})
	})
}

// FuzzLogoutMessages feeds arbitrary documents through LogoutRequest and
// LogoutResponse decoding and verification.
func FuzzLogoutMessages(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	open, strict := fuzzSP(f, false), fuzzSP(f, true)
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkAllBindings("SAMLRequest", doc, func(m *message) {
			for _, p := range []*sp{open, strict} {
				if _, signed, err := verifyMessage(m, p, predecoded[csaml.LogoutRequest](m), logoutRequestIssuer); err == nil && p.requireSigned && !signed {
					t.Fatal("an unsigned LogoutRequest passed where a signature is required")
				}
			}
		})
		checkAllBindings("SAMLResponse", doc, func(m *message) {
			for _, p := range []*sp{open, strict} {
				if _, signed, err := verifyMessage(m, p, nil, logoutResponseIssuer); err == nil && p.requireSigned && !signed {
					t.Fatal("an unsigned LogoutResponse passed where a signature is required")
				}
			}
		})
	})
}

// FuzzRedirectQuery feeds arbitrary query strings to the Redirect
// binding's decoder and signed-octets builder.
func FuzzRedirectQuery(f *testing.F) {
	f.Add("SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflate([]byte(seedAuthnRequest)))) + "&RelayState=x&SigAlg=y&Signature=AAAA")
	f.Add("SAMLRequest=%%%&&=&SigAlg")
	f.Add("")
	p := fuzzSP(f, true)
	f.Fuzz(func(t *testing.T, q string) {
		m, err := decodeMessage("SAMLRequest", q, nil, false)
		if err != nil {
			return
		}
		if _, signed, err := verifyMessage(m, p, predecoded[csaml.AuthnRequest](m), authnRequestIssuer); err == nil && !signed {
			t.Fatal("an unsigned request passed where a signature is required")
		}
	})
}

// FuzzMetadata feeds arbitrary documents to the SP metadata parser and the
// settings decoder.
func FuzzMetadata(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		ed, err := parseMetadata(doc)
		if err == nil && ed == nil {
			t.Fatal("nil metadata without error")
		}
		_, _ = DecodeSPConfig("https://sp", map[string]any{"metadata_xml": string(doc)})
	})
}

package saml

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The SAML 2.0 bearer assertion grant (RFC 7522) lets an OAuth client
// trade an assertion a trusted external IdP issued for an access token.
// This file is the assertion side: decoding the grant's assertion
// parameter and verifying the assertion; builtin/oauth serves the grant.

// MaxBearerAssertion bounds the encoded assertion parameter.
const MaxBearerAssertion = 64 << 10

// assertionNS is the SAML 2.0 assertion namespace.
const assertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"

// methodBearer is the bearer SubjectConfirmation method.
const methodBearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer" //nolint:gosec // G101: a URN, not a credential.

// ErrBearerAssertion wraps every reason an assertion is refused; the
// message after it is safe to show the client.
var ErrBearerAssertion = errors.New("the assertion is not valid")

func refuse(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBearerAssertion, fmt.Sprintf(format, a...))
}

// BearerPolicy is what VerifyBearerAssertion holds an assertion to.
type BearerPolicy struct {
	// Issuer is the trusted IdP's entity ID, which the assertion's Issuer
	// must equal.
	Issuer string
	// Certificates are the IdP's signing certificates; the Assertion
	// element itself must carry an enveloped signature by one of them.
	Certificates []*x509.Certificate
	// Audiences are the values one of which the assertion's
	// AudienceRestriction must name (the token endpoint URL, the issuer).
	Audiences []string
	// Recipient is the token endpoint URL, which the bearer
	// SubjectConfirmationData's Recipient must equal.
	Recipient string
	// Now is the time to check against.
	Now time.Time
	// ClockSkew is the tolerated difference with the IdP's clock.
	ClockSkew time.Duration
	// MaxLifetime bounds how far ahead the assertion's expiry may be (the
	// replay cache keeps its ID that long).
	MaxLifetime time.Duration
}

// BearerAssertion is a verified assertion's content.
type BearerAssertion struct {
	// ID is the assertion's ID, for the replay cache.
	ID string
	// Issuer is the IdP's entity ID.
	Issuer string
	// Subject is the NameID and SubjectFormat its Format.
	Subject, SubjectFormat string
	// NotOnOrAfter is when the assertion stops being usable (the earlier
	// of the subject confirmation's and the conditions').
	NotOnOrAfter time.Time
	// Attributes are the assertion's attribute values by name.
	Attributes map[string][]string
}

// DecodeBearerAssertion decodes the grant's assertion parameter (base64url,
// with or without padding; RFC 7522 section 2.1), checks the XML is safe
// to parse (size, no DTD, round-trip safe) and returns it with the
// Issuer it claims, unverified, to find the issuer's trust settings by.
func DecodeBearerAssertion(param string) (doc []byte, issuer string, err error) {
	if len(param) > MaxBearerAssertion {
		return nil, "", refuse("too large")
	}
	doc, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
	if err != nil {
		return nil, "", refuse("not base64url")
	}
	if err := checkXML(doc); err != nil {
		return nil, "", refuse("unsafe or malformed XML")
	}
	root, err := readRoot(doc)
	if err != nil {
		return nil, "", err
	}
	iss := root.FindElement("./Issuer")
	if iss == nil || iss.NamespaceURI() != assertionNS || strings.TrimSpace(iss.Text()) == "" {
		return nil, "", refuse("no Issuer")
	}
	return doc, strings.TrimSpace(iss.Text()), nil
}

func readRoot(doc []byte) (*etree.Element, error) {
	d := etree.NewDocument()
	d.ReadSettings.Permissive = false
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, refuse("malformed XML")
	}
	root := d.Root()
	if root == nil || root.Tag != "Assertion" || root.NamespaceURI() != assertionNS {
		return nil, refuse("the document is not a SAML 2.0 Assertion")
	}
	return root, nil
}

// VerifyBearerAssertion verifies doc (from DecodeBearerAssertion) under
// pol: the Assertion element must carry an enveloped signature, by one of
// the issuer's certificates, whose reference is the Assertion itself; only
// the element the signature library verified is read afterwards, so
// nothing outside the signed content (signature wrapping) is ever
// consumed. Then RFC 7522 section 3: Issuer, a NameID, a bearer
// SubjectConfirmation whose data names the Recipient and a NotOnOrAfter,
// an AudienceRestriction naming one of pol.Audiences, and the time
// bounds, each with pol.ClockSkew.
func VerifyBearerAssertion(doc []byte, pol BearerPolicy) (*BearerAssertion, error) {
	root, err := readRoot(doc)
	if err != nil {
		return nil, err
	}
	signed := false
	for _, c := range root.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsig.Namespace {
			signed = true
		}
	}
	if !signed {
		return nil, refuse("the Assertion is not signed")
	}
	if len(pol.Certificates) == 0 {
		return nil, refuse("no certificate is configured for the issuer")
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: pol.Certificates})
	vc.IdAttribute = "ID"
	vc.Clock = dsig.NewFakeClockAt(pol.Now)
	verified, err := vc.Validate(root)
	if err != nil {
		return nil, refuse("the signature does not verify")
	}
	out := etree.NewDocument()
	out.SetRoot(verified)
	vb, err := out.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("encoding verified assertion: %w", err)
	}
	var a csaml.Assertion
	if err := xmlUnmarshal(vb, &a); err != nil {
		return nil, refuse("malformed Assertion")
	}
	return checkBearer(&a, pol)
}

func checkBearer(a *csaml.Assertion, pol BearerPolicy) (*BearerAssertion, error) {
	now, skew := pol.Now, pol.ClockSkew
	switch {
	case a.ID == "" || len(a.ID) > 256:
		return nil, refuse("no usable ID")
	case a.Version != "2.0":
		return nil, refuse("not version 2.0")
	case a.Issuer.Value != pol.Issuer:
		return nil, refuse("the Issuer is not the trusted one")
	case a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "":
		return nil, refuse("no Subject NameID")
	case a.IssueInstant.After(now.Add(skew)):
		return nil, refuse("IssueInstant is in the future")
	}
	var notAfter time.Time
	confirmed := false
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method != methodBearer || d == nil || d.Recipient != pol.Recipient || d.NotOnOrAfter.IsZero() || d.InResponseTo != "" {
			continue
		}
		if !now.Before(d.NotOnOrAfter.Add(skew)) || (!d.NotBefore.IsZero() && now.Add(skew).Before(d.NotBefore)) {
			continue
		}
		confirmed, notAfter = true, d.NotOnOrAfter
		break
	}
	if !confirmed {
		return nil, refuse("no current bearer SubjectConfirmation for the token endpoint")
	}
	c := a.Conditions
	if c == nil || len(c.AudienceRestrictions) == 0 {
		return nil, refuse("no AudienceRestriction")
	}
	// Each AudienceRestriction must be met (SAML core section 2.5.1.4).
	for _, ar := range c.AudienceRestrictions {
		if !slices.Contains(pol.Audiences, ar.Audience.Value) {
			return nil, refuse("the Audience is not this server")
		}
	}
	if !c.NotBefore.IsZero() && now.Add(skew).Before(c.NotBefore) {
		return nil, refuse("not yet valid")
	}
	if !c.NotOnOrAfter.IsZero() {
		if !now.Before(c.NotOnOrAfter.Add(skew)) {
			return nil, refuse("expired")
		}
		if c.NotOnOrAfter.Before(notAfter) {
			notAfter = c.NotOnOrAfter
		}
	}
	if pol.MaxLifetime > 0 && notAfter.After(now.Add(pol.MaxLifetime+skew)) {
		return nil, refuse("expires too far ahead")
	}
	b := &BearerAssertion{
		ID: a.ID, Issuer: a.Issuer.Value, Subject: a.Subject.NameID.Value, SubjectFormat: a.Subject.NameID.Format,
		NotOnOrAfter: notAfter, Attributes: map[string][]string{},
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				b.Attributes[at.Name] = append(b.Attributes[at.Name], v.Value)
			}
		}
	}
	return b, nil
}

// ParseCertificate reads a certificate given as PEM or base64 DER.
func ParseCertificate(v string) (*x509.Certificate, error) { return parseCert(v) }

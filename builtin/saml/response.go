package saml

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	"github.com/gofiber/fiber/v2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

const attrNameFormatURI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
const attrNameFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"

// defaultAttributes is the attribute mapping of SPs that configure none.
var defaultAttributes = map[string]string{"email": "email", "name": "name", "given_name": "given_name", "family_name": "family_name"}

// newID returns a message or assertion ID: an NCName with 160 random bits.
func newID() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating id: %w", err)
	}
	return "id-" + hex.EncodeToString(b), nil
}

// sendAssertion answers r with a Response carrying an assertion about u.
func (s *Service) sendAssertion(c *fiber.Ctx, t tenant, p *sp, r *ssoRequest, sess *store.Session, u store.User, class string) error {
	ctx := c.UserContext()
	k, err := s.key(ctx, t)
	if err != nil {
		return s.internal(c, t, err)
	}
	format := r.NameIDFormat
	if format == "" || format == NameIDUnspecified && p.nameIDFormat != NameIDUnspecified {
		format = p.nameIDFormat
	}
	nameID, err := s.nameID(t, p, u, format)
	if err != nil {
		return s.sendStatus(c, t, p, r, csaml.StatusRequester, csaml.StatusInvalidNameIDPolicy)
	}
	now := s.d.Now().UTC()
	aid, err := newID()
	if err != nil {
		return s.internal(c, t, err)
	}
	index := sessionIndex(sess.ID)
	expires := now.Add(s.d.AssertionLifetime)
	sessEnd := sess.ExpiresAt.UTC()
	a := &csaml.Assertion{
		ID: aid, IssueInstant: now, Version: "2.0",
		Issuer: csaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: t.entityID},
		Subject: &csaml.Subject{
			NameID: &csaml.NameID{Format: format, NameQualifier: t.entityID, SPNameQualifier: p.entityID, Value: nameID},
			SubjectConfirmations: []csaml.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &csaml.SubjectConfirmationData{
					InResponseTo: r.ID, NotOnOrAfter: expires, Recipient: r.ACS,
				},
			}},
		},
		Conditions: &csaml.Conditions{
			NotBefore: now.Add(-s.d.ClockSkew), NotOnOrAfter: expires,
			AudienceRestrictions: []csaml.AudienceRestriction{{Audience: csaml.Audience{Value: p.entityID}}},
		},
		AuthnStatements: []csaml.AuthnStatement{{
			AuthnInstant: sess.AuthTime.UTC(), SessionIndex: index, SessionNotOnOrAfter: &sessEnd,
			AuthnContext: csaml.AuthnContext{AuthnContextClassRef: &csaml.AuthnContextClassRef{Value: class}},
		}},
	}
	// The NameID names the account (the login's subject); the attributes
	// are those of the login's attribute step, the identity provider's
	// when that step was federated.
	claims, err := s.claims(ctx, t, p, u, login.Attributes(sess))
	if err != nil {
		return s.internal(c, t, err)
	}
	if attrs := attributes(p, claims); len(attrs) > 0 {
		a.AttributeStatements = []csaml.AttributeStatement{{Attributes: attrs}}
	}
	assertionEl := a.Element()
	if p.signAssertion {
		if err := signInPlace(k, assertionEl); err != nil {
			return s.internal(c, t, err)
		}
	}
	if p.encCert != nil {
		if assertionEl, err = encryptAssertion(assertionEl, p); err != nil {
			return s.internal(c, t, err)
		}
	}
	if err := s.recordSP(ctx, t, sess, p.entityID, participant{NameID: nameID, Format: format, Index: index}); err != nil {
		return s.internal(c, t, err)
	}
	resp, err := s.response(k, t, p, r, csaml.StatusSuccess, "", assertionEl)
	if err != nil {
		return s.internal(c, t, err)
	}
	s.publish(c, t, event.Ref("user", u.ID), ActionSSO, event.OutcomeSuccess, map[string]any{"sp": p.entityID, "assertion": aid})
	return postForm(c, r.ACS, "SAMLResponse", resp, r.RelayState)
}

// sendStatus answers r with a Response carrying only a status (an error).
func (s *Service) sendStatus(c *fiber.Ctx, t tenant, p *sp, r *ssoRequest, top, second string) error {
	k, err := s.key(c.UserContext(), t)
	if err != nil {
		return s.internal(c, t, err)
	}
	resp, err := s.response(k, t, p, r, top, second, nil)
	if err != nil {
		return s.internal(c, t, err)
	}
	s.publish(c, t, event.Ref("client", p.clientID), ActionSSO, event.OutcomeFailure, map[string]any{"sp": p.entityID, "status": second})
	return postForm(c, r.ACS, "SAMLResponse", resp, r.RelayState)
}

// response builds the Response element, signs it if the SP wants, and
// returns it serialised.
func (s *Service) response(k *idpKey, t tenant, p *sp, r *ssoRequest, top, second string, assertion *etree.Element) ([]byte, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	resp := &csaml.Response{
		ID: id, InResponseTo: r.ID, Version: "2.0", IssueInstant: s.d.Now().UTC(), Destination: r.ACS,
		Issuer: &csaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: t.entityID},
		Status: csaml.Status{StatusCode: csaml.StatusCode{Value: top}},
	}
	if second != "" {
		resp.Status.StatusCode.StatusCode = &csaml.StatusCode{Value: second}
	}
	el := resp.Element()
	if assertion != nil {
		el.AddChild(assertion)
	}
	// An error response is signed too, so the SP can trust its status.
	if p.signResponse || assertion == nil {
		if err := signInPlace(k, el); err != nil {
			return nil, err
		}
	}
	return serialize(el)
}

// signInPlace signs el with an enveloped signature (RSA-SHA256,
// exclusive C14N) and places the Signature element right after el's
// Issuer, where the SAML schema wants it (first when el has no Issuer).
// el is signed as it is and not copied, so it must be complete.
func signInPlace(k *idpKey, el *etree.Element) error {
	ctx, err := dsig.NewSigningContext(k.signer, [][]byte{k.cert.Raw})
	if err != nil {
		return fmt.Errorf("creating signing context: %w", err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return fmt.Errorf("setting signature method: %w", err)
	}
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	at := 0
	for _, ch := range el.ChildElements() {
		if ch.Tag == "Issuer" {
			at = ch.Index() + 1
			break
		}
	}
	el.InsertChildAt(at, sig)
	return nil
}

// encryptAssertion encrypts el to the SP's certificate: the content key
// with RSA-OAEP (SHA-256 digest), the assertion with the SP's block cipher.
func encryptAssertion(el *etree.Element, p *sp) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	plain, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("encoding assertion: %w", err)
	}
	enc := xmlenc.OAEP()
	enc.DigestMethod = &xmlenc.SHA256
	switch p.encMethod {
	case EncAES256GCM:
		enc.BlockCipher = gcm{keySize: 32, algorithm: "http://www.w3.org/2009/xmlenc11#aes256-gcm"}
	case EncAES128CBC:
		enc.BlockCipher = xmlenc.AES128CBC
	case EncAES256CBC:
		enc.BlockCipher = xmlenc.AES256CBC
	default:
		enc.BlockCipher = gcm{keySize: 16, algorithm: "http://www.w3.org/2009/xmlenc11#aes128-gcm"}
	}
	ed, err := enc.Encrypt(p.encCert, plain, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypting assertion: %w", err)
	}
	ed.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(ed)
	return ea, nil
}

// gcm is AES-GCM for XML Encryption 1.1 (section 5.2.4): the cipher value
// is the 96-bit IV, the ciphertext and the 128-bit tag. Written here
// because the encrypting half of the library's GCM type seals a zero
// buffer instead of the plaintext (its decrypting half, which SPs use, is
// correct).
type gcm struct {
	keySize   int
	algorithm string
}

func (g gcm) KeySize() int      { return g.keySize }
func (g gcm) Algorithm() string { return g.algorithm }

func (g gcm) aead(key any) (cipher.AEAD, error) {
	kb, ok := key.([]byte)
	if !ok || len(kb) != g.keySize {
		return nil, errors.New("aes-gcm: wrong key")
	}
	b, err := aes.NewCipher(kb)
	if err != nil {
		return nil, fmt.Errorf("aes-gcm: %w", err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("aes-gcm: %w", err)
	}
	return a, nil
}

// Encrypt implements xmlenc.Encrypter; nonce must be nil (a random IV is
// drawn).
func (g gcm) Encrypt(key any, plaintext []byte, _ []byte) (*etree.Element, error) {
	a, err := g.aead(key)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, a.NonceSize())
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("aes-gcm: %w", err)
	}
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#")
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", g.algorithm)
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(a.Seal(iv, iv, plaintext, nil)))
	return ed, nil
}

// Decrypt implements xmlenc.Decrypter.
func (g gcm) Decrypt(key any, el *etree.Element) ([]byte, error) {
	if ek := el.FindElement("./KeyInfo/EncryptedKey"); ek != nil {
		var err error
		if key, err = xmlenc.Decrypt(key, ek); err != nil {
			return nil, fmt.Errorf("aes-gcm: %w", err)
		}
	}
	a, err := g.aead(key)
	if err != nil {
		return nil, err
	}
	cv := el.FindElement("./CipherData/CipherValue")
	if cv == nil {
		return nil, errors.New("aes-gcm: no CipherValue")
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cv.Text()))
	if err != nil || len(b) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("aes-gcm: bad CipherValue")
	}
	out, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], nil)
	if err != nil {
		return nil, fmt.Errorf("aes-gcm: %w", err)
	}
	return out, nil
}

// nameID returns the user's NameID of the format for the SP.
func (s *Service) nameID(t tenant, p *sp, u store.User, format string) (string, error) {
	switch format {
	case NameIDPersistent:
		// A pseudonym: stable for the user and SP, unlinkable across SPs
		// (SAML core section 8.3.7).
		m := hmac.New(sha256.New, s.d.PseudonymKey)
		m.Write([]byte(t.id + "\x00" + p.entityID + "\x00" + u.ID))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
	case NameIDTransient:
		return secret.RandomToken(20)
	case NameIDEmail:
		if u.Email == "" {
			return "", errors.New("the user has no email address")
		}
		return u.Email, nil
	case NameIDUnspecified:
		return u.Username, nil
	}
	return "", fmt.Errorf("unsupported NameID format %q", format)
}

// sessionIndex names a session to SPs without revealing its id.
func sessionIndex(sessionID string) string {
	sum := sha256.Sum256([]byte("latch/saml-session-index/" + sessionID))
	return "_" + hex.EncodeToString(sum[:16])
}

// userClaims are the claims of a user the attribute mapping can send.
func userClaims(u store.User) map[string]any {
	c := map[string]any{}
	for k, v := range u.Attributes {
		c[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	c["sub"] = u.ID
	set("preferred_username", u.Username)
	set("email", u.Email)
	if u.Email != "" {
		c["email_verified"] = u.EmailVerified
	}
	set("name", u.DisplayName)
	set("given_name", u.GivenName)
	set("family_name", u.FamilyName)
	set("phone_number", u.PhoneNumber)
	return c
}

// claims are the user's claims for the SP: userClaims, plus "groups" and
// "roles" (names, from the store) when the SP's mapping asks for them and
// the user has some. attrs, when not nil, are the attributes the login
// released from a federated attribute step (login.Attributes): they
// replace u's profile and attributes, and the claim mappers translate
// them without reading the account's from its user store.
func (s *Service) claims(ctx context.Context, t tenant, p *sp, u store.User, attrs map[string]any) (map[string]any, error) {
	subject := u.ID
	if attrs != nil {
		u, subject = login.WithAttributes(u, attrs), ""
	}
	c := userClaims(u)
	for _, claim := range p.attributes {
		var names []string
		switch claim {
		case "groups":
			gs, err := s.d.Store.ListUserGroups(ctx, t.id, u.ID)
			if err != nil {
				return nil, fmt.Errorf("listing the user's groups: %w", err)
			}
			for _, g := range gs {
				names = append(names, g.Name)
			}
		case "roles":
			rs, err := s.d.Store.ListEffectiveUserRoles(ctx, t.id, u.ID)
			if err != nil {
				return nil, fmt.Errorf("listing the user's roles: %w", err)
			}
			for _, r := range rs {
				names = append(names, r.Name)
			}
		}
		if len(names) > 0 {
			c[claim] = names
		}
	}
	return s.mapClaims(ctx, t, subject, c)
}

// attributes maps claims to SAML attributes, sorted by name.
func attributes(p *sp, claims map[string]any) []csaml.Attribute {
	mapping := p.attributes
	if len(mapping) == 0 {
		mapping = defaultAttributes
	}
	names := make([]string, 0, len(mapping))
	for n := range mapping {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []csaml.Attribute
	for _, n := range names {
		v, ok := claims[mapping[n]]
		if !ok {
			continue
		}
		var vals []csaml.AttributeValue
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				vals = append(vals, csaml.AttributeValue{Type: "xs:string", Value: claimString(e)})
			}
		case []string:
			for _, e := range x {
				vals = append(vals, csaml.AttributeValue{Type: "xs:string", Value: e})
			}
		default:
			vals = []csaml.AttributeValue{{Type: "xs:string", Value: claimString(x)}}
		}
		if len(vals) == 0 {
			continue
		}
		nf := attrNameFormatBasic
		if strings.HasPrefix(n, "urn:") {
			nf = attrNameFormatURI
		}
		out = append(out, csaml.Attribute{Name: n, NameFormat: nf, Values: vals})
	}
	return out
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// participant is what the IdP told one SP about a session, kept for
// single logout.
type participant struct {
	NameID string `json:"n"`
	Format string `json:"f"`
	Index  string `json:"i"`
}

// recordSP notes that the session signed in to the SP.
func (s *Service) recordSP(ctx context.Context, t tenant, sess *store.Session, entityID string, p participant) error {
	parts, err := s.participants(ctx, t, sess.ID)
	if err != nil {
		return err
	}
	if old, ok := parts[entityID]; ok && old == p {
		return nil
	}
	parts[entityID] = p
	return s.saveParticipants(ctx, t, sess, parts)
}

func (s *Service) participants(ctx context.Context, t tenant, sessionID string) (map[string]participant, error) {
	tok, err := s.d.Store.GetToken(ctx, t.id, kindSessionSP, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]participant{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("loading session participants: %w", err)
	}
	parts := map[string]participant{}
	if err := json.Unmarshal(tok.Data, &parts); err != nil {
		return nil, fmt.Errorf("decoding session participants: %w", err)
	}
	return parts, nil
}

func (s *Service) saveParticipants(ctx context.Context, t tenant, sess *store.Session, parts map[string]participant) error {
	data, err := json.Marshal(parts)
	if err != nil {
		return fmt.Errorf("encoding session participants: %w", err)
	}
	if err := s.d.Store.DeleteToken(ctx, t.id, kindSessionSP, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("saving session participants: %w", err)
	}
	now := s.d.Now()
	err = s.d.Store.CreateToken(ctx, store.Token{
		Kind: kindSessionSP, Key: sess.ID, TenantID: t.id, Subject: sess.UserID, SessionID: sess.ID, Active: true,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(login.DefaultSessionLifetime),
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("saving session participants: %w", err)
	}
	return nil
}

// postForm sends the browser to action with the message, through the
// auto-submitting form.
func postForm(c *fiber.Ctx, action, param string, msg []byte, relayState string) error {
	return postFormWith(c, action, param, msg, relayState, nil)
}

// postFormWith is postForm with the front-channel logout URLs to load
// before submitting.
func postFormWith(c *fiber.Ctx, action, param string, msg []byte, relayState string, frames []string) error {
	nonce, err := secret.RandomToken(16)
	if err != nil {
		return err
	}
	u, err := url.Parse(action)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("rendering post form: %q is not an absolute http(s) URL", action)
	}
	origin := u.Scheme + "://" + u.Host
	var origins, shown []string
	for _, f := range frames {
		if u, err := url.Parse(f); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			shown = append(shown, f)
			if o := u.Scheme + "://" + u.Host; !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
	}
	frameSrc := "'none'"
	if len(origins) > 0 {
		frameSrc = strings.Join(origins, " ")
	}
	value := base64.StdEncoding.EncodeToString(msg)
	// The HTTP-POST binding's auto-submitting form (SAML bindings section
	// 3.5.4), written out rather than through html/template, whose
	// escaping of the large base64 value (which needs none) dominated the
	// page's cost. Every other value is escaped for its double-quoted
	// attribute; the URLs were checked to be http(s) above. It works
	// without JavaScript (the button); with frames (other protocols'
	// front-channel logout URLs), it loads them in hidden iframes and
	// submits once they had time to load.
	var buf bytes.Buffer
	buf.Grow(len(value) + 512)
	buf.WriteString(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing in…</title></head>
<body><form method="post" action="`)
	buf.WriteString(html.EscapeString(action))
	buf.WriteString(`" id="saml">
<input type="hidden" name="`)
	buf.WriteString(html.EscapeString(param))
	buf.WriteString(`" value="`)
	buf.WriteString(value)
	buf.WriteString(`">`)
	if relayState != "" {
		buf.WriteString("\n<input type=\"hidden\" name=\"RelayState\" value=\"")
		buf.WriteString(html.EscapeString(relayState))
		buf.WriteString(`">`)
	}
	buf.WriteString(`
<noscript><button type="submit">Continue</button></noscript>
</form>`)
	for _, f := range shown {
		buf.WriteString("\n<iframe src=\"")
		buf.WriteString(html.EscapeString(f))
		buf.WriteString(`" style="display:none" width="0" height="0"></iframe>`)
	}
	buf.WriteString("\n<script nonce=\"")
	buf.WriteString(html.EscapeString(nonce))
	buf.WriteString(`">`)
	if len(shown) > 0 {
		buf.WriteString(`setTimeout(function(){document.getElementById("saml").submit();}, 2000);`)
	} else {
		buf.WriteString(`document.getElementById("saml").submit();`)
	}
	buf.WriteString("</script></body></html>\n")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+origin+
		"; frame-src "+frameSrc+"; frame-ancestors 'none'")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Referrer-Policy", "no-referrer")
	return c.Send(buf.Bytes())
}

package saml_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"

	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/kernel/store"
)

// acsResponse reads the Response the IdP posted to the SP's ACS.
func acsResponse(t *testing.T, s *testSP, status int, body string) (xmlDoc []byte, relay string) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	action, f := postedForm(t, body)
	if action != s.AcsURL.String() {
		t.Fatalf("form posts to %q, want the ACS %q", action, s.AcsURL.String())
	}
	b, err := base64.StdEncoding.DecodeString(f.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	return b, f.Get("RelayState")
}

func parse(t *testing.T, s *testSP, doc []byte, ids ...string) *csaml.Assertion {
	t.Helper()
	a, err := s.ParseXMLResponse(doc, ids, s.AcsURL)
	if err != nil {
		var ire *csaml.InvalidResponseError
		if errors.As(err, &ire) {
			t.Fatalf("sp refused the response: %v", ire.PrivateErr)
		}
		t.Fatalf("sp refused the response: %v", err)
	}
	return a
}

func attr(a *csaml.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == name {
				for _, v := range at.Values {
					out = append(out, v.Value)
				}
			}
		}
	}
	return out
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	status, _, body := e.do(http.MethodGet, e.base+saml.PathMetadata, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var md csaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	if md.EntityID != e.base+saml.PathMetadata {
		t.Errorf("entityID %q", md.EntityID)
	}
	d := md.IDPSSODescriptors[0]
	if len(d.SingleSignOnServices) != 2 || d.SingleSignOnServices[0].Location != e.base+saml.PathSSO {
		t.Errorf("sso services %+v", d.SingleSignOnServices)
	}
	if len(d.KeyDescriptors) != 1 || d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data == "" {
		t.Errorf("no signing certificate")
	}
	// The certificate is derived from the key: the same on every call.
	_, _, again := e.do(http.MethodGet, e.base+saml.PathMetadata, nil)
	if again != body {
		t.Error("metadata changed between calls")
	}
	for _, path := range []string{"/t/nope", "/t/default", "/t/off"} {
		if status, _, _ := e.do(http.MethodGet, e.base+path+saml.PathMetadata, nil); status != http.StatusNotFound {
			t.Errorf("%s: status %d", path, status)
		}
	}
	// Another tenant has its own entity ID, endpoints and key.
	if _, err := e.st.CreateTenant(context.Background(), store.Tenant{Name: "acme", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateTenant(context.Background(), store.Tenant{Name: "off", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	_, _, acme := e.do(http.MethodGet, e.base+"/t/acme"+saml.PathMetadata, nil)
	var amd csaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(acme), &amd); err != nil {
		t.Fatal(err)
	}
	if amd.EntityID != e.base+"/t/acme"+saml.PathMetadata || amd.IDPSSODescriptors[0].SingleSignOnServices[0].Location != e.base+"/t/acme"+saml.PathSSO {
		t.Errorf("acme metadata %+v", amd.EntityID)
	}
	if amd.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data == d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data {
		t.Error("two tenants share a certificate")
	}
}

func TestSPInitiatedSSO(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"attributes": map[string]any{"mail": "email", "urn:oid:2.5.4.42": "given_name", "groups": "groups", "dept": "department"}})
	cookie := e.session(time.Now(), "pwd")

	t.Run("redirect binding", func(t *testing.T) {
		u, id := sp.redirectRequest(t, nil)
		status, _, body := e.do(http.MethodGet, u, nil, cookie)
		doc, relay := acsResponse(t, sp, status, body)
		if relay != "rs-1" {
			t.Errorf("RelayState %q", relay)
		}
		a := parse(t, sp, doc, id)
		if a.Subject.NameID.Format != saml.NameIDPersistent {
			t.Errorf("NameID format %q", a.Subject.NameID.Format)
		}
		if got := attr(a, "mail"); len(got) != 1 || got[0] != "alice@example.com" {
			t.Errorf("mail %v", got)
		}
		if got := attr(a, "groups"); len(got) != 2 || got[1] != "ops" {
			t.Errorf("groups %v", got)
		}
		if got := attr(a, "dept"); len(got) != 1 || got[0] != "R&D" {
			t.Errorf("dept %v", got)
		}
		if a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value != saml.ACPPT {
			t.Errorf("class %q", a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value)
		}
		if a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient != sp.AcsURL.String() {
			t.Error("recipient is not the ACS")
		}
		// A second sign-in gets the same pseudonym.
		u2, id2 := sp.redirectRequest(t, nil)
		status, _, body = e.do(http.MethodGet, u2, nil, cookie)
		doc2, _ := acsResponse(t, sp, status, body)
		if b := parse(t, sp, doc2, id2); b.Subject.NameID.Value != a.Subject.NameID.Value {
			t.Error("persistent NameID changed")
		}
	})

	t.Run("post binding", func(t *testing.T) {
		// Cross-site, the POST carries no session cookie (SameSite=Lax):
		// the IdP continues on a same-site GET.
		form, id := sp.postRequest(t, nil)
		status, loc, body := e.do(http.MethodPost, e.base+saml.PathSSO, form)
		if status != http.StatusSeeOther || !strings.Contains(loc, saml.PathResume) {
			t.Fatalf("status %d location %q %s", status, loc, body)
		}
		status, _, body = e.do(http.MethodGet, loc, nil, cookie)
		doc, relay := acsResponse(t, sp, status, body)
		if relay != "rs-2" {
			t.Errorf("RelayState %q", relay)
		}
		parse(t, sp, doc, id)
		// The hop's state is used once.
		if status, _, _ := e.do(http.MethodGet, loc, nil, cookie); status != http.StatusBadRequest {
			t.Errorf("resuming twice: status %d", status)
		}
	})

	t.Run("post binding with the session cookie", func(t *testing.T) {
		// Same-site, the cookie comes with the POST: answered at once.
		form, id := sp.postRequest(t, nil)
		status, _, body := e.do(http.MethodPost, e.base+saml.PathSSO, form, cookie)
		doc, relay := acsResponse(t, sp, status, body)
		if relay != "rs-2" {
			t.Errorf("RelayState %q", relay)
		}
		parse(t, sp, doc, id)
	})

	t.Run("no session sends the browser to sign in", func(t *testing.T) {
		u, _ := sp.redirectRequest(t, nil)
		status, loc, _ := e.do(http.MethodGet, u, nil)
		if status != http.StatusSeeOther || !strings.Contains(loc, "/login?") || !strings.Contains(loc, url.QueryEscape(saml.PathResume)) {
			t.Fatalf("status %d location %q", status, loc)
		}
	})
}

func TestGroupsAndRolesAttributes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g, err := e.st.CreateGroup(ctx, store.Group{TenantID: e.def.ID, Name: "admins"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddGroupMember(ctx, e.def.ID, g.ID, e.user.ID); err != nil {
		t.Fatal(err)
	}
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"attributes": map[string]any{"memberOf": "groups", "roles": "roles"}})
	u, id := sp.redirectRequest(t, nil)
	status, _, body := e.do(http.MethodGet, u, nil, e.session(time.Now(), "pwd"))
	doc, _ := acsResponse(t, sp, status, body)
	a := parse(t, sp, doc, id)
	if got := attr(a, "memberOf"); len(got) != 1 || got[0] != "admins" {
		t.Errorf("memberOf %v", got)
	}
	if got := attr(a, "roles"); len(got) != 0 {
		t.Errorf("roles %v, want none", got)
	}
}

func TestStatusResponses(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, nil)
	cookie := e.session(time.Now().Add(-time.Hour), "pwd")
	yes := true
	email, bogus := saml.NameIDEmail, "urn:x:bogus"
	cases := []struct {
		name   string
		mutate func(*csaml.AuthnRequest)
		cookie bool
		status string
	}{
		{"passive without session", func(r *csaml.AuthnRequest) { r.IsPassive = &yes }, false, csaml.StatusNoPassive},
		{"unknown NameID format", func(r *csaml.AuthnRequest) { r.NameIDPolicy = &csaml.NameIDPolicy{Format: &bogus} }, true, csaml.StatusInvalidNameIDPolicy},
		{"context not met", func(r *csaml.AuthnRequest) {
			r.RequestedAuthnContext = &csaml.RequestedAuthnContext{Comparison: "exact", AuthnContextClassRef: saml.ACMFA}
		}, true, csaml.StatusNoAuthnContext},
		{"minimum context met", func(r *csaml.AuthnRequest) {
			r.RequestedAuthnContext = &csaml.RequestedAuthnContext{Comparison: "minimum", AuthnContextClassRef: saml.ACPassword}
		}, true, ""},
		{"email NameID", func(r *csaml.AuthnRequest) { r.NameIDPolicy = &csaml.NameIDPolicy{Format: &email} }, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, id := sp.redirectRequest(t, tc.mutate)
			var status int
			var body string
			if tc.cookie {
				status, _, body = e.do(http.MethodGet, u, nil, cookie)
			} else {
				status, _, body = e.do(http.MethodGet, u, nil)
			}
			doc, _ := acsResponse(t, sp, status, body)
			if tc.status == "" {
				a := parse(t, sp, doc, id)
				if tc.name == "email NameID" && a.Subject.NameID.Value != "alice@example.com" {
					t.Errorf("NameID %q", a.Subject.NameID.Value)
				}
				return
			}
			var r csaml.Response
			if err := xml.Unmarshal(doc, &r); err != nil {
				t.Fatal(err)
			}
			if r.Status.StatusCode.StatusCode == nil || r.Status.StatusCode.StatusCode.Value != tc.status || r.Assertion != nil {
				t.Errorf("status %+v", r.Status.StatusCode)
			}
			if r.Signature == nil {
				t.Error("error response not signed")
			}
		})
	}

	t.Run("ForceAuthn with an older session asks for credentials", func(t *testing.T) {
		u, _ := sp.redirectRequest(t, func(r *csaml.AuthnRequest) { r.ForceAuthn = &yes })
		status, loc, _ := e.do(http.MethodGet, u, nil, cookie)
		if status != http.StatusSeeOther || !strings.Contains(loc, "force=1") {
			t.Fatalf("status %d location %q", status, loc)
		}
	})
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	signer := e.newSP("https://signer.example", true)
	e.register(signer, map[string]any{"require_signed_requests": true})
	plain := e.newSP("https://plain.example", true)
	plain.SignatureMethod = ""
	e.register(plain, nil)
	cookie := e.session(time.Now(), "pwd")

	t.Run("signed redirect request is accepted", func(t *testing.T) {
		u, id := signer.redirectRequest(t, nil)
		status, _, body := e.do(http.MethodGet, u, nil, cookie)
		doc, _ := acsResponse(t, signer, status, body)
		parse(t, signer, doc, id)
	})
	t.Run("a second, unsigned SAMLRequest next to a signed one is refused", func(t *testing.T) {
		good, _ := signer.redirectRequest(t, nil)
		signer.SignatureMethod = ""
		other, _ := signer.redirectRequest(t, func(r *csaml.AuthnRequest) { r.AssertionConsumerServiceURL = "https://signer.example/evil" })
		signer.SignatureMethod = plainSig
		ou, _ := url.Parse(other)
		gu, _ := url.Parse(good)
		evil := ou.Query().Get("SAMLRequest")
		for _, q := range []string{
			"SAMLRe%71uest=" + url.QueryEscape(evil) + "&" + gu.RawQuery,
			"SAMLRequest=" + url.QueryEscape(evil) + "&" + gu.RawQuery,
		} {
			status, _, body := e.do(http.MethodGet, e.base+saml.PathSSO+"?"+q, nil, cookie)
			if status != http.StatusBadRequest || strings.Contains(body, "SAMLResponse") {
				t.Fatalf("status %d for %q", status, q[:40])
			}
		}
	})
	t.Run("signed post request is accepted", func(t *testing.T) {
		form, id := signer.postRequest(t, nil)
		status, loc, _ := e.do(http.MethodPost, e.base+saml.PathSSO, form)
		if status != http.StatusSeeOther {
			t.Fatalf("status %d", status)
		}
		status, _, body := e.do(http.MethodGet, loc, nil, cookie)
		doc, _ := acsResponse(t, signer, status, body)
		parse(t, signer, doc, id)
		// With the session cookie on the POST: answered at once.
		form, id = signer.postRequest(t, nil)
		status, _, body = e.do(http.MethodPost, e.base+saml.PathSSO, form, cookie)
		doc, _ = acsResponse(t, signer, status, body)
		parse(t, signer, doc, id)
	})

	unsigned := func() string {
		signer.SignatureMethod = ""
		defer func() { signer.SignatureMethod = plainSig }()
		u, _ := signer.redirectRequest(t, nil)
		return u
	}
	tamperedPost := func() url.Values {
		form, _ := signer.postRequest(t, nil)
		b, _ := base64.StdEncoding.DecodeString(form.Get("SAMLRequest"))
		b = bytes.Replace(b, []byte(signer.AcsURL.String()), []byte("https://signer.example/saml/evil"), 1)
		form.Set("SAMLRequest", base64.StdEncoding.EncodeToString(b))
		return form
	}
	// Signature wrapping: a forged request as the root, the signed one
	// (with its signature) tucked inside it.
	wrapped := func() url.Values {
		form, _ := signer.postRequest(t, nil)
		raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLRequest"))
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		orig := doc.Root()
		evil := orig.Copy()
		for _, c := range evil.ChildElements() {
			if c.Tag == "Signature" {
				evil.RemoveChild(c)
			}
		}
		evil.CreateAttr("ID", "id-forged")
		evil.CreateAttr("AssertionConsumerServiceURL", "https://signer.example/saml/evil")
		if sig := orig.FindElement("./Signature"); sig != nil {
			orig.RemoveChild(sig)
			evil.InsertChildAt(1, sig)
		}
		ext := evil.CreateElement("samlp:Extensions")
		ext.AddChild(orig)
		out, err := xmlBytes(evil)
		if err != nil {
			t.Fatal(err)
		}
		return url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(out)}}
	}
	replayed, _ := plain.redirectRequest(t, nil)
	if status, _, _ := e.do(http.MethodGet, replayed, nil, cookie); status != http.StatusOK {
		t.Fatalf("first use: status %d", status)
	}
	expired, _ := plain.redirectRequest(t, func(r *csaml.AuthnRequest) { r.IssueInstant = time.Now().Add(-time.Hour) })
	wrongACS, _ := plain.redirectRequest(t, func(r *csaml.AuthnRequest) { r.AssertionConsumerServiceURL = "https://plain.example/other" })
	wrongDest, _ := plain.redirectRequest(t, func(r *csaml.AuthnRequest) { r.Destination = "https://elsewhere.example/sso" })
	unknown := e.newSP("https://unknown.example", false)
	unknownURL, _ := unknown.redirectRequest(t, nil)
	dtd := deflateRequest(t, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&a;</samlp:AuthnRequest>`)

	cases := []struct {
		name   string
		method string
		url    string
		form   url.Values
		want   int
	}{
		{"unsigned where required", http.MethodGet, unsigned(), nil, http.StatusBadRequest},
		{"tampered signed post", http.MethodPost, e.base + saml.PathSSO, tamperedPost(), http.StatusBadRequest},
		{"signature wrapping", http.MethodPost, e.base + saml.PathSSO, wrapped(), http.StatusBadRequest},
		{"replayed request", http.MethodGet, replayed, nil, http.StatusBadRequest},
		{"expired request", http.MethodGet, expired, nil, http.StatusBadRequest},
		{"unregistered ACS", http.MethodGet, wrongACS, nil, http.StatusBadRequest},
		{"wrong destination", http.MethodGet, strings.Replace(wrongDest, "https://elsewhere.example/sso", e.base+saml.PathSSO, 1), nil, http.StatusBadRequest},
		{"unknown SP", http.MethodGet, unknownURL, nil, http.StatusBadRequest},
		{"DTD", http.MethodGet, e.base + saml.PathSSO + "?SAMLRequest=" + url.QueryEscape(dtd), nil, http.StatusBadRequest},
		{"not base64", http.MethodGet, e.base + saml.PathSSO + "?SAMLRequest=%%%", nil, http.StatusBadRequest},
		{"no request", http.MethodGet, e.base + saml.PathSSO, nil, http.StatusBadRequest},
		{"garbage post", http.MethodPost, e.base + saml.PathSSO, url.Values{"SAMLRequest": {"PGE+"}}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(tc.method, tc.url, tc.form, cookie)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if strings.Contains(body, "SAMLResponse") {
				t.Error("a response was issued")
			}
		})
	}
}

const plainSig = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

func deflateRequest(t *testing.T, doc string) string {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	_, _ = w.Write([]byte(doc))
	_ = w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestEncryptedAssertions(t *testing.T) {
	e := newEnv(t)
	cookie := e.session(time.Now(), "pwd")
	for i, method := range []string{"", saml.EncAES128CBC, saml.EncAES256CBC} {
		sp := e.newSP("https://enc"+string(rune('a'+i))+".example", false)
		settings := map[string]any{}
		if method != "" {
			settings["encryption_method"] = method
		}
		e.register(sp, settings)
		t.Run("method "+method, func(t *testing.T) {
			u, id := sp.redirectRequest(t, nil)
			status, _, body := e.do(http.MethodGet, u, nil, cookie)
			doc, _ := acsResponse(t, sp, status, body)
			if !bytes.Contains(doc, []byte("EncryptedAssertion")) || bytes.Contains(doc, []byte("alice")) {
				t.Fatal("assertion not encrypted")
			}
			if a := parse(t, sp, doc, id); a.Subject.NameID.Value == "" {
				t.Error("no NameID")
			}
		})
	}
	t.Run("encryption certificate in settings", func(t *testing.T) {
		sp := e.newSP("https://encset.example", false)
		pemCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sp.cert.Raw}))
		e.register(sp, map[string]any{"acs_urls": []any{sp.AcsURL.String()}, "encryption_certificate": pemCert, "want_assertions_signed": true})
		u, id := sp.redirectRequest(t, nil)
		status, _, body := e.do(http.MethodGet, u, nil, cookie)
		doc, _ := acsResponse(t, sp, status, body)
		if !bytes.Contains(doc, []byte("EncryptedAssertion")) {
			t.Fatal("assertion not encrypted")
		}
		parse(t, sp, doc, id)
	})
}

func TestIdPInitiated(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"encrypt_assertions": false, "name_id_format": "transient"})
	closed := e.newSP("https://closed.example", false)
	e.register(closed, map[string]any{"allow_idp_initiated": false})
	cookie := e.session(time.Now(), "pwd")
	status, _, body := e.do(http.MethodGet, e.base+saml.PathIDPInit+"?sp="+url.QueryEscape(sp.EntityID)+"&RelayState=/home", nil, cookie)
	doc, relay := acsResponse(t, sp, status, body)
	if relay != "/home" {
		t.Errorf("RelayState %q", relay)
	}
	a := parse(t, sp, doc)
	if a.Subject.NameID.Format != saml.NameIDTransient {
		t.Errorf("format %q", a.Subject.NameID.Format)
	}
	if status, _, _ := e.do(http.MethodGet, e.base+saml.PathIDPInit+"?sp="+url.QueryEscape(closed.EntityID), nil, cookie); status != http.StatusBadRequest {
		t.Errorf("closed SP: status %d", status)
	}
	if status, _, _ := e.do(http.MethodGet, e.base+saml.PathIDPInit+"?sp=https://nobody", nil, cookie); status != http.StatusBadRequest {
		t.Errorf("unknown SP: status %d", status)
	}
}

func TestSingleLogout(t *testing.T) {
	e := newEnv(t)
	a := e.newSP("https://a.example", false)
	b := e.newSP("https://b.example", false)
	e.register(a, nil)
	e.register(b, nil)
	cookie := e.session(time.Now(), "pwd")
	nameIDs := map[string]string{}
	for _, sp := range []*testSP{a, b} {
		u, id := sp.redirectRequest(t, nil)
		status, _, body := e.do(http.MethodGet, u, nil, cookie)
		doc, _ := acsResponse(t, sp, status, body)
		nameIDs[sp.EntityID] = parse(t, sp, doc, id).Subject.NameID.Value
	}

	// A LogoutRequest naming another user is refused, and the session lives.
	bad, err := a.MakeRedirectLogoutRequest("someone-else", "x")
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := e.do(http.MethodGet, bad.String(), nil, cookie)
	action, f := postedForm(t, body)
	if status != http.StatusOK || action != a.SloURL.String() || a.ValidateLogoutResponseForm(f.Get("SAMLResponse")) == nil {
		t.Fatalf("mismatched NameID was not refused: %d %s", status, body)
	}

	// SP a logs out: the IdP ends the session, logs b out, answers a.
	req, err := a.MakeRedirectLogoutRequest(nameIDs[a.EntityID], "back-to-a")
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = e.do(http.MethodGet, req.String(), nil, cookie)
	action, f = postedForm(t, body)
	if status != http.StatusOK || action != b.SloURL.String() {
		t.Fatalf("expected a LogoutRequest to b, got %d %s", status, body)
	}
	raw, _ := base64.StdEncoding.DecodeString(f.Get("SAMLRequest"))
	var lr csaml.LogoutRequest
	if err := xml.Unmarshal(raw, &lr); err != nil {
		t.Fatal(err)
	}
	if lr.NameID.Value != nameIDs[b.EntityID] || lr.Signature == nil {
		t.Errorf("LogoutRequest to b: NameID %q signed %v", lr.NameID.Value, lr.Signature != nil)
	}
	sessions, err := e.st.ListUserSessions(context.Background(), e.def.ID, e.user.ID)
	if err != nil || len(sessions) != 0 {
		t.Errorf("session not ended: %v %v", sessions, err)
	}
	// b answers; the IdP answers a.
	resp, err := b.MakePostLogoutResponse(lr.ID, f.Get("RelayState"))
	if err != nil {
		t.Fatal(err)
	}
	_, bf := postedForm(t, string(resp))
	bf.Set("RelayState", f.Get("RelayState"))
	status, _, body = e.do(http.MethodPost, e.base+saml.PathSLO, bf)
	action, f = postedForm(t, body)
	if status != http.StatusOK || action != a.SloURL.String() || f.Get("RelayState") != "back-to-a" {
		t.Fatalf("expected a LogoutResponse to a, got %d %s", status, body)
	}
	if err := a.ValidateLogoutResponseForm(f.Get("SAMLResponse")); err != nil {
		var ire *csaml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		t.Fatalf("a refused the LogoutResponse: %v", err)
	}
	// The same LogoutRequest again is a replay.
	if status, _, _ := e.do(http.MethodGet, req.String(), nil); status != http.StatusBadRequest {
		t.Errorf("replayed LogoutRequest: status %d", status)
	}
}

func TestIdPInitiatedLogout(t *testing.T) {
	e := newEnv(t)
	a := e.newSP("https://a.example", false)
	e.register(a, nil)
	cookie := e.session(time.Now(), "pwd")
	u, id := a.redirectRequest(t, nil)
	status, _, body := e.do(http.MethodGet, u, nil, cookie)
	doc, _ := acsResponse(t, a, status, body)
	parse(t, a, doc, id)

	if status, _, body := e.do(http.MethodGet, e.base+saml.PathSLO, nil, cookie); status != http.StatusOK || !strings.Contains(body, "csrf") {
		t.Fatalf("confirm page: %d", status)
	}
	if status, _, _ := e.do(http.MethodPost, e.base+saml.PathSLO, url.Values{"logout": {"1"}}, cookie); status != http.StatusForbidden {
		t.Fatalf("without csrf: status %d", status)
	}
	csrf := &http.Cookie{Name: "latch_csrf", Value: strings.Repeat("c", 43), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	status, _, body = e.do(http.MethodPost, e.base+saml.PathSLO, url.Values{"logout": {"1"}, "csrf": {csrf.Value}}, cookie, csrf)
	action, f := postedForm(t, body)
	if status != http.StatusOK || action != a.SloURL.String() || f.Get("SAMLRequest") == "" {
		t.Fatalf("expected a LogoutRequest to a: %d %s", status, body)
	}
	if n, _ := e.st.ListUserSessions(context.Background(), e.def.ID, e.user.ID); len(n) != 0 {
		t.Error("session not ended")
	}
}

func TestDecodeSPConfig(t *testing.T) {
	cases := []struct {
		name string
		raw  any
		ok   bool
	}{
		{"acs only", map[string]any{"acs_urls": []any{"https://sp/acs"}}, true},
		{"nothing", map[string]any{}, false},
		{"unknown field", map[string]any{"acs_urls": []any{"https://sp/acs"}, "colour": "red"}, false},
		{"entity mismatch", map[string]any{"entity_id": "https://other", "acs_urls": []any{"https://sp/acs"}}, false},
		{"bad acs", map[string]any{"acs_urls": []any{"javascript:alert(1)"}}, false},
		{"both metadata sources", map[string]any{"metadata_xml": "<x/>", "metadata_url": "https://sp/md"}, false},
		{"bad format", map[string]any{"acs_urls": []any{"https://sp/acs"}, "name_id_format": "kerberos"}, false},
		{"bad cipher", map[string]any{"acs_urls": []any{"https://sp/acs"}, "encryption_method": "des"}, false},
		{"bad cert", map[string]any{"acs_urls": []any{"https://sp/acs"}, "signing_certificate": "nope"}, false},
		{"bad metadata", map[string]any{"metadata_xml": "<EntityDescriptor"}, false},
		{"not an object", "x", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := saml.DecodeSPConfig("https://sp", tc.raw)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestMetadataURLIsGuarded(t *testing.T) {
	e := newEnv(t)
	// The IdP's own metadata URL is on loopback: the SSRF guard refuses it.
	if _, err := e.st.CreateClient(context.Background(), store.Client{
		TenantID: e.def.ID, ClientID: "https://fetched.example", Enabled: true,
		Settings: map[string]any{saml.SettingsKey: map[string]any{"metadata_url": e.base + saml.PathMetadata}},
	}); err != nil {
		t.Fatal(err)
	}
	status, _, _ := e.do(http.MethodGet, e.base+saml.PathIDPInit+"?sp="+url.QueryEscape("https://fetched.example"), nil, e.session(time.Now(), "pwd"))
	if status != http.StatusInternalServerError {
		t.Fatalf("status %d, want the fetch refused", status)
	}
}

func TestMetadataURL(t *testing.T) {
	// An SP on loopback is reachable only with a client that allows it
	// (the default one refuses; see TestMetadataURLIsGuarded).
	e := newEnv(t, func(d *saml.Deps) { d.MetadataClient = &http.Client{Timeout: 5 * time.Second} })
	sp := e.newSP("https://fetched.example", false)
	md := sp.metadataXML(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write([]byte(md))
	}))
	t.Cleanup(srv.Close)
	e.register(sp, map[string]any{"metadata_url": srv.URL})
	u, id := sp.redirectRequest(t, nil)
	status, _, body := e.do(http.MethodGet, u, nil, e.session(time.Now(), "pwd"))
	doc, _ := acsResponse(t, sp, status, body)
	parse(t, sp, doc, id)
}

package saml_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchid/latch/conformance/internal/live"
)

const alicePass = "alice-password-42"

// idp is the live server.
type idp struct {
	*live.Server
	metadata *csaml.EntityDescriptor
}

// setup starts a server with the user alice. It skips when the server
// does not serve SAML (the IdP is not wired into the node).
func setup(t testing.TB) *idp {
	t.Helper()
	s := live.Start(t)
	resp, err := http.Get(s.URL + "/saml2/metadata")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Skip("the server does not serve /saml2/metadata: the SAML IdP is not wired into builtin/node")
	}
	var md csaml.EntityDescriptor
	if err := xml.Unmarshal(body, &md); err != nil {
		t.Fatalf("IdP metadata: %v\n%s", err, body)
	}
	if code := s.Admin(http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true,
		"display_name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d", code)
	}
	return &idp{Server: s, metadata: &md}
}

// sp is a service provider: samlsp's middleware on its own HTTP server.
// GET /app needs a session and prints "hello {NameID} {email}"; /saml/slo
// is a hand-written logout endpoint on the library's ServiceProvider.
type sp struct {
	*samlsp.Middleware
	URL string
	srv *httptest.Server
	key *rsa.PrivateKey
	// metadata is the SP's metadata document.
	metadata []byte
	// logoutRequests counts the IdP's LogoutRequests the SP accepted.
	logoutRequests atomic.Int32
}

type spOptions struct {
	name     string
	sign     bool           // sign AuthnRequests (RSA-SHA256)
	binding  string         // the AuthnRequest binding; empty: Redirect
	idpInit  bool           // accept IdP-initiated (unsolicited) responses
	settings map[string]any // extra settings.saml
	// sloRedirect makes the SP's metadata list only an HTTP-Redirect
	// single logout endpoint.
	sloRedirect bool
	// unregistered leaves the registration to the test.
	unregistered bool
}

func newKeyCert(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// spSeq numbers the SPs a test process starts.
var spSeq atomic.Int64

// newSP starts an SP and registers it with the IdP through the admin API.
func (i *idp) newSP(t testing.TB, o spOptions) *sp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The SP is reached as "localhost" and the IdP as "127.0.0.1", so the
	// browser keeps their cookies apart.
	base := "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	root, _ := url.Parse(base + "/")
	k, c := newKeyCert(t, o.name)
	var logoutBindings []string
	if o.sloRedirect {
		logoutBindings = []string{csaml.HTTPRedirectBinding}
	}
	m, err := samlsp.New(samlsp.Options{
		// The entity id names the SP apart from its port, which the system
		// may give again to a later SP of the same test.
		EntityID: base + "/saml/metadata?sp=" + fmt.Sprint(spSeq.Add(1)), URL: *root, Key: k, Certificate: c, IDPMetadata: i.metadata,
		AllowIDPInitiated: o.idpInit, DefaultRedirectURI: "/app", SignRequest: o.sign, CookieName: "sp_" + o.name,
		LogoutBindings: logoutBindings,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.sign {
		m.ServiceProvider.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	m.ServiceProvider.AuthnNameIDFormat = csaml.UnspecifiedNameIDFormat
	m.Binding = o.binding
	// Refusals are the point of several tests: answer them without the
	// default handler's log line.
	m.OnError = func(w http.ResponseWriter, _ *http.Request, _ error) {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
	}
	s := &sp{Middleware: m, URL: base, key: k}
	mux := http.NewServeMux()
	mux.Handle("/saml/", m)
	mux.HandleFunc("/saml/slo", s.slo)
	mux.Handle("/app", m.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _ := samlsp.SessionFromContext(r.Context()).(samlsp.JWTSessionClaims)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "hello %s %s", sess.Subject, samlsp.AttributeFromContext(r.Context(), "email"))
	})))
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sess, ok := samlsp.SessionFromContext(r.Context()).(samlsp.JWTSessionClaims)
		if !ok {
			if got, err := m.Session.GetSession(r); err == nil {
				sess, _ = got.(samlsp.JWTSessionClaims)
			}
		}
		u, err := m.ServiceProvider.MakeRedirectLogoutRequest(sess.Subject, "after-logout")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	// /logout-signed sends the IdP a LogoutRequest by the HTTP-Redirect
	// binding with a detached RSA-SHA256 signature over the query (SAML
	// bindings section 3.4.4.1), signed here by hand.
	mux.HandleFunc("/logout-signed", func(w http.ResponseWriter, r *http.Request) {
		got, err := m.Session.GetSession(r)
		if err != nil {
			http.Error(w, "no session", http.StatusForbidden)
			return
		}
		sess, _ := got.(samlsp.JWTSessionClaims)
		req, err := m.ServiceProvider.MakeLogoutRequest(m.ServiceProvider.GetSLOBindingLocation(csaml.HTTPRedirectBinding), sess.Subject)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, signRedirect(t, k, req.Destination, "SAMLRequest", req.Element(), "after-logout", r.URL.Query().Get("tamper") != ""), http.StatusFound)
	})
	s.srv = httptest.NewUnstartedServer(mux)
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)

	md, err := xml.Marshal(m.ServiceProvider.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	s.metadata = md
	if o.unregistered {
		return s
	}
	settings := map[string]any{"metadata_xml": string(md), "attributes": map[string]any{"email": "email", "name": "name"}}
	for k, v := range o.settings {
		settings[k] = v
	}
	if code := i.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": m.ServiceProvider.EntityID, "name": o.name, "enabled": true, "settings": map[string]any{"saml": settings},
	}, nil); code != http.StatusCreated {
		t.Fatalf("registering SP %s: %d", o.name, code)
	}
	return s
}

// slo answers the IdP's LogoutRequest with a LogoutResponse, and takes
// the IdP's LogoutResponse to an SP-initiated logout: either way the SP's
// session ends.
func (s *sp) slo(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.sloRedirect(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_ = s.Session.DeleteSession(w, r)
	if r.PostForm.Get("SAMLResponse") != "" {
		if err := s.ServiceProvider.ValidateLogoutResponseRequest(r); err != nil {
			http.Error(w, "bad logout response", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "logged out "+r.PostForm.Get("RelayState")) //nolint:gosec // G705: text/plain in a test SP.
		return
	}
	raw, err := decodeB64(r.PostForm.Get("SAMLRequest"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req csaml.LogoutRequest
	if err := xml.Unmarshal(raw, &req); err != nil || //nolint:gosec // G709: the test SP reads the IdP's LogoutRequest; the IdP under test is what is checked.
		req.Issuer == nil || req.Issuer.Value != s.ServiceProvider.IDPMetadata.EntityID {
		http.Error(w, "bad logout request", http.StatusBadRequest)
		return
	}
	s.logoutRequests.Add(1)
	page, err := s.ServiceProvider.MakePostLogoutResponse(req.ID, r.PostForm.Get("RelayState"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write(page) //nolint:gosec // G705: the SP library's own auto-submitting form.
}

// browser is a cookie-keeping HTTP client that follows redirects and
// submits the HTTP-POST binding's auto-submitting forms by hand.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is where the browser stopped.
type page struct {
	status int
	body   string
	url    string
}

func (b *browser) do(method, u string, form url.Values) (page, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	rb, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "" {
		if lu, err := req.URL.Parse(loc); err == nil {
			loc = lu.String()
		}
	}
	return page{status: resp.StatusCode, body: string(rb), url: u}, loc
}

// visit requests u and then follows redirects and SAML POST forms until a
// page that is neither (a login form, an error, the application).
func (b *browser) visit(method, u string, form url.Values) page {
	b.t.Helper()
	return b.until(method, u, form, func(page) bool { return false })
}

// until is visit that also stops at the first page stop accepts.
func (b *browser) until(method, u string, form url.Values, stop func(page) bool) page {
	b.t.Helper()
	for range 30 {
		p, loc := b.do(method, u, form)
		switch {
		case stop(p):
			return p
		case p.status >= 300 && p.status <= 399 && loc != "":
			method, u, form = http.MethodGet, loc, nil
		case p.status == http.StatusOK && isSAMLForm(p.body):
			action, fields := parseForm(b.t, p.body)
			method, u, form = http.MethodPost, resolve(b.t, u, action), fields
		default:
			return p
		}
	}
	b.t.Fatalf("too many hops from %s", u)
	return page{}
}

// login fills in the login form p and continues.
func (b *browser) login(p page, password string) page {
	b.t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		b.t.Fatalf("want the login form, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	action, fields := parseForm(b.t, p.body)
	fields.Set("username", "alice")
	fields.Set("password", password)
	return b.visit(http.MethodPost, resolve(b.t, p.url, action), fields)
}

// submit posts the first form of p with its fields and continues.
func (b *browser) submit(p page) page {
	b.t.Helper()
	action, fields := parseForm(b.t, p.body)
	return b.visit(http.MethodPost, resolve(b.t, p.url, action), fields)
}

func isSAMLForm(body string) bool {
	return strings.Contains(body, `name="SAMLResponse"`) || strings.Contains(body, `name="SAMLRequest"`)
}

func resolve(t testing.TB, base, ref string) string {
	t.Helper()
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u, err := bu.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// parseForm is live.ParseForm, failing the test when the page has no
// form.
func parseForm(t testing.TB, body string) (string, url.Values) {
	t.Helper()
	action, fields, err := live.ParseForm(body)
	if err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	return action, fields
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(s)
}

// idpCert is the IdP's signing certificate, from its metadata.
func idpCert(md *csaml.EntityDescriptor) (*x509.Certificate, error) {
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if certs := kd.KeyInfo.X509Data.X509Certificates; len(certs) > 0 {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certs[0].Data), ""))
				if err != nil {
					return nil, err
				}
				return x509.ParseCertificate(der)
			}
		}
	}
	return nil, errors.New("no certificate in the IdP metadata")
}

// signRedirect encodes el for the HTTP-Redirect binding and signs the
// query (RSA-SHA256); corrupt flips a bit of the signature.
func signRedirect(t testing.TB, k *rsa.PrivateKey, dest, param string, el *etree.Element, relayState string, corrupt bool) string {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Error(err)
		return ""
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = fw.Write(raw)
	_ = fw.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(z.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sum := sha256.Sum256([]byte(q))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Error(err)
		return ""
	}
	if corrupt {
		sig[len(sig)/2] ^= 1
	}
	return dest + "?" + q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

// verifyRedirect checks the IdP's detached signature over the raw query
// (param, RelayState, SigAlg, in that order, as sent) and returns the
// inflated message and the RelayState.
func verifyRedirect(rawQuery, param string, cert *x509.Certificate) ([]byte, string, error) {
	raws, vals := map[string]string{}, map[string]string{}
	for _, part := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, "", err
		}
		raws[k], vals[k] = part, dv
	}
	if vals["SigAlg"] != dsig.RSASHA256SignatureMethod || vals["Signature"] == "" {
		return nil, "", fmt.Errorf("SigAlg %q, Signature %q", vals["SigAlg"], vals["Signature"])
	}
	signed := raws[param]
	if r, ok := raws["RelayState"]; ok {
		signed += "&" + r
	}
	signed += "&" + raws["SigAlg"]
	sig, err := base64.StdEncoding.DecodeString(vals["Signature"])
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		return nil, "", fmt.Errorf("signature: %w", err)
	}
	z, err := base64.StdEncoding.DecodeString(vals[param])
	if err != nil {
		return nil, "", err
	}
	msg, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(z)), 1<<20))
	return msg, vals["RelayState"], err
}

// sloRedirect is slo for the HTTP-Redirect binding: the IdP's
// LogoutRequest (answered by Redirect) or its LogoutResponse, each
// checked against the IdP's detached signature.
func (s *sp) sloRedirect(w http.ResponseWriter, r *http.Request) {
	cert, err := idpCert(s.ServiceProvider.IDPMetadata)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("SAMLResponse") != "" {
		msg, relay, err := verifyRedirect(r.URL.RawQuery, "SAMLResponse", cert)
		var resp csaml.LogoutResponse
		if err != nil || xml.Unmarshal(msg, &resp) != nil || //nolint:gosec // G709: the test SP reads the IdP's verified LogoutResponse.
			resp.Issuer == nil || resp.Issuer.Value != s.ServiceProvider.IDPMetadata.EntityID ||
			resp.Destination != s.ServiceProvider.SloURL.String() || resp.Status.StatusCode.Value != csaml.StatusSuccess {
			http.Error(w, fmt.Sprintf("bad logout response: %v", err), http.StatusForbidden)
			return
		}
		_ = s.Session.DeleteSession(w, r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "logged out "+relay) //nolint:gosec // G705: text/plain in a test SP.
		return
	}
	msg, relay, err := verifyRedirect(r.URL.RawQuery, "SAMLRequest", cert)
	var req csaml.LogoutRequest
	if err != nil || xml.Unmarshal(msg, &req) != nil || //nolint:gosec // G709: the test SP reads the IdP's verified LogoutRequest.
		req.Issuer == nil || req.Issuer.Value != s.ServiceProvider.IDPMetadata.EntityID {
		http.Error(w, fmt.Sprintf("bad logout request: %v", err), http.StatusForbidden)
		return
	}
	_ = s.Session.DeleteSession(w, r)
	s.logoutRequests.Add(1)
	u, err := s.ServiceProvider.MakeRedirectLogoutResponse(req.ID, relay)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound) //nolint:gosec // G710: the IdP's own SLO endpoint, from its metadata.
}

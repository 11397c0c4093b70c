package saml_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

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
}

type spOptions struct {
	name     string
	sign     bool           // sign AuthnRequests (RSA-SHA256)
	binding  string         // the AuthnRequest binding; empty: Redirect
	idpInit  bool           // accept IdP-initiated (unsolicited) responses
	settings map[string]any // extra settings.saml
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
	m, err := samlsp.New(samlsp.Options{
		EntityID: base + "/saml/metadata", URL: *root, Key: k, Certificate: c, IDPMetadata: i.metadata,
		AllowIDPInitiated: o.idpInit, DefaultRedirectURI: "/app", SignRequest: o.sign, CookieName: "sp_" + o.name,
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
	s := &sp{Middleware: m, URL: base}
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
	s.srv = httptest.NewUnstartedServer(mux)
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)

	md, err := xml.Marshal(m.ServiceProvider.Metadata())
	if err != nil {
		t.Fatal(err)
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

package saml_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

type noAuthenticators struct{}

func (noAuthenticators) Enabled(string, extension.Kind) []*extension.Instance { return nil }

// env serves the IdP over a real SQLite store, key manager, login service
// and HTTP server on a loopback port.
type env struct {
	t    testing.TB
	st   *sqlite.Store
	base string
	def  store.Tenant
	user store.User
	http *http.Client
	idp  *saml.Service
}

func newEnv(t testing.TB, opts ...func(*saml.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	km := keys.NewManager(st, box, keys.Options{Logger: log})
	e := &env{t: t, st: st}
	if e.def, err = st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if e.user, err = st.CreateUser(ctx, store.User{
		TenantID: e.def.ID, Username: "alice", Email: "alice@example.com", EmailVerified: true, DisplayName: "Alice Doe",
		GivenName: "Alice", FamilyName: "Doe", Enabled: true, Attributes: map[string]any{"department": "R&D", "groups": []any{"eng", "ops"}},
	}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{BodyLimit: 1 << 20, ReadTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, ShutdownTimeout: time.Second},
		log, prometheus.NewRegistry(), st.Ping)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	lg, err := login.New(login.Deps{Store: st, Authenticators: noAuthenticators{}, PublicURL: e.base})
	if err != nil {
		t.Fatal(err)
	}
	deps := saml.Deps{Store: st, Keys: km, Login: lg, PublicURL: e.base, PseudonymKey: bytes.Repeat([]byte{9}, 32), Log: log}
	for _, o := range opts {
		o(&deps)
	}
	idp, err := saml.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	idp.Mount(srv.App())
	lg.Mount(srv.App())
	go func() { _ = srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = srv.App().ShutdownWithTimeout(5 * time.Second) })
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

// session creates an SSO session of the user and returns its cookie.
func (e *env) session(authTime time.Time, amr ...string) *http.Cookie {
	e.t.Helper()
	sec := "secret-" + store.NewID()
	sum := sha256.Sum256([]byte(sec))
	now := time.Now()
	acr := "1"
	if len(amr) > 1 {
		acr = "2"
	}
	s, err := e.st.CreateSession(context.Background(), store.Session{
		ID: store.NewID(), TenantID: e.def.ID, UserID: e.user.ID, AuthTime: authTime, ACR: acr, AMR: amr,
		Data: map[string]any{"secret_sha256": hex.EncodeToString(sum[:])}, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Cookie{Name: "latch_session", Value: s.ID + "." + sec, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// do sends a request with the cookies and returns status, Location and body.
func (e *env) do(method, u string, form url.Values, cookies ...*http.Cookie) (int, string, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	loc := resp.Header.Get("Location")
	return resp.StatusCode, loc, string(b)
}

var (
	formAction = regexp.MustCompile(`action="([^"]*)"`)
	formField  = regexp.MustCompile(`name="([A-Za-z]+)" value="([^"]*)"`)
)

// postedForm reads the auto-submitting form of the HTTP-POST binding.
func postedForm(t testing.TB, body string) (action string, fields url.Values) {
	t.Helper()
	m := formAction.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form in %q", body)
	}
	fields = url.Values{}
	for _, f := range formField.FindAllStringSubmatch(body, -1) {
		fields.Set(f[1], html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), fields
}

// testSP is an independent SP (the library's ServiceProvider).
type testSP struct {
	*csaml.ServiceProvider
	key  *rsa.PrivateKey
	cert *x509.Certificate
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

// newSP builds an SP at base (e.g. https://sp.example) that trusts the
// IdP's metadata.
func (e *env) newSP(base string, sign bool) *testSP {
	e.t.Helper()
	k, c := newKeyCert(e.t, base)
	_, _, body := e.do(http.MethodGet, e.base+saml.PathMetadata, nil)
	var md csaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(body), &md); err != nil {
		e.t.Fatalf("idp metadata: %v\n%s", err, body)
	}
	mu, _ := url.Parse(base + "/saml/metadata")
	acs, _ := url.Parse(base + "/saml/acs")
	slo, _ := url.Parse(base + "/saml/slo")
	sp := &csaml.ServiceProvider{
		EntityID: mu.String(), Key: k, Certificate: c, MetadataURL: *mu, AcsURL: *acs, SloURL: *slo,
		IDPMetadata: &md, AllowIDPInitiated: true, AuthnNameIDFormat: csaml.UnspecifiedNameIDFormat, LogoutBindings: []string{csaml.HTTPPostBinding},
	}
	if sign {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return &testSP{ServiceProvider: sp, key: k, cert: c}
}

// metadataXML is the SP's metadata document.
func (s *testSP) metadataXML(t testing.TB) string {
	t.Helper()
	b, err := xml.Marshal(s.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// register adds the SP as a client with the settings, plus its
// metadata_xml when the settings name no ACS and no metadata.
func (e *env) register(s *testSP, settings map[string]any) {
	e.t.Helper()
	if settings == nil {
		settings = map[string]any{}
	}
	_, acs := settings["acs_urls"]
	_, mdx := settings["metadata_xml"]
	_, mdu := settings["metadata_url"]
	if !acs && !mdx && !mdu {
		settings["metadata_xml"] = s.metadataXML(e.t)
	}
	if _, err := e.st.CreateClient(context.Background(), store.Client{
		TenantID: e.def.ID, ClientID: s.EntityID, Name: "sp", Enabled: true, Settings: map[string]any{saml.SettingsKey: settings},
	}); err != nil {
		e.t.Fatal(err)
	}
}

// redirectRequest returns the SSO URL of a Redirect-binding AuthnRequest.
func (s *testSP) redirectRequest(t testing.TB, mutate func(*csaml.AuthnRequest)) (string, string) {
	t.Helper()
	req, err := s.MakeAuthenticationRequest(s.GetSSOBindingLocation(csaml.HTTPRedirectBinding), csaml.HTTPRedirectBinding, csaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
		req.Signature = nil // the Redirect binding signs the query instead
	}
	u, err := req.Redirect("rs-1", s.ServiceProvider)
	if err != nil {
		t.Fatal(err)
	}
	return u.String(), req.ID
}

// postRequest returns the form of a POST-binding AuthnRequest.
func (s *testSP) postRequest(t testing.TB, mutate func(*csaml.AuthnRequest)) (url.Values, string) {
	t.Helper()
	req, err := s.MakeAuthenticationRequest(s.GetSSOBindingLocation(csaml.HTTPPostBinding), csaml.HTTPPostBinding, csaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
		req.Signature = nil
		if s.SignatureMethod != "" {
			if err := s.SignAuthnRequest(req); err != nil {
				t.Fatal(err)
			}
		}
	}
	doc, err := xmlBytes(req.Element())
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {"rs-2"}}, req.ID
}

func xmlBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	return doc.WriteToBytes()
}

package federation_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// samlFed is a downstream Latch federated to an upstream Latch as its
// SAML identity provider, through the instance saml-corp (jit: create),
// with the downstream client app-saml whose flow is that instance alone.
type samlFed struct {
	oidcFed
}

func setupSAML(t *testing.T) *samlFed {
	t.Helper()
	up := live.StartWith(t, live.Options{Listen: freeAddr(t, "127.0.0.2")})
	resp, err := http.Get(up.URL + "/saml2/metadata")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Skip("the upstream does not serve /saml2/metadata: the SAML IDP is not wired into builtin/node")
	}
	for _, u := range []map[string]any{
		{"username": "alice", "password": alicePass, "email": "alice@up.example", "email_verified": true, "given_name": "Alice"},
	} {
		createUser(t, up, u)
	}
	yaml := `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - name: saml-corp
      module: authn.saml_federation
      config:
        idp_metadata_url: "` + up.URL + `/saml2/metadata"
        attributes: {username: preferred_username}
        trust_email: true
        jit: create
        label: Corporate SAML
        allow_private_networks: true
`
	// saml-signed has an SP key: it signs its AuthnRequests, and the
	// upstream then encrypts assertions to its certificate.
	keyFile, certFile := writeKeyPair(t)
	yaml += `    - name: saml-signed
      module: authn.saml_federation
      config:
        idp_metadata_url: "` + up.URL + `/saml2/metadata"
        key_file: "` + keyFile + `"
        certificate_file: "` + certFile + `"
        trust_email: true
        link_by_email: true
        jit: link_only
        allow_private_networks: true
`
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	down := live.StartWith(t, live.Options{Env: []string{"LATCH_CONFIG=" + cfg}, Listen: freeAddr(t, "127.0.0.1")})

	for _, in := range []string{"saml-corp", "saml-signed"} {
		mdURL := down.URL + "/login/federated/" + in + "/metadata"
		resp, err = http.Get(mdURL) //nolint:gosec // G107: the URL of the server the test started.
		if err != nil {
			t.Fatal(err)
		}
		md, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(md, []byte("EntityDescriptor")) {
			t.Fatalf("sp metadata: %d\n%s", resp.StatusCode, md)
		}
		if code := up.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": mdURL, "name": "Downstream Latch " + in, "enabled": true,
			"settings": map[string]any{"saml": map[string]any{
				"metadata_xml": string(md),
				"attributes":   map[string]any{"email": "email", "preferred_username": "preferred_username", "given_name": "given_name"},
			}},
		}, nil); code != http.StatusCreated {
			t.Fatalf("registering the downstream SP %s at the upstream: %d", in, code)
		}
		app := "app-saml" // saml-corp's
		if in != "saml-corp" {
			app = "app-" + in
		}
		if code := down.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": app, "client_secret": appSecret, "first_party": true, "redirect_uris": []string{appRedirect},
			"grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "profile", "email"},
			"token_endpoint_auth_method": "client_secret_basic",
			"settings": map[string]any{"authentication": map[string]any{"steps": []any{
				map[string]any{"options": []string{in}},
			}}}, "enabled": true,
		}, nil); code != http.StatusCreated {
			t.Fatalf("creating %s: %d", app, code)
		}
	}
	return &samlFed{oidcFed{up: up, down: down}}
}

// writeKeyPair writes a new RSA key and its self-signed certificate as PEM
// files and returns their paths.
func writeKeyPair(t *testing.T) (keyFile, certFile string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "downstream sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile = filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, certFile
}

// toACS signs alice in at the upstream (or reuses its session) and
// returns the page holding the form that posts the Response to the ACS.
func (f *samlFed) toACS(t *testing.T, b *browser) page {
	t.Helper()
	p := f.start(t, b, "app-saml")
	if strings.Contains(p.Body, `name="password"`) {
		p = signIn(t, b, p, "alice", alicePass, appRedirect)
	}
	action, fields, err := live.ParseForm(p.Body)
	if err != nil || fields.Get("SAMLResponse") == "" || !strings.HasSuffix(action, "/login/federated/saml-corp/acs") {
		t.Fatalf("want the form posting to the ACS, got %s (%v)\n%s", p, err, p.Body)
	}
	return p
}

// acsForm returns the ACS URL and the fields of p's form.
func acsForm(t *testing.T, p page) (string, url.Values) {
	t.Helper()
	action, fields, err := live.ParseForm(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	return action, fields
}

// editResponse decodes the form's SAMLResponse, lets edit change the XML
// and encodes it again.
func editResponse(t *testing.T, fields url.Values, edit func(doc *etree.Document)) url.Values {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	edited := url.Values{}
	for k, v := range fields {
		edited[k] = v
	}
	edited.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))
	return edited
}

func TestSAMLFederation(t *testing.T) {
	f := setupSAML(t)

	t.Run("first login provisions the user, the second reuses the link", func(t *testing.T) {
		b := newBrowser(t)
		p := f.toACS(t, b)
		p = b.Submit(p, nil, appRedirect)
		sub, claims := f.redeem(t, "app-saml", p)
		id, ok := f.localUser(t, "alice")
		if !ok || id != sub {
			t.Fatalf("downstream sub %q, local alice %q (found %v)", sub, id, ok)
		}
		if claims["email"] != "alice@up.example" {
			t.Errorf("email claim %v", claims["email"])
		}
		links := f.links(t, id)
		if len(links.Items) != 1 || links.Items[0].IDP != "saml-corp" || links.Items[0].Subject == "" {
			t.Fatalf("links %+v", links)
		}
		b2 := newBrowser(t)
		p = b2.Submit(f.toACS(t, b2), nil, appRedirect)
		if sub2, _ := f.redeem(t, "app-saml", p); sub2 != sub {
			t.Fatalf("second login signed in %q, want %q", sub2, sub)
		}
	})

	t.Run("signed request, encrypted assertion, linked by email", func(t *testing.T) {
		b := newBrowser(t)
		c := f.app("app-saml-signed")
		p := b.Get(c.AuthCodeURL("rp-state-0123456789", oidc.Nonce("rp-nonce-0123456789"), oauth2.S256ChallengeOption("rp-verifier-"+strings.Repeat("v", 40))), f.up.URL+"/saml2/sso")
		sso, err := url.Parse(p.Location)
		if err != nil || sso.Query().Get("Signature") == "" || !strings.Contains(sso.Query().Get("SigAlg"), "rsa-sha256") {
			t.Fatalf("want a signed AuthnRequest, got %s", p)
		}
		p = b.Get(p.Location, appRedirect)
		if strings.Contains(p.Body, `name="password"`) {
			p = signIn(t, b, p, "alice", alicePass, appRedirect)
		}
		_, fields := acsForm(t, p)
		if xmlDoc := mustDecode(t, fields.Get("SAMLResponse")); !strings.Contains(xmlDoc, "EncryptedAssertion") {
			t.Fatalf("the upstream did not encrypt the assertion:\n%s", xmlDoc)
		}
		p = b.Submit(p, nil, appRedirect)
		sub, _ := f.redeem(t, "app-saml-signed", p)
		alice, _ := f.localUser(t, "alice")
		if sub != alice {
			t.Fatalf("signed in %q, want alice %q", sub, alice)
		}
		l := f.links(t, alice)
		if len(l.Items) != 2 || l.Items[1].IDP != "saml-signed" {
			t.Fatalf("alice's links %+v", l)
		}
	})

	t.Run("the login releases the attributes the IdP asserts now", func(t *testing.T) {
		// alice was provisioned with given_name Alice. At the IdP she is
		// renamed; the local account keeps the old name, but the login,
		// whose only step (so its attribute step) is the SAML one,
		// releases the asserted attributes.
		upAlice := f.upstreamSubject(t, "alice")
		if code := f.up.Admin(http.MethodPatch, "/users/"+upAlice, map[string]any{"given_name": "Alicia"}, &map[string]any{}); code != http.StatusOK {
			t.Fatalf("renaming alice at the IdP: %d", code)
		}
		defer f.up.Admin(http.MethodPatch, "/users/"+upAlice, map[string]any{"given_name": "Alice"}, &map[string]any{})
		b := newBrowser(t)
		sub, claims := f.redeem(t, "app-saml", b.Submit(f.toACS(t, b), nil, appRedirect))
		if alice, _ := f.localUser(t, "alice"); sub != alice {
			t.Fatalf("signed in %q, want alice %q", sub, alice)
		}
		if claims["given_name"] != "Alicia" || claims["email"] != "alice@up.example" {
			t.Errorf("claims %v, want the asserted given_name Alicia", claims)
		}
		var l userList
		f.down.Admin(http.MethodGet, "/users?username=alice", nil, &l)
		if len(l.Items) != 1 || l.Items[0].GivenName != "Alice" {
			t.Errorf("local alice %+v", l.Items)
		}
	})

	t.Run("replayed response", func(t *testing.T) {
		b := newBrowser(t)
		p := f.toACS(t, b)
		action, fields := acsForm(t, p)
		if first := b.Post(action, fields, appRedirect); !strings.HasPrefix(first.Location, appRedirect) {
			t.Fatalf("first delivery: %s\n%s", first, first.Body)
		}
		wantRefusal(t, b.Post(action, fields, appRedirect), http.StatusBadRequest, sentExpired)
		wantRefusal(t, newBrowser(t).Post(action, fields, appRedirect), http.StatusBadRequest, sentExpired)
	})

	t.Run("tampered assertion", func(t *testing.T) {
		b := newBrowser(t)
		action, fields := acsForm(t, f.toACS(t, b))
		tampered := editResponse(t, fields, func(doc *etree.Document) {
			for _, v := range doc.FindElements("//AttributeValue") {
				if v.Text() == "alice@up.example" {
					v.SetText("mallory@up.example")
				}
			}
		})
		if tampered.Get("SAMLResponse") == fields.Get("SAMLResponse") {
			t.Fatal("the test changed nothing")
		}
		wantRefusal(t, b.Post(action, tampered, appRedirect), http.StatusBadRequest, sentUnverified)
	})

	t.Run("unsigned response", func(t *testing.T) {
		b := newBrowser(t)
		action, fields := acsForm(t, f.toACS(t, b))
		unsigned := editResponse(t, fields, func(doc *etree.Document) {
			for _, s := range doc.FindElements("//Signature") {
				s.Parent().RemoveChild(s)
			}
		})
		if strings.Contains(mustDecode(t, unsigned.Get("SAMLResponse")), "SignatureValue") {
			t.Fatal("signatures left in")
		}
		wantRefusal(t, b.Post(action, unsigned, appRedirect), http.StatusBadRequest, sentUnverified)
	})

	t.Run("response to another login", func(t *testing.T) {
		b := newBrowser(t)
		action, first := acsForm(t, f.toACS(t, b))
		_, second := acsForm(t, f.toACS(t, b)) // the upstream's session answers at once
		swapped := url.Values{"SAMLResponse": first["SAMLResponse"], "RelayState": second["RelayState"]}
		wantRefusal(t, b.Post(action, swapped, appRedirect), http.StatusBadRequest, sentUnverified)
	})

	t.Run("unsolicited response", func(t *testing.T) {
		b := newBrowser(t)
		action, fields := acsForm(t, f.toACS(t, b))
		fields.Del("RelayState")
		wantRefusal(t, b.Post(action, fields, appRedirect), http.StatusBadRequest, "is not accepted here")
	})

	t.Run("garbage", func(t *testing.T) {
		b := newBrowser(t)
		action, fields := acsForm(t, f.toACS(t, b))
		fields.Set("SAMLResponse", "not base64 at all!")
		wantRefusal(t, b.Post(action, fields, appRedirect), http.StatusBadRequest, sentUnverified)
	})
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

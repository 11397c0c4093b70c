package samlfed_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	csaml "github.com/crewjam/saml"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/authn/samlfed"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

func keyCert(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

// idpMetadata is the metadata of a crewjam/saml IdentityProvider.
func idpMetadata(t testing.TB) string {
	t.Helper()
	k, c := keyCert(t)
	mdURL, _ := url.Parse("https://idp.example.com/saml2/metadata")
	ssoURL, _ := url.Parse("https://idp.example.com/saml2/sso")
	idp := &csaml.IdentityProvider{Key: k, Certificate: c, MetadataURL: *mdURL, SSOURL: *ssoURL}
	b, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseIDPMetadata(t *testing.T) {
	good := idpMetadata(t)
	if md, err := samlfed.ParseIDPMetadata([]byte(good)); err != nil || md.EntityID != "https://idp.example.com/saml2/metadata" {
		t.Fatalf("parsing an IDP's metadata: %v", err)
	}
	wrapped := `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + good + `</EntitiesDescriptor>`
	if _, err := samlfed.ParseIDPMetadata([]byte(wrapped)); err != nil {
		t.Fatalf("an EntitiesDescriptor: %v", err)
	}
	for name, bad := range map[string]string{
		"empty":        "",
		"not xml":      "{}",
		"no idp":       `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"></EntityDescriptor>`,
		"no signing":   regexp.MustCompile(`(?s)<KeyDescriptor.*</KeyDescriptor>`).ReplaceAllString(good, ""),
		"no redirect":  strings.ReplaceAll(good, "HTTP-Redirect", "HTTP-Artifact"),
		"oversized":    good + strings.Repeat(" ", federation.MaxFetchBytes),
		"entity bomb":  `<!DOCTYPE x [<!ENTITY a "aaaa">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&a;"/>`,
		"no idp among": `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="sp"/></EntitiesDescriptor>`,
	} {
		if _, err := samlfed.ParseIDPMetadata([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecodeResponse(t *testing.T) {
	doc := []byte("<samlp:Response/>")
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(doc),
		base64.RawStdEncoding.EncodeToString(doc),
		strings.Join(strings.SplitAfter(base64.StdEncoding.EncodeToString(doc), "AAA"), "\r\n"),
	} {
		if got, err := samlfed.DecodeResponse(enc); err != nil || string(got) != string(doc) {
			t.Errorf("DecodeResponse(%q) = %q, %v", enc, got, err)
		}
	}
	for _, bad := range []string{"", "!!!", base64.StdEncoding.EncodeToString(make([]byte, samlfed.MaxResponseBytes+1))} {
		if _, err := samlfed.DecodeResponse(bad); err == nil {
			t.Errorf("DecodeResponse accepted %d bytes", len(bad))
		}
	}
}

type env struct {
	st  store.Store
	set *extension.Instances
}

func newEnv(t *testing.T, cfgs ...extension.InstanceConfig) (*env, error) {
	t.Helper()
	st := sqlitetest.Open(t)
	sqlitetest.Tenant(t, st, "acme")
	r := extension.NewRegistry()
	r.Register(samlfed.Module())
	set, err := r.Load(context.Background(), cfgs, extension.LoadOptions{Deps: map[string]any{
		federation.DepStore:      st,
		federation.DepUserStores: func(context.Context, string) []*extension.Instance { return nil },
	}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	return &env{st: st, set: set}, nil
}

func TestRedirectAndMetadata(t *testing.T) {
	md, _ := json.Marshal(idpMetadata(t))
	e, err := newEnv(t, extension.InstanceConfig{Name: "adfs", Module: samlfed.ID, Config: json.RawMessage(`{"idp_metadata_xml":` + string(md) + `}`)})
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := e.set.Get("adfs")
	a, _ := extension.As[*samlfed.Authenticator](inst)
	resp, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{
		Tenant: "acme", FlowID: "f-1", Step: 1, CallbackURL: "https://id.example.com/t/acme/login?flow=f-1",
	}))
	if err != nil || resp.Outcome != abi.OutcomeChallenge || resp.Challenge.Kind != abi.ChallengeRedirect {
		t.Fatalf("first request: %+v %v", resp, err)
	}
	u, _ := url.Parse(resp.Challenge.URL)
	if !strings.HasPrefix(resp.Challenge.URL, "https://idp.example.com/saml2/sso?") || u.Query().Get("SAMLRequest") == "" || u.Query().Get("RelayState") == "" {
		t.Fatalf("redirect %s", resp.Challenge.URL)
	}

	out, err := a.ServeFederation(context.Background(), &federation.Request{Tenant: "acme", BaseURL: "https://id.example.com/t/acme", Op: samlfed.OpMetadata, Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	var sp csaml.EntityDescriptor
	if err := xml.Unmarshal(out.Body, &sp); err != nil {
		t.Fatalf("sp metadata: %v\n%s", err, out.Body)
	}
	if sp.EntityID != "https://id.example.com/t/acme/login/federated/adfs/metadata" || len(sp.SPSSODescriptors) != 1 ||
		len(sp.SPSSODescriptors[0].AssertionConsumerServices) != 1 ||
		sp.SPSSODescriptors[0].AssertionConsumerServices[0].Location != "https://id.example.com/t/acme/login/federated/adfs/acs" ||
		sp.SPSSODescriptors[0].AssertionConsumerServices[0].Binding != csaml.HTTPPostBinding {
		t.Fatalf("sp metadata %s", out.Body)
	}

	// The ACS refuses what no login asked for, without a server error.
	for name, form := range map[string]url.Values{
		"no RelayState":       {"SAMLResponse": {"PHg+"}},
		"unknown RelayState":  {"SAMLResponse": {"PHg+"}, "RelayState": {"nope"}},
		"RelayState, garbage": {"SAMLResponse": {"!!"}, "RelayState": {u.Query().Get("RelayState")}},
	} {
		_, err := a.ServeFederation(context.Background(), &federation.Request{Tenant: "acme", BaseURL: "https://id.example.com/t/acme", Op: samlfed.OpACS, Method: http.MethodPost, Params: form})
		if s := federation.StatusOf(err); s != http.StatusBadRequest {
			t.Errorf("%s: status %d (%v)", name, s, err)
		}
	}
	if _, err := a.ServeFederation(context.Background(), &federation.Request{Tenant: "acme", Op: "acs", Method: http.MethodGet}); federation.StatusOf(err) != http.StatusNotFound {
		t.Errorf("GET acs: %v", err)
	}
}

func TestConfig(t *testing.T) {
	md, _ := json.Marshal(idpMetadata(t))
	k, c := keyCert(t)
	dir := t.TempDir()
	keyFile, certFile := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600)
	tests := []struct {
		name, config, wantErr string
	}{
		{"inline metadata", `{"idp_metadata_xml":` + string(md) + `}`, ""},
		{"with a key", `{"idp_metadata_xml":` + string(md) + `,"key_file":"` + keyFile + `","certificate_file":"` + certFile + `"}`, ""},
		{"no metadata", `{}`, "config.idp_metadata_url"},
		{"both metadata", `{"idp_metadata_xml":` + string(md) + `,"idp_metadata_url":"https://idp.example.com/md"}`, "not both"},
		{"http metadata url", `{"idp_metadata_url":"http://idp.example.com/md"}`, "must be https"},
		{"bad metadata", `{"idp_metadata_xml":"<x/>"}`, "config.idp_metadata_xml"},
		{"key without certificate", `{"idp_metadata_url":"https://idp.example.com/md","key_file":"` + keyFile + `"}`, "certificate_file"},
		{"link_by_email without trust_email", `{"idp_metadata_url":"https://idp.example.com/md","link_by_email":true}`, "trust_email"},
		{"unknown field", `{"idp_metadata_url":"https://idp.example.com/md","colour":"blue"}`, "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newEnv(t, extension.InstanceConfig{Module: samlfed.ID, Config: json.RawMessage(tt.config)})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}

// TestREADMEExamples loads every JSON example of the README.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if _, err := newEnv(t, extension.InstanceConfig{Module: samlfed.ID, Config: json.RawMessage(ex[1])}); err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
		})
	}
}

func FuzzParseIDPMetadata(f *testing.F) {
	f.Add([]byte(idpMetadata(f)))
	f.Add([]byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="x"/></EntitiesDescriptor>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := samlfed.ParseIDPMetadata(b)
		if err == nil && (md.EntityID == "" || len(md.IDPSSODescriptors) == 0) {
			t.Fatalf("accepted metadata without an entity id or IDP: %q", b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte("<Response/>")))
	f.Add("PHg+\r\nPC94Pg")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := samlfed.DecodeResponse(s)
		if err == nil && len(b) > samlfed.MaxResponseBytes {
			t.Fatalf("decoded %d bytes", len(b))
		}
	})
}

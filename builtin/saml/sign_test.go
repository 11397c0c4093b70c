package saml_test

import (
	"context"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/latchid/latch/builtin/saml"
)

// TestSigningKeyPrecomputed checks that the IdP signs with one parsed,
// precomputed RSA key per tenant key: the CRT values a signature needs are
// there, and the key is not parsed again for the next signature.
func TestSigningKeyPrecomputed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.idp.SigningKey(ctx, e.def.ID, e.def.Name)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := first.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("the signer is a %T, want *rsa.PrivateKey", first)
	}
	if k.Precomputed.Dp == nil || k.Precomputed.Dq == nil || k.Precomputed.Qinv == nil {
		t.Fatal("the signing key is not precomputed")
	}
	again, err := e.idp.SigningKey(ctx, e.def.ID, e.def.Name)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatal("the signing key was loaded again for a second signature")
	}
}

// TestSignaturePlacement checks that the signatures of a Response and of
// its Assertion sit right after their Issuer, where the schema wants them,
// and that an SP verifies both.
func TestSignaturePlacement(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"want_assertions_signed": true, "sign_response": true, "encrypt_assertions": false})
	cookie := e.session(time.Now(), "pwd")
	u, id := sp.redirectRequest(t, nil)
	status, _, body := e.do(http.MethodGet, u, nil, cookie)
	doc, _ := acsResponse(t, sp, status, body)
	parse(t, sp, doc, id)

	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatal(err)
	}
	tags := func(el *etree.Element) string {
		var out []string
		for _, c := range el.ChildElements() {
			out = append(out, c.Tag)
		}
		return strings.Join(out, " ")
	}
	if got := tags(d.Root()); got != "Issuer Signature Status Assertion" {
		t.Errorf("Response children: %s", got)
	}
	a := d.Root().SelectElement("Assertion")
	if a == nil {
		t.Fatal("no Assertion")
	}
	if got := tags(a); !strings.HasPrefix(got, "Issuer Signature Subject ") {
		t.Errorf("Assertion children: %s", got)
	}
}

// TestPostFormEscapes checks that the HTTP-POST binding's form page
// escapes what the request chose (RelayState) and still carries it as
// given.
func TestPostFormEscapes(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"encrypt_assertions": false})
	cookie := e.session(time.Now(), "pwd")
	rs := `"><script>alert(1)</script>&x='y'`
	status, _, body := e.do(http.MethodGet, e.base+saml.PathIDPInit+"?sp="+url.QueryEscape(sp.EntityID)+"&RelayState="+url.QueryEscape(rs), nil, cookie)
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("the RelayState is not escaped:\n%s", body)
	}
	doc, relay := acsResponse(t, sp, status, body)
	if relay != rs {
		t.Errorf("RelayState %q, want %q", relay, rs)
	}
	parse(t, sp, doc)
	if strings.Count(body, "<script") != 1 {
		t.Errorf("want exactly one script element:\n%s", body)
	}
}

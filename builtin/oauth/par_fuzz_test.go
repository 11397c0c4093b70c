package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// FuzzRequestObject sends request objects (RFC 9101) to the pushed
// authorization request endpoint and the authorization endpoint: payloads
// signed with the client's registered key, so that what is inside the
// object is parsed, and raw strings. Whatever comes in, the answer is a
// 201, an RFC 6749 error or an error page; never a 5xx, and a redirect
// goes only to the login page or the registered redirect URI.
func FuzzRequestObject(f *testing.F) {
	for _, seed := range []struct{ payload, raw string }{
		{`{"response_type":"code","redirect_uri":"` + codeRedirect + `","scope":"openid","code_challenge":"` + strings.Repeat("a", 43) + `","code_challenge_method":"S256","max_age":60}`, ""},
		{`{"client_id":"other","scope":"openid"}`, "a.b.c"},
		{`{"claims":{"id_token":{"acr":{"essential":true}}},"resource":["https://api.example.com"],"exp":1}`, "eyJhbGciOiJub25lIn0.e30."},
		{`{"request_uri":"urn:x","max_age":1.5,"prompt":false,"x":[1]}`, ""},
		{`[]`, strings.Repeat("e", 20000)},
		{`{"iss":"someone","aud":"x"}`, "...."},
	} {
		f.Add([]byte(seed.payload), seed.raw)
	}
	e := newEnv(f)
	key := newClientKey(f, jose.ES256, "fuzz-1")
	if _, err := e.st.CreateClient(context.Background(), store.Client{
		TenantID: e.def.ID, ClientID: "jar-app", SecretHash: secret.HashClientSecret(secretA), FirstParty: true,
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{codeRedirect},
		TokenEndpointAuthMethod: "client_secret_basic", Enabled: true,
		Settings: map[string]any{oauth.ClientSettingJWKS: key.jwks(f)},
	}); err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	noRedirects := &http.Client{Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, payload []byte, raw string) {
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		for _, ro := range []string{signed, raw} {
			form := url.Values{"client_id": {"jar-app"}, "request": {ro}}.Encode()
			r := postTo(t, e.http, e.base+oauth.PathPAR, formType, form, basic("jar-app", secretA))
			if r.status >= 500 || r.status < 400 && r.status != http.StatusCreated {
				t.Fatalf("PAR with %q: %d %s", ro, r.status, r.body)
			}
			if r.status != http.StatusCreated {
				code, _ := r.json(t)["error"].(string)
				checkError(t, r, r.status, code)
			}
			// POST (OpenID Connect Core 1.0 section 3.1.2.1): a long
			// request object does not fit in a request line.
			req, _ := http.NewRequest(http.MethodPost, e.base+oauth.PathAuthorize, strings.NewReader(form))
			req.Header.Set("Content-Type", formType)
			a := doWith(t, noRedirects, req)
			if a.status >= 500 {
				t.Fatalf("authorize with %q: %d %s", ro, a.status, a.body)
			}
			if loc := a.header.Get("Location"); loc != "" && !strings.HasPrefix(loc, codeRedirect) && !strings.Contains(loc, "/login") {
				t.Fatalf("authorize with %q redirected to %s", ro, loc)
			}
		}
	})
}

package oauth_test

import (
	"net/url"
	"testing"
)

// FuzzTokenRequest posts arbitrary form bodies, content types and
// Authorization headers to the token endpoint: whatever comes in, the
// answer is never a 5xx (and the server does not panic, which the HTTP
// front would turn into a 500).
func FuzzTokenRequest(f *testing.F) {
	for _, seed := range []struct{ ctype, body, auth string }{
		{formType, "grant_type=client_credentials", basic("svc-basic", secretA)},
		{formType, "grant_type=client_credentials&scope=read+write&audience=orders&resource=https%3A%2F%2Fapi.example.com", basic("svc-basic", secretA)},
		{formType, "grant_type=client_credentials&client_id=svc-post&client_secret=" + secretA, ""},
		{formType, "grant_type=client_credentials&client_id=public-app", ""},
		{formType, "grant_type=password&username=a&password=b", basic("svc-basic", secretA)},
		{formType, "grant_type=client_credentials&resource=%zz", basic("svc-basic", secretA)},
		{formType, "grant_type=client_credentials&resource=::&audience=", basic("svc-basic", secretA)},
		{formType, "grant_type=client_credentials;scope=read", "Basic Og=="},
		{formType + "; charset=utf-8", "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", ""},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--", basic("svc-basic", secretA)},
		{"application/json", `{"grant_type":"client_credentials"}`, ""},
		{"", "", "Bearer x"},
	} {
		f.Add(seed.ctype, seed.body, seed.auth)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, ctype, body, auth string) {
		// net/http refuses to send header values with control characters;
		// the server never sees them.
		if !validHeader(ctype) || !validHeader(auth) {
			return
		}
		for _, path := range []string{"/oauth2/token", "/t/acme/oauth2/token"} {
			r := postTo(t, e.http, e.base+path, ctype, body, auth)
			if r.status >= 500 {
				t.Fatalf("POST %s %q (%q, %q): %d %s", path, body, ctype, auth, r.status, r.body)
			}
			if r.status != 200 {
				code, _ := r.json(t)["error"].(string)
				checkError(t, r, r.status, code)
			}
		}
		if q, err := url.ParseQuery(body); err == nil && q.Get("token") != "" {
			r := postTo(t, e.http, e.base+"/oauth2/introspect", ctype, body, auth)
			if r.status >= 500 {
				t.Fatalf("introspect %q: %d %s", body, r.status, r.body)
			}
		}
	})
}

func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

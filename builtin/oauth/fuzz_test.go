package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
		{formType, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&actor_token=x", basic("svc-basic", secretA)},
		{formType, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJhbGciOiJFUzI1NiJ9.e30.AAAA&scope=read", basic("svc-basic", secretA)},
		{formType, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=abc&client_id=public-app", ""},
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

// codeRedirect is the redirect URI of the code-app test client.
const codeRedirect = "https://app.example.com/callback"

// FuzzAuthorizeRequest sends arbitrary authorization requests (GET query
// and POST form) and login form posts: the answer is a redirect or a 4xx
// page, never a 5xx, and a redirect goes only to the login page or to the
// client's registered redirect URI.
func FuzzAuthorizeRequest(f *testing.F) {
	for _, q := range []string{
		"client_id=code-app&response_type=code&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&scope=openid&state=abcdefgh&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=S256",
		"client_id=code-app&response_type=code&redirect_uri=https%3A%2F%2Fevil.example.com%2F&scope=openid",
		"client_id=code-app&response_type=code+id_token&prompt=none&max_age=-1&nonce=x",
		"client_id=code-app&response_type=code&request=eyJhbGciOiJub25lIn0.e30.&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback",
		"client_id=code-app&response_type=code&id_token_hint=a.b.c&prompt=login&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&code_challenge=" + strings.Repeat("b", 43) + "&code_challenge_method=S256",
		"client_id=nobody&response_mode=form_post&redirect_uri=javascript:alert(1)",
		"%zz&&&==",
		"",
	} {
		f.Add(q, true)
		f.Add(q, false)
	}
	e := newEnv(f)
	noRedirect := &http.Client{Timeout: 10 * time.Second, Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, q string, post bool) {
		var (
			resp *http.Response
			err  error
		)
		if post {
			resp, err = noRedirect.Post(e.base+"/oauth2/authorize", formType, strings.NewReader(q))
		} else {
			u, perr := url.Parse(e.base + "/oauth2/authorize")
			if perr != nil {
				t.Fatal(perr)
			}
			u.RawQuery = q
			if strings.ContainsAny(q, " #\x00\r\n") {
				u.RawQuery = url.QueryEscape(q)
			}
			resp, err = noRedirect.Get(u.String())
		}
		if err != nil {
			return // a request net/http refuses to send
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("authorize %q (post %v): %d", q, post, resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			if !strings.HasPrefix(loc, e.base+"/login?") && !strings.HasPrefix(loc, codeRedirect) {
				t.Fatalf("authorize %q redirected to %q", q, loc)
			}
		}
		// The same bytes as a login form post and a logout request.
		for _, path := range []string{"/login", "/oauth2/logout"} {
			r, err := noRedirect.Post(e.base+path, formType, strings.NewReader(q))
			if err != nil {
				continue
			}
			_ = r.Body.Close()
			if r.StatusCode >= 500 {
				t.Fatalf("POST %s %q: %d", path, q, r.StatusCode)
			}
		}
	})
}

// FuzzIDTokenHint feeds arbitrary JWT-shaped strings to the two places
// that parse ID tokens from outside: id_token_hint at the authorization
// endpoint and at the end_session endpoint. Never a 5xx.
func FuzzIDTokenHint(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		"a.b.c.d.e", "....", "", "x",
	} {
		f.Add(s)
	}
	e := newEnv(f)
	noRedirect := &http.Client{Timeout: 10 * time.Second, Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, hint string) {
		for _, u := range []string{
			e.base + "/oauth2/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example.com/bye"}}.Encode(),
			e.base + "/oauth2/authorize?" + url.Values{"client_id": {"code-app"}, "response_type": {"code"}, "redirect_uri": {codeRedirect}, "id_token_hint": {hint}, "prompt": {"none"}}.Encode(),
		} {
			resp, err := noRedirect.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("GET %s: %d", u, resp.StatusCode)
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

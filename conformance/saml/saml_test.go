package saml_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	csaml "github.com/crewjam/saml"
)

// atACS stops at the page that posts a SAMLResponse to an SP's ACS.
func atACS(p page) bool {
	return p.status == http.StatusOK && strings.Contains(p.body, `name="SAMLResponse"`) && strings.Contains(p.body, "/saml/acs")
}

func wantHello(t *testing.T, p page) {
	t.Helper()
	if p.status != http.StatusOK || !strings.HasPrefix(p.body, "hello ") || !strings.HasSuffix(p.body, " alice@example.com") {
		t.Fatalf("want the application page, got %d at %s:\n%s", p.status, p.url, p.body)
	}
}

func wantLoginForm(t *testing.T, p page) {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("want the login form, got %d at %s:\n%s", p.status, p.url, p.body)
	}
}

func TestSPInitiatedSSO(t *testing.T) {
	i := setup(t)
	for _, tc := range []struct {
		name    string
		binding string
		sign    bool
	}{
		{"redirect binding", csaml.HTTPRedirectBinding, false},
		{"post binding", csaml.HTTPPostBinding, false},
		{"signed redirect binding", csaml.HTTPRedirectBinding, true},
		{"signed post binding", csaml.HTTPPostBinding, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := spOptions{name: strings.ReplaceAll(tc.name, " ", "-"), binding: tc.binding, sign: tc.sign}
			if tc.sign {
				opts.settings = map[string]any{"require_signed_requests": true}
			}
			s := i.newSP(t, opts)
			b := newBrowser(t)
			p := b.visit(http.MethodGet, s.URL+"/app", nil)
			wantHello(t, b.login(p, alicePass))
			// Signed in at the IdP: a second visit needs no password.
			s2 := i.newSP(t, spOptions{name: opts.name + "-2", binding: tc.binding})
			wantHello(t, b.visit(http.MethodGet, s2.URL+"/app", nil))
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		s := i.newSP(t, spOptions{name: "pw"})
		b := newBrowser(t)
		p := b.login(b.visit(http.MethodGet, s.URL+"/app", nil), "wrong")
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `name="password"`) || strings.Contains(p.body, "SAMLResponse") {
			t.Fatalf("want the login form again, got %d at %s", p.status, p.url)
		}
	})
}

func TestIDPInitiatedSSO(t *testing.T) {
	i := setup(t)
	s := i.newSP(t, spOptions{name: "idp-init", idpInit: true})
	b := newBrowser(t)
	p := b.visit(http.MethodGet, i.URL+"/saml2/idp-init?sp="+url.QueryEscape(s.ServiceProvider.EntityID), nil)
	wantHello(t, b.login(p, alicePass))
	// Again, signed in: straight to the application.
	wantHello(t, b.visit(http.MethodGet, i.URL+"/saml2/idp-init?sp="+url.QueryEscape(s.ServiceProvider.EntityID), nil))
}

func TestSingleLogout(t *testing.T) {
	i := setup(t)
	a := i.newSP(t, spOptions{name: "slo-a"})
	c := i.newSP(t, spOptions{name: "slo-c"})

	t.Run("SP-initiated", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		wantHello(t, b.visit(http.MethodGet, c.URL+"/app", nil))
		// a logs out: the IdP ends the session, logs c out, answers a.
		p := b.visit(http.MethodGet, a.URL+"/logout", nil)
		if p.status != http.StatusOK || p.body != "logged out after-logout" {
			t.Fatalf("logout ended at %d %s:\n%s", p.status, p.url, p.body)
		}
		// Neither SP nor the IdP has a session any more.
		wantLoginForm(t, b.visit(http.MethodGet, c.URL+"/app", nil))
		wantLoginForm(t, b.visit(http.MethodGet, a.URL+"/app", nil))
	})

	t.Run("IdP-initiated", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		confirm := b.visit(http.MethodGet, i.URL+"/saml2/slo", nil)
		if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "csrf") {
			t.Fatalf("confirm page: %d\n%s", confirm.status, confirm.body)
		}
		p := b.submit(confirm)
		if p.status != http.StatusOK || !strings.Contains(p.url, "/saml2/slo") {
			t.Fatalf("logout ended at %d %s:\n%s", p.status, p.url, p.body)
		}
		wantLoginForm(t, b.visit(http.MethodGet, a.URL+"/app", nil))
	})
}

func TestNegative(t *testing.T) {
	i := setup(t)

	t.Run("unsigned request where a signature is required", func(t *testing.T) {
		s := i.newSP(t, spOptions{name: "must-sign", settings: map[string]any{"require_signed_requests": true}})
		b := newBrowser(t)
		p := b.visit(http.MethodGet, s.URL+"/app", nil)
		if p.status != http.StatusBadRequest || strings.Contains(p.body, "SAMLResponse") {
			t.Fatalf("status %d at %s", p.status, p.url)
		}
	})

	s := i.newSP(t, spOptions{name: "neg", settings: map[string]any{"encrypt_assertions": false}})
	b := newBrowser(t)
	wantHello(t, b.login(b.visit(http.MethodGet, s.URL+"/app", nil), alicePass))

	t.Run("wrong ACS URL", func(t *testing.T) {
		req, err := s.ServiceProvider.MakeAuthenticationRequest(s.ServiceProvider.GetSSOBindingLocation(csaml.HTTPRedirectBinding), csaml.HTTPRedirectBinding, csaml.HTTPPostBinding)
		if err != nil {
			t.Fatal(err)
		}
		req.AssertionConsumerServiceURL = s.URL + "/evil"
		u, err := req.Redirect("", &s.ServiceProvider)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := b.do(http.MethodGet, u.String(), nil)
		if p.status != http.StatusBadRequest || strings.Contains(p.body, "SAMLResponse") {
			t.Fatalf("status %d", p.status)
		}
	})

	t.Run("replayed request", func(t *testing.T) {
		u, err := s.ServiceProvider.MakeRedirectAuthenticationRequest("")
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := b.do(http.MethodGet, u.String(), nil); p.status != http.StatusOK || !strings.Contains(p.body, "SAMLResponse") {
			t.Fatalf("first use: %d", p.status)
		}
		if p, _ := b.do(http.MethodGet, u.String(), nil); p.status != http.StatusBadRequest {
			t.Fatalf("replay: status %d", p.status)
		}
	})

	// response starts a sign-in in a fresh SP session of the signed-in
	// browser and returns the ACS form the IdP answered with.
	response := func(t *testing.T) (string, url.Values) {
		t.Helper()
		//nolint:gosec // G124: deletes the test SP's session cookie in the client's jar, over plain http.
		b.client.Jar.SetCookies(mustURL(t, s.URL), []*http.Cookie{{Name: "sp_neg", Value: "", MaxAge: -1}})
		p := b.until(http.MethodGet, s.URL+"/app", nil, atACS)
		if !atACS(p) {
			t.Fatalf("no response form: %d %s\n%s", p.status, p.url, p.body)
		}
		action, fields := parseForm(t, p.body)
		return resolve(t, p.url, action), fields
	}

	t.Run("replayed response", func(t *testing.T) {
		action, fields := response(t)
		wantHello(t, b.visit(http.MethodPost, action, fields))
		if p := b.visit(http.MethodPost, action, fields); p.status != http.StatusForbidden {
			t.Fatalf("replayed response: status %d at %s\n%s", p.status, p.url, p.body)
		}
	})

	t.Run("tampered assertion", func(t *testing.T) {
		action, fields := response(t)
		raw, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "alice@example.com") {
			t.Fatal("the assertion does not carry the email attribute")
		}
		forged := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(raw), "alice@example.com", "mallory@example.com")))}, "RelayState": fields["RelayState"]}
		if p := b.visit(http.MethodPost, action, forged); p.status != http.StatusForbidden {
			t.Fatalf("tampered response: status %d\n%s", p.status, p.body)
		}
		wantHello(t, b.visit(http.MethodPost, action, fields))
	})

	t.Run("expired assertion", func(t *testing.T) {
		action, fields := response(t)
		csaml.TimeNow = func() time.Time { return time.Now().Add(10 * time.Minute) }
		p := b.visit(http.MethodPost, action, fields)
		csaml.TimeNow = func() time.Time { return time.Now().UTC() }
		if p.status != http.StatusForbidden {
			t.Fatalf("expired response: status %d\n%s", p.status, p.body)
		}
		wantHello(t, b.visit(http.MethodPost, action, fields))
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

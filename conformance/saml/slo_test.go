package saml_test

import (
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestRedirectBindingLogout: an SP sends a LogoutRequest by the
// HTTP-Redirect binding with a detached signature; the IdP verifies it
// against the SP's certificate, logs out the session's other SPs (one
// with only a Redirect endpoint, one with only a POST endpoint) and
// answers the SP by Redirect, signed likewise, which the SP verifies
// against the IdP's metadata. A corrupted signature is refused and the
// session survives.
func TestRedirectBindingLogout(t *testing.T) {
	i := setup(t)
	a := i.newSP(t, spOptions{name: "rd-a", sign: true, sloRedirect: true, settings: map[string]any{"require_signed_requests": true}})
	c := i.newSP(t, spOptions{name: "rd-c", sloRedirect: true})
	d := i.newSP(t, spOptions{name: "rd-d"})

	t.Run("signed request, propagation, signed response", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		wantHello(t, b.visit(http.MethodGet, c.URL+"/app", nil))
		wantHello(t, b.visit(http.MethodGet, d.URL+"/app", nil))
		p := b.visit(http.MethodGet, a.URL+"/logout-signed", nil)
		if p.status != http.StatusOK || p.body != "logged out after-logout" {
			t.Fatalf("logout ended at %d %s:\n%s", p.status, p.url, p.body)
		}
		for _, s := range []*sp{a, c, d} {
			wantLoginForm(t, b.visit(http.MethodGet, s.URL+"/app", nil))
		}
	})

	t.Run("IdP-initiated, to Redirect and POST endpoints", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, c.URL+"/app", nil), alicePass))
		wantHello(t, b.visit(http.MethodGet, d.URL+"/app", nil))
		beforeC, beforeD := c.logoutRequests.Load(), d.logoutRequests.Load()
		p := b.submit(b.visit(http.MethodGet, i.URL+"/saml2/slo", nil))
		if p.status != http.StatusOK || !strings.Contains(p.url, "/saml2/slo") {
			t.Fatalf("logout ended at %d %s:\n%s", p.status, p.url, p.body)
		}
		if c.logoutRequests.Load() != beforeC+1 || d.logoutRequests.Load() != beforeD+1 {
			t.Errorf("LogoutRequests: Redirect SP %d, POST SP %d; want one each", c.logoutRequests.Load()-beforeC, d.logoutRequests.Load()-beforeD)
		}
		wantLoginForm(t, b.visit(http.MethodGet, c.URL+"/app", nil))
		wantLoginForm(t, b.visit(http.MethodGet, d.URL+"/app", nil))
	})

	t.Run("corrupted signature", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		p := b.visit(http.MethodGet, a.URL+"/logout-signed?tamper=1", nil)
		if p.status != http.StatusBadRequest || !strings.Contains(p.url, "/saml2/slo") {
			t.Fatalf("tampered logout: %d at %s:\n%s", p.status, p.url, p.body)
		}
		wantHello(t, b.visit(http.MethodGet, c.URL+"/app", nil))
	})
}

// rp is an OpenID Connect relying party registered with a
// frontchannel_logout_uri; fc receives the paths its logout URI was
// loaded with.
type rp struct {
	base string
	cfg  *oauth2.Config
	fc   chan string
}

func (i *idp) newRP(t *testing.T) *rp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rp{base: "http://" + ln.Addr().String(), fc: make(chan string, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("rp callback " + req.URL.Query().Get("state"))) //nolint:gosec // G705: text/plain in a test RP.
	})
	mux.HandleFunc("/fc", func(w http.ResponseWriter, req *http.Request) {
		r.fc <- req.URL.RawQuery
		_, _ = w.Write([]byte("rp logged out"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 0}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	if code := i.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "xp-rp", "name": "Cross-protocol RP", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
		"redirect_uris": []string{r.base + "/callback"}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
		"settings": map[string]any{"frontchannel_logout_uri": r.base + "/fc", "frontchannel_logout_session_required": true},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the relying party: %d", code)
	}
	r.cfg = &oauth2.Config{ClientID: "xp-rp", RedirectURL: r.base + "/callback", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: i.URL + "/oauth2/authorize", TokenURL: i.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	return r
}

// signIn has the browser, signed in at the IdP, get a code for the RP.
func (r *rp) signIn(t *testing.T, b *browser) {
	t.Helper()
	p := b.visit(http.MethodGet, r.cfg.AuthCodeURL("xp-state-1234", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("nonce", "xp-nonce-1234")), nil)
	if p.status != http.StatusOK || p.body != "rp callback xp-state-1234" || !strings.Contains(p.url, "code=") {
		t.Fatalf("OIDC sign-in ended at %d %s:\n%s", p.status, p.url, p.body)
	}
}

var (
	iframeSrc = regexp.MustCompile(`<iframe[^>]*src="([^"]+)"`)
	linkHref  = regexp.MustCompile(`href="([^"]+)"`)
)

func frames(body string) []string {
	var out []string
	for _, m := range iframeSrc.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// TestCrossProtocolLogout: one SSO session signed in to SAML SPs and an
// OpenID Connect RP. A SAML single logout ends it and the signed-out page
// loads the RP's frontchannel_logout_uri (with iss and sid) before
// answering the SP; an OpenID Connect end_session ends it and its
// signed-out page loads, next to the RP's URI, one IdP URL per SAML SP,
// each sending that SP a signed LogoutRequest (by POST or by Redirect,
// as the SP's metadata says) whose answer the SP's session does not
// survive.
func TestCrossProtocolLogout(t *testing.T) {
	i := setup(t)
	a := i.newSP(t, spOptions{name: "xp-a", sign: true, sloRedirect: true, settings: map[string]any{"require_signed_requests": true}})
	c := i.newSP(t, spOptions{name: "xp-c"})
	r := i.newRP(t)

	t.Run("SAML logout notifies the OIDC RP", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		r.signIn(t, b)
		p := b.visit(http.MethodGet, a.URL+"/logout-signed", nil)
		fr := frames(p.body)
		if p.status != http.StatusOK || len(fr) != 1 || !strings.HasPrefix(fr[0], r.base+"/fc?") {
			t.Fatalf("signed-out page %d at %s, frames %v:\n%s", p.status, p.url, fr, p.body)
		}
		q, _ := url.ParseQuery(strings.TrimPrefix(fr[0], r.base+"/fc?"))
		if q.Get("iss") != i.URL || q.Get("sid") == "" {
			t.Errorf("front-channel URI %s: want iss and sid", fr[0])
		}
		// The page then sends the browser on to the SP with the signed
		// LogoutResponse.
		next := ""
		for _, m := range linkHref.FindAllStringSubmatch(p.body, -1) {
			if u := html.UnescapeString(m[1]); strings.HasPrefix(u, a.URL+"/saml/slo?") {
				next = u
			}
		}
		if next == "" {
			t.Fatalf("no link on to the SP:\n%s", p.body)
		}
		if p := b.visit(http.MethodGet, next, nil); p.body != "logged out after-logout" {
			t.Fatalf("the SP refused the response: %d %s", p.status, p.body)
		}
		// The OIDC session ended too: the RP's next sign-in needs a password.
		wantLoginForm(t, b.visit(http.MethodGet, r.cfg.AuthCodeURL("xp-state-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil))
	})

	t.Run("end_session notifies the SAML SPs", func(t *testing.T) {
		b := newBrowser(t)
		wantHello(t, b.login(b.visit(http.MethodGet, a.URL+"/app", nil), alicePass))
		wantHello(t, b.visit(http.MethodGet, c.URL+"/app", nil))
		r.signIn(t, b)
		confirm := b.visit(http.MethodGet, i.URL+"/oauth2/logout?client_id=xp-rp", nil)
		if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "csrf") {
			t.Fatalf("confirm page: %d\n%s", confirm.status, confirm.body)
		}
		p := b.submit(confirm)
		fr := frames(p.body)
		var notify []string
		rpFrame := false
		for _, f := range fr {
			switch {
			case strings.HasPrefix(f, i.URL+"/saml2/slo/notify?k="):
				notify = append(notify, f)
			case strings.HasPrefix(f, r.base+"/fc"):
				rpFrame = true
			}
		}
		if p.status != http.StatusOK || !rpFrame || len(notify) != 2 {
			t.Fatalf("signed-out page %d at %s, frames %v:\n%s", p.status, p.url, fr, p.body)
		}
		// What each iframe does: the IdP sends the SP its LogoutRequest,
		// the SP answers.
		for _, f := range notify {
			p := b.visit(http.MethodGet, f, nil)
			// The Redirect binding's request is the src of a nested iframe.
			if inner := frames(p.body); p.status == http.StatusOK && len(inner) == 1 {
				p = b.visit(http.MethodGet, inner[0], nil)
			}
			if p.status != http.StatusOK || !strings.Contains(p.url, "/saml2/slo") {
				t.Errorf("notify frame %s ended at %d %s:\n%s", f, p.status, p.url, p.body)
			}
			// A notify URL is spent once its SP answered.
			if p := b.visit(http.MethodGet, f, nil); p.status != http.StatusBadRequest {
				t.Errorf("notify frame %s replayed: %d", f, p.status)
			}
		}
		wantLoginForm(t, b.visit(http.MethodGet, a.URL+"/app", nil))
		wantLoginForm(t, b.visit(http.MethodGet, c.URL+"/app", nil))
	})
}

package federation_test

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	upSecret    = "upstream-client-secret-0123456789abcdef"
	appSecret   = "downstream-app-secret-0123456789abcdef"
	alicePass   = "alice-upstream-password"
	localPass   = "dave-local-password"
	appRedirect = "http://127.0.0.1:9/app/callback"
)

// Sentences of the refusals (builtin/authn/federation).
const (
	sentExpired    = "This sign-in attempt has expired or was already used."
	sentCanceled   = "The identity provider did not sign you in."
	sentNoAccount  = "No account here is linked to this identity"
	sentUnverified = "answer could not be verified"
)

// oidcFed is a downstream Latch federated to an upstream Latch as its
// OpenID Provider, through one instance per policy:
//
//	corp        jit: create
//	corp-link   jit: link_only
//	corp-email  jit: link_only, link_by_email
//	corp-off    jit: off
//
// with one downstream client per instance ("app-" + instance) whose flow
// is that instance alone, "app-step2", password then corp-link, and
// "app-step2-attrs", the same with corp-link as the attribute step.
type oidcFed struct {
	up, down *live.Server
}

var fedInstances = []string{"corp", "corp-link", "corp-email", "corp-off"}

// freeAddr returns a free port on host. The upstream and the downstream
// listen on different loopback addresses, so that the browser keeps their
// cookies apart (cookies ignore ports).
func freeAddr(t testing.TB, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func createUser(t testing.TB, s *live.Server, u map[string]any) {
	t.Helper()
	u["enabled"] = true
	if code := s.Admin(http.MethodPost, "/users", u, nil); code != http.StatusCreated {
		t.Fatalf("creating user %v: %d", u["username"], code)
	}
}

func setupOIDC(t *testing.T) *oidcFed {
	t.Helper()
	up := live.StartWith(t, live.Options{Listen: freeAddr(t, "127.0.0.2")})
	for _, u := range []map[string]any{
		{"username": "alice", "password": alicePass, "email": "alice@up.example", "email_verified": true, "given_name": "Alice", "family_name": "Liddell"},
		{"username": "bob", "password": alicePass, "email": "bob@up.example", "email_verified": true},
		{"username": "carol", "password": alicePass, "email": "carol@example.com", "email_verified": true},
		{"username": "carol-unverified", "password": alicePass, "email": "erin@example.com", "email_verified": false},
		{"username": "dave-at-work", "password": alicePass, "email": "dave@work.example", "email_verified": true},
	} {
		createUser(t, up, u)
	}
	addr := freeAddr(t, "127.0.0.1")
	downURL := "http://" + addr
	var redirects []string
	for _, in := range fedInstances {
		redirects = append(redirects, downURL+"/login/federated/"+in+"/callback")
	}
	if code := up.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "latch-down", "client_secret": upSecret, "name": "Downstream Latch", "first_party": true,
		"redirect_uris": redirects, "grant_types": []string{"authorization_code"},
		"scopes": []string{"openid", "profile", "email"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("registering the downstream at the upstream: %d", code)
	}

	var b strings.Builder
	b.WriteString("extensions:\n  instances:\n    - {name: authn.password, module: authn.password}\n    - {name: userstore.local, module: userstore.local}\n")
	jit := map[string]string{"corp": "create", "corp-link": "link_only", "corp-email": "link_only", "corp-off": "off"}
	for _, in := range fedInstances {
		b.WriteString("    - name: " + in + "\n      module: authn.oidc_federation\n      config:\n")
		b.WriteString("        issuer: \"" + up.URL + "\"\n        client_id: latch-down\n        client_secret: \"" + upSecret + "\"\n")
		b.WriteString("        scopes: [profile, email]\n        label: Corporate sign-in\n        allow_private_networks: true\n")
		b.WriteString("        jit: " + jit[in] + "\n")
		if in == "corp-email" {
			b.WriteString("        link_by_email: true\n")
		}
	}
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	down := live.StartWith(t, live.Options{Env: []string{"LATCH_CONFIG=" + cfg}, Listen: addr})
	createUser(t, down, map[string]any{"username": "carol", "email": "carol@example.com", "email_verified": true})
	createUser(t, down, map[string]any{"username": "erin", "email": "erin@example.com", "email_verified": true})
	createUser(t, down, map[string]any{"username": "dave", "password": localPass})
	clients := map[string][]any{"app-default": nil, "app-step2": {
		map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"corp-link"}},
	}, "app-step2-attrs": {
		map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"corp-link"}, "attribute_step": true},
	}}
	for _, in := range fedInstances {
		clients["app-"+in] = []any{map[string]any{"options": []string{in}}}
	}
	for id, steps := range clients {
		c := map[string]any{
			"client_id": id, "client_secret": appSecret, "first_party": true, "redirect_uris": []string{appRedirect},
			"grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "profile", "email"},
			"token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		}
		if steps != nil {
			c["settings"] = map[string]any{"authentication": map[string]any{"steps": steps}}
		}
		if code := down.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %s: %d", id, code)
		}
	}
	return &oidcFed{up: up, down: down}
}

// app is the downstream relying party of client id.
func (f *oidcFed) app(id string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: id, ClientSecret: appSecret, RedirectURL: appRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: f.down.URL + "/oauth2/authorize", TokenURL: f.down.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// start opens the app's login in b and follows it to the upstream's
// password form.
func (f *oidcFed) start(t *testing.T, b *browser, app string) page {
	t.Helper()
	c := f.app(app)
	p := b.Get(c.AuthCodeURL("rp-state-0123456789", oidc.Nonce("rp-nonce-0123456789"), oauth2.S256ChallengeOption("rp-verifier-"+strings.Repeat("v", 40))), appRedirect)
	if !strings.HasPrefix(p.URL, f.up.URL) {
		t.Fatalf("want the upstream's login page, got %s\n%s", p, p.Body)
	}
	return p
}

// login runs a whole login of the upstream user through app and returns
// the downstream ID token's subject and claims, checked by go-oidc.
func (f *oidcFed) login(t *testing.T, app, username string) (string, map[string]any) {
	t.Helper()
	b := newBrowser(t)
	p := signIn(t, b, f.start(t, b, app), username, alicePass, appRedirect)
	return f.redeem(t, app, p)
}

// redeem exchanges the code of the redirect p to the app and verifies the
// ID token as an independent relying party.
func (f *oidcFed) redeem(t *testing.T, app string, p page) (string, map[string]any) {
	t.Helper()
	sub, claims, _ := f.redeemToken(t, app, p)
	return sub, claims
}

// redeemToken is redeem, returning the tokens too.
func (f *oidcFed) redeemToken(t *testing.T, app string, p page) (string, map[string]any, *oauth2.Token) {
	t.Helper()
	if !strings.HasPrefix(p.Location, appRedirect) {
		t.Fatalf("want a redirect to the app, got %s\n%s", p, p.Body)
	}
	u, _ := url.Parse(p.Location)
	if u.Query().Get("state") != "rp-state-0123456789" || u.Query().Get("code") == "" {
		t.Fatalf("app callback %s", p.Location)
	}
	c := f.app(app)
	tok, err := c.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption("rp-verifier-"+strings.Repeat("v", 40)))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	prov, err := oidc.NewProvider(context.Background(), f.down.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: app}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verifying the downstream id token: %v", err)
	}
	if idt.Nonce != "rp-nonce-0123456789" {
		t.Fatalf("nonce %q", idt.Nonce)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return idt.Subject, claims, tok
}

type userList struct {
	Items []struct {
		ID            string `json:"id"`
		Username      string `json:"username"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		GivenName     string `json:"given_name"`
	} `json:"items"`
}

type linkList struct {
	Items []struct {
		IDP     string `json:"idp"`
		Subject string `json:"subject"`
		UserID  string `json:"user_id"`
		Email   string `json:"email"`
	} `json:"items"`
}

func (f *oidcFed) localUser(t *testing.T, username string) (id string, found bool) {
	t.Helper()
	var l userList
	if code := f.down.Admin(http.MethodGet, "/users?username="+url.QueryEscape(username), nil, &l); code != http.StatusOK {
		t.Fatalf("listing users: %d", code)
	}
	if len(l.Items) == 0 {
		return "", false
	}
	return l.Items[0].ID, true
}

func (f *oidcFed) links(t *testing.T, userID string) linkList {
	t.Helper()
	var l linkList
	if code := f.down.Admin(http.MethodGet, "/users/"+userID+"/links", nil, &l); code != http.StatusOK {
		t.Fatalf("listing links: %d", code)
	}
	return l
}

// audited reports whether the downstream's audit log gets an event of
// the action on target within a few seconds (the store sink batches).
func (f *oidcFed) audited(t *testing.T, action, target string) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var l struct {
			Items []struct {
				Target  string `json:"target"`
				Outcome string `json:"outcome"`
			} `json:"items"`
		}
		f.down.Admin(http.MethodGet, "/audit?action="+url.QueryEscape(action), nil, &l)
		for _, e := range l.Items {
			if e.Target == target && e.Outcome == "success" {
				return true
			}
		}
	}
	return false
}

func (f *oidcFed) upstreamSubject(t *testing.T, username string) string {
	t.Helper()
	var l userList
	f.up.Admin(http.MethodGet, "/users?username="+url.QueryEscape(username), nil, &l)
	if len(l.Items) != 1 {
		t.Fatalf("upstream user %s not found", username)
	}
	return l.Items[0].ID
}

func TestOIDCFederation(t *testing.T) {
	f := setupOIDC(t)

	t.Run("first login provisions the user just in time", func(t *testing.T) {
		if _, ok := f.localUser(t, "alice"); ok {
			t.Fatal("alice exists downstream before her first login")
		}
		sub, claims := f.login(t, "app-corp", "alice")
		id, ok := f.localUser(t, "alice")
		if !ok || id != sub {
			t.Fatalf("downstream sub %q, local alice %q (found %v)", sub, id, ok)
		}
		if claims["email"] != "alice@up.example" {
			t.Errorf("downstream email claim %v", claims["email"])
		}
		var l userList
		f.down.Admin(http.MethodGet, "/users?username=alice", nil, &l)
		if u := l.Items[0]; u.Email != "alice@up.example" || !u.EmailVerified || u.GivenName != "Alice" {
			t.Errorf("provisioned user %+v", u)
		}
		links := f.links(t, id)
		if len(links.Items) != 1 || links.Items[0].IDP != "corp" || links.Items[0].Subject != f.upstreamSubject(t, "alice") {
			t.Fatalf("links %+v", links)
		}

		for _, action := range []string{"user.provision", "user.link"} {
			if !f.audited(t, action, "user:"+id) {
				t.Errorf("no %s audit event for alice", action)
			}
		}

		// The second login reuses the link: same user, nobody new.
		sub2, _ := f.login(t, "app-corp", "alice")
		if sub2 != sub {
			t.Fatalf("second login signed in %q, want %q", sub2, sub)
		}
		var all userList
		f.down.Admin(http.MethodGet, "/users?email=alice@up.example", nil, &all)
		if len(all.Items) != 1 {
			t.Fatalf("%d users with alice's email after two logins", len(all.Items))
		}
	})

	t.Run("the login page offers the provider under its label", func(t *testing.T) {
		b := newBrowser(t)
		c := f.app("app-default")
		p := b.Get(c.AuthCodeURL("rp-state-0123456789", oidc.Nonce("rp-nonce-0123456789"), oauth2.S256ChallengeOption("rp-verifier-"+strings.Repeat("v", 40))), appRedirect)
		m := regexp.MustCompile(`<a href="([^"]*option=corp)">Corporate sign-in</a>`).FindStringSubmatch(p.Body)
		if p.Status != http.StatusOK || m == nil {
			t.Fatalf("want the password form offering Corporate sign-in, got %s\n%s", p, p.Body)
		}
		p = b.Get(f.down.URL+html.UnescapeString(m[1]), appRedirect)
		p = signIn(t, b, p, "alice", alicePass, appRedirect)
		sub, _ := f.redeem(t, "app-default", p)
		if alice, _ := f.localUser(t, "alice"); sub != alice {
			t.Fatalf("signed in %q, want alice %q", sub, alice)
		}
	})

	t.Run("link_only refuses an unlinked identity", func(t *testing.T) {
		b := newBrowser(t)
		p := signIn(t, b, f.start(t, b, "app-corp-link"), "bob", alicePass, appRedirect)
		wantRefusal(t, p, http.StatusForbidden, sentNoAccount)
		if _, ok := f.localUser(t, "bob"); ok {
			t.Fatal("link_only created bob")
		}
	})

	t.Run("off refuses an unlinked identity, then an admin links it", func(t *testing.T) {
		b := newBrowser(t)
		p := signIn(t, b, f.start(t, b, "app-corp-off"), "carol", alicePass, appRedirect)
		wantRefusal(t, p, http.StatusForbidden, sentNoAccount)

		carol, _ := f.localUser(t, "carol")
		if code := f.down.Admin(http.MethodPost, "/users/"+carol+"/links", map[string]any{
			"idp": "corp-off", "subject": f.upstreamSubject(t, "carol"),
		}, nil); code != http.StatusCreated {
			t.Fatalf("admin link: %d", code)
		}
		if sub, _ := f.login(t, "app-corp-off", "carol"); sub != carol {
			t.Fatalf("after the admin's link: signed in %q, want carol %q", sub, carol)
		}
		if code := f.down.Admin(http.MethodDelete, "/users/"+carol+"/links/corp-off?subject="+url.QueryEscape(f.upstreamSubject(t, "carol")), nil, nil); code != http.StatusNoContent {
			t.Fatalf("admin unlink: %d", code)
		}
		b = newBrowser(t)
		p = signIn(t, b, f.start(t, b, "app-corp-off"), "carol", alicePass, appRedirect)
		wantRefusal(t, p, http.StatusForbidden, sentNoAccount)
	})

	t.Run("link_by_email links a verified email only", func(t *testing.T) {
		carol, _ := f.localUser(t, "carol")
		if sub, _ := f.login(t, "app-corp-email", "carol"); sub != carol {
			t.Fatalf("signed in %q, want the local carol %q", sub, carol)
		}
		if l := f.links(t, carol); len(l.Items) != 1 || l.Items[0].IDP != "corp-email" {
			t.Fatalf("carol's links %+v", l)
		}
		// The upstream does not vouch for erin@example.com.
		b := newBrowser(t)
		p := signIn(t, b, f.start(t, b, "app-corp-email"), "carol-unverified", alicePass, appRedirect)
		wantRefusal(t, p, http.StatusForbidden, sentNoAccount)
	})

	t.Run("a signed-in user adds a federated identity", func(t *testing.T) {
		dave, _ := f.localUser(t, "dave")
		b := newBrowser(t)
		c := f.app("app-step2")
		p := b.Get(c.AuthCodeURL("rp-state-0123456789", oidc.Nonce("rp-nonce-0123456789"), oauth2.S256ChallengeOption("rp-verifier-"+strings.Repeat("v", 40))), appRedirect)
		p = signIn(t, b, p, "dave", localPass, appRedirect) // step 1, downstream
		p = signIn(t, b, p, "dave-at-work", alicePass, appRedirect)
		if sub, _ := f.redeem(t, "app-step2", p); sub != dave {
			t.Fatalf("signed in %q, want dave %q", sub, dave)
		}
		if l := f.links(t, dave); len(l.Items) != 1 || l.Items[0].IDP != "corp-link" || l.Items[0].Email != "dave@work.example" {
			t.Fatalf("dave's links %+v", l)
		}
		// From now on the work identity alone signs dave in.
		if sub, _ := f.login(t, "app-corp-link", "dave-at-work"); sub != dave {
			t.Fatalf("signed in %q with the linked identity, want dave %q", sub, dave)
		}
	})

	t.Run("the attribute step releases the identity provider's claims", func(t *testing.T) {
		// Needs dave's link to dave-at-work (the test above). dave has
		// no email here; upstream, dave-at-work has dave@work.example.
		dave, _ := f.localUser(t, "dave")
		twoSteps := func(app string) (string, map[string]any, *oauth2.Token) {
			t.Helper()
			b := newBrowser(t)
			c := f.app(app)
			p := b.Get(c.AuthCodeURL("rp-state-0123456789", oidc.Nonce("rp-nonce-0123456789"), oauth2.S256ChallengeOption("rp-verifier-"+strings.Repeat("v", 40))), appRedirect)
			p = signIn(t, b, p, "dave", localPass, appRedirect)
			p = signIn(t, b, p, "dave-at-work", alicePass, appRedirect)
			return f.redeemToken(t, app, p)
		}
		// The subject step is the attribute step by default: the local
		// account's claims.
		sub, claims, _ := twoSteps("app-step2")
		if sub != dave || claims["email"] != nil || claims["preferred_username"] != "dave" {
			t.Fatalf("password then corp-link: sub %q (dave %q), claims %v", sub, dave, claims)
		}
		// With the federated step as the attribute step, the claims the
		// upstream asserted, in the ID token and at UserInfo alike; the
		// subject stays the local account.
		sub, claims, tok := twoSteps("app-step2-attrs")
		if sub != dave || claims["email"] != "dave@work.example" || claims["email_verified"] != true || claims["preferred_username"] != "dave" {
			t.Fatalf("corp-link as the attribute step: sub %q (dave %q), claims %v", sub, dave, claims)
		}
		prov, err := oidc.NewProvider(context.Background(), f.down.URL)
		if err != nil {
			t.Fatal(err)
		}
		ui, err := prov.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if ui.Subject != dave || ui.Email != "dave@work.example" || !ui.EmailVerified {
			t.Errorf("userinfo %+v", ui)
		}
		// The local account did not change: another login through the
		// local step alone still releases it as it is.
		var l userList
		f.down.Admin(http.MethodGet, "/users?username=dave", nil, &l)
		if len(l.Items) != 1 || l.Items[0].Email != "" {
			t.Errorf("local dave after the logins: %+v", l.Items)
		}
	})

	t.Run("a federated login releases what the provider asserts now", func(t *testing.T) {
		// alice was provisioned with given_name Alice. Upstream she is
		// renamed; the downstream account keeps the old name, but the
		// login (whose only step is federated, so its attribute step)
		// releases the new one.
		upAlice := f.upstreamSubject(t, "alice")
		if code := f.up.Admin(http.MethodPatch, "/users/"+upAlice, map[string]any{"given_name": "Alicia"}, &map[string]any{}); code != http.StatusOK {
			t.Fatalf("renaming alice upstream: %d", code)
		}
		defer f.up.Admin(http.MethodPatch, "/users/"+upAlice, map[string]any{"given_name": "Alice"}, &map[string]any{})
		sub, claims := f.login(t, "app-corp", "alice")
		if alice, _ := f.localUser(t, "alice"); sub != alice {
			t.Fatalf("signed in %q, want alice %q", sub, alice)
		}
		if claims["given_name"] != "Alicia" || claims["family_name"] != "Liddell" || claims["email"] != "alice@up.example" {
			t.Errorf("claims %v, want the upstream's given_name Alicia", claims)
		}
		var l userList
		f.down.Admin(http.MethodGet, "/users?username=alice", nil, &l)
		if len(l.Items) != 1 || l.Items[0].GivenName != "Alice" {
			t.Errorf("local alice %+v", l.Items)
		}
	})

	t.Run("admin API checks links", func(t *testing.T) {
		dave, _ := f.localUser(t, "dave")
		alice, _ := f.localUser(t, "alice")
		for _, tc := range []struct {
			name   string
			user   string
			body   map[string]any
			status int
		}{
			{"no subject", dave, map[string]any{"idp": "corp"}, http.StatusBadRequest},
			{"no idp", dave, map[string]any{"subject": "x"}, http.StatusBadRequest},
			{"control characters", dave, map[string]any{"idp": "corp", "subject": "a\nb"}, http.StatusBadRequest},
			{"oversized subject", dave, map[string]any{"idp": "corp", "subject": strings.Repeat("s", 513)}, http.StatusBadRequest},
			{"unknown field", dave, map[string]any{"idp": "corp", "subject": "x", "admin": true}, http.StatusBadRequest},
			{"unknown user", "01a20000-0000-7000-8000-000000000000", map[string]any{"idp": "corp", "subject": "x"}, http.StatusNotFound},
			{"identity linked to another user", dave, map[string]any{"idp": "corp", "subject": f.upstreamSubject(t, "alice")}, http.StatusConflict},
		} {
			if code := f.down.Admin(http.MethodPost, "/users/"+tc.user+"/links", tc.body, &map[string]any{}); code != tc.status {
				t.Errorf("%s: %d, want %d", tc.name, code, tc.status)
			}
		}
		// Another user's link cannot be removed through dave.
		if code := f.down.Admin(http.MethodDelete, "/users/"+dave+"/links/corp?subject="+url.QueryEscape(f.upstreamSubject(t, "alice")), nil, &map[string]any{}); code != http.StatusNotFound {
			t.Errorf("deleting alice's link through dave: %d", code)
		}
		if code := f.down.Admin(http.MethodDelete, "/users/"+dave+"/links/corp", nil, &map[string]any{}); code != http.StatusBadRequest {
			t.Errorf("deleting without a subject: %d", code)
		}
		if l := f.links(t, alice); len(l.Items) != 1 {
			t.Errorf("alice's links after the refusals: %+v", l)
		}
	})

	callback := f.down.URL + "/login/federated/corp/callback"
	// toCallback signs bob in upstream and stops at the downstream
	// callback, returning its URL.
	toCallback := func(t *testing.T, b *browser) string {
		t.Helper()
		p := signIn(t, b, f.start(t, b, "app-corp"), "bob", alicePass, callback)
		if !strings.HasPrefix(p.Location, callback) {
			t.Fatalf("want a redirect to the callback, got %s\n%s", p, p.Body)
		}
		return p.Location
	}

	t.Run("tampered state", func(t *testing.T) {
		b := newBrowser(t)
		u, _ := url.Parse(toCallback(t, b))
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		wantRefusal(t, b.Get(u.String(), appRedirect), http.StatusBadRequest, sentExpired)
		q.Del("state")
		u.RawQuery = q.Encode()
		wantRefusal(t, b.Get(u.String(), appRedirect), http.StatusBadRequest, sentExpired)
	})

	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		cb := toCallback(t, b)
		if p := b.Get(cb, appRedirect); !strings.HasPrefix(p.Location, appRedirect) {
			t.Fatalf("first delivery: %s\n%s", p, p.Body)
		}
		wantRefusal(t, b.Get(cb, appRedirect), http.StatusBadRequest, sentExpired)
		// Nor in another browser.
		wantRefusal(t, newBrowser(t).Get(cb, appRedirect), http.StatusBadRequest, sentExpired)
	})

	t.Run("answer delivered to another browser", func(t *testing.T) {
		victim := newBrowser(t)
		cb := toCallback(t, newBrowser(t))
		p := victim.Get(cb, appRedirect)
		if strings.HasPrefix(p.Location, appRedirect) || p.Status == http.StatusOK || p.Status >= 500 {
			t.Fatalf("another browser finished the login: %s\n%s", p, p.Body)
		}
	})

	t.Run("upstream error", func(t *testing.T) {
		b := newBrowser(t)
		u, _ := url.Parse(toCallback(t, b))
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		u.RawQuery = q.Encode()
		wantRefusal(t, b.Get(u.String(), appRedirect), http.StatusUnauthorized, sentCanceled)
	})

	t.Run("mix-up: iss of another provider", func(t *testing.T) {
		b := newBrowser(t)
		u, _ := url.Parse(toCallback(t, b))
		q := u.Query()
		q.Set("iss", "https://evil.example")
		u.RawQuery = q.Encode()
		wantRefusal(t, b.Get(u.String(), appRedirect), http.StatusBadRequest, sentUnverified)
	})

	t.Run("forged code", func(t *testing.T) {
		b := newBrowser(t)
		u, _ := url.Parse(toCallback(t, b))
		q := u.Query()
		q.Set("code", "forged-"+q.Get("code"))
		u.RawQuery = q.Encode()
		wantRefusal(t, b.Get(u.String(), appRedirect), http.StatusBadRequest, sentUnverified)
	})

	t.Run("unknown instance", func(t *testing.T) {
		p := newBrowser(t).Get(f.down.URL+"/login/federated/nope/callback?state=x&code=y", "")
		if p.Status != http.StatusNotFound {
			t.Fatalf("unknown instance: %s", p)
		}
	})
}

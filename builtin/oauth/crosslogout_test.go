package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/store"
)

// TestCrossProtocolLogout: a session another protocol ended
// (LogoutSession, as the SAML IdP calls it) sends the session's RP its
// logout token and returns its front-channel URI, once; and end_session
// asks the OnSessionEnd hook for more iframes, which its signed-out page
// loads.
func TestCrossProtocolLogout(t *testing.T) {
	tokens := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			tokens <- r.PostForm.Get("logout_token")
		}
	}))
	t.Cleanup(rp.Close)
	e := newEnv(t, func(d *oauth.Deps) { d.AllowPrivateNetworks = true })
	ctx := context.Background()
	user, err := e.st.CreateUser(ctx, store.User{TenantID: e.def.ID, Username: "alice", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateClient(ctx, store.Client{
		TenantID: e.def.ID, ClientID: "xp-app", Public: true, FirstParty: true, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, RedirectURIs: []string{rp.URL + "/cb"}, Enabled: true,
		Settings: map[string]any{oauth.ClientSettingBackchannelLogoutURI: rp.URL + "/bc", oauth.ClientSettingFrontchannelLogoutURI: rp.URL + "/fc"},
	}); err != nil {
		t.Fatal(err)
	}
	noRedirects := &http.Client{Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string, c *http.Cookie) response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.AddCookie(c)
		return doWith(t, noRedirects, req)
	}
	cfg := &oauth2.Config{ClientID: "xp-app", RedirectURL: rp.URL + "/cb", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: e.base + oauth.PathAuthorize, TokenURL: e.base + oauth.PathToken, AuthStyle: oauth2.AuthStyleInParams}}
	code := func(c *http.Cookie) string {
		verifier := oauth2.GenerateVerifier()
		r := get(cfg.AuthCodeURL("state-xp-123456", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-xp-123456")), c)
		loc, err := url.Parse(r.header.Get("Location"))
		if err != nil || loc.Query().Get("code") == "" {
			t.Fatalf("authorize: %d %s %s", r.status, r.header.Get("Location"), r.body)
		}
		tok, err := cfg.Exchange(e.ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		idToken, _ := tok.Extra("id_token").(string)
		return idToken
	}

	sess, cookie := e.session(t, user.ID, "xp-secret-part-1")
	code(cookie)
	frames := e.p.LogoutSession(ctx, store.DefaultTenantName, &sess)
	if len(frames) != 1 || frames[0] != rp.URL+"/fc" {
		t.Fatalf("frames = %v", frames)
	}
	select {
	case raw := <-tokens:
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil || claims["sid"] != sess.ID || claims["aud"] != "xp-app" {
			t.Errorf("logout token %v: %v", claims, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no logout token delivered")
	}
	if again := e.p.LogoutSession(ctx, store.DefaultTenantName, &sess); len(again) != 0 {
		t.Errorf("a second LogoutSession notified again: %v", again)
	}

	hooked := make(chan string, 4)
	e.p.OnSessionEnd(func(_ *fiber.Ctx, tenant string, s *store.Session) []string {
		hooked <- tenant + "/" + s.ID
		return []string{"https://sp.example/saml2/slo/notify?k=abc"}
	})
	sess2, cookie2 := e.session(t, user.ID, "xp-secret-part-2")
	idToken := code(cookie2)
	r := get(e.base+oauth.PathEndSession+"?"+url.Values{"id_token_hint": {idToken}}.Encode(), cookie2)
	body := string(r.body)
	if r.status != http.StatusOK || !strings.Contains(body, `src="https://sp.example/saml2/slo/notify?k=abc"`) || !strings.Contains(body, `src="`+rp.URL+`/fc"`) {
		t.Fatalf("signed-out page: %d %s", r.status, body)
	}
	if got := <-hooked; got != store.DefaultTenantName+"/"+sess2.ID || len(hooked) != 0 {
		t.Errorf("hook called for %s (%d more)", got, len(hooked))
	}
	select {
	case <-tokens:
	case <-time.After(30 * time.Second):
		t.Error("end_session delivered no logout token")
	}
}

package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/store"
)

// session makes an SSO session of userID in the store, as the login pages
// would, and returns it with its cookie; part is the cookie's secret part.
func (e *env) session(t testing.TB, userID, part string) (store.Session, *http.Cookie) {
	t.Helper()
	now := time.Now().UTC()
	sum := sha256.Sum256([]byte(part))
	sess, err := e.st.CreateSession(context.Background(), store.Session{
		TenantID: e.def.ID, UserID: userID, AuthTime: now, ACR: "1", AMR: []string{"pwd"},
		Data: map[string]any{"secret_sha256": hex.EncodeToString(sum[:])}, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sess, &http.Cookie{Name: "latch_session", Value: sess.ID + "." + part, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// TestBackchannelLogout signs a user in (a session made in the store, as
// the login pages would), gets a code and tokens for a client with a
// backchannel_logout_uri, ends the session at the end_session endpoint,
// and checks the logout token the client's server receives after one
// failed attempt.
func TestBackchannelLogout(t *testing.T) {
	attempts := atomic.Int32{}
	tokens := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tokens <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(rp.Close)

	e := newEnv(t, func(d *oauth.Deps) { d.AllowPrivateNetworks = true })
	ctx := context.Background()
	user, err := e.st.CreateUser(ctx, store.User{TenantID: e.def.ID, Username: "alice", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateClient(ctx, store.Client{
		TenantID: e.def.ID, ClientID: "bc-app", Public: true, FirstParty: true, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, RedirectURIs: []string{codeRedirect}, Enabled: true,
		Settings: map[string]any{oauth.ClientSettingBackchannelLogoutURI: rp.URL + "/backchannel"},
	}); err != nil {
		t.Fatal(err)
	}
	sess, cookie := e.session(t, user.ID, "session-secret-part")
	noRedirects := &http.Client{Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.AddCookie(cookie)
		return doWith(t, noRedirects, req)
	}

	cfg := &oauth2.Config{ClientID: "bc-app", RedirectURL: codeRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: e.base + oauth.PathAuthorize, TokenURL: e.base + oauth.PathToken, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	r := get(cfg.AuthCodeURL("state-bc-123456", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-bc-123456")))
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s %s", r.status, r.header.Get("Location"), r.body)
	}
	tok, err := cfg.Exchange(e.ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if r := get(e.base + oauth.PathEndSession + "?" + url.Values{"id_token_hint": {idToken}}.Encode()); r.status != http.StatusOK {
		t.Fatalf("end session: %d %s", r.status, r.body)
	}

	var raw string
	select {
	case raw = <-tokens:
	case <-time.After(30 * time.Second):
		t.Fatalf("no logout token delivered (%d attempts)", attempts.Load())
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		t.Errorf("typ = %q", typ)
	}
	set, err := e.keys.PublicJWKS(ctx, e.def.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Protected.KeyID)
	if len(keys) == 0 {
		t.Fatal("the logout token's key is not published")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	events, _ := c["events"].(map[string]any)
	if c["iss"] != e.base || c["aud"] != "bc-app" || c["sid"] != sess.ID || c["sub"] != user.ID || events["http://schemas.openid.net/event/backchannel-logout"] == nil || c["nonce"] != nil || c["jti"] == nil {
		t.Errorf("logout token claims: %v", c)
	}
	if attempts.Load() < 2 {
		t.Errorf("attempts = %d, want a retry after the 503", attempts.Load())
	}
}

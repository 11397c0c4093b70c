package oidc_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestFrontChannelLogout runs the OP side of OpenID Connect Front-Channel
// Logout 1.0 with a plain HTTP client: discovery says it is supported, and
// ending a session renders the signed-out page with one iframe per
// relying party that registered a frontchannel_logout_uri, carrying iss
// and sid (the ID token's) when the client asked for them.
func TestFrontChannelLogout(t *testing.T) {
	o := setup(t)
	const (
		fcRedirect = "http://127.0.0.1:9/fc/callback"
		fcLogout   = "http://127.0.0.1:9/fc/logout"
		fcBye      = "http://127.0.0.1:9/fc/bye"
	)
	for _, c := range []map[string]any{
		{
			"client_id": "fc-app", "name": "Front-channel App", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
			"redirect_uris": []string{fcRedirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
			"settings": map[string]any{
				"frontchannel_logout_uri": fcLogout, "frontchannel_logout_session_required": true,
				"post_logout_redirect_uris": []string{fcBye},
			},
		},
		{
			// A logout URI on another origin than the client's redirect
			// URIs is never framed.
			"client_id": "fc-stray", "name": "Stray", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
			"redirect_uris": []string{"http://127.0.0.1:9/stray/callback"}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
			"settings": map[string]any{"frontchannel_logout_uri": "http://127.0.0.2:9/stray/logout"},
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating %v: %d", c["client_id"], code)
		}
	}

	t.Run("Config/FrontChannelDiscovery", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		if m["frontchannel_logout_supported"] != true || m["frontchannel_logout_session_supported"] != true {
			t.Errorf("discovery: frontchannel_logout_supported %v, session %v", m["frontchannel_logout_supported"], m["frontchannel_logout_session_supported"])
		}
	})

	t.Run("FrontChannel/IframesWithIssAndSid", func(t *testing.T) {
		b := newBrowser(t)
		cfg := &oauth2.Config{ClientID: "fc-app", RedirectURL: fcRedirect, Scopes: []string{oidc.ScopeOpenID},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
		q, verifier := codeFlow(t, b, cfg, "nonce-fc-0001")
		stray := &oauth2.Config{ClientID: "fc-stray", RedirectURL: "http://127.0.0.1:9/stray/callback", Scopes: []string{oidc.ScopeOpenID}, Endpoint: cfg.Endpoint}
		codeFlow(t, b, stray, "nonce-fc-0002")
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: "fc-app"}).Verify(ctx(), rawID)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			SID string `json:"sid"`
		}
		if err := idt.Claims(&claims); err != nil || claims.SID == "" {
			t.Fatalf("ID token sid: %v %q", err, claims.SID)
		}

		req, _ := http.NewRequest(http.MethodGet, o.URL+"/oauth2/logout?"+url.Values{
			"id_token_hint": {rawID}, "post_logout_redirect_uri": {fcBye}, "state": {"fc-state"},
		}.Encode(), nil)
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		p := b.Do(req) // the session is gone now: the same request again is a plain redirect
		if p.Status != http.StatusSeeOther {
			t.Errorf("second logout: %s", p)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("logout page: %d", resp.StatusCode)
		}
		if refresh := resp.Header.Get("Refresh"); !strings.Contains(refresh, "url="+fcBye+"?state=fc-state") {
			t.Errorf("Refresh header %q, want the post-logout redirect with state", refresh)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src http://127.0.0.1:9") || strings.Contains(csp, "127.0.0.2") {
			t.Errorf("CSP %q", csp)
		}
	})

	t.Run("FrontChannel/PageBody", func(t *testing.T) {
		b := newBrowser(t)
		cfg := &oauth2.Config{ClientID: "fc-app", RedirectURL: fcRedirect, Scopes: []string{oidc.ScopeOpenID},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
		q, verifier := codeFlow(t, b, cfg, "nonce-fc-0003")
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		p := b.Get(o.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {rawID}}.Encode(), "")
		if p.Status != http.StatusOK {
			t.Fatalf("logout page: %s", p)
		}
		frames := iframeSources(p.Body)
		if len(frames) != 1 {
			t.Fatalf("iframes %v, want exactly fc-app's\n%s", frames, p.Body)
		}
		u, err := url.Parse(frames[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != fcLogout {
			t.Errorf("iframe %s, want %s", got, fcLogout)
		}
		if u.Query().Get("iss") != o.URL || u.Query().Get("sid") == "" {
			t.Errorf("iframe query %v, want iss %s and a sid", u.Query(), o.URL)
		}
	})
}

// iframeSources returns the src of every iframe in body.
func iframeSources(body string) []string {
	var out []string
	for rest := body; ; {
		i := strings.Index(rest, "<iframe src=\"")
		if i < 0 {
			return out
		}
		rest = rest[i+len("<iframe src=\""):]
		j := strings.IndexByte(rest, '"')
		if j < 0 {
			return out
		}
		out = append(out, strings.ReplaceAll(rest[:j], "&amp;", "&"))
		rest = rest[j:]
	}
}

// TestSessionManagement runs OpenID Connect Session Management 1.0 in a
// real headless Chromium, with a relying party on another origin: the
// authorization response carries session_state; the RP's page frames the
// OP's check_session_iframe and asks it by postMessage, and it answers
// "unchanged"; after RP-initiated logout (whose signed-out page loads the
// RP's front-channel logout URI with iss and sid) it answers "changed".
func TestSessionManagement(t *testing.T) {
	cctx := newChrome(t)
	o := setup(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rpBase := "http://" + ln.Addr().String()
	callbacks := make(chan url.Values, 4)
	fcLogouts := make(chan url.Values, 4)
	rp := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/callback":
			callbacks <- r.URL.Query()
			_, _ = w.Write([]byte("<!DOCTYPE html><title>RP</title><p id=done>signed in</p>"))
		case "/fclogout":
			fcLogouts <- r.URL.Query()
			_, _ = w.Write([]byte("<!DOCTYPE html><title>RP logout</title>"))
		case "/bye":
			_, _ = w.Write([]byte("<!DOCTYPE html><title>RP</title><p id=bye>bye</p>"))
		case "/rp":
			//nolint:gosec // G705: the test's own relying party page; the values are quoted.
			fmt.Fprintf(w, `<!DOCTYPE html><title>RP check</title>
<iframe id="op" src="%[1]s/oauth2/check_session"></iframe>
<script>
var op = document.getElementById("op");
window.addEventListener("message", function (e) {
  if (e.origin !== %[2]q) { return; }
  var p = document.createElement("p"); p.id = "r-" + e.data; p.textContent = e.data; document.body.appendChild(p);
});
op.addEventListener("load", function () { op.contentWindow.postMessage(%[3]q, %[2]q); });
</script>`, o.URL, o.URL, "sm-app "+r.URL.Query().Get("ss"))
		default:
			http.NotFound(w, r)
		}
	})}
	go func() { _ = rp.Serve(ln) }()
	t.Cleanup(func() { _ = rp.Close() })
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "sm-app", "name": "Session App", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
		"redirect_uris": []string{rpBase + "/callback"}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
		"settings": map[string]any{
			"frontchannel_logout_uri": rpBase + "/fclogout", "frontchannel_logout_session_required": true,
			"post_logout_redirect_uris": []string{rpBase + "/bye"},
		},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	var m map[string]any
	if err := o.provider.Claims(&m); err != nil {
		t.Fatal(err)
	}
	if m["check_session_iframe"] != o.URL+"/oauth2/check_session" {
		t.Fatalf("discovery check_session_iframe = %v", m["check_session_iframe"])
	}
	cfg := &oauth2.Config{ClientID: "sm-app", RedirectURL: rpBase + "/callback", Scopes: []string{oidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	if err := chromedp.Do(cctx,
		chromedp.Navigate(cfg.AuthCodeURL("sm-state-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("sm-nonce-01"))),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#done`),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	q := <-callbacks
	ss := q.Get("session_state")
	if q.Get("code") == "" || !strings.Contains(ss, ".") {
		t.Fatalf("callback %v: want a code and a session_state", q)
	}
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)

	ask := func(want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(cctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx,
			chromedp.Navigate(rpBase+"/rp?"+url.Values{"ss": {ss}}.Encode()),
			chromedp.WaitVisible(`#r-`+want),
		); err != nil {
			body, _ := chromedp.Run(cctx, chromedp.OuterHTML("body"))
			t.Fatalf("waiting for the iframe to answer %q: %v\n%s", want, err, body)
		}
	}
	ask("unchanged")

	if err := chromedp.Do(cctx,
		chromedp.Navigate(o.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {rpBase + "/bye"}}.Encode()),
		chromedp.WaitVisible(`#bye`),
	); err != nil {
		t.Fatalf("logging out: %v", err)
	}
	select {
	case fq := <-fcLogouts:
		if fq.Get("iss") != o.URL || fq.Get("sid") == "" {
			t.Errorf("front-channel logout query %v", fq)
		}
	case <-time.After(10 * time.Second):
		t.Error("the signed-out page did not load the RP's frontchannel_logout_uri")
	}
	ask("changed")
}

// TestThemeDir starts the server with ui.theme_dir (LATCH_UI_THEME_DIR)
// naming a folder with its own layout template and stylesheet: the login
// page and the stylesheet are the theme's.
func TestThemeDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o750); err != nil {
		t.Fatal(err)
	}
	layout := `{{define "layout"}}<!DOCTYPE html><html lang="{{.Lang}}"><head><title>{{.Title}} · Acme</title>` +
		`<link rel="stylesheet" href="{{.AssetBase}}/latch.css"></head><body class="acme-theme"><h1>{{.Title}}</h1>` +
		`{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}{{template "body" .}}</body></html>{{end}}`
	if err := os.WriteFile(filepath.Join(dir, "templates", "layout.html"), []byte(layout), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latch.css"), []byte("body.acme-theme{color:#123456}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := live.Start(t, "LATCH_UI_THEME_DIR="+dir)
	b := newBrowser(t)
	p := b.Get(s.URL+"/login?return_to=%2F", "")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `class="acme-theme"`) || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("login page with the theme's layout: %s\n%s", p, p.Body)
	}
	css := b.Get(s.URL+"/ui/latch.css", "")
	if !strings.Contains(css.Body, "#123456") {
		t.Errorf("stylesheet: %q", css.Body)
	}
}

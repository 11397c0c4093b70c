package oidc_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
)

// roleScript asks for a second factor only from members of the admin
// role, in the shape of WSO2's role-based template (written for Latch).
const roleScript = `
var adminRoles = ['admin'];
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            if (hasAnyOfTheRoles(user, adminRoles)) {
                Log.info('second factor for ' + user.username);
                executeStep(2);
            }
        }
    });
};
`

// keyPattern finds the TOTP key the enrolment page shows for typing in.
var keyPattern = regexp.MustCompile(`enter the key ([A-Z2-7]{16,})`)

// TestAdaptiveFlows runs applications with their own login flows: a
// script that asks admins (only) for TOTP, with enrolment on first use; a
// script that never ends; and one that throws. The server stays healthy
// and other logins go on.
func TestAdaptiveFlows(t *testing.T) {
	o := setup(t)
	var role struct{ ID string }
	if code := o.Admin(http.MethodPost, "/roles", map[string]any{"name": "admin"}, &role); code != http.StatusCreated {
		t.Fatalf("creating role: %d", code)
	}
	var bob struct{ ID string }
	if code := o.Admin(http.MethodPost, "/users", map[string]any{"username": "bob", "password": "bob-password-42", "enabled": true}, &bob); code != http.StatusCreated {
		t.Fatalf("creating bob: %d", code)
	}
	if code := o.Admin(http.MethodPut, "/roles/"+role.ID+"/users/"+bob.ID, nil, nil); code >= 300 {
		t.Fatalf("assigning admin to bob: %d", code)
	}
	const redirect = "http://127.0.0.1:9/mfa/callback"
	for id, auth := range map[string]map[string]any{
		"mfa-app":   {"steps": []any{map[string]any{"options": []string{"BasicAuthenticator"}}, map[string]any{"options": []string{"totp"}}}, "script": roleScript},
		"loop-app":  {"steps": []any{map[string]any{"options": []string{"password"}}}, "script": "var onLoginRequest = function (context) { while (true) {} };"},
		"throw-app": {"steps": []any{map[string]any{"options": []string{"password"}}}, "script": "var onLoginRequest = function (context) { throw new Error('boom'); };"},
	} {
		if code := o.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": id, "client_secret": webSecret, "name": id, "first_party": true,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"},
			"scopes": []string{"openid"}, "token_endpoint_auth_method": "client_secret_basic",
			"settings": map[string]any{"authentication": auth}, "enabled": true,
		}, nil); code != http.StatusCreated {
			t.Fatalf("creating %s: %d", id, code)
		}
	}
	cfg := func(id string) *oauth2.Config {
		return &oauth2.Config{ClientID: id, ClientSecret: webSecret, RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	}
	login := func(b *browser, c *oauth2.Config, user, pass string) (page, string) {
		v := oauth2.GenerateVerifier()
		p := b.Get(c.AuthCodeURL("state-adaptive-1", oauth2.S256ChallengeOption(v)), redirect)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) {
			t.Fatalf("%s: want the login page, got %s\n%s", c.ClientID, p, p.Body)
		}
		return b.Submit(p, map[string]string{"username": user, "password": pass}, redirect), v
	}
	idClaims := func(c *oauth2.Config, p page, v string) (amr []string, acr string) {
		t.Helper()
		tok, err := c.Exchange(context.Background(), p.Query(t, redirect).Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: c.ClientID}).Verify(context.Background(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var cl struct {
			AMR []string `json:"amr"`
			ACR string   `json:"acr"`
		}
		if err := idt.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		return cl.AMR, cl.ACR
	}

	t.Run("RoleBasedSecondFactor", func(t *testing.T) {
		// alice is not an admin: the password is enough.
		p, v := login(newBrowser(t), cfg("mfa-app"), "alice", alicePass)
		if amr, acr := idClaims(cfg("mfa-app"), p, v); strings.Join(amr, " ") != "pwd" || acr != "1" {
			t.Errorf("alice: amr %v acr %q", amr, acr)
		}
		// bob is: enrolment on first use, then a code.
		b := newBrowser(t)
		p, v = login(b, cfg("mfa-app"), "bob", "bob-password-42")
		m := keyPattern.FindStringSubmatch(p.Body)
		if p.Status != http.StatusOK || m == nil || !strings.Contains(p.Body, `src="data:image/png;base64,`) {
			t.Fatalf("bob: want the TOTP enrolment page, got %s\n%s", p, p.Body)
		}
		code, err := totp.GenerateCodeCustom(m[1], time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		wrong := b.Submit(p, map[string]string{"code": "000000"}, redirect)
		if wrong.Status != http.StatusOK || !strings.Contains(wrong.Body, `role="alert"`) {
			t.Fatalf("wrong code: %s", wrong)
		}
		p = b.Submit(wrong, map[string]string{"code": code}, redirect)
		amr, acr := idClaims(cfg("mfa-app"), p, v)
		if !containsAll(amr, "pwd", "otp") || acr != "2" {
			t.Errorf("bob: amr %v acr %q", amr, acr)
		}
		// Signed in with two factors, the next login needs nothing.
		p = b.Get(cfg("mfa-app").AuthCodeURL("state-adaptive-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
		if p.Query(t, redirect).Get("code") == "" {
			t.Fatalf("SSO after MFA: %s", p)
		}
	})

	t.Run("TryIt", func(t *testing.T) {
		var res struct {
			Decisions []struct{ Kind string }
			Error     *struct{ Message string }
		}
		code := o.Admin(http.MethodPost, "/adaptive/try-it", map[string]any{
			"script":    roleScript,
			"input":     map[string]any{"steps": []any{map[string]any{"number": 1, "options": []any{map[string]any{"authenticator": "password"}}}, map[string]any{"number": 2, "options": []any{map[string]any{"authenticator": "totp"}}}}},
			"directory": map[string]any{"users": map[string]any{"u1": map[string]any{"id": "u1", "username": "root", "roles": []string{"admin"}}}},
			"outcomes": map[string]any{"steps": map[string]any{
				"1": []any{map[string]any{"success": true, "authenticator": "password", "subject": map[string]any{"id": "u1", "username": "root"}}},
				"2": []any{map[string]any{"success": true, "authenticator": "totp", "subject": map[string]any{"id": "u1", "username": "root"}}},
			}},
		}, &res)
		if code != http.StatusOK || res.Error != nil || len(res.Decisions) != 3 || res.Decisions[1].Kind != "execute_step" || res.Decisions[2].Kind != "complete" {
			t.Fatalf("try-it: %d %+v", code, res)
		}
	})

	t.Run("AccountLockout", func(t *testing.T) {
		var carol struct{ ID string }
		if code := o.Admin(http.MethodPost, "/users", map[string]any{"username": "carol", "password": "carol-password-42", "enabled": true}, &carol); code != http.StatusCreated {
			t.Fatalf("creating carol: %d", code)
		}
		c := o.web()
		b := newBrowser(t)
		p := b.Get(c.AuthCodeURL("state-lockout-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), c.RedirectURL)
		for i := range 5 {
			p = b.Submit(p, map[string]string{"username": "carol", "password": "wrong-guess"}, c.RedirectURL)
			if p.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %s", i+1, p)
			}
		}
		// Locked: even the right password is refused, and says so.
		p = b.Submit(p, map[string]string{"username": "carol", "password": "carol-password-42"}, c.RedirectURL)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "locked") {
			t.Fatalf("locked account: %s\n%s", p, p.Body)
		}
		// An administrator unlocks it.
		if code := o.Admin(http.MethodPatch, "/users/"+carol.ID, map[string]any{"locked_until": "1970-01-01T00:00:00Z"}, nil); code != http.StatusOK {
			t.Fatalf("unlocking: %d", code)
		}
		p = b.Submit(p, map[string]string{"username": "carol", "password": "carol-password-42"}, c.RedirectURL)
		if p.Query(t, c.RedirectURL).Get("code") == "" {
			t.Fatalf("after unlock: %s", p)
		}
	})

	t.Run("EndlessAndThrowingScriptsFailClosed", func(t *testing.T) {
		for _, id := range []string{"loop-app", "throw-app"} {
			b := newBrowser(t)
			v := oauth2.GenerateVerifier()
			start := time.Now()
			p := b.Get(cfg(id).AuthCodeURL("state-adaptive-3", oauth2.S256ChallengeOption(v)), redirect)
			if p.Location != "" || p.Status < 400 || strings.Contains(p.Body, "boom") {
				t.Errorf("%s: want a generic error page, got %s\n%s", id, p, p.Body)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s: took %s", id, d)
			}
		}
		// The server is healthy and other applications log in.
		resp, err := http.Get(o.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz after runaway scripts: %v %v", resp, err)
		}
		_ = resp.Body.Close()
		codeFlow(t, newBrowser(t), o.web(), "nonce-after-scripts")
	})
}

func containsAll(l []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, x := range l {
			found = found || x == w
		}
		if !found {
			return false
		}
	}
	return true
}

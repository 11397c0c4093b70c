package me_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

// suspendedText is the login page's sentence for a suspended account.
const suspendedText = "This account is suspended. Contact your administrator."

// tryLogin signs in as alice through the authorization endpoint and
// returns the page the password form leads to (the redirect to the
// client when the login succeeds).
func (b *browser) tryLogin(base, pw string) live.Page {
	b.t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {"portal"}, "redirect_uri": {redirect}, "scope": {"openid latch:me"},
		"state": {"state-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	p := b.Get(base+"/oauth2/authorize?"+q.Encode(), redirect)
	if !strings.Contains(p.Body, `name="password"`) {
		b.t.Fatalf("no login form: %s\n%s", p, p.Body)
	}
	return b.Submit(p, map[string]string{"username": "alice", "password": pw}, redirect)
}

// latchAdminUsers runs `latch admin users ARGS` against s and returns its
// standard output (with standard error appended on failure).
func latchAdminUsers(t *testing.T, s *live.Server, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(live.Binary(t), append([]string{"admin", "users"}, args...)...)
	cmd.Env = append(os.Environ(), "LATCH_URL="+s.URL, "LATCH_ADMIN_CLIENT_SECRET="+live.AdminSecret)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		out = append(out, ee.Stderr...)
	}
	return out, err
}

// TestSuspendedUserCannotSignIn suspends a signed-in user through the
// admin API of a live server: the user's access token stops working at
// /api/me and the refresh grant answers invalid_grant, a new login with the right password is refused with the
// suspension sentence (a wrong one still gets the usual one), lifting the
// suspension (with `latch admin users unsuspend`) lets the user in, and a
// suspension whose end has passed (`latch admin users suspend --until`)
// lifts itself at the next login.
func TestSuspendedUserCannotSignIn(t *testing.T) {
	s := setup(t)
	var users struct {
		Items []map[string]any `json:"items"`
	}
	if code := s.Admin(http.MethodGet, "/users?username=alice", nil, &users); code != http.StatusOK || len(users.Items) != 1 {
		t.Fatalf("finding alice: %d %v", code, users.Items)
	}
	id := users.Items[0]["id"].(string)
	if code := s.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "refresher", "client_secret": secret, "name": "Refresher", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "offline_access"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating client refresher: %d", code)
	}
	refresh, _ := newBrowser(t).loginTokens(s.URL, "refresher", secret, "openid offline_access", "alice", alicePass)["refresh_token"].(string)
	if refresh == "" {
		t.Fatal("no refresh token")
	}
	b := newBrowser(t)
	tok := b.login(s.URL, "portal", secret, "openid profile latch:me", "alice", alicePass)
	if r := b.call("GET", s.URL+"/api/me", tok, nil); r.status != http.StatusOK {
		t.Fatalf("/api/me before the suspension: %d %s", r.status, r.body)
	}

	var u map[string]any
	if code := s.Admin(http.MethodPost, "/users/"+id+"/suspend", map[string]any{"reason": "fraud review"}, &u); code != http.StatusOK || u["state"] != "suspended" {
		t.Fatalf("suspending: %d %v", code, u)
	}
	if r := b.call("GET", s.URL+"/api/me", tok, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("/api/me with the token of a suspended user: %d %s", r.status, r.body)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("refresher", secret)
	if r := b.do(req); r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("refresh grant of a suspended user: %d %s", r.status, r.body)
	}
	// The SSO session ended too: the same browser meets the login form.
	p := b.tryLogin(s.URL, alicePass)
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, suspendedText) {
		t.Fatalf("login of a suspended user: %s\n%s", p, p.Body)
	}
	if strings.Contains(p.Body, "fraud review") {
		t.Fatal("the login page shows the administrator's reason")
	}
	p = newBrowser(t).tryLogin(s.URL, "wrong-password-42")
	if strings.Contains(p.Body, suspendedText) || strings.HasPrefix(p.Location, redirect) {
		t.Fatalf("a wrong password of a suspended user: %s\n%s", p, p.Body)
	}

	// The command line lifts it.
	if out, err := latchAdminUsers(t, s, "unsuspend", id); err != nil || json.Unmarshal(out, &u) != nil || u["state"] != "enabled" {
		t.Fatalf("latch admin users unsuspend: %v\n%s", err, out)
	}
	tok = newBrowser(t).login(s.URL, "portal", secret, "openid profile latch:me", "alice", alicePass)
	if r := b.call("GET", s.URL+"/api/me", tok, nil); r.status != http.StatusOK {
		t.Fatalf("/api/me after the suspension was lifted: %d %s", r.status, r.body)
	}

	// A suspension ending two seconds from now refuses the login until
	// then and lifts itself at the next login after.
	until := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	if out, err := latchAdminUsers(t, s, "suspend", id, "--reason", "cool-off", "--until", until.Format(time.RFC3339)); err != nil ||
		json.Unmarshal(out, &u) != nil || u["state"] != "suspended" || u["suspended_until"] != until.Format(time.RFC3339) {
		t.Fatalf("latch admin users suspend --until %s: %v\n%s", until, err, out)
	}
	if p := newBrowser(t).tryLogin(s.URL, alicePass); p.Status != http.StatusForbidden || !strings.Contains(p.Body, suspendedText) {
		t.Fatalf("login before the suspension ends: %s\n%s", p, p.Body)
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	if p := newBrowser(t).tryLogin(s.URL, alicePass); !strings.HasPrefix(p.Location, redirect) {
		t.Fatalf("login after the suspension ended: %s\n%s", p, p.Body)
	}
	live.Eventually(t, 10*time.Second, "the audit event of the lifted suspension", func() bool {
		var evs struct {
			Items []map[string]any `json:"items"`
		}
		s.Admin(http.MethodGet, "/audit?action=user.unsuspend&actor=user:"+id, nil, &evs)
		for _, e := range evs.Items {
			if d, _ := e["detail"].(map[string]any); d["reason"] == "suspension_ended" {
				return true
			}
		}
		return false
	})

	// A suspension whose end has already passed lets the user in.
	if code := s.Admin(http.MethodPost, "/users/"+id+"/suspend", map[string]any{"reason": "late", "until": time.Now().Add(-time.Hour)}, &u); code != http.StatusOK || u["state"] != "enabled" {
		t.Fatalf("suspending until the past: %d %v", code, u)
	}
	if p := newBrowser(t).tryLogin(s.URL, alicePass); !strings.HasPrefix(p.Location, redirect) {
		t.Fatalf("login with a suspension ended in the past: %s\n%s", p, p.Body)
	}
}

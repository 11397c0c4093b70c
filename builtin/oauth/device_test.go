package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/store"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

func TestDeviceGrant(t *testing.T) {
	e := newEnv(t)
	e.addClient(store.Client{ClientID: "tv", Public: true, TokenEndpointAuthMethod: "none", GrantTypes: []string{deviceGrant}})
	authorize := func(t *testing.T, body string) response {
		t.Helper()
		return e.post(oauth.PathDeviceAuthorization, formType, body, "")
	}
	poll := func(t *testing.T, code string) response {
		t.Helper()
		return e.post(oauth.PathToken, formType, url.Values{"grant_type": {deviceGrant}, "client_id": {"tv"}, "device_code": {code}}.Encode(), "")
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"scope not allowed", "client_id=tv&scope=write", 400, "invalid_scope"},
			{"resource not allowed", "client_id=tv&resource=https%3A%2F%2Fother.example", 400, "invalid_target"},
			{"not registered for the grant", "client_id=svc-basic&client_secret=" + secretA, 401, "invalid_client"},
			{"confidential without grant", "", 401, "invalid_client"},
			{"unknown client", "client_id=nobody", 401, "invalid_client"},
		} {
			t.Run(tc.name, func(t *testing.T) { checkError(t, authorize(t, tc.body), tc.status, tc.code) })
		}
		checkError(t, e.post(oauth.PathDeviceAuthorization, formType, "scope=read", basic("svc-basic", secretA)), 400, "unauthorized_client")
	})

	t.Run("expired device code", func(t *testing.T) {
		r := authorize(t, "client_id=tv&scope=read")
		if r.status != 200 {
			t.Fatalf("device authorization: %d %s", r.status, r.body)
		}
		code, _ := r.json(t)["device_code"].(string)
		if r := poll(t, code); r.status != 400 || r.json(t)["error"] != "authorization_pending" {
			t.Fatalf("poll: %d %s", r.status, r.body)
		}
		// Age the stored request past its expiry, as ten minutes would;
		// a late poll learns expired_token, not invalid_grant.
		sum := sha256.Sum256([]byte(code))
		key := hex.EncodeToString(sum[:])
		ctx := context.Background()
		tok, err := e.st.GetToken(ctx, e.def.ID, "device", key)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.DeleteToken(ctx, e.def.ID, "device", key); err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(tok.Data, &rec); err != nil {
			t.Fatal(err)
		}
		rec["expires_at"] = time.Now().Add(-time.Second)
		if tok.Data, err = json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		checkError(t, poll(t, code), 400, "expired_token")
	})

	t.Run("verification page", func(t *testing.T) {
		noRedirects := &http.Client{Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, e.base+oauth.PathDevice+"?user_code=bcdf-ghjk", nil)
		r := doWith(t, noRedirects, req)
		if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/login?") || !strings.Contains(r.header.Get("Location"), "BCDF-GHJK") {
			t.Fatalf("without a session: %d %s", r.status, r.header.Get("Location"))
		}
		r = e.post(oauth.PathDevice, formType, "user_code=BCDF-GHJK", "")
		if r.status != http.StatusForbidden {
			t.Fatalf("POST without CSRF: %d", r.status)
		}
	})
}

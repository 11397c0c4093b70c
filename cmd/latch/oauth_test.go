package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// TestAdminAPIAcceptsBearerTokens: a token from the token endpoint, got by
// an independent OAuth2 client library, opens the admin API when it carries
// latch:admin, and only then.
func TestAdminAPIAcceptsBearerTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	p := startLatch(t, t.TempDir())
	ctx := context.Background()
	admin := clientcredentials.Config{ClientID: "latch-admin", ClientSecret: clientSecret, TokenURL: p.url + "/oauth2/token", Scopes: []string{"latch:admin"}}
	tok, err := admin.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials for latch-admin: %v", err)
	}
	call := func(auth string) (int, string, string) {
		req, _ := http.NewRequest("GET", p.url+"/api/admin/v1/users?username=admin", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
	}
	if st, body, _ := call("Bearer " + tok.AccessToken); st != 200 || !strings.Contains(body, `"username":"admin"`) {
		t.Fatalf("admin token refused: %d %s", st, body)
	}

	// A client without the admin scope gets a token, but not the admin API.
	req, _ := http.NewRequest("POST", p.url+"/api/admin/v1/clients", strings.NewReader(`{"name":"orders","scopes":["orders:read"],"grant_types":["client_credentials"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("latch-admin", clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	_ = resp.Body.Close()
	orders := clientcredentials.Config{ClientID: created.ClientID, ClientSecret: created.ClientSecret, TokenURL: p.url + "/oauth2/token", Scopes: []string{"orders:read"}}
	otok, err := orders.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials for a plain client: %v", err)
	}
	if st, body, challenge := call("Bearer " + otok.AccessToken); st != 403 || !strings.Contains(challenge, "insufficient_scope") {
		t.Fatalf("token without latch:admin: %d %s %q", st, body, challenge)
	}
	// Asking for a scope the client does not have is refused at the token endpoint.
	orders.Scopes = []string{"latch:admin"}
	if _, err := orders.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Fatalf("escalation to latch:admin: %v", err)
	}
	if st, _, challenge := call("Bearer not-a-token"); st != 401 || !strings.Contains(challenge, "invalid_token") {
		t.Fatalf("garbage token: %d %q", st, challenge)
	}
}

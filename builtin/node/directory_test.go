package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// postgresNodeConfig is a node on the PostgreSQL database dsn, with the
// given master key (base64) and public URL, in a fresh data folder.
func postgresNodeConfig(t *testing.T, dsn, masterKey string) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\npublic_url: https://id.example\nmaster_key: %q\nstore:\n  driver: postgres\n  dsn: %q\n", dir, masterKey, dsn)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// freshPostgres creates a database of this test's own on the server of
// LATCH_TEST_POSTGRES_DSN, dropped when the test ends, and returns its
// DSN. It skips the test when the variable is unset.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set: the two-node half needs PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return freshDatabase(t, base)
}

// tokenStatus asks n for a client_credentials token of tenant with
// client_secret_basic and returns the status.
func tokenStatus(t *testing.T, n *Node, tenant, id, sec string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/t/"+tenant+oauth.PathToken, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := n.Server().App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// authorizeRedirect sends a prompt=none authorization request of client
// id with redirect to n, and returns where n redirects the browser ("" for
// an error page: the redirect URI is not the client's).
func authorizeRedirect(t *testing.T, n *Node, tenant, id, redirect string) string {
	t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "scope": {"openid"},
		"state": {"state-0123456789"}, "prompt": {"none"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
	req := httptest.NewRequest(http.MethodGet, "/t/"+tenant+oauth.PathAuthorize+"?"+q.Encode(), nil)
	resp, err := n.Server().App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		return ""
	}
	loc, _, _ := strings.Cut(resp.Header.Get("Location"), "?")
	return loc
}

// checkDirectoryChanges makes changes of clients and of a tenant through
// writer's store, and checks that each is in force on writer at once and
// on each of others within a notification's trip: a client secret
// rotation, a redirect URI change, disabling a client, and disabling the
// tenant. Every node reads the client and the tenant first, so that it has
// them cached.
func checkDirectoryChanges(t *testing.T, writer *Node, others ...*Node) {
	ctx := context.Background()
	tenant, err := writer.store.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.keys.EnsureKeys(ctx, tenant.ID); err != nil {
		t.Fatal(err)
	}
	const oldSecret, newSecret = "first-secret-0123456789abcdefghij", "second-secret-0123456789abcdefghi"
	svc, err := writer.store.CreateClient(ctx, store.Client{
		TenantID: tenant.ID, ClientID: "svc", SecretHash: secret.HashClientSecret(oldSecret),
		GrantTypes: []string{"client_credentials"}, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	const oldCB, newCB = "https://app.example/cb", "https://app.example/new-cb"
	web, err := writer.store.CreateClient(ctx, store.Client{
		TenantID: tenant.ID, ClientID: "web", Public: true, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, RedirectURIs: []string{oldCB}, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	all := append([]*Node{writer}, others...)
	// eventually checks cond on every node: at once on the writer, within
	// five seconds on the others.
	eventually := func(what string, cond func(n *Node) bool) {
		t.Helper()
		if !cond(writer) {
			t.Fatalf("%s: not in force on the writing node right after the write", what)
		}
		for i, n := range others {
			deadline := time.Now().Add(5 * time.Second)
			for !cond(n) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not in force on node %d five seconds after the write", what, i+2)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	for i, n := range all {
		if st := tokenStatus(t, n, "acme", "svc", oldSecret); st != http.StatusOK {
			t.Fatalf("node %d: token with the first secret: %d, want 200", i+1, st)
		}
		if loc := authorizeRedirect(t, n, "acme", "web", newCB); loc != "" {
			t.Fatalf("node %d: redirect to the unregistered URI %s", i+1, loc)
		}
		if loc := authorizeRedirect(t, n, "acme", "web", oldCB); loc != oldCB {
			t.Fatalf("node %d: redirect to %q, want %s", i+1, loc, oldCB)
		}
	}

	svc.SecretHash = secret.HashClientSecret(newSecret)
	if svc, err = writer.store.UpdateClient(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually("rotating the client secret", func(n *Node) bool {
		return tokenStatus(t, n, "acme", "svc", oldSecret) == http.StatusUnauthorized &&
			tokenStatus(t, n, "acme", "svc", newSecret) == http.StatusOK
	})

	web.RedirectURIs = []string{newCB}
	if _, err = writer.store.UpdateClient(ctx, web); err != nil {
		t.Fatal(err)
	}
	eventually("changing the redirect URIs", func(n *Node) bool {
		return authorizeRedirect(t, n, "acme", "web", newCB) == newCB && authorizeRedirect(t, n, "acme", "web", oldCB) == ""
	})

	svc.Enabled = false
	if _, err = writer.store.UpdateClient(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually("disabling the client", func(n *Node) bool {
		return tokenStatus(t, n, "acme", "svc", newSecret) == http.StatusUnauthorized
	})

	tenant.Enabled = false
	if _, err = writer.store.UpdateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	eventually("disabling the tenant", func(n *Node) bool {
		return tokenStatus(t, n, "acme", "svc", newSecret) == http.StatusNotFound
	})
}

// TestDirectoryFollowsWrites: the oauth provider caches tenants and
// clients, and a change made through the node's store is in force on the
// next request, without the change bus.
func TestDirectoryFollowsWrites(t *testing.T) {
	n := openNode(t, clusterConfig(t))
	n.stopFollowing() // only the node's own drops can keep it current
	checkDirectoryChanges(t, n)
}

// TestDirectoryFollowsOtherNodes: two nodes on one PostgreSQL database;
// a change made on the first is in force there at once and on the second
// within a notification's trip.
func TestDirectoryFollowsOtherNodes(t *testing.T) {
	dsn := freshPostgres(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	mk := base64.StdEncoding.EncodeToString(key)
	a := openNode(t, postgresNodeConfig(t, dsn, mk))
	b := openNode(t, postgresNodeConfig(t, dsn, mk))
	checkDirectoryChanges(t, a, b)
}

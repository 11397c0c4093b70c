package bundle_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/conformance/internal/live"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/postgres"
)

// freshDatabase creates a PostgreSQL database for the test and drops it
// at the end; it skips the test without LATCH_TEST_POSTGRES_DSN.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set: the cluster test needs PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to the test PostgreSQL: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "latch_bundle_" + hex.EncodeToString(suffix)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || !strings.HasPrefix(base, "postgres") {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String()
}

// TestBundleCluster: a bundle installed and upgraded through one node of a
// two-node cluster reaches the other, which then logs in with it.
func TestBundleCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and a WASM guest")
	}
	dsn := freshDatabase(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "latch")
	goBuild(t, bin, "./cmd/latch")
	wasm := filepath.Join(dir, "pin.wasm")
	goBuild(t, wasm, "./kernel/plugin/testdata/guests/pin", "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	c := cli{t: t, bin: bin}
	pub := strings.TrimSpace(c.must("bundle", "keygen", "-o", filepath.Join(dir, "signer")))
	key := filepath.Join(dir, "signer.key")
	v1 := pack(t, c, dir, wasm, "1.0.0", "1", "", key)
	v11 := pack(t, c, dir, wasm, "1.1.0", "1", "", key)

	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	env := []string{"LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN=" + dsn, "LATCH_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk),
		"LATCH_BUNDLES_TRUSTED_KEYS=" + pub, "LATCH_HTTP_BODY_LIMIT=64MiB"}
	a := live.StartWith(t, live.Options{Env: env})
	b := live.StartWith(t, live.Options{Env: env})
	if code := a.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "pin-app", "name": "PIN App", "public": true, "token_endpoint_auth_method": "none", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{"pin.pin"}}}}},
		"enabled":  true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := st.GetTenantByName(context.Background(), store.DefaultTenantName)
	if err == nil {
		_, err = st.CreateUser(context.Background(), store.User{ID: "pin-user", TenantID: tenant.ID, Username: "pin-user", Enabled: true})
	}
	_ = st.Close()
	if err != nil {
		t.Fatalf("creating the PIN user: %v", err)
	}
	onA := cli{t: t, bin: bin, env: []string{"LATCH_URL=" + a.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret}}
	onB := cli{t: t, bin: bin, env: []string{"LATCH_URL=" + b.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret}}

	// waitRunning asks node B until it runs version; B polls the table
	// every second.
	waitRunning := func(version string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var l struct {
				Items []struct {
					Version string `json:"version"`
					Running bool   `json:"running"`
				} `json:"items"`
			}
			if err := json.Unmarshal([]byte(onB.must("bundle", "list")), &l); err != nil {
				t.Fatal(err)
			}
			for _, it := range l.Items {
				if it.Running && it.Version == version {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node B does not run %s after 30s: %+v", version, l.Items)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	onA.must("bundle", "install", v1, "--config", `{"pin":"1234"}`)
	waitRunning("1.0.0")
	if err := login(b, "1234"); err != nil {
		t.Fatalf("login on node B with the bundle installed through node A: %v", err)
	}
	onA.must("bundle", "upgrade", v11)
	waitRunning("1.1.0")
	if err := login(b, "1234"); err != nil {
		t.Fatalf("login on node B after the upgrade through node A: %v", err)
	}
	onA.must("bundle", "remove", "pin")
	for deadline := time.Now().Add(30 * time.Second); login(b, "1234") == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node B still logs in with the bundle 30s after it was removed through node A")
		}
	}
}

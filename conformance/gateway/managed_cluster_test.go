package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestGatewayManagedCluster: an API stored through one node's admin API is
// served by a standalone gateway node sharing the PostgreSQL store, without
// a restart and within a second; its deletion too.
func TestGatewayManagedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	base := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set: the two-node test needs PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	dsn := freshDatabase(t, base)
	dir := t.TempDir()
	up := newUpstream(t)
	partner := newJWKSServer(t)
	routes := strings.NewReplacer("{{JWKS}}", partner.URL, "{{UP}}", up.URL).Replace(managedRoutes)
	routesFile := filepath.Join(dir, "routes.yaml")
	must(t, os.WriteFile(routesFile, []byte(routes), 0o600))
	cfgFile := filepath.Join(dir, "latch.yaml")
	must(t, os.WriteFile(cfgFile, []byte(latchYAML("", "")), 0o600))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := []string{"LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN=" + dsn, "LATCH_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)}

	a := startNode(t, freeAddr(t), freeAddr(t), append([]string{"LATCH_GATEWAY_ROUTES_FILE=" + routesFile}, env...),
		"serve", "--config", cfgFile, "--data", filepath.Join(dir, "a"))
	b := startNode(t, freeAddr(t), freeAddr(t), env, "gateway", "--config", cfgFile, "--data", filepath.Join(dir, "b"), "--routes", routesFile)

	if st := adminJSON(t, a.url, "PUT", "/gateway/apis/shared-api", map[string]any{
		"base_path": "/shared-api", "upstream": "echo", "strip_base_path": true, "security": map[string]any{"none": true},
		"policy": `request.headers["x-team"] == "blue"`,
	}, nil); st != http.StatusOK {
		t.Fatalf("put API: %d", st)
	}
	start := time.Now()
	blue := map[string]string{"X-Team": "blue"}
	eventually(t, "the other node serves the stored API", func() bool {
		st, _, _ := call(t, "GET", b.gw+"/shared-api/x", "", blue)
		return st == http.StatusOK
	})
	took := time.Since(start)
	t.Logf("the stored API reached the standalone gateway in %v", took)
	if took > 1500*time.Millisecond {
		t.Errorf("the stored API took %v to reach the other node; want about a second at most", took)
	}
	if st, _, _ := call(t, "GET", b.gw+"/shared-api/x", "", map[string]string{"X-Team": "red"}); st != http.StatusForbidden {
		t.Fatalf("policy on the other node: %d", st)
	}
	if st := adminJSON(t, a.url, "DELETE", "/gateway/apis/shared-api", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	eventually(t, "the other node drops the deleted API", func() bool {
		st, _, _ := call(t, "GET", b.gw+"/shared-api/x", "", blue)
		return st == http.StatusNotFound
	})
}

// freshDatabase creates a database of its own for the test and drops it
// afterwards; it returns its DSN.
func freshDatabase(t *testing.T, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "latch_gw_" + hex.EncodeToString(suffix)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
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
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return base + " dbname=" + name
}

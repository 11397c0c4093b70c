package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/abi"
	claimsdialect "github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

const testAdminSecret = "dialect-cache-admin-secret-0123456789"

// dialectMapper returns the node's claims.dialect instance.
func dialectMapper(t *testing.T, n *Node) *claimsdialect.Mapper {
	t.Helper()
	for _, inst := range n.extensions.claimMappers(store.DefaultTenantName) {
		if m, ok := extension.As[*claimsdialect.Mapper](inst); ok {
			return m
		}
	}
	t.Fatal("no claims.dialect instance")
	return nil
}

// storeCalls counts the node's store calls of method, from the
// instrumented store's latency histogram.
func storeCalls(t *testing.T, n *Node, method string) uint64 {
	t.Helper()
	mfs, err := n.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "latch_store_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() == method {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// dialectReads is how often the node read its claim dialect tables.
func dialectReads(t *testing.T, n *Node) uint64 {
	return storeCalls(t, n, "ListLocalClaims") + storeCalls(t, n, "ListClaimMappings") + storeCalls(t, n, "GetTenantByName")
}

// mapBackend maps the local claim email into the custom dialect
// "backend", answering only what the dialect maps.
func mapBackend(t *testing.T, m *claimsdialect.Mapper) map[string]any {
	t.Helper()
	resp, err := m.Map(context.Background(), abi.MapRequest{Tenant: store.DefaultTenantName, From: abi.DialectLocal, To: "backend",
		Claims: map[string]any{"email": "ann@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Claims
}

// putMapping maps the backend dialect's claim to the local claim email
// through the node's admin API.
func putMapping(t *testing.T, n *Node, claim string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"claim": claim, "local_claim": "email"})
	req := httptest.NewRequest(http.MethodPut, "/api/admin/v1/claims/dialects/backend", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("latch-admin", testAdminSecret)
	resp, err := n.Server().App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /claims/dialects/backend: %d", resp.StatusCode)
	}
}

// TestClaimDialectsAreCached: a warm mapping reads nothing from the
// store, and a mapping stored through the admin API is seen by the next
// mapping on the node that stored it.
func TestClaimDialectsAreCached(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Bootstrap.ClientSecret = testAdminSecret
	n := openNode(t, cfg)
	m := dialectMapper(t, n)

	if got := mapBackend(t, m); got["mail"] != nil {
		t.Fatalf("before any mapping: %v", got)
	}
	before := dialectReads(t, n)
	for range 10 {
		mapBackend(t, m)
	}
	if reads := dialectReads(t, n) - before; reads != 0 {
		t.Fatalf("10 warm mappings read the dialect tables %d times, want 0", reads)
	}

	putMapping(t, n, "mail")
	if got := mapBackend(t, m); got["mail"] != "ann@example.com" {
		t.Fatalf("the next mapping after PUT: %v, want mail", got)
	}
	// The node also hears its own change from the bus, a moment later,
	// and drops the entry once more; after that the mapping is warm again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		before = dialectReads(t, n)
		mapBackend(t, m)
		reads := dialectReads(t, n) - before
		if reads == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a mapping 5 s after the change still read the tables %d times, want 0", reads)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClaimDialectChangesReachOtherNodes runs two nodes on one
// PostgreSQL database: a mapping stored through node A's admin API drops
// node B's cached tables through the change bus, and B's next mapping
// sees it.
func TestClaimDialectChangesReachOtherNodes(t *testing.T) {
	base := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set: two nodes need PostgreSQL")
	}
	dsn := freshDatabase(t, base)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	nodeCfg := func() config.Config {
		cfg := clusterConfig(t)
		cfg.Store.Driver, cfg.Store.DSN = "postgres", config.DSN(dsn)
		cfg.MasterKey = config.Secret(base64.StdEncoding.EncodeToString(mk))
		cfg.Bootstrap.ClientSecret = testAdminSecret
		return cfg
	}
	a := openNode(t, nodeCfg())
	b := openNode(t, nodeCfg())
	mb := dialectMapper(t, b)
	if got := mapBackend(t, mb); got["mail"] != nil {
		t.Fatalf("before any mapping: %v", got)
	}
	if b.dialects.Len() != 1 {
		t.Fatalf("node B caches %d tenants' tables, want 1", b.dialects.Len())
	}

	putMapping(t, a, "mail")
	deadline := time.Now().Add(10 * time.Second)
	for b.dialects.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("node B kept its cached tables after node A's change")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := mapBackend(t, mb); got["mail"] != "ann@example.com" {
		t.Fatalf("node B's mapping after node A's change: %v, want mail", got)
	}
}

// freshDatabase creates a database of its own for this test on the
// server of base, drops it when the test ends, and returns its DSN.
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
	name := "latch_node_" + hex.EncodeToString(suffix)
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
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return base + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

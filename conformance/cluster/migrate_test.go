package cluster_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// expandTables are the tables the expand step below widens: every table
// of the schema (kernel/store/postgres/migrations).
var expandTables = []string{
	"tenants", "users", "groups", "group_members", "roles", "role_users", "role_groups", "clients",
	"sessions", "tokens", "signing_keys", "consents", "audit_events", "bundles", "plugin_kv",
}

// TestClusterServesAcrossExpandMigration applies the "expand" half of an
// expand/contract migration (a new nullable column on every table, a new
// table) to the database while two nodes serve, as `latch migrate` of a
// newer release would during a rolling upgrade, and checks that the
// running nodes go on serving every kind of request: their queries name
// their columns and tolerate columns they do not know.
func TestClusterServesAcrossExpandMigration(t *testing.T) {
	base := postgresDSN(t)
	dsn := freshDatabase(t, base)
	c := startNodes(t, 2, "LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN="+dsn)
	pub := c.proxy.URL
	fixtures(t, pub)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	stmts := []string{"CREATE TABLE expand_probe (id TEXT PRIMARY KEY, note TEXT)"}
	for _, table := range expandTables {
		stmts = append(stmts, "ALTER TABLE "+pgx.Identifier{table}.Sanitize()+" ADD COLUMN expand_probe TEXT")
	}
	if _, err := conn.Exec(ctx, strings.Join(stmts, "; ")); err != nil {
		t.Fatalf("expanding the schema: %v", err)
	}

	for i := range 2 * len(c.nodes) { // every node serves every step at least once
		b := newBrowser()
		code, verifier, err := codeFlow(b, pub)
		if err != nil {
			t.Fatalf("round %d: login: %v", i, err)
		}
		tok, err := exchange(pub, code, verifier)
		if err != nil {
			t.Fatalf("round %d: exchange: %v", i, err)
		}
		if _, err := refresh(pub, tok.RefreshToken); err != nil {
			t.Fatalf("round %d: refresh: %v", i, err)
		}
		if _, err := clientCredentials(pub); err != nil {
			t.Fatalf("round %d: client_credentials: %v", i, err)
		}
		var u struct {
			ID string `json:"id"`
		}
		if err := admin(pub, http.MethodPost, "/users", map[string]any{"username": "expand-" + string(rune('a'+i)), "password": "expand-user-password-01", "enabled": true}, &u); err != nil {
			t.Fatalf("round %d: creating a user: %v", i, err)
		}
		if err := admin(pub, http.MethodGet, "/users/"+u.ID, nil, nil); err != nil {
			t.Fatalf("round %d: reading the user: %v", i, err)
		}
		if err := admin(pub, http.MethodGet, "/clients", nil, nil); err != nil {
			t.Fatalf("round %d: listing clients: %v", i, err)
		}
		if err := admin(pub, http.MethodGet, "/audit", nil, nil); err != nil {
			t.Fatalf("round %d: querying the audit log: %v", i, err)
		}
	}
}

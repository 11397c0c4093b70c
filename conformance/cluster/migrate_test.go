package cluster_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/mattn/go-sqlite3" // the SQLite database of a node, opened by the test

	"github.com/latchid/latch/conformance/internal/live"
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

// TestOlderNodeAfterNewerMigration is the rolling upgrade seen from a
// node not yet upgraded: a newer release migrated the database, and the
// older node (this build) restarts on it. After an expand-only migration,
// which records that builds from this build's schema version on still
// work ("-- latch:compatible-from N"), the older node starts and serves;
// after a migration that records no such compatibility (a contract step),
// it refuses to start, naming the migration. On SQLite and PostgreSQL.
func TestOlderNodeAfterNewerMigration(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		start := func() *live.Server { return live.StartWith(t, live.Options{DataDir: dir}) }
		path := filepath.Join(dir, "latch.db")
		exec := func(stmt string, args ...any) {
			t.Helper()
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			if _, err := db.Exec(stmt, args...); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		newest := func() int {
			t.Helper()
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			var v int
			if err := db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		olderNodeAfterNewerMigration(t, start, exec, newest, []string{"--data", dir}, nil)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := freshDatabase(t, postgresDSN(t))
		env := []string{"LATCH_MASTER_KEY=" + newMasterKey(), "LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN=" + dsn}
		start := func() *live.Server { return live.StartWith(t, live.Options{Env: env}) }
		ctx := context.Background()
		exec := func(stmt string, args ...any) {
			t.Helper()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close(ctx) }()
			if _, err := conn.Exec(ctx, stmt, args...); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		newest := func() int {
			t.Helper()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close(ctx) }()
			var v int
			if err := conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		olderNodeAfterNewerMigration(t, start, exec, newest, nil, env)
	})
}

// olderNodeAfterNewerMigration runs the steps of
// TestOlderNodeAfterNewerMigration on one store: start runs a node on it,
// exec runs a statement on its database, newest reads its newest schema
// version; flags and env are what `latch migrate` needs to reach it.
func olderNodeAfterNewerMigration(t *testing.T, start func() *live.Server, exec func(string, ...any), newest func() int, flags, env []string) {
	first := start()
	if err := admin(first.URL, http.MethodGet, "/clients", nil, nil); err != nil {
		t.Fatal(err)
	}
	first.Kill()
	own := newest() // this build's newest schema version
	applied := time.Now().UTC().Format(time.RFC3339Nano)

	// A newer release's expand step: a new column and a new table,
	// recorded as compatible with builds from this one on.
	exec("ALTER TABLE clients ADD COLUMN future_note TEXT")
	exec("CREATE TABLE future_things (id TEXT PRIMARY KEY)")
	exec("INSERT INTO schema_migrations (version, name, applied_at, compatible_from) VALUES ($1, $2, $3, $4)",
		own+1000, fmt.Sprintf("%04d_future_expand.sql", own+1000), applied, own)
	again := start()
	var created struct {
		ID string `json:"id"`
	}
	if err := admin(again.URL, http.MethodPost, "/clients", map[string]any{
		"client_id": "after-expand", "client_secret": svcSecret, "name": "After expand", "grant_types": []string{"client_credentials"},
		"token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, &created); err != nil {
		t.Fatalf("the older node on the expanded schema: creating a client: %v", err)
	}
	if err := admin(again.URL, http.MethodGet, "/clients/"+created.ID, nil, nil); err != nil {
		t.Fatalf("the older node on the expanded schema: reading the client: %v", err)
	}
	if out, err := runLatch(t, env, append([]string{"migrate"}, flags...)...); err != nil {
		t.Fatalf("latch migrate of the older build after an expand step: %v\n%s", err, out)
	}
	again.Kill()

	// A newer release's contract step: no compatibility recorded
	// (compatible_from is its own version), so the older build refuses.
	contract := fmt.Sprintf("%04d_future_contract.sql", own+1001)
	exec("INSERT INTO schema_migrations (version, name, applied_at, compatible_from) VALUES ($1, $2, $3, $4)",
		own+1001, contract, applied, own+1001)
	out, err := runLatch(t, env, append([]string{"migrate"}, flags...)...)
	if err == nil {
		t.Fatalf("latch migrate of the older build after a contract step succeeded:\n%s", out)
	}
	for _, want := range []string{contract, "too new", "run a newer release"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	t.Logf("the older build refuses the contracted schema: %s", strings.TrimSpace(out))
}

// runLatch runs the latch binary with args and the extra environment
// variables env, and returns its combined output.
func runLatch(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, live.Binary(t), args...)
	cmd.Env = append(os.Environ(), "LATCH_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

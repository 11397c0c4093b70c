package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/postgres"
	"github.com/latchid/latch/kernel/store/storetest"
)

// dsnEnv names the variable that points the tests at a PostgreSQL server,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const dsnEnv = "LATCH_TEST_POSTGRES_DSN"

// withParams returns dsn with the connection parameters set, for both URL
// and keyword/value connection strings.
func withParams(tb testing.TB, dsn string, params map[string]string) string {
	tb.Helper()
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parsing %s: %v", dsnEnv, err)
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn
}

// open returns a new, migrated store in a fresh schema of its own, which
// t's cleanup drops. It skips the test when dsnEnv is not set.
func open(tb testing.TB) *postgres.Store {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		tb.Skipf("set %s to a PostgreSQL connection string (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests", dsnEnv)
	}
	ctx := tb.Context()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", dsnEnv, err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "latch_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	s, err := postgres.Open(ctx, withParams(tb, dsn, map[string]string{"search_path": schema, "pool_max_conns": "8"}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	if os.Getenv(dsnEnv) == "" {
		t.Skipf("set %s to a PostgreSQL connection string (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests", dsnEnv)
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestMaxConns: WithMaxConns caps the pool, whatever the DSN allowed.
func TestMaxConns(t *testing.T) {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("set %s to a PostgreSQL connection string to run the PostgreSQL tests", dsnEnv)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	app := "latch_pool_" + hex.EncodeToString(b)
	ctx := t.Context()
	s, err := postgres.Open(ctx, withParams(t, dsn, map[string]string{"application_name": app, "pool_max_conns": "16"}),
		postgres.WithMaxConns(2), postgres.WithMaxConnLifetime(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	done := make(chan error, 32)
	for range 32 {
		go func() { done <- s.Ping(ctx) }()
	}
	for range 32 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 1 || n > 2 {
		t.Fatalf("%d connections open, want 1 or 2", n)
	}
}

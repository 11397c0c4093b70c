package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/kernel/store/postgres"
)

// TestBundleInstallBackfill: migration 0003 fills the install columns of a
// bundle row written before it from the row's JSON.
func TestBundleInstallBackfill(t *testing.T) {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("set %s to a PostgreSQL connection string (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests", dsnEnv)
	}
	ctx := t.Context()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "latch_test_" + hex.EncodeToString(b)
	withSchema := withParams(t, dsn, map[string]string{"search_path": schema})
	raw, err := pgx.Connect(ctx, withSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close(context.Background()) }()
	if _, err := raw.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	s, err := postgres.Open(ctx, withSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0003, with rows as they were written then.
	for _, col := range []string{"install_details", "grants", "tenants", "config", "secrets", "signer", "previous_version"} {
		if _, err := raw.Exec(ctx, "ALTER TABLE bundles DROP COLUMN "+col); err != nil {
			t.Fatalf("dropping %s: %v", col, err)
		}
	}
	if _, err := raw.Exec(ctx, `DELETE FROM schema_migrations WHERE version = 3`); err != nil {
		t.Fatal(err)
	}
	record := `{"manifest":{"name":"pin","version":"1.0.0"},"grants":["kv","http"],"config":{"pin":"1234"},"tenants":["acme"],"signer":"0123abcd"}`
	for _, r := range []struct{ name, manifest string }{{"pin", record}, {"bare", `{"manifest":{"name":"bare"}}`}} {
		if _, err := raw.Exec(ctx, `INSERT INTO bundles (name, version, abi_version, digest, manifest, archive, state, installed_at)
			VALUES ($1, '1.0.0', '1', 'd', $2, '\x00', 'enabled', now())`, r.name, []byte(r.manifest)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	got, err := s.GetBundle(ctx, "pin", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	in := got.Install
	if in == nil {
		t.Fatal("the backfilled row has no install columns")
	}
	if strings.Join(in.Grants, ",") != "kv,http" || strings.Join(in.Tenants, ",") != "acme" || in.Signer != "0123abcd" ||
		string(in.Config) != `{"pin": "1234"}` || in.Secrets != nil || in.PreviousVersion != "" {
		t.Errorf("backfilled install = %+v (config %s)", in, in.Config)
	}
	got, err = s.GetBundle(ctx, "bare", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Install == nil || len(got.Install.Grants) != 0 || got.Install.Tenants != nil || got.Install.Config != nil || got.Install.Signer != "" {
		t.Errorf("backfilled bare install = %+v", got.Install)
	}
}

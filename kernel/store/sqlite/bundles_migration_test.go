package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/store/sqlite"
)

// TestBundleInstallBackfill: migration 0003 fills the install columns of a
// bundle row written before it from the row's JSON.
func TestBundleInstallBackfill(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0003, with a row as it was written then.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	for _, col := range []string{"install_details", "grants", "tenants", "config", "secrets", "signer", "previous_version"} {
		if _, err := raw.ExecContext(ctx, "ALTER TABLE bundles DROP COLUMN "+col); err != nil {
			t.Fatalf("dropping %s: %v", col, err)
		}
	}
	if _, err := raw.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = 3`); err != nil {
		t.Fatal(err)
	}
	record := `{"manifest":{"name":"pin","version":"1.0.0"},"grants":["kv","http"],"config":{"pin":"1234","n":[1,2]},"tenants":["acme"],"signer":"0123abcd"}`
	for _, r := range []struct{ name, manifest string }{{"pin", record}, {"bare", `{"manifest":{"name":"bare"}}`}} {
		if _, err := raw.ExecContext(ctx, `INSERT INTO bundles (name, version, abi_version, digest, manifest, archive, state, installed_at)
			VALUES (?, '1.0.0', '1', 'd', ?, X'00', 'enabled', '2026-01-01T00:00:00Z')`, r.name, []byte(r.manifest)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	b, err := s.GetBundle(ctx, "pin", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	in := b.Install
	if in == nil {
		t.Fatal("the backfilled row has no install columns")
	}
	if strings.Join(in.Grants, ",") != "kv,http" || strings.Join(in.Tenants, ",") != "acme" || in.Signer != "0123abcd" ||
		string(in.Config) != `{"pin":"1234","n":[1,2]}` || in.Secrets != nil || in.PreviousVersion != "" {
		t.Errorf("backfilled install = %+v (config %s)", in, in.Config)
	}
	b, err = s.GetBundle(ctx, "bare", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Install == nil || len(b.Install.Grants) != 0 || b.Install.Tenants != nil || b.Install.Config != nil || b.Install.Signer != "" {
		t.Errorf("backfilled bare install = %+v", b.Install)
	}
}

// Package sqlitetest gives tests a fresh, migrated SQLite store of their
// own, so a test's data never meets another's.
package sqlitetest

import (
	"path/filepath"
	"testing"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// Open returns a migrated SQLite store in a temporary folder of t, closed
// when the test ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Tenant creates the enabled tenant name in st.
func Tenant(t testing.TB, st store.Store, name string) store.Tenant {
	t.Helper()
	tn, err := st.CreateTenant(t.Context(), store.Tenant{Name: name, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

package keys_test

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/postgres"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// TestEnsureKeysAcrossManagers starts several managers (nodes) on one
// empty database at once: one creates the tenant's first key, the others
// find it, and none fails.
// PostgreSQL runs the managers' transactions at the same time, which is
// where two first keys collide on the one-active-key index.
func TestEnsureKeysAcrossManagers(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		ensureConcurrently(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("LATCH_TEST_POSTGRES_DSN is not set; set it to a PostgreSQL database to run this test")
		}
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		for range 5 {
			ensureConcurrently(t, st)
		}
	})
}

func ensureConcurrently(t *testing.T, st store.Store) {
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(t.Context(), store.Tenant{Name: "race-" + strings.ToLower(rand.Text()[:10]), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(bytes.Repeat([]byte{3}, secret.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		m := keys.NewManager(st, box, keys.Options{Logger: slog.New(slog.DiscardHandler)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- m.EnsureKeys(t.Context(), tn.ID)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("EnsureKeys: %v", err)
		}
	}
	recs, err := st.ListSigningKeys(t.Context(), tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, r := range recs {
		if r.State == store.KeyActive {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys, want 1", active)
	}
}

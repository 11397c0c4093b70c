package dialect_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// countingTables counts the reads of the dialect tables.
type countingTables struct {
	dialect.Tables
	reads atomic.Int64
}

func (c *countingTables) GetTenantByName(ctx context.Context, name string) (store.Tenant, error) {
	c.reads.Add(1)
	return c.Tables.GetTenantByName(ctx, name)
}

func (c *countingTables) ListLocalClaims(ctx context.Context, tenantID string) ([]store.LocalClaim, error) {
	c.reads.Add(1)
	return c.Tables.ListLocalClaims(ctx, tenantID)
}

func (c *countingTables) ListClaimMappings(ctx context.Context, tenantID, d string) ([]store.ClaimMapping, error) {
	c.reads.Add(1)
	return c.Tables.ListClaimMappings(ctx, tenantID, d)
}

// cacheFixture is a SQLite store with tenant acme mapping its local
// claim tier to the backend_jwt claim x-tier.
func cacheFixture(tb testing.TB) (store.Store, store.Tenant) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "x.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.PutLocalClaim(ctx, store.LocalClaim{TenantID: tn.ID, URI: "urn:acme:tier", Name: "tier"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.PutClaimMapping(ctx, store.ClaimMapping{TenantID: tn.ID, Dialect: "backend_jwt", Claim: "x-tier", LocalURI: "urn:acme:tier"}); err != nil {
		tb.Fatal(err)
	}
	return st, tn
}

// TestCacheWarmMappingReadsNothing: with the cache, only the first
// mapping of a tenant reads its tables; Forget (by tenant id) and
// ForgetAll make the next one read the changed tables; an unknown tenant
// is not cached.
func TestCacheWarmMappingReadsNothing(t *testing.T) {
	ctx := t.Context()
	st, tn := cacheFixture(t)
	tables := &countingTables{Tables: st}
	c := dialect.NewCache()
	m, err := load(t, `{}`, map[string]any{dialect.DepStore: tables, dialect.DepCache: c})
	if err != nil {
		t.Fatal(err)
	}
	mapTo := func(tenant, to string) map[string]any {
		t.Helper()
		resp, err := m.Map(ctx, abi.MapRequest{Tenant: tenant, From: abi.DialectLocal, To: to, Claims: map[string]any{"tier": "gold"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Claims
	}
	if out := mapTo("acme", "backend_jwt"); out["x-tier"] != "gold" {
		t.Fatalf("cold: %v", out)
	}
	cold := tables.reads.Load()
	if cold != 3 {
		t.Fatalf("a cold mapping made %d reads, want 3 (tenant, local claims, mappings)", cold)
	}
	for range 20 {
		if out := mapTo("acme", "backend_jwt"); out["x-tier"] != "gold" {
			t.Fatalf("warm: %v", out)
		}
	}
	if r := tables.reads.Load() - cold; r != 0 {
		t.Fatalf("20 warm mappings made %d reads, want 0", r)
	}

	if _, err := st.PutClaimMapping(ctx, store.ClaimMapping{TenantID: tn.ID, Dialect: "backend_jwt", Claim: "tier_level", LocalURI: "urn:acme:tier"}); err != nil {
		t.Fatal(err)
	}
	if out := mapTo("acme", "backend_jwt"); out["tier_level"] != nil {
		t.Fatalf("before Forget the cached tables answer: %v", out)
	}
	c.Forget("another-tenant-id")
	if c.Len() != 1 {
		t.Fatalf("forgetting another tenant dropped acme's tables")
	}
	c.Forget(tn.ID)
	if out := mapTo("acme", "backend_jwt"); out["tier_level"] != "gold" {
		t.Fatalf("after Forget: %v", out)
	}

	if err := st.DeleteClaimMapping(ctx, tn.ID, "backend_jwt", "tier_level"); err != nil {
		t.Fatal(err)
	}
	c.ForgetAll()
	if out := mapTo("acme", "backend_jwt"); out["tier_level"] != nil || out["x-tier"] != "gold" {
		t.Fatalf("after ForgetAll: %v", out)
	}

	before := tables.reads.Load()
	mapTo("nobody", "backend_jwt")
	mapTo("nobody", "backend_jwt")
	if r := tables.reads.Load() - before; r != 2 {
		t.Fatalf("an unknown tenant: %d reads for two mappings, want 2 (it is not cached)", r)
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d tenants, want 1", c.Len())
	}
}

// racingTables changes the tables while a load is reading them, as a
// write on another node would.
type racingTables struct {
	dialect.Tables
	during func()
}

func (r *racingTables) ListClaimMappings(ctx context.Context, tenantID, d string) ([]store.ClaimMapping, error) {
	out, err := r.Tables.ListClaimMappings(ctx, tenantID, d)
	if r.during != nil {
		r.during()
		r.during = nil
	}
	return out, err
}

// TestCacheDoesNotKeepALoadThatRacedAForget: tables read before a change
// whose Forget arrives while the load runs are answered once but not
// kept.
func TestCacheDoesNotKeepALoadThatRacedAForget(t *testing.T) {
	ctx := t.Context()
	st, tn := cacheFixture(t)
	c := dialect.NewCache()
	tables := &racingTables{Tables: st}
	tables.during = func() { c.Forget(tn.ID) }
	if _, err := c.Load(ctx, tables, "acme"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Fatal("a load that raced a Forget was cached")
	}
	if _, err := c.Load(ctx, tables, "acme"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 {
		t.Fatal("a quiet load was not cached")
	}
}

// failingTables fails every read.
type failingTables struct{ dialect.Tables }

func (failingTables) GetTenantByName(context.Context, string) (store.Tenant, error) {
	return store.Tenant{}, errors.New("store down")
}

// TestCacheDoesNotKeepErrors: a failed read is returned and not cached;
// a nil cache reads every time; a mistyped cache dependency is refused.
func TestCacheDoesNotKeepErrors(t *testing.T) {
	ctx := t.Context()
	c := dialect.NewCache()
	if _, err := c.Load(ctx, failingTables{}, "acme"); err == nil {
		t.Fatal("a failed read answered no error")
	}
	if c.Len() != 0 {
		t.Fatal("a failed read was cached")
	}
	st, _ := cacheFixture(t)
	var none *dialect.Cache
	if d, err := none.Load(ctx, st, "acme"); err != nil || len(d.Mappings("backend_jwt")) != 1 {
		t.Fatalf("a nil cache: %v, %v", d, err)
	}
	if _, err := load(t, `{}`, map[string]any{dialect.DepStore: st, dialect.DepCache: "x"}); !errors.Is(err, dialect.ErrDependency) {
		t.Fatalf("a mistyped cache: %v", err)
	}
}

// BenchmarkMap maps local claims into a custom dialect through a SQLite
// store, with the cache warm and without a cache (every mapping reads the
// tables).
func BenchmarkMap(b *testing.B) {
	st, _ := cacheFixture(b)
	req := abi.MapRequest{Tenant: "acme", From: abi.DialectLocal, To: "backend_jwt", Claims: map[string]any{"tier": "gold", "email": "a@example.org"}}
	for _, bc := range []struct {
		name string
		deps map[string]any
	}{
		{"cold", map[string]any{dialect.DepStore: st}},
		{"warm", map[string]any{dialect.DepStore: st, dialect.DepCache: dialect.NewCache()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := load(b, `{}`, bc.deps)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Map(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

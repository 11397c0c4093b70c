package dialect_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

func load(t testing.TB, cfg string, deps map[string]any) (*dialect.Mapper, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(dialect.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: dialect.ID, Config: json.RawMessage(cfg)}},
		extension.LoadOptions{Deps: deps})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get(string(dialect.ID))
	m, _ := extension.As[*dialect.Mapper](inst)
	return m, nil
}

// TestMapWithoutDirectory translates the claims it is given through a
// tenant's stored tables in a real SQLite store: without a user store
// directory nothing is read from the stores.
func TestMapWithoutDirectory(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutLocalClaim(ctx, store.LocalClaim{TenantID: tn.ID, URI: "urn:acme:tier", Name: "tier"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutClaimMapping(ctx, store.ClaimMapping{TenantID: tn.ID, Dialect: "backend_jwt", Claim: "x-tier", LocalURI: "urn:acme:tier"}); err != nil {
		t.Fatal(err)
	}

	m, err := load(t, `{}`, map[string]any{dialect.DepStore: st})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := load(t, `{"drop_unmapped": true}`, map[string]any{dialect.DepStore: st})
	if err != nil {
		t.Fatal(err)
	}
	run := func(m *dialect.Mapper, tenant, from, to string, in map[string]any) map[string]any {
		t.Helper()
		out, err := claims.Check(m.Map(ctx, abi.MapRequest{Tenant: tenant, From: from, To: to, Subject: "u1", Claims: in}))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	in := map[string]any{"tier": "gold", "http://wso2.org/claims/emailaddress": "a@example.org", claims.ProfileClaim: "work", "keep": 1}
	out := run(m, "acme", abi.DialectLocal, "backend_jwt", in)
	if out["x-tier"] != "gold" || out["keep"] != 1 || out[claims.ProfileClaim] != nil {
		t.Fatalf("local to backend_jwt: %v", out)
	}
	if out := run(drop, "acme", abi.DialectLocal, "backend_jwt", in); len(out) != 1 || out["x-tier"] != "gold" {
		t.Fatalf("drop_unmapped: %v", out)
	}
	if out := run(m, "acme", abi.DialectLocal, abi.DialectSAML, in); out["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"] != "a@example.org" {
		t.Fatalf("local to saml by the built-in mapping: %v", out)
	}
	if out := run(m, "acme", "backend_jwt", abi.DialectLocal, map[string]any{"x-tier": "blue"}); out["tier"] != "blue" {
		t.Fatalf("backend_jwt to local: %v", out)
	}
	// Another tenant has only the built-in tables; other pairs pass.
	if out := run(m, "other", abi.DialectLocal, "backend_jwt", in); out["x-tier"] != nil || out["keep"] != 1 {
		t.Fatalf("unknown tenant: %v", out)
	}
	if out := run(m, "acme", abi.DialectOIDC, abi.DialectSAML, in); out[claims.ProfileClaim] != "work" {
		t.Fatalf("a pair without local passes through: %v", out)
	}
	if out := run(m, "acme", abi.DialectRemote, abi.DialectLocal, in); out["keep"] != 1 || out["tier"] != "gold" {
		t.Fatalf("a pair without local passes through: %v", out)
	}
}

func TestProvisionNeedsTheStore(t *testing.T) {
	if _, err := load(t, `{}`, nil); !errors.Is(err, dialect.ErrDependency) {
		t.Fatalf("without a store: %v", err)
	}
	if _, err := load(t, `{}`, map[string]any{dialect.DepStore: "x"}); !errors.Is(err, dialect.ErrDependency) {
		t.Fatalf("with a wrong store: %v", err)
	}
}

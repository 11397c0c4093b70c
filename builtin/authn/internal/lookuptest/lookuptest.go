// Package lookuptest is a test fixture for the authenticators that find
// users through package lookup: a tenant in a fresh SQLite store behind a
// userstore.local instance.
package lookuptest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/builtin/authn/internal/lookup"
	userstorelocal "github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// Fixture is a tenant "acme" in a fresh SQLite store behind a
// userstore.local instance.
type Fixture struct {
	Store    *sqlite.Store
	TenantID string
	current  atomic.Pointer[extension.Instances]
}

// NewFixture makes the store and the tenant; add users with AddUser and
// load instances with Load.
func NewFixture(t testing.TB) *Fixture {
	t.Helper()
	st := sqlitetest.Open(t)
	tn := sqlitetest.Tenant(t, st, "acme")
	return &Fixture{Store: st, TenantID: tn.ID}
}

// AddUser creates a user and returns its id.
func (f *Fixture) AddUser(t testing.TB, u store.User) string {
	t.Helper()
	u.TenantID = f.TenantID
	got, err := f.Store.CreateUser(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	return got.ID
}

// UserStores implements lookup.UserStores over the loaded userstore.local.
func (f *Fixture) UserStores(_ context.Context, tenant string) []*extension.Instance {
	return f.current.Load().Enabled(tenant, extension.KindUserStore)
}

// Load loads userstore.local and the instance of m with the config, and
// returns the instance's value.
func (f *Fixture) Load(t testing.TB, m extension.Module, config string) (any, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(userstorelocal.Module())
	r.Register(m)
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	var raw []byte
	if config != "" {
		raw = []byte(config)
	}
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: "userstore.local"}, {Module: m.ID, Config: raw},
	}, extension.LoadOptions{Deps: map[string]any{
		userstorelocal.DepStore: f.Store, userstorelocal.DepPasswordHasher: hasher, lookup.DepUserStores: f,
	}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	f.current.Store(set)
	inst, _ := set.Get(string(m.ID))
	return inst.Value(), nil
}

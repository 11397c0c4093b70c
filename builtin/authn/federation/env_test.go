package federation_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	kpassword "github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// extensionEnv builds the Env an instance is provisioned with, through a
// registry, so the test takes its dependencies as an instance does.
func extensionEnv(t *testing.T, deps map[string]any) extension.Env {
	t.Helper()
	var got extension.Env
	r := extension.NewRegistry()
	r.Register(extension.Module{ID: "authn.test", New: func() any { return &capture{env: &got} }})
	set, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: "authn.test"}}, extension.LoadOptions{Deps: deps})
	if err != nil {
		t.Fatal(err)
	}
	_ = set.Close(context.Background())
	return got
}

// accounts is federation.Accounts over the dependencies an instance would
// take from deps.
func accounts(t *testing.T, deps map[string]any) *federation.Accounts {
	t.Helper()
	st, us, err := federation.Deps(extensionEnv(t, deps), "authn.test")
	if err != nil {
		t.Fatal(err)
	}
	return &federation.Accounts{Store: st, UserStores: us, Log: discard()}
}

// loadUserStores loads a userstore.local "local" over st, and the
// instances of more (their modules registered from modules), and returns
// the tenant's enabled user stores.
func loadUserStores(t *testing.T, st store.Store, modules []extension.Module, more ...extension.InstanceConfig) func(tenant string) []*extension.Instance {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(local.Module())
	for _, m := range modules {
		r.Register(m)
	}
	set, err := r.Load(context.Background(), append([]extension.InstanceConfig{{Name: "local", Module: local.ID}}, more...), extension.LoadOptions{Deps: map[string]any{
		local.DepStore:          st,
		local.DepPasswordHasher: kpassword.NewHasher(kpassword.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	return func(tenant string) []*extension.Instance {
		return set.Enabled(tenant, extension.KindUserStore)
	}
}

type capture struct{ env *extension.Env }

func (c *capture) Authenticate(context.Context, abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated}, nil
}

func (c *capture) Provision(_ context.Context, env extension.Env) error {
	*c.env = env
	return nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

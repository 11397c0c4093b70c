package ldap_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/userstore"
)

// BenchmarkAuthenticateUser measures password logins (search and bind)
// against the test slapd, over StartTLS and over plain LDAP, beside the
// builtin local store (SQLite, argon2id with the default parameters) in
// the same run. ns/op of the parallel runs is the inverse of throughput
// on this machine.
func BenchmarkAuthenticateUser(b *testing.B) {
	s := sharedSlapd(b)
	tlsCfg := config(s)
	plainCfg := config(s)
	plainCfg.StartTLS, plainCfg.AllowInsecure = false, true
	stores := []struct {
		name  string
		store userstore.Store
	}{
		{"ldap_starttls", mustLoad(b, tlsCfg)},
		{"ldap_plain", mustLoad(b, plainCfg)},
		{"local_sqlite_argon2id", localStore(b, "alice", "alice-password")},
	}
	for _, st := range stores {
		for _, c := range []struct{ name, user, pw, want string }{
			{"authenticated", "alice", "alice-password", abi.UserAuthenticated},
			{"wrong_password", "alice", "guess", abi.UserInvalidCredentials},
		} {
			b.Run(st.name+"/"+c.name, func(b *testing.B) {
				req := abi.AuthenticateUserRequest{Tenant: "acme", Username: c.user, Password: c.pw}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := st.store.AuthenticateUser(context.Background(), req)
						if err != nil || resp.Outcome != c.want {
							b.Errorf("%+v, %v", resp, err)
							return
						}
					}
				})
			})
		}
	}
}

// localStore returns a userstore.local instance over a fresh SQLite
// database holding one user.
func localStore(b *testing.B, username, pw string) userstore.Store {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	hasher := password.NewHasher(password.DefaultParams)
	hash, err := hasher.Hash(pw)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, store.User{TenantID: tn.ID, Username: username, Enabled: true, PasswordHash: hash}); err != nil {
		b.Fatal(err)
	}
	r := extension.NewRegistry()
	r.Register(local.Module())
	set, err := r.Load(ctx, []extension.InstanceConfig{{Module: local.ID, Config: json.RawMessage(`{}`)}},
		extension.LoadOptions{Deps: map[string]any{local.DepStore: db, local.DepPasswordHasher: hasher}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close(ctx) })
	inst, _ := set.Get(string(local.ID))
	st, _ := extension.As[userstore.Store](inst)
	return st
}

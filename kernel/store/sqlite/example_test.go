package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "latch")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	s, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		panic(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(ctx); err != nil {
		panic(err)
	}

	t, err := s.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true})
	if err != nil {
		panic(err)
	}
	if _, err := s.CreateUser(ctx, store.User{TenantID: t.ID, Username: "Alice"}); err != nil {
		panic(err)
	}
	u, err := s.GetUserByUsername(ctx, t.ID, "alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Username, u.Version)
	// Output: Alice 1
}

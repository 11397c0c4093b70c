package federation_test

import (
	"context"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
	"github.com/latchid/latch/kernel/userstore/router"
)

// recordingStore is a writable user store that creates its users in the
// kernel store with the attribute created_by=recording, so a test can
// tell which store provisioning used.
type recordingStore struct{ st store.Store }

func (r *recordingStore) GetUser(context.Context, abi.GetUserRequest) (abi.User, error) {
	return abi.User{}, store.ErrNotFound
}

func (r *recordingStore) FindUsers(context.Context, abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (r *recordingStore) AuthenticateUser(context.Context, abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

func (r *recordingStore) CreateUser(ctx context.Context, req abi.CreateUserRequest) (abi.User, error) {
	t, err := r.st.GetTenantByName(ctx, req.Tenant)
	if err != nil {
		return abi.User{}, err
	}
	u, err := r.st.CreateUser(ctx, store.User{TenantID: t.ID, Username: req.User.Username, Enabled: true,
		Attributes: map[string]any{"created_by": "recording"}})
	if err != nil {
		return abi.User{}, err
	}
	return abi.User{ID: u.ID, Username: u.Username, Enabled: true}, nil
}

func (r *recordingStore) UpdateUser(context.Context, abi.UpdateUserRequest) (abi.User, error) {
	return abi.User{}, store.ErrNotFound
}

func (r *recordingStore) DeleteUser(context.Context, abi.DeleteUserRequest) error { return nil }

// TestJITUsesTheDirectorysPrimaryStore: with a user store directory whose
// primary store is not first in the search order, just-in-time users are
// created in the primary store.
func TestJITUsesTheDirectorysPrimaryStore(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	tenant := sqlitetest.Tenant(t, st, "acme")
	stores := loadUserStores(t, st, []extension.Module{{ID: "userstore.recording", New: func() any { return &recordingStore{st: st} }}},
		extension.InstanceConfig{Name: "recording", Module: "userstore.recording"})
	dir, err := router.New(stores, router.Config{Primary: "recording"})
	if err != nil {
		t.Fatal(err)
	}
	accs := accounts(t, map[string]any{
		federation.DepStore: st, federation.DepDirectory: dir,
		federation.DepUserStores: func(_ context.Context, tenant string) []*extension.Instance { return stores(tenant) },
	})
	acc, err := accs.Resolve(ctx, tenant,
		federation.Identity{IDP: "corp", Subject: "p-1", Username: "paula"}, federation.Policy{JIT: federation.JITCreate}, "")
	if err != nil || !acc.Created {
		t.Fatalf("Resolve: %+v %v", acc, err)
	}
	u, err := st.GetUser(ctx, tenant.ID, acc.UserID)
	if err != nil || u.Attributes["created_by"] != "recording" {
		t.Fatalf("the user was not created in the primary store: %+v %v", u, err)
	}

	// A directory of the wrong type is a wiring mistake.
	bad := extensionEnv(t, map[string]any{
		federation.DepStore: st, federation.DepDirectory: "nope",
		federation.DepUserStores: func(context.Context, string) []*extension.Instance { return nil },
	})
	if _, _, err := federation.Deps(bad, "authn.test"); err == nil {
		t.Fatal("Deps accepted a mistyped directory")
	}
}

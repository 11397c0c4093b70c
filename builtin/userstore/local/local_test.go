package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/userstore"
)

// cheap are argon2id parameters for tests: the tests are about the store,
// not the hash.
var cheap = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

const tenant = "acme"

type env struct {
	st     *sqlite.Store
	hasher *password.Hasher
	tid    string
}

// newEnv opens a migrated SQLite store with the tenant "acme".
func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: tenant, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, hasher: password.NewHasher(cheap), tid: tn.ID}
}

// load loads one userstore.local instance with cfg through a fresh
// registry, with deps (the env's store and hasher when nil).
func (e *env) load(t testing.TB, cfg string, deps map[string]any) (*local.Store, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(local.Module())
	if deps == nil {
		deps = map[string]any{local.DepStore: e.st, local.DepPasswordHasher: e.hasher}
	}
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: local.ID, Config: json.RawMessage(cfg)},
	}, extension.LoadOptions{Deps: deps})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get(string(local.ID))
	s, ok := extension.As[*local.Store](inst)
	if !ok {
		t.Fatalf("instance value is %T", inst.Value())
	}
	return s, nil
}

func (e *env) mustLoad(t testing.TB, cfg string) *local.Store {
	t.Helper()
	s, err := e.load(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addUser stores u in the tenant with pw hashed under params (no password
// when pw is empty).
func (e *env) addUser(t testing.TB, u store.User, pw string, params password.Params) store.User {
	t.Helper()
	u.TenantID = e.tid
	if pw != "" {
		h, err := password.NewHasher(params).Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		u.PasswordHash = h
	}
	u, err := e.st.CreateUser(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAuthenticateUser(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	alice := e.addUser(t, store.User{Username: "alice", Email: "alice@example.com", Enabled: true}, "s3cret-pass", cheap)
	e.addUser(t, store.User{Username: "bob", Enabled: false}, "s3cret-pass", cheap)
	e.addUser(t, store.User{Username: "carol", Enabled: true, LockedUntil: time.Now().Add(time.Hour)}, "s3cret-pass", cheap)
	e.addUser(t, store.User{Username: "dave", Enabled: true, LockedUntil: time.Now().Add(-time.Hour)}, "s3cret-pass", cheap)
	e.addUser(t, store.User{Username: "erin", Enabled: true}, "", cheap)
	e.addUser(t, store.User{Username: "frank", Enabled: true, PasswordHash: "$argon2id$garbage"}, "", cheap)

	tests := []struct {
		name        string
		tenant      string
		username    string
		password    string
		wantOutcome string
		wantUser    string
		wantCode    fault.Code // set: an error with this code
	}{
		{name: "right password", username: "alice", password: "s3cret-pass", wantOutcome: abi.UserAuthenticated, wantUser: alice.ID},
		{name: "username is case-insensitive", username: "ALICE", password: "s3cret-pass", wantOutcome: abi.UserAuthenticated, wantUser: alice.ID},
		{name: "wrong password", username: "alice", password: "nope", wantOutcome: abi.UserInvalidCredentials},
		{name: "password is case-sensitive", username: "alice", password: "S3CRET-PASS", wantOutcome: abi.UserInvalidCredentials},
		{name: "unknown user", username: "mallory", password: "s3cret-pass", wantOutcome: abi.UserUnknown},
		{name: "empty username", username: "", password: "s3cret-pass", wantOutcome: abi.UserUnknown},
		{name: "unknown tenant", tenant: "globex", username: "alice", password: "s3cret-pass", wantOutcome: abi.UserUnknown},
		{name: "disabled account, right password", username: "bob", password: "s3cret-pass", wantOutcome: abi.UserDisabled},
		{name: "locked account, right password", username: "carol", password: "s3cret-pass", wantOutcome: abi.UserLocked},
		{name: "lock expired", username: "dave", password: "s3cret-pass", wantOutcome: abi.UserAuthenticated},
		{name: "account without password", username: "erin", password: "", wantOutcome: abi.UserInvalidCredentials},
		{name: "password over the limit", username: "alice", password: strings.Repeat("x", password.MaxLength+1), wantOutcome: abi.UserInvalidCredentials},
		{name: "unusable stored hash", username: "frank", password: "s3cret-pass", wantCode: fault.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := tt.tenant
			if tn == "" {
				tn = tenant
			}
			resp, err := userstore.CheckAuthenticate(s.AuthenticateUser(t.Context(), abi.AuthenticateUserRequest{
				Tenant: tn, Username: tt.username, Password: tt.password,
			}))
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("error = %v (code %q), want code %q", err, fault.CodeOf(err), tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.wantOutcome {
				t.Fatalf("outcome = %q, want %q", resp.Outcome, tt.wantOutcome)
			}
			if tt.wantUser != "" && resp.User.ID != tt.wantUser {
				t.Errorf("user = %q, want %q", resp.User.ID, tt.wantUser)
			}
			if resp.Outcome != abi.UserAuthenticated && resp.User != nil {
				t.Errorf("outcome %q carries a user", resp.Outcome)
			}
		})
	}
}

// countingHasher counts hashes done by each path. Without simulate it
// hides SimulateVerify, as a bounding wrapper of the node may.
type countingHasher struct {
	h                  *password.Hasher
	verifies, simulate atomic.Int64
}

func (c *countingHasher) Hash(pw string) (string, error) { return c.h.Hash(pw) }
func (c *countingHasher) Verify(pw, enc string) (bool, bool, error) {
	c.verifies.Add(1)
	return c.h.Verify(pw, enc)
}

type simulatingHasher struct{ *countingHasher }

func (s simulatingHasher) SimulateVerify(pw string) { s.simulate.Add(1); s.h.SimulateVerify(pw) }

// TestEveryRefusalCostsAHash checks that the outcomes that skip the real
// check still spend one argon2id run, so timing does not reveal them.
func TestEveryRefusalCostsAHash(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, store.User{Username: "alice", Enabled: true}, "pw-alice-1", cheap)
	e.addUser(t, store.User{Username: "bob", Enabled: false}, "pw-bob-1", cheap)
	e.addUser(t, store.User{Username: "carol", Enabled: true, LockedUntil: time.Now().Add(time.Hour)}, "pw-carol-1", cheap)
	e.addUser(t, store.User{Username: "erin", Enabled: true}, "", cheap)
	for _, simulate := range []bool{true, false} {
		t.Run("SimulateVerify="+strconv.FormatBool(simulate), func(t *testing.T) {
			c := &countingHasher{h: e.hasher}
			var h any = c
			if simulate {
				h = simulatingHasher{c}
			}
			s, err := e.load(t, `{}`, map[string]any{local.DepStore: e.st, local.DepPasswordHasher: h})
			if err != nil {
				t.Fatal(err)
			}
			for _, user := range []string{"alice", "mallory", "bob", "carol", "erin"} {
				before := c.verifies.Load() + c.simulate.Load()
				if _, err := s.AuthenticateUser(t.Context(), abi.AuthenticateUserRequest{Tenant: tenant, Username: user, Password: "guess"}); err != nil {
					t.Fatal(err)
				}
				if n := c.verifies.Load() + c.simulate.Load() - before; n != 1 {
					t.Errorf("%s: %d hashes, want 1", user, n)
				}
			}
			if simulate && c.simulate.Load() != 4 {
				t.Errorf("SimulateVerify ran %d times, want 4", c.simulate.Load())
			}
		})
	}
}

func TestRehashOnLogin(t *testing.T) {
	old := cheap
	old.Memory = 128
	tests := []struct {
		name        string
		config      string
		params      password.Params
		wantUpgrade bool
	}{
		{name: "old parameters are upgraded", config: `{}`, params: old, wantUpgrade: true},
		{name: "current parameters are kept", config: `{}`, params: cheap},
		{name: "read-only store keeps the old hash", config: `{"read_only": true}`, params: old},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.mustLoad(t, tt.config)
			u := e.addUser(t, store.User{Username: "alice", Enabled: true}, "pw-alice-1", tt.params)
			resp, err := s.AuthenticateUser(t.Context(), abi.AuthenticateUserRequest{Tenant: tenant, Username: "alice", Password: "pw-alice-1"})
			if err != nil || resp.Outcome != abi.UserAuthenticated {
				t.Fatalf("AuthenticateUser = %+v, %v", resp, err)
			}
			stored, err := e.st.GetUser(t.Context(), e.tid, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if upgraded := stored.PasswordHash != u.PasswordHash; upgraded != tt.wantUpgrade {
				t.Fatalf("hash upgraded = %v, want %v", upgraded, tt.wantUpgrade)
			}
			wantRehash := tt.params != cheap && !tt.wantUpgrade
			if ok, rehash, err := e.hasher.Verify("pw-alice-1", stored.PasswordHash); !ok || err != nil || rehash != wantRehash {
				t.Errorf("stored hash: ok=%v needsRehash=%v err=%v", ok, rehash, err)
			}
			if tt.wantUpgrade && resp.User.Version != stored.Version {
				t.Errorf("answered version %d, stored %d", resp.User.Version, stored.Version)
			}
		})
	}
}

func TestFindUsers(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	var ids []string
	for i, a := range []map[string]any{
		{"department": "sales", "level": float64(3)},
		{"department": "sales", "roles": []any{"admin", "auditor"}},
		{"department": "support", "active": true},
		{"department": "sales"},
		nil,
	} {
		u := e.addUser(t, store.User{
			Username: "user" + strconv.Itoa(i), Email: "user" + strconv.Itoa(i) + "@example.com",
			Enabled: true, Attributes: a,
		}, "", cheap)
		ids = append(ids, u.ID)
	}
	tests := []struct {
		name     string
		req      abi.FindUsersRequest
		wantIDs  []string
		wantNext bool
		wantCode fault.Code
	}{
		{name: "everyone", req: abi.FindUsersRequest{}, wantIDs: ids},
		{name: "by username, any case", req: abi.FindUsersRequest{Username: "USER2"}, wantIDs: ids[2:3]},
		{name: "by email", req: abi.FindUsersRequest{Email: "user3@example.com"}, wantIDs: ids[3:4]},
		{name: "by string attribute", req: abi.FindUsersRequest{Attributes: map[string]string{"department": "sales"}}, wantIDs: []string{ids[0], ids[1], ids[3]}},
		{name: "by number attribute", req: abi.FindUsersRequest{Attributes: map[string]string{"level": "3"}}, wantIDs: ids[0:1]},
		{name: "by boolean attribute", req: abi.FindUsersRequest{Attributes: map[string]string{"active": "true"}}, wantIDs: ids[2:3]},
		{name: "by array element", req: abi.FindUsersRequest{Attributes: map[string]string{"roles": "auditor"}}, wantIDs: ids[1:2]},
		{name: "attributes and username", req: abi.FindUsersRequest{Username: "user1", Attributes: map[string]string{"department": "sales"}}, wantIDs: ids[1:2]},
		{name: "no match", req: abi.FindUsersRequest{Attributes: map[string]string{"department": "legal"}}, wantIDs: nil},
		{name: "first page", req: abi.FindUsersRequest{Limit: 2}, wantIDs: ids[0:2], wantNext: true},
		{name: "next page", req: abi.FindUsersRequest{Limit: 2, Cursor: ids[1]}, wantIDs: ids[2:4], wantNext: true},
		{name: "last page", req: abi.FindUsersRequest{Limit: 2, Cursor: ids[3]}, wantIDs: ids[4:5]},
		{name: "filtered first page", req: abi.FindUsersRequest{Limit: 2, Attributes: map[string]string{"department": "sales"}}, wantIDs: ids[0:2], wantNext: true},
		{name: "filtered next page", req: abi.FindUsersRequest{Limit: 2, Cursor: ids[1], Attributes: map[string]string{"department": "sales"}}, wantIDs: ids[3:4]},
		{name: "unknown tenant", req: abi.FindUsersRequest{Tenant: "globex"}, wantIDs: nil},
		{name: "negative limit", req: abi.FindUsersRequest{Limit: -1}, wantCode: fault.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Tenant == "" {
				tt.req.Tenant = tenant
			}
			resp, err := s.FindUsers(t.Context(), tt.req)
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("error = %v, want code %q", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range resp.Users {
				got = append(got, u.ID)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("users = %v, want %v", got, tt.wantIDs)
			}
			if (resp.Next != "") != tt.wantNext {
				t.Errorf("next = %q, want a cursor: %v", resp.Next, tt.wantNext)
			}
			if resp.Users == nil {
				t.Error("users is nil, want an empty list")
			}
		})
	}
}

func TestGetUser(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	u := e.addUser(t, store.User{
		Username: "alice", Email: "alice@example.com", EmailVerified: true, GivenName: "Alice",
		Enabled: true, LockedUntil: time.Now().Add(time.Hour), Attributes: map[string]any{"department": "sales"},
	}, "pw-alice-1", cheap)
	tests := []struct {
		name   string
		tenant string
		id     string
		want   *abi.User
		wantIs error
	}{
		{name: "found", id: u.ID, want: &abi.User{
			ID: u.ID, Username: "alice", Email: "alice@example.com", EmailVerified: true, GivenName: "Alice",
			Enabled: true, Locked: true, Attributes: map[string]any{"department": "sales"}, Version: 1,
		}},
		{name: "unknown id", id: "nope", wantIs: userstore.ErrNotFound},
		{name: "other tenant", tenant: "globex", id: u.ID, wantIs: userstore.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := tt.tenant
			if tn == "" {
				tn = tenant
			}
			got, err := s.GetUser(t.Context(), abi.GetUserRequest{Tenant: tn, ID: tt.id})
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("error = %v, want %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gj, wj := mustJSON(t, got), mustJSON(t, *tt.want); gj != wj {
				t.Errorf("user = %s\nwant %s", gj, wj)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriter(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	ctx := t.Context()
	authn := func(user, pw string) string {
		t.Helper()
		resp, err := s.AuthenticateUser(ctx, abi.AuthenticateUserRequest{Tenant: tenant, Username: user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Outcome
	}

	created, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: tenant, User: abi.User{Username: "alice", Email: "a@example.com", Enabled: true}, Password: "first-pass"})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.st.GetUser(ctx, e.tid, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored password is not an argon2id hash: %q", stored.PasswordHash)
	}

	steps := []struct {
		name    string
		do      func() error
		wantIs  error
		user    string
		pw      string
		outcome string // of authenticating user with pw afterwards
	}{
		{name: "created user authenticates", do: func() error { return nil }, user: "alice", pw: "first-pass", outcome: abi.UserAuthenticated},
		{name: "taken username", do: func() error {
			_, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: tenant, User: abi.User{Username: "ALICE"}})
			return err
		}, wantIs: userstore.ErrConflict},
		{name: "password over the limit", do: func() error {
			_, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: tenant, User: abi.User{Username: "bob"}, Password: strings.Repeat("x", password.MaxLength+1)})
			return err
		}, wantIs: fault.InvalidRequest},
		{name: "empty username", do: func() error {
			_, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: tenant, User: abi.User{}})
			return err
		}, wantIs: fault.InvalidRequest},
		{name: "unknown tenant", do: func() error {
			_, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: "globex", User: abi.User{Username: "bob"}})
			return err
		}, wantIs: fault.NotFound},
		{name: "update without password keeps it", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice", DisplayName: "Alice", Enabled: true}})
			return err
		}, user: "alice", pw: "first-pass", outcome: abi.UserAuthenticated},
		{name: "update with a stale version", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice", Version: 1}})
			return err
		}, wantIs: userstore.ErrVersionMismatch},
		{name: "update with the current version and a new password", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice", Enabled: true, Version: 2}, Password: "second-pass"})
			return err
		}, user: "alice", pw: "second-pass", outcome: abi.UserAuthenticated},
		{name: "lock", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice", Enabled: true, Locked: true}})
			return err
		}, user: "alice", pw: "second-pass", outcome: abi.UserLocked},
		{name: "unlock", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice", Enabled: true}})
			return err
		}, user: "alice", pw: "second-pass", outcome: abi.UserAuthenticated},
		{name: "disable", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: created.ID, Username: "alice"}})
			return err
		}, user: "alice", pw: "second-pass", outcome: abi.UserDisabled},
		{name: "update unknown user", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: "nope", Username: "x"}})
			return err
		}, wantIs: userstore.ErrNotFound},
		{name: "delete", do: func() error {
			return s.DeleteUser(ctx, abi.DeleteUserRequest{Tenant: tenant, ID: created.ID})
		}, user: "alice", pw: "second-pass", outcome: abi.UserUnknown},
		{name: "delete again", do: func() error {
			return s.DeleteUser(ctx, abi.DeleteUserRequest{Tenant: tenant, ID: created.ID})
		}, wantIs: userstore.ErrNotFound},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			if st.wantIs != nil {
				if !errors.Is(err, st.wantIs) {
					t.Fatalf("error = %v, want %v", err, st.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.user != "" {
				if got := authn(st.user, st.pw); got != st.outcome {
					t.Errorf("authenticating afterwards: %q, want %q", got, st.outcome)
				}
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{"read_only": true}`)
	u := e.addUser(t, store.User{Username: "alice", Enabled: true}, "pw-alice-1", cheap)
	ctx := t.Context()
	tests := []struct {
		name string
		do   func() error
	}{
		{name: "create", do: func() error {
			_, err := s.CreateUser(ctx, abi.CreateUserRequest{Tenant: tenant, User: abi.User{Username: "bob"}})
			return err
		}},
		{name: "update", do: func() error {
			_, err := s.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenant, User: abi.User{ID: u.ID, Username: "alice"}})
			return err
		}},
		{name: "delete", do: func() error { return s.DeleteUser(ctx, abi.DeleteUserRequest{Tenant: tenant, ID: u.ID}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, userstore.ErrReadOnly) {
				t.Fatalf("error = %v, want ErrReadOnly", err)
			}
		})
	}
	if n, _ := e.st.CountUsers(ctx, e.tid); n != 1 {
		t.Errorf("%d users stored, want 1", n)
	}
}

func TestListGroups(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	ctx := t.Context()
	u := e.addUser(t, store.User{Username: "alice", Enabled: true}, "", cheap)
	var ids []string
	for _, name := range []string{"ops", "dev", "sales"} {
		g, err := e.st.CreateGroup(ctx, store.Group{TenantID: e.tid, Name: name, Description: name + " team"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
		if name != "sales" {
			if err := e.st.AddGroupMember(ctx, e.tid, g.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name      string
		req       abi.ListGroupsRequest
		wantNames []string
		wantNext  string
		wantCode  fault.Code
	}{
		{name: "every group in id order", req: abi.ListGroupsRequest{}, wantNames: []string{"ops", "dev", "sales"}},
		{name: "first page", req: abi.ListGroupsRequest{Limit: 2}, wantNames: []string{"ops", "dev"}, wantNext: "<id>"},
		{name: "second page", req: abi.ListGroupsRequest{Limit: 2, Cursor: ids[1]}, wantNames: []string{"sales"}},
		{name: "a user's groups in name order", req: abi.ListGroupsRequest{UserID: u.ID}, wantNames: []string{"dev", "ops"}},
		{name: "a user's groups, paged", req: abi.ListGroupsRequest{UserID: u.ID, Limit: 1}, wantNames: []string{"dev"}, wantNext: "1"},
		{name: "a user's groups, next page", req: abi.ListGroupsRequest{UserID: u.ID, Limit: 1, Cursor: "1"}, wantNames: []string{"ops"}},
		{name: "a user's groups, past the end", req: abi.ListGroupsRequest{UserID: u.ID, Cursor: "9"}, wantNames: nil},
		{name: "malformed cursor", req: abi.ListGroupsRequest{UserID: u.ID, Cursor: "x"}, wantCode: fault.CodeInvalidRequest},
		{name: "unknown tenant", req: abi.ListGroupsRequest{Tenant: "globex"}, wantNames: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Tenant == "" {
				tt.req.Tenant = tenant
			}
			resp, err := s.ListGroups(ctx, tt.req)
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("error = %v, want code %q", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range resp.Groups {
				names = append(names, g.Name)
				if g.Description != g.Name+" team" {
					t.Errorf("group %s: description %q", g.Name, g.Description)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("groups = %v, want %v", names, tt.wantNames)
			}
			switch tt.wantNext {
			case "<id>":
				if resp.Next == "" {
					t.Error("no next cursor")
				}
			default:
				if resp.Next != tt.wantNext {
					t.Errorf("next = %q, want %q", resp.Next, tt.wantNext)
				}
			}
		})
	}
}

func TestDatabaseDown(t *testing.T) {
	e := newEnv(t)
	s := e.mustLoad(t, `{}`)
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name string
		do   func() error
	}{
		{name: "authenticate", do: func() error {
			_, err := s.AuthenticateUser(ctx, abi.AuthenticateUserRequest{Tenant: tenant, Username: "alice", Password: "pw"})
			return err
		}},
		{name: "get", do: func() error { _, err := s.GetUser(ctx, abi.GetUserRequest{Tenant: tenant, ID: "x"}); return err }},
		{name: "find", do: func() error { _, err := s.FindUsers(ctx, abi.FindUsersRequest{Tenant: tenant}); return err }},
		{name: "health", do: func() error { return s.Health(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, fault.Unavailable) {
				t.Fatalf("error = %v, want an unavailable fault", err)
			}
		})
	}
}

func TestProvisionNeedsDependencies(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		deps map[string]any
	}{
		{name: "no store", deps: map[string]any{local.DepPasswordHasher: e.hasher}},
		{name: "no hasher", deps: map[string]any{local.DepStore: e.st}},
		{name: "store of the wrong type", deps: map[string]any{local.DepStore: "db", local.DepPasswordHasher: e.hasher}},
		{name: "hasher of the wrong type", deps: map[string]any{local.DepStore: e.st, local.DepPasswordHasher: password.DefaultParams}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.load(t, `{}`, tt.deps)
			if !errors.Is(err, local.ErrDependency) {
				t.Fatalf("error = %v, want ErrDependency", err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "empty", config: `{}`},
		{name: "read only", config: `{"read_only": true}`},
		{name: "unknown field", config: `{"readonly": true}`, wantErr: "config.readonly: unknown field"},
		{name: "wrong type", config: `{"read_only": "yes"}`, wantErr: "config.read_only: must be of type boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.load(t, tt.config, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *extension.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want a config error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestREADMEExamples loads every JSON example of the README, so that the
// documentation cannot drift from the schema.
func TestREADMEExamples(t *testing.T) {
	e := newEnv(t)
	examples := readmeExamples(t)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if _, err := e.load(t, ex, nil); err != nil {
				t.Fatalf("loading README example %s: %v", ex, err)
			}
		})
	}
}

var jsonFence = regexp.MustCompile("(?s)```json\n(.*?)```")

func readmeExamples(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range jsonFence.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func BenchmarkAuthenticateUser(b *testing.B) {
	e := newEnv(b)
	s := e.mustLoad(b, `{}`)
	e.addUser(b, store.User{Username: "alice", Enabled: true}, "pw-alice-1", cheap)
	for _, bb := range []struct{ name, user, pw string }{
		{"authenticated", "alice", "pw-alice-1"},
		{"wrong_password", "alice", "guess"},
		{"unknown_user", "mallory", "guess"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := abi.AuthenticateUserRequest{Tenant: tenant, Username: bb.user, Password: bb.pw}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.AuthenticateUser(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

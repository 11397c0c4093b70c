package router_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// memStore is a hand-written user store: users in id order, cursors are
// offsets, passwords are "pw-" + username. The real stores (SQL and
// LDAP behind one router) are tested in builtin/userstore/ldap.
type memStore struct {
	Prefix string `json:"prefix"`
	Count  int    `json:"count"`
	users  []abi.User
}

func (m *memStore) Provision(context.Context, extension.Env) error {
	for i := range m.Count {
		m.users = append(m.users, abi.User{ID: fmt.Sprintf("%s-%03d", m.Prefix, i), Username: fmt.Sprintf("%s%d", m.Prefix, i), Enabled: true})
	}
	m.users = append(m.users, abi.User{ID: m.Prefix + "-shared", Username: "shared", Enabled: true})
	return nil
}

func (m *memStore) GetUser(_ context.Context, req abi.GetUserRequest) (abi.User, error) {
	for _, u := range m.users {
		if u.ID == req.ID {
			return u, nil
		}
	}
	return abi.User{}, userstore.ErrNotFound
}

func (m *memStore) FindUsers(_ context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	off := 0
	if req.Cursor != "" {
		n, err := strconv.Atoi(req.Cursor)
		if err != nil || n < 0 {
			return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessage("malformed cursor")
		}
		off = n
	}
	var match []abi.User
	for _, u := range m.users {
		if req.Username == "" || strings.EqualFold(u.Username, req.Username) {
			match = append(match, u)
		}
	}
	match = match[min(off, len(match)):]
	limit := req.Limit
	if limit == 0 {
		limit = 100
	}
	next := ""
	if len(match) > limit {
		match, next = match[:limit], strconv.Itoa(off+limit)
	}
	return abi.FindUsersResponse{Users: match, Next: next}, nil
}

func (m *memStore) AuthenticateUser(_ context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	for _, u := range m.users {
		if strings.EqualFold(u.Username, req.Username) {
			if req.Password != "pw-"+m.Prefix {
				return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
			}
			return abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &u}, nil
		}
	}
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

// writable adds the Writer ability.
type writable struct{ memStore }

func (w *writable) CreateUser(_ context.Context, req abi.CreateUserRequest) (abi.User, error) {
	u := req.User
	u.ID = w.Prefix + "-new"
	w.users = append(w.users, u)
	return u, nil
}

func (w *writable) UpdateUser(_ context.Context, req abi.UpdateUserRequest) (abi.User, error) {
	return req.User, nil
}

func (w *writable) DeleteUser(context.Context, abi.DeleteUserRequest) error { return nil }

func load(t testing.TB, cfg router.Config) *router.Router {
	t.Helper()
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "userstore.mem", New: func() any { return new(memStore) }})
	reg.Register(extension.Module{ID: "userstore.memw", New: func() any { return new(writable) }})
	set, err := reg.Load(context.Background(), []extension.InstanceConfig{
		{Name: "a", Module: "userstore.memw", Config: []byte(`{"prefix":"a","count":5}`)},
		{Name: "b", Module: "userstore.mem", Config: []byte(`{"prefix":"b","count":7}`)},
		{Name: "c", Module: "userstore.memw", Config: []byte(`{"prefix":"c","count":0}`)},
	}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	r, err := router.New(func(string) []*extension.Instance { return set.Enabled("t", extension.KindUserStore) }, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMembers(t *testing.T) {
	r := load(t, router.Config{Domains: map[string]string{"b": "DIR"}, TenantPrimary: map[string]string{"t": "b"}})
	var got []string
	for _, m := range r.Members("t") {
		got = append(got, m.Domain+"="+m.Instance.Name())
	}
	// The primary keeps its place in the search order.
	if want := []string{"A=a", "PRIMARY=b", "C=c"}; !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if p, err := r.Primary("t"); err != nil || p.Instance.Name() != "b" {
		t.Fatalf("primary %v %v", p, err)
	}
	// A primary that is not among the tenant's stores falls back to the
	// first.
	r = load(t, router.Config{Primary: "nope"})
	if p, _ := r.Primary("t"); p.Instance.Name() != "a" {
		t.Fatalf("fallback primary %q", p.Instance.Name())
	}
}

func TestPagingAcrossStores(t *testing.T) {
	r := load(t, router.Config{})
	for _, limit := range []int{1, 2, 3, 6, 7, 100} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			var ids []string
			cursor := ""
			for range 100 {
				resp, err := r.FindUsers(t.Context(), "t", abi.FindUsersRequest{Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Users) > limit {
					t.Fatalf("%d users in a page of %d", len(resp.Users), limit)
				}
				for _, u := range resp.Users {
					ids = append(ids, u.ID)
				}
				if cursor = resp.Next; cursor == "" {
					break
				}
			}
			if len(ids) != 6+8+1 || ids[0] != "a-000" || ids[6] != "B:b-000" || ids[14] != "C:c-shared" {
				t.Fatalf("listed %v", ids)
			}
		})
	}
}

func TestAuthenticateOrder(t *testing.T) {
	r := load(t, router.Config{})
	ctx := t.Context()
	for _, tc := range []struct {
		username, password, outcome, id string
	}{
		{"shared", "pw-a", abi.UserAuthenticated, "a-shared"},
		{"shared", "pw-b", abi.UserInvalidCredentials, ""}, // the first store that knows it decides
		{"B/shared", "pw-b", abi.UserAuthenticated, "B:b-shared"},
		{"b/shared", "pw-b", abi.UserAuthenticated, "B:b-shared"},
		{"b3", "pw-b", abi.UserAuthenticated, "B:b-003"},
		{"PRIMARY/b3", "pw-b", abi.UserUnknown, ""},
		{"X/shared", "pw-a", abi.UserUnknown, ""},
	} {
		res, err := r.Authenticate(ctx, "t", tc.username, tc.password)
		if err != nil {
			t.Fatalf("%s: %v", tc.username, err)
		}
		if res.Response.Outcome != tc.outcome {
			t.Errorf("%s/%s: outcome %s, want %s", tc.username, tc.password, res.Response.Outcome, tc.outcome)
			continue
		}
		if tc.id != "" && res.Response.User.ID != tc.id {
			t.Errorf("%s: id %s, want %s", tc.username, res.Response.User.ID, tc.id)
		}
	}
}

func TestWrites(t *testing.T) {
	r := load(t, router.Config{})
	ctx := t.Context()
	u, err := r.CreateUser(ctx, "t", "", abi.CreateUserRequest{User: abi.User{Username: "new"}})
	if err != nil || u.ID != "a-new" {
		t.Fatalf("create in primary: %v %v", u, err)
	}
	u, err = r.CreateUser(ctx, "t", "c", abi.CreateUserRequest{User: abi.User{Username: "new"}})
	if err != nil || u.ID != "C:c-new" || u.Username != "C/new" {
		t.Fatalf("create in C: %v %v", u, err)
	}
	_, err = r.CreateUser(ctx, "t", "B", abi.CreateUserRequest{User: abi.User{Username: "new"}})
	var f *fault.Error
	if !errors.Is(err, userstore.ErrReadOnly) || !errors.As(err, &f) || !strings.Contains(f.Message, "domain B is read-only") {
		t.Fatalf("create in B: %v", err)
	}
	if err := r.DeleteUser(ctx, "t", "B:b-001"); !errors.Is(err, userstore.ErrReadOnly) {
		t.Fatalf("delete in B: %v", err)
	}
	got, err := r.UpdateUser(ctx, "t", abi.UpdateUserRequest{User: abi.User{ID: "C:c-new", Username: "C/renamed"}})
	if err != nil || got.ID != "C:c-new" || got.Username != "C/renamed" {
		t.Fatalf("update in C: %v %v", got, err)
	}
}

// FuzzDirectoryInput feeds client-controlled cursors, usernames and ids to
// the router: it must answer or refuse with a fault, never panic, and
// never hand out a page larger than asked.
func FuzzDirectoryInput(f *testing.F) {
	for _, s := range []string{"", "0.", "1.3", "2.", "9.x", "-1.", "1.-5", "B/shared", "B:b-001", "PRIMARY/x", "/", ":", "B/", "B:", "0000000.1"} {
		f.Add(s)
	}
	r := load(f, router.Config{})
	f.Fuzz(func(t *testing.T, s string) {
		ctx := context.Background()
		resp, err := r.FindUsers(ctx, "t", abi.FindUsersRequest{Cursor: s, Limit: 3})
		var fe *fault.Error
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("cursor %q: %v is not a fault", s, err)
		}
		if len(resp.Users) > 3 {
			t.Fatalf("cursor %q: page of %d", s, len(resp.Users))
		}
		if _, err := r.FindUsers(ctx, "t", abi.FindUsersRequest{Username: s}); err != nil && !errors.As(err, &fe) {
			t.Fatalf("username %q: %v", s, err)
		}
		if _, _, err := r.GetUser(ctx, "t", s); err != nil && !errors.As(err, &fe) {
			t.Fatalf("id %q: %v", s, err)
		}
		if _, err := r.Authenticate(ctx, "t", s, "pw"); err != nil {
			t.Fatalf("login %q: %v", s, err)
		}
	})
}

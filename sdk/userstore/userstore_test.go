//go:build !wasip1

package userstore_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/userstore"
)

// memStore is a writable store with groups: every optional interface.
type memStore struct {
	users  map[string]abi.User
	groups []abi.Group
}

func (m *memStore) GetUser(req abi.GetUserRequest) (abi.User, error) {
	u, ok := m.users[req.ID]
	if !ok {
		return abi.User{}, plugin.ErrNotFound
	}
	return u, nil
}

func (m *memStore) FindUsers(req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	var out abi.FindUsersResponse
	for _, u := range m.users {
		if u.Username == req.Username {
			out.Users = append(out.Users, u)
		}
	}
	return out, nil
}

func (m *memStore) AuthenticateUser(req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{}, errors.New("the directory at ldap://10.0.0.3 is down")
}

func (m *memStore) CreateUser(req abi.CreateUserRequest) (abi.User, error) {
	for _, u := range m.users {
		if u.Username == req.User.Username {
			return abi.User{}, plugin.ErrConflict.WithMessage("username taken")
		}
	}
	u := req.User
	u.ID, u.Version = "u-"+u.Username, 1
	m.users[u.ID] = u
	return u, nil
}

func (m *memStore) UpdateUser(req abi.UpdateUserRequest) (abi.User, error) {
	old, ok := m.users[req.User.ID]
	switch {
	case !ok:
		return abi.User{}, plugin.ErrNotFound
	case req.User.Version != 0 && req.User.Version != old.Version:
		return abi.User{}, plugin.ErrPreconditionFailed
	}
	u := req.User
	u.Version = old.Version + 1
	m.users[u.ID] = u
	return u, nil
}

func (m *memStore) DeleteUser(req abi.DeleteUserRequest) error {
	if _, ok := m.users[req.ID]; !ok {
		return plugin.ErrNotFound
	}
	delete(m.users, req.ID)
	return nil
}

func (m *memStore) ListGroups(req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	return abi.ListGroupsResponse{Groups: m.groups, Next: "c2"}, nil
}

var (
	_ userstore.Store       = (*memStore)(nil)
	_ userstore.Creator     = (*memStore)(nil)
	_ userstore.Updater     = (*memStore)(nil)
	_ userstore.Deleter     = (*memStore)(nil)
	_ userstore.GroupLister = (*memStore)(nil)
)

var mem = &memStore{users: map[string]abi.User{}, groups: []abi.Group{{ID: "g-1", Name: "admins", Description: "root"}}}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	userstore.Register("mem", mem)
}

func TestWritableStore(t *testing.T) {
	h := plugintest.New(t)
	created, err := h.CreateUser("mem", abi.CreateUserRequest{Tenant: "acme", User: abi.User{Username: "carol", Enabled: true,
		Attributes: map[string]any{"dept": "sales"}}, Password: "pw"})
	want := abi.User{ID: "u-carol", Username: "carol", Enabled: true, Attributes: map[string]any{"dept": "sales"}, Version: 1}
	if err != nil || !reflect.DeepEqual(created, want) {
		t.Fatalf("CreateUser = %+v, %v", created, err)
	}
	steps := []struct {
		name     string
		call     func() error
		wantCode string
	}{
		{"create a taken username", func() error {
			_, err := h.CreateUser("mem", abi.CreateUserRequest{User: abi.User{Username: "carol"}})
			return err
		}, abi.CodeConflict},
		{"get", func() error {
			u, err := h.GetUser("mem", abi.GetUserRequest{ID: "u-carol"})
			if err == nil && !reflect.DeepEqual(u, want) {
				t.Errorf("GetUser = %+v", u)
			}
			return err
		}, ""},
		{"find", func() error {
			r, err := h.FindUsers("mem", abi.FindUsersRequest{Username: "carol"})
			if err == nil && len(r.Users) != 1 {
				t.Errorf("FindUsers = %+v", r)
			}
			return err
		}, ""},
		{"update with a stale version", func() error {
			_, err := h.UpdateUser("mem", abi.UpdateUserRequest{User: abi.User{ID: "u-carol", Username: "carol", Version: 7}})
			return err
		}, abi.CodePreconditionFailed},
		{"update", func() error {
			u, err := h.UpdateUser("mem", abi.UpdateUserRequest{User: abi.User{ID: "u-carol", Username: "carol", DisplayName: "Carol", Version: 1}})
			if err == nil && (u.Version != 2 || u.DisplayName != "Carol") {
				t.Errorf("UpdateUser = %+v", u)
			}
			return err
		}, ""},
		{"list groups", func() error {
			r, err := h.ListGroups("mem", abi.ListGroupsRequest{UserID: "u-carol"})
			if err == nil && (len(r.Groups) != 1 || r.Groups[0].Name != "admins" || r.Next != "c2") {
				t.Errorf("ListGroups = %+v", r)
			}
			return err
		}, ""},
		{"authenticate while the directory is down", func() error {
			r, err := h.AuthenticateUser("mem", abi.AuthenticateUserRequest{Username: "carol", Password: "pw"})
			if r.Error == nil || r.Error.Message != "internal error" {
				t.Errorf("AuthenticateUser = %+v", r)
			}
			return err
		}, abi.CodeInternal},
		{"delete", func() error { return h.DeleteUser("mem", abi.DeleteUserRequest{ID: "u-carol"}) }, ""},
		{"delete again", func() error { return h.DeleteUser("mem", abi.DeleteUserRequest{ID: "u-carol"}) }, abi.CodeNotFound},
		{"get deleted", func() error {
			_, err := h.GetUser("mem", abi.GetUserRequest{ID: "u-carol"})
			return err
		}, abi.CodeNotFound},
	}
	for _, s := range steps {
		if got := codeOf(s.call()); got != s.wantCode {
			t.Errorf("%s: code %q, want %q", s.name, got, s.wantCode)
		}
	}
}

func TestReadOnlyStoreAnswersUnsupported(t *testing.T) {
	h := plugintest.New(t)
	calls := map[string]func() error{
		"create": func() error { _, err := h.CreateUser("staff", abi.CreateUserRequest{}); return err },
		"update": func() error { _, err := h.UpdateUser("staff", abi.UpdateUserRequest{}); return err },
		"delete": func() error { return h.DeleteUser("staff", abi.DeleteUserRequest{ID: "u-1"}) },
		"groups": func() error { _, err := h.ListGroups("staff", abi.ListGroupsRequest{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, plugin.ErrUnsupported) {
			t.Errorf("%s: %v, want unsupported", name, err)
		}
	}
}

func TestUnknownUserStoreOp(t *testing.T) {
	h := plugintest.New(t)
	// Op 55 is in the user-store range but not defined: the contract's
	// kind check answers it before the store sees it.
	call, _ := (&abi.Call{Op: 55, Entry: h.Entry("mem")}).AppendWire(nil)
	var r abi.Reply
	if err := r.UnmarshalWire(h.Call(call)); err != nil || r.Error == nil || r.Error.Code != abi.CodeUnsupported {
		t.Errorf("reply %+v, %v", r, err)
	}
}

func codeOf(err error) string {
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

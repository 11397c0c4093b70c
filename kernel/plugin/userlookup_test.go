package plugin_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// dirStore is a hand-written user store: its users are named in the
// configuration, with the ids "<prefix>-<username>", in name order.
type dirStore struct {
	Prefix string   `json:"prefix"`
	Names  []string `json:"names"`
}

func (d *dirStore) user(name string) abi.User {
	return abi.User{ID: d.Prefix + "-" + name, Username: name, Enabled: true}
}

func (d *dirStore) GetUser(_ context.Context, req abi.GetUserRequest) (abi.User, error) {
	for _, n := range d.Names {
		if d.Prefix+"-"+n == req.ID {
			return d.user(n), nil
		}
	}
	return abi.User{}, userstore.ErrNotFound
}

// FindUsers pages by offset: the cursor is the number of users before it.
func (d *dirStore) FindUsers(_ context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	var match []abi.User
	for _, n := range d.Names {
		if req.Username == "" || strings.EqualFold(n, req.Username) {
			match = append(match, d.user(n))
		}
	}
	off, _ := strconv.Atoi(req.Cursor)
	match = match[min(off, len(match)):]
	out := abi.FindUsersResponse{Users: match}
	if req.Limit > 0 && len(match) > req.Limit {
		out.Users, out.Next = match[:req.Limit], strconv.Itoa(off+req.Limit)
	}
	return out, nil
}

func (d *dirStore) AuthenticateUser(context.Context, abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

var _ userstore.Store = (*dirStore)(nil)

// lookupDirectory is the tenant acme's directory: the primary store
// "local" (alice, dave), then "corp" as domain LDAP (alice, erin).
func lookupDirectory(t *testing.T) *router.Router {
	t.Helper()
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "userstore.local", New: func() any { return new(dirStore) }})
	reg.Register(extension.Module{ID: "userstore.corp", New: func() any { return new(dirStore) }})
	set, err := reg.Load(context.Background(), []extension.InstanceConfig{
		{Name: "local", Module: "userstore.local", Config: []byte(`{"prefix":"local","names":["alice","dave"]}`)},
		{Name: "corp", Module: "userstore.corp", Config: []byte(`{"prefix":"corp","names":["alice","erin"]}`)},
	}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	r, err := router.New(func(string) []*extension.Instance { return set.Enabled("acme", extension.KindUserStore) },
		router.Config{Domains: map[string]string{"corp": "LDAP"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func userIDs(us []abi.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID + "=" + u.Username
	}
	return out
}

// TestHostCallsUserLookupDomains: a plugin's user look-ups go through the
// tenant's user store domains as logins do: qualified usernames ask their
// store, plain ones the search order, ids route to their store, listings
// page across the stores, and the plugin's own stores are left out.
func TestHostCallsUserLookupDomains(t *testing.T) {
	env := newHostEnv(t)
	dir := lookupDirectory(t)
	h := env.calls(t, []string{abi.CapabilityUserLookup}, func(o *plugin.HostOptions) {
		o.Directory = func() *router.Router { return dir }
	})
	find := func(req abi.FindUsersRequest) []string {
		t.Helper()
		req.Tenant = "acme"
		var resp abi.FindUsersResponse
		wantCode(t, hostCall(t, h, "acme", abi.HostOpFindUsers, &req, &resp), "")
		if resp.Error != nil {
			t.Fatalf("find %+v: %s: %s", req, resp.Error.Code, resp.Error.Message)
		}
		return userIDs(resp.Users)
	}
	for _, tc := range []struct {
		name, username string
		want           []string
	}{
		{"a plain name is the first store's user", "alice", []string{"local-alice=alice"}},
		{"a qualified name asks its store only", "LDAP/alice", []string{"LDAP:corp-alice=LDAP/alice"}},
		{"the domain is case-insensitive", "ldap/alice", []string{"LDAP:corp-alice=LDAP/alice"}},
		{"a plain name falls through the search order", "erin", []string{"LDAP:corp-erin=LDAP/erin"}},
		{"PRIMARY names the primary store", "PRIMARY/erin", []string{}},
		{"a qualified name does not fall back", "LDAP/dave", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := find(abi.FindUsersRequest{Username: tc.username}); !slices.Equal(got, tc.want) {
				t.Errorf("find %q = %v, want %v", tc.username, got, tc.want)
			}
		})
	}

	// Listings page across the stores, in search order.
	var page abi.FindUsersResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpFindUsers, &abi.FindUsersRequest{Tenant: "acme", Limit: 3}, &page), "")
	if got := userIDs(page.Users); !slices.Equal(got, []string{"local-alice=alice", "local-dave=dave", "LDAP:corp-alice=LDAP/alice"}) || page.Next == "" {
		t.Fatalf("first page %v, next %q", got, page.Next)
	}
	var rest abi.FindUsersResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpFindUsers, &abi.FindUsersRequest{Tenant: "acme", Limit: 3, Cursor: page.Next}, &rest), "")
	if got := userIDs(rest.Users); !slices.Equal(got, []string{"LDAP:corp-erin=LDAP/erin"}) || rest.Next != "" {
		t.Fatalf("second page %v, next %q", got, rest.Next)
	}

	// Ids route to the store that made them.
	get := func(id string) (abi.UserResponse, *abi.Error) {
		var resp abi.UserResponse
		e := hostCall(t, h, "acme", abi.HostOpGetUser, &abi.GetUserRequest{Tenant: "acme", ID: id}, &resp)
		return resp, e
	}
	if resp, e := get("LDAP:corp-alice"); e != nil || resp.Error != nil || resp.User.Username != "LDAP/alice" {
		t.Errorf("get LDAP:corp-alice = %+v, %v", resp, e)
	}
	if resp, e := get("local-alice"); e != nil || resp.Error != nil || resp.User.Username != "alice" {
		t.Errorf("get local-alice = %+v, %v", resp, e)
	}
	// A directory store's own id without its domain is not routable.
	if resp, e := get("corp-alice"); e != nil || resp.Error == nil || resp.Error.Code != abi.CodeNotFound {
		t.Errorf("get corp-alice = %+v, %v", resp, e)
	}
	// Another tenant than the call's is refused.
	wantCode(t, hostCall(t, h, "acme", abi.HostOpFindUsers, &abi.FindUsersRequest{Tenant: "other"}, nil), abi.CodeForbidden)

	// A user store plugin does not reach its own stores.
	h.Exclude("userstore.corp")
	if got := find(abi.FindUsersRequest{Username: "LDAP/alice"}); len(got) != 0 {
		t.Errorf("the plugin's own store answered: %v", got)
	}
	if resp, e := get("LDAP:corp-alice"); e != nil || resp.Error == nil || resp.Error.Code != abi.CodeNotFound {
		t.Errorf("get from the plugin's own store = %+v, %v", resp, e)
	}
	if got := find(abi.FindUsersRequest{Username: "erin"}); len(got) != 0 {
		t.Errorf("erin from the plugin's own store: %v", got)
	}

	// No directory (yet): unavailable.
	none := env.calls(t, []string{abi.CapabilityUserLookup}, func(o *plugin.HostOptions) {
		o.Directory = func() *router.Router { return nil }
	})
	wantCode(t, hostCall(t, none, "acme", abi.HostOpGetUser, &abi.GetUserRequest{Tenant: "acme", ID: "local-alice"}, nil), abi.CodeUnavailable)
}

package ldap_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/userstore/ldap"
	"github.com/latchid/latch/kernel/userstore"
)

// bigGroupsDN holds the large group of the shared server, apart from the
// named groups the other tests list.
const bigGroupsDN = "ou=biggroups,dc=example,dc=org"

var bigGroupOnce sync.Once

// bigGroup adds to the shared server (once) a group whose member
// attribute names every bulk user, beside the base the other tests list.
func bigGroup(t testing.TB) *slapd {
	t.Helper()
	s := sharedSlapd(t)
	var err error
	bigGroupOnce.Do(func() {
		var c *goldap.Conn
		if c, err = s.admin(); err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		ou := goldap.NewAddRequest(bigGroupsDN, nil)
		ou.Attribute("objectClass", []string{"organizationalUnit"})
		ou.Attribute("ou", []string{"biggroups"})
		if err = c.Add(ou); err != nil {
			return
		}
		members := make([]string, bulkUsers)
		for i := range members {
			members[i] = fmt.Sprintf("uid=bulk%05d,%s", i, peopleDN)
		}
		g := goldap.NewAddRequest("cn=everyone,"+bigGroupsDN, nil)
		g.Attribute("objectClass", []string{"groupOfNames"})
		g.Attribute("cn", []string{"everyone"})
		g.Attribute("member", members)
		err = c.Add(g)
	})
	if err != nil {
		t.Fatalf("adding the large group: %v", err)
	}
	return s
}

// groupID finds a group's id by name through the store's listing.
func groupID(t testing.TB, st *ldap.Store, name string) string {
	t.Helper()
	resp, err := st.ListGroups(ctxT(t), abi.ListGroupsRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range resp.Groups {
		if g.Name == name {
			return g.ID
		}
	}
	t.Fatalf("no group %q in %+v", name, resp.Groups)
	return ""
}

func memberNames(gm userstore.GroupMembers) []string {
	out := make([]string, len(gm.Members))
	for i, u := range gm.Members {
		out[i] = u.Username
	}
	slices.Sort(out)
	return out
}

// TestGroupMembers: a group lists its member users by either membership
// mode, with the ids the store gives its users; the bound cuts the list
// and says so; an unknown group is not found.
func TestGroupMembers(t *testing.T) {
	s := sharedSlapd(t)
	ctx := ctxT(t)
	for _, mode := range []string{ldap.MembershipMember, ldap.MembershipMemberOf} {
		t.Run(mode, func(t *testing.T) {
			cfg := config(s)
			cfg.Groups.Membership = mode
			st, err := load(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			staff := groupID(t, st, "staff")
			gm, err := st.ListGroupMembers(ctx, "acme", staff)
			if err != nil {
				t.Fatal(err)
			}
			if got := memberNames(gm); !slices.Equal(got, []string{"alice", "bob", "erin"}) || gm.More || gm.Group.Name != "staff" {
				t.Fatalf("staff: members %v, more %v, group %+v", got, gm.More, gm.Group)
			}
			for _, u := range gm.Members {
				byID, err := st.GetUser(ctx, abi.GetUserRequest{ID: u.ID})
				if err != nil || byID.Username != u.Username {
					t.Errorf("member %q has id %q, which reads %+v, %v", u.Username, u.ID, byID, err)
				}
			}
			if _, err := st.ListGroupMembers(ctx, "acme", "no-such-group"); !errors.Is(err, userstore.ErrNotFound) {
				t.Errorf("unknown group: %v", err)
			}
			// A user id is no group id.
			if _, err := st.ListGroupMembers(ctx, "acme", gm.Members[0].ID); !errors.Is(err, userstore.ErrNotFound) {
				t.Errorf("a user's id as a group id: %v", err)
			}

			cfg.Groups.MaxMembers = 2
			small, err := load(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			gm, err = small.ListGroupMembers(ctx, "acme", staff)
			if err != nil {
				t.Fatal(err)
			}
			if len(gm.Members) != 2 || !gm.More || gm.Limit != 2 {
				t.Errorf("staff bounded at 2: %v, more %v, limit %d", memberNames(gm), gm.More, gm.Limit)
			}
		})
	}
}

// TestGroupMembersLarge: a group of more than 2,000 members is read in
// full when the bound allows it, and cut at the default bound otherwise,
// by either membership mode (the member_of mode pages its search).
func TestGroupMembersLarge(t *testing.T) {
	s := bigGroup(t)
	ctx := ctxT(t)
	for _, mode := range []string{ldap.MembershipMember, ldap.MembershipMemberOf} {
		t.Run(mode, func(t *testing.T) {
			cfg := config(s)
			cfg.Groups = ldap.Groups{BaseDN: bigGroupsDN, Membership: mode}
			st, err := load(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			id := groupID(t, st, "everyone")
			gm, err := st.ListGroupMembers(ctx, "acme", id)
			if err != nil {
				t.Fatal(err)
			}
			if len(gm.Members) != ldap.DefaultMaxGroupMembers || !gm.More || gm.Limit != ldap.DefaultMaxGroupMembers {
				t.Errorf("default bound: %d members, more %v, limit %d", len(gm.Members), gm.More, gm.Limit)
			}
			cfg.Groups.MaxMembers = 5000
			all, err := load(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			gm, err = all.ListGroupMembers(ctx, "acme", id)
			if err != nil {
				t.Fatal(err)
			}
			names := memberNames(gm)
			if len(names) != bulkUsers || gm.More || names[0] != "bulk00000" || names[bulkUsers-1] != fmt.Sprintf("bulk%05d", bulkUsers-1) {
				t.Errorf("all members: %d (more %v)", len(names), gm.More)
			}
			if len(slices.Compact(names)) != bulkUsers {
				t.Errorf("members listed twice")
			}
		})
	}
}

func TestGroupMembersConfig(t *testing.T) {
	s := sharedSlapd(t)
	for _, n := range []int{-1, 100_001} {
		cfg := config(s)
		cfg.Groups.MaxMembers = n
		if _, err := load(t, cfg); err == nil {
			t.Errorf("max_members %d was accepted", n)
		}
	}
}

// BenchmarkListGroupMembers reads the members of a group of 2,100 users
// at the default bound (1,000), by either membership mode: member reads
// each member entry (on up to pool.size connections), member_of runs one
// paged search.
func BenchmarkListGroupMembers(b *testing.B) {
	s := bigGroup(b)
	for _, mode := range []string{ldap.MembershipMember, ldap.MembershipMemberOf} {
		b.Run(mode, func(b *testing.B) {
			cfg := config(s)
			cfg.Groups = ldap.Groups{BaseDN: bigGroupsDN, Membership: mode}
			st, err := load(b, cfg)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := st.ListGroups(ctxT(b), abi.ListGroupsRequest{Limit: 10})
			if err != nil || len(resp.Groups) != 1 {
				b.Fatalf("groups %+v, %v", resp, err)
			}
			for b.Loop() {
				gm, err := st.ListGroupMembers(ctxT(b), "acme", resp.Groups[0].ID)
				if err != nil || len(gm.Members) != ldap.DefaultMaxGroupMembers {
					b.Fatalf("%d members, %v", len(gm.Members), err)
				}
			}
		})
	}
}

package storetest

import (
	"fmt"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	want := store.Group{TenantID: tid, Name: "Engineering", Description: "builds things",
		Attributes: map[string]any{"cost_center": "42", "remote": true}}
	got, err := s.CreateGroup(ctx, want)
	ok(t, err, "CreateGroup")
	if got.ID == "" || got.CreatedAt.IsZero() {
		t.Fatalf("CreateGroup did not set the id and times: %+v", got)
	}
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, got.CreatedAt, got.UpdatedAt
	same(t, "CreateGroup result", got, want)
	g, err := s.GetGroup(ctx, tid, got.ID)
	ok(t, err, "GetGroup")
	same(t, "GetGroup", g, want)
	g, err = s.GetGroupByName(ctx, tid, "Engineering")
	ok(t, err, "GetGroupByName")
	same(t, "GetGroupByName", g, want)
	_, err = s.GetGroupByName(ctx, tid, "Sales")
	is(t, err, store.ErrNotFound, "GetGroupByName of a missing name")
	_, err = s.GetGroup(ctx, tid, store.NewID())
	is(t, err, store.ErrNotFound, "GetGroup of a missing id")

	_, err = s.CreateGroup(ctx, store.Group{TenantID: tid, Name: "Engineering"})
	is(t, err, store.ErrConflict, "CreateGroup with a taken name")
	_, err = s.CreateGroup(ctx, store.Group{TenantID: tid})
	is(t, err, store.ErrInvalid, "CreateGroup without a name")
	id := store.NewID()
	kept, err := s.CreateGroup(ctx, store.Group{ID: id, TenantID: tid, Name: "Sales"})
	ok(t, err, "CreateGroup with an id")
	if kept.ID != id {
		t.Errorf("CreateGroup with id %q: got %q", id, kept.ID)
	}

	upd := g
	upd.Name, upd.Description, upd.Attributes = "Platform", "", nil
	u, err := s.UpdateGroup(ctx, upd)
	ok(t, err, "UpdateGroup")
	if !u.CreatedAt.Equal(g.CreatedAt) || u.UpdatedAt.Before(g.UpdatedAt) {
		t.Errorf("UpdateGroup times: created %v updated %v, before %v %v", u.CreatedAt, u.UpdatedAt, g.CreatedAt, g.UpdatedAt)
	}
	g, err = s.GetGroup(ctx, tid, upd.ID)
	ok(t, err, "GetGroup after UpdateGroup")
	same(t, "GetGroup after UpdateGroup", g, u)
	if g.Name != "Platform" || len(g.Attributes) != 0 {
		t.Errorf("UpdateGroup did not replace the fields: %+v", g)
	}
	upd.Name = "Sales"
	_, err = s.UpdateGroup(ctx, upd)
	is(t, err, store.ErrConflict, "UpdateGroup to a taken name")
	upd.Name = ""
	_, err = s.UpdateGroup(ctx, upd)
	is(t, err, store.ErrInvalid, "UpdateGroup to an empty name")
	_, err = s.UpdateGroup(ctx, store.Group{ID: store.NewID(), TenantID: tid, Name: "ghost"})
	is(t, err, store.ErrNotFound, "UpdateGroup of a missing id")

	want2 := []string{g.ID, kept.ID}
	for i := range 5 {
		want2 = append(want2, mkGroup(t, s, tid, fmt.Sprint("g", i)).ID)
	}
	keys := collectPages(t, 2, func(p store.Page) ([]store.Group, string, error) { return s.ListGroups(ctx, tid, p) }, groupID)
	checkPaged(t, "ListGroups by 2", keys, want2)

	ok(t, s.DeleteGroup(ctx, tid, kept.ID), "DeleteGroup")
	_, err = s.GetGroup(ctx, tid, kept.ID)
	is(t, err, store.ErrNotFound, "GetGroup after DeleteGroup")
	is(t, s.DeleteGroup(ctx, tid, kept.ID), store.ErrNotFound, "DeleteGroup twice")
	mkGroup(t, s, tid, "Sales") // the name is free again
}

func testGroupMembers(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	staff, admins := mkGroup(t, s, tid, "staff"), mkGroup(t, s, tid, "admins")
	var members []string
	for i := range 5 {
		u := mkUser(t, s, tid, fmt.Sprint("user-", i))
		members = append(members, u.ID)
		ok(t, s.AddGroupMember(ctx, tid, staff.ID, u.ID), "AddGroupMember")
	}
	outsider := mkUser(t, s, tid, "outsider")
	ok(t, s.AddGroupMember(ctx, tid, staff.ID, members[0]), "AddGroupMember twice")
	ok(t, s.AddGroupMember(ctx, tid, admins.ID, members[0]), "AddGroupMember to a second group")

	keys := collectPages(t, 2, func(p store.Page) ([]store.User, string, error) {
		return s.ListGroupMembers(ctx, tid, staff.ID, p)
	}, userID)
	checkPaged(t, "ListGroupMembers by 2", keys, members)
	ms, _, err := s.ListGroupMembers(ctx, tid, admins.ID, store.Page{})
	ok(t, err, "ListGroupMembers")
	checkPaged(t, "ListGroupMembers of admins", ids(ms, userID), members[:1])

	gs, err := s.ListUserGroups(ctx, tid, members[0])
	ok(t, err, "ListUserGroups")
	if names := ids(gs, func(g store.Group) string { return g.Name }); fmt.Sprint(names) != "[admins staff]" {
		t.Errorf("ListUserGroups: got %q, want [admins staff] (by name)", names)
	}
	gs, err = s.ListUserGroups(ctx, tid, outsider.ID)
	ok(t, err, "ListUserGroups")
	if len(gs) != 0 {
		t.Errorf("ListUserGroups of a user in no group: got %d groups", len(gs))
	}

	is(t, s.AddGroupMember(ctx, tid, staff.ID, store.NewID()), store.ErrNotFound, "AddGroupMember of a missing user")
	is(t, s.AddGroupMember(ctx, tid, store.NewID(), outsider.ID), store.ErrNotFound, "AddGroupMember to a missing group")

	ok(t, s.RemoveGroupMember(ctx, tid, staff.ID, members[1]), "RemoveGroupMember")
	ok(t, s.RemoveGroupMember(ctx, tid, staff.ID, members[1]), "RemoveGroupMember twice")
	ok(t, s.RemoveGroupMember(ctx, tid, staff.ID, outsider.ID), "RemoveGroupMember of a non-member")
	ms, _, err = s.ListGroupMembers(ctx, tid, staff.ID, store.Page{})
	ok(t, err, "ListGroupMembers")
	checkPaged(t, "ListGroupMembers after RemoveGroupMember", ids(ms, userID),
		[]string{members[0], members[2], members[3], members[4]})
	_, err = s.GetUser(ctx, tid, members[1])
	ok(t, err, "GetUser after RemoveGroupMember")

	ok(t, s.DeleteGroup(ctx, tid, staff.ID), "DeleteGroup")
	gs, err = s.ListUserGroups(ctx, tid, members[0])
	ok(t, err, "ListUserGroups")
	checkPaged(t, "ListUserGroups after DeleteGroup", ids(gs, groupID), []string{admins.ID})
	ms, _, err = s.ListGroupMembers(ctx, tid, staff.ID, store.Page{})
	ok(t, err, "ListGroupMembers of a deleted group")
	if len(ms) != 0 {
		t.Errorf("ListGroupMembers of a deleted group: got %d members", len(ms))
	}
	// A new group with the old id starts empty.
	_, err = s.CreateGroup(ctx, store.Group{ID: staff.ID, TenantID: tid, Name: "staff"})
	ok(t, err, "CreateGroup with the deleted group's id")
	ms, _, err = s.ListGroupMembers(ctx, tid, staff.ID, store.Page{})
	ok(t, err, "ListGroupMembers")
	if len(ms) != 0 {
		t.Errorf("a new group with a deleted group's id has %d members", len(ms))
	}
}

package scim_test

import (
	"context"
	"slices"
	"testing"

	"github.com/latchid/latch/builtin/provision/outbox"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// deleteGroup deletes a group as the admin API and SCIM do: the event
// names the former members.
func (r *ruled) deleteGroup(g store.Group) {
	r.t.Helper()
	ctx := context.Background()
	detail, err := provision.FormerMembers(ctx, r.src, r.root.ID, g.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.src.DeleteGroup(ctx, r.root.ID, g.ID); err != nil {
		r.t.Fatal(err)
	}
	r.changed(event.GroupDelete, "group:"+g.ID, detail)
}

// TestRulesGroupDeleteRechecksFormerMembers: deleting the group a rule
// names deletes its former members at the target at once (not at their
// next change), and deleting a group a filter excludes pushes its former
// members.
func TestRulesGroupDeleteRechecksFormerMembers(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, &outbox.Rules{Groups: []string{"engineering", "ops"}, Filter: `not (groups[display eq "contractors"])`})
	eng, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "engineering"})
	r.changed(event.GroupCreate, "group:"+eng.ID, nil)
	ops, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "ops"})
	r.changed(event.GroupCreate, "group:"+ops.ID, nil)
	contractors, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "contractors"})
	r.changed(event.GroupCreate, "group:"+contractors.ID, nil)

	alice, bob, carol := r.user("alice", nil), r.user("bob", nil), r.user("carol", nil)
	r.member(eng, alice, true)
	r.member(eng, bob, true)
	r.member(ops, bob, true)
	r.member(ops, carol, true)
	r.member(contractors, carol, true)
	if got := r.usernames(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("before: target has %v, want [alice bob]", got)
	}

	// alice was in scope through engineering alone; bob stays through ops.
	r.deleteGroup(eng)
	if got := r.usernames(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("after deleting engineering: target has %v, want [bob]", got)
	}
	if got := r.tg.groupMembers(t, "engineering"); got != nil {
		t.Fatalf("engineering is still at the target: %v", got)
	}
	// carol was kept out by the contractors group alone.
	r.deleteGroup(contractors)
	if got := r.usernames(); !slices.Equal(got, []string{"bob", "carol"}) {
		t.Fatalf("after deleting contractors: target has %v, want [bob carol]", got)
	}
}

// TestRulesGroupRenameAndTruncatedDelete: renaming the group a rule names
// re-checks its members; a delete event whose member list was cut short
// re-checks every user the target holds.
func TestRulesGroupRenameAndTruncatedDelete(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, &outbox.Rules{Groups: []string{"engineering"}})
	eng, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "engineering"})
	r.changed(event.GroupCreate, "group:"+eng.ID, nil)
	alice, bob := r.user("alice", nil), r.user("bob", nil)
	r.member(eng, alice, true)
	r.member(eng, bob, true)
	if got := r.usernames(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("before: %v", got)
	}

	eng.Name = "research"
	eng, err := r.src.UpdateGroup(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	r.changed(event.GroupUpdate, "group:"+eng.ID, nil)
	if got := r.usernames(); len(got) != 0 {
		t.Fatalf("after renaming engineering: target has %v, want nobody", got)
	}

	// Back in scope, then the group is deleted with a truncated list.
	eng.Name = "engineering"
	if eng, err = r.src.UpdateGroup(ctx, eng); err != nil {
		t.Fatal(err)
	}
	r.changed(event.GroupUpdate, "group:"+eng.ID, nil)
	if got := r.usernames(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("after renaming back: %v", got)
	}
	if err := r.src.DeleteGroup(ctx, r.root.ID, eng.ID); err != nil {
		t.Fatal(err)
	}
	r.changed(event.GroupDelete, "group:"+eng.ID, map[string]any{provision.DetailMembers: []any{alice.ID}, provision.DetailMembersTruncated: true})
	if got := r.usernames(); len(got) != 0 {
		t.Fatalf("after a truncated delete: target has %v, want nobody", got)
	}
}

// TestFormerMembers: the detail lists the members, at most
// MaxFormerMembers, and reads back from the audit log's JSON form.
func TestFormerMembers(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, nil)
	g, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "g"})
	if d, err := provision.FormerMembers(ctx, r.src, r.root.ID, g.ID); err != nil || len(d) != 0 {
		t.Fatalf("no members: %v %v", d, err)
	}
	u, _ := r.src.CreateUser(ctx, store.User{TenantID: r.root.ID, Username: "u", Enabled: true})
	if err := r.src.AddGroupMember(ctx, r.root.ID, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	d, err := provision.FormerMembers(ctx, r.src, r.root.ID, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ids, trunc := provision.MemberIDs(d); !slices.Equal(ids, []string{u.ID}) || trunc {
		t.Fatalf("one member: %v %v", ids, trunc)
	}
	if ids, trunc := provision.MemberIDs(map[string]any{provision.DetailMembers: []any{"a", 3, "b"}, provision.DetailMembersTruncated: true}); !slices.Equal(ids, []string{"a", "b"}) || !trunc {
		t.Fatalf("from JSON: %v %v", ids, trunc)
	}
}

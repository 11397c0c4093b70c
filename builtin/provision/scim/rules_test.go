package scim_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/provision/outbox"
	provscim "github.com/latchid/latch/builtin/provision/scim"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// ruled is a source store with an outbox under rules, pushing to a live
// SCIM target.
type ruled struct {
	t    *testing.T
	src  store.Store
	root store.Tenant
	o    *provscim.Outbox
	tg   *target
	clk  *clock
}

func newRuled(t *testing.T, rules *outbox.Rules) *ruled {
	t.Helper()
	if err := rules.Compile(); err != nil {
		t.Fatal(err)
	}
	tg := &target{t: t, dir: t.TempDir()}
	tg.start()
	t.Cleanup(tg.stop)
	src := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	root, _ := src.GetTenantByName(context.Background(), store.DefaultTenantName)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var o *provscim.Outbox
	p, err := provscim.New(provscim.Config{URL: "http://" + tg.addr + "/scim2", Token: targetToken, AllowPrivate: true, Timeout: 5 * time.Second},
		func(ctx context.Context, tenant, resource, id string) (string, bool, error) {
			return o.Resolve(ctx, tenant, resource, id)
		})
	if err != nil {
		t.Fatal(err)
	}
	o = provscim.NewOutbox(src, p, provscim.Options{Rules: rules, BaseBackoff: time.Second, MaxBackoff: 8 * time.Second, Now: clk.now})
	return &ruled{t: t, src: src, root: root, o: o, tg: tg, clk: clk}
}

// changed feeds one audit event to the outbox, as the capture does.
func (r *ruled) changed(action event.Action, target string, detail map[string]any) {
	r.t.Helper()
	if err := (provscim.Sink{O: r.o}).Write(context.Background(), []event.Event{{Tenant: r.root.ID, Action: action, Target: target, Outcome: event.OutcomeSuccess, Detail: detail}}); err != nil {
		r.t.Fatal(err)
	}
	drain(r.t, r.o, r.clk)
}

func (r *ruled) user(name string, attrs map[string]any) store.User {
	r.t.Helper()
	u, err := r.src.CreateUser(context.Background(), store.User{TenantID: r.root.ID, Username: name, Enabled: true, Attributes: attrs})
	if err != nil {
		r.t.Fatal(err)
	}
	r.changed(event.UserCreate, "user:"+u.ID, nil)
	return u
}

func (r *ruled) member(g store.Group, u store.User, add bool) {
	r.t.Helper()
	ctx := context.Background()
	action := event.GroupMemberAdd
	if add {
		if err := r.src.AddGroupMember(ctx, r.root.ID, g.ID, u.ID); err != nil {
			r.t.Fatal(err)
		}
	} else {
		action = event.GroupMemberRemove
		if err := r.src.RemoveGroupMember(ctx, r.root.ID, g.ID, u.ID); err != nil {
			r.t.Fatal(err)
		}
	}
	r.changed(action, "group:"+g.ID, map[string]any{"user": u.ID})
}

func (r *ruled) usernames() []string {
	var out []string
	for name := range r.tg.users(r.t) {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestRulesByGroupMembership: only members of the group (and not service
// accounts, by a SCIM filter) reach the target; joining the group pushes
// a user, leaving it deletes them there; other groups stay home.
func TestRulesByGroupMembership(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, &outbox.Rules{Groups: []string{"engineering"}, Filter: `not (userName sw "svc-")`})
	eng, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "engineering"})
	r.changed(event.GroupCreate, "group:"+eng.ID, nil)
	sales, _ := r.src.CreateGroup(ctx, store.Group{TenantID: r.root.ID, Name: "sales"})
	r.changed(event.GroupCreate, "group:"+sales.ID, nil)

	alice := r.user("alice", nil)
	bob := r.user("bob", nil)
	bot := r.user("svc-bot", nil)
	if got := r.usernames(); len(got) != 0 {
		t.Fatalf("users outside every rule were pushed: %v", got)
	}
	r.member(eng, alice, true)
	r.member(eng, bot, true)
	r.member(sales, bob, true)
	if got := r.usernames(); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("after joining: target has %v, want [alice]", got)
	}
	if got := r.tg.groupMembers(t, "engineering"); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("engineering at the target: %v", got)
	}
	if got := r.tg.groupMembers(t, "sales"); got != nil {
		t.Fatalf("a group outside the rules reached the target: %v", got)
	}

	// bob moves in, alice moves out.
	r.member(eng, bob, true)
	r.member(eng, alice, false)
	if got := r.usernames(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("after the moves: target has %v, want [bob]", got)
	}
	if got := r.tg.groupMembers(t, "engineering"); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("engineering at the target after the moves: %v", got)
	}
	// A change of a user outside the scope is still not pushed.
	alice.DisplayName = "Alice"
	if _, err := r.src.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	r.changed(event.UserUpdate, "user:"+alice.ID, nil)
	if got := r.usernames(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("an out-of-scope update was pushed: %v", got)
	}
}

// TestRulesByRoleAndAttribute: a role and an attribute both must hold;
// losing the role disables the user at the target (deprovision:
// disable) instead of deleting them.
func TestRulesByRoleAndAttribute(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, &outbox.Rules{Roles: []string{"sync"}, Attributes: map[string]string{"department": "R&D"}, Deprovision: "disable"})
	role, _ := r.src.CreateRole(ctx, store.Role{TenantID: r.root.ID, Name: "sync"})
	carol := r.user("carol", map[string]any{"department": "R&D"})
	dave := r.user("dave", map[string]any{"department": "Sales"})
	for _, u := range []store.User{carol, dave} {
		if err := r.src.AssignRole(ctx, r.root.ID, role.ID, store.SubjectUser, u.ID); err != nil {
			t.Fatal(err)
		}
		r.changed(event.RoleAssign, "role:"+role.ID, map[string]any{store.SubjectUser: u.ID})
	}
	us := r.tg.users(t)
	if us["carol"].ID == "" || !us["carol"].Enabled || us["dave"].ID != "" {
		t.Fatalf("want carol only: %v", r.usernames())
	}
	if err := r.src.UnassignRole(ctx, r.root.ID, role.ID, store.SubjectUser, carol.ID); err != nil {
		t.Fatal(err)
	}
	r.changed(event.RoleUnassign, "role:"+role.ID, map[string]any{store.SubjectUser: carol.ID})
	if us := r.tg.users(t); us["carol"].ID == "" || us["carol"].Enabled {
		t.Fatalf("carol should be kept, disabled: %+v", us["carol"])
	}
}

// TestDeadLettersRetryAndDiscard: dead letters are listed a page at a
// time, retried one by one or all at once, and discarded.
func TestDeadLettersRetryAndDiscard(t *testing.T) {
	ctx := context.Background()
	r := newRuled(t, nil)
	var bad []store.User
	for _, name := range []string{" one ", " two ", " three "} {
		bad = append(bad, r.user(name, nil)) // the target refuses padded names for good
	}
	page, next, err := r.o.ListDeadLetters(ctx, r.root.ID, store.Page{Limit: 2})
	if err != nil || len(page) != 2 || next == "" || page[0].ID == "" || page[0].LastError == "" || page[0].DeadAt.IsZero() {
		t.Fatalf("first page: %+v %q %v", page, next, err)
	}
	rest, next2, _ := r.o.ListDeadLetters(ctx, r.root.ID, store.Page{Limit: 2, After: next})
	if len(rest) != 1 || next2 != "" {
		t.Fatalf("second page: %+v %q", rest, next2)
	}
	// Fix the first two, retry one, then all; discard the third.
	for i, u := range bad[:2] {
		u.Username = []string{"one", "two"}[i]
		if _, err := r.src.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]string{} // user id -> dead letter id
	for _, e := range append(page, rest...) {
		ids[e.ResourceID] = e.ID
	}
	if err := r.o.Retry(ctx, r.root.ID, ids[bad[0].ID]); err != nil {
		t.Fatal(err)
	}
	if err := r.o.Retry(ctx, r.root.ID, "nope"); err == nil {
		t.Fatal("retrying an unknown dead letter worked")
	}
	drain(t, r.o, r.clk)
	if got := r.usernames(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("after one retry: %v", got)
	}
	if err := r.o.Discard(ctx, r.root.ID, ids[bad[2].ID]); err != nil {
		t.Fatal(err)
	}
	n, err := r.o.RetryAll(ctx, r.root.ID)
	if err != nil || n != 1 {
		t.Fatalf("retry all: %d %v", n, err)
	}
	drain(t, r.o, r.clk)
	if got := r.usernames(); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("after retrying all: %v", got)
	}
	if dead, _ := r.o.DeadLetters(ctx, r.root.ID); len(dead) != 0 {
		t.Fatalf("dead letters left: %+v", dead)
	}
}

package scim_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	provscim "github.com/latchid/latch/builtin/provision/scim"
	scimserver "github.com/latchid/latch/builtin/scim"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

const targetToken = "target-admin-token"

type targetTokens struct{}

func (targetTokens) ValidateSCIMToken(_ context.Context, _ store.Tenant, raw string) (scimserver.Principal, error) {
	if raw == targetToken {
		return scimserver.Principal{ClientID: "provisioner", Scopes: []string{scimserver.ScopeAdmin}}, nil
	}
	return scimserver.Principal{}, scimserver.ErrInvalidBearer
}

type nopAudit struct{}

func (nopAudit) Publish(event.Event) bool { return true }

func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetTenantByName(ctx, store.DefaultTenantName); errors.Is(err, store.ErrNotFound) {
		if _, err := st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// target is a second Latch SCIM service with its own store, which can be
// stopped and started again on the same address.
type target struct {
	t    *testing.T
	dir  string
	addr string
	mu   sync.Mutex
	st   store.Store
	srv  *server.Server
}

func (tg *target) start() {
	tg.t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.st = openStore(tg.t, tg.dir)
	log := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{BodyLimit: 1 << 20, ShutdownTimeout: 1}, log, prometheus.NewRegistry(), tg.st.Ping)
	if err != nil {
		tg.t.Fatal(err)
	}
	scimserver.New(scimserver.Deps{Store: tg.st, Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}),
		Bearer: targetTokens{}, Audit: nopAudit{}, Log: log}).Mount(srv.App())
	addr := tg.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tg.t.Fatal(err)
	}
	tg.addr = ln.Addr().String()
	tg.srv = srv
	go func() { _ = srv.App().Listener(ln) }()
}

func (tg *target) stop() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.srv == nil {
		return
	}
	_ = tg.srv.App().Shutdown()
	_ = tg.st.Close()
	tg.srv, tg.st = nil, nil
}

// users returns the target's users by userName.
func (tg *target) users(t *testing.T) map[string]store.User {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	ctx := context.Background()
	root, err := tg.st.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		t.Fatal(err)
	}
	us, _, err := tg.st.ListUsers(ctx, root.ID, store.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.User{}
	for _, u := range us {
		out[u.Username] = u
	}
	return out
}

func (tg *target) groupMembers(t *testing.T, name string) []string {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	ctx := context.Background()
	root, _ := tg.st.GetTenantByName(ctx, store.DefaultTenantName)
	g, err := tg.st.GetGroupByName(ctx, root.ID, name)
	if err != nil {
		return nil
	}
	us, _, err := tg.st.ListGroupMembers(ctx, root.ID, g.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	slices.Sort(out)
	return out
}

// clock is a manual clock, so backoff needs no sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newOutbox(t *testing.T, st store.Store, url string, clk *clock) *provscim.Outbox {
	t.Helper()
	var o *provscim.Outbox
	p, err := provscim.New(provscim.Config{URL: url, Token: targetToken, AllowPrivate: true, Timeout: 5 * time.Second},
		func(ctx context.Context, tenant, resource, id string) (string, bool, error) {
			return o.Resolve(ctx, tenant, resource, id)
		})
	if err != nil {
		t.Fatal(err)
	}
	o = provscim.NewOutbox(st, p, provscim.Options{BaseBackoff: time.Second, MaxBackoff: 8 * time.Second, MaxAttempts: 20, Now: clk.now})
	return o
}

// drain delivers until the queue is empty, advancing the clock past each
// backoff; it fails after a bounded number of rounds.
func drain(t *testing.T, o *provscim.Outbox, clk *clock) {
	t.Helper()
	for range 50 {
		left, err := o.Deliver(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		clk.advance(10 * time.Second)
	}
	t.Fatal("the outbox did not drain")
}

// TestConvergesAcrossTargetOutage: changes made while the target is down
// are kept, retried with backoff, survive a restart of the source, and
// converge once the target is back.
func TestConvergesAcrossTargetOutage(t *testing.T) {
	ctx := context.Background()
	tg := &target{t: t, dir: t.TempDir()}
	tg.start()
	t.Cleanup(tg.stop)
	url := "http://" + tg.addr + "/scim2"

	srcDir := t.TempDir()
	src := openStore(t, srcDir)
	root, err := src.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o := newOutbox(t, src, url, clk)
	changed := func(action event.Action, kind, id string) {
		t.Helper()
		if err := (provscim.Sink{O: o}).Write(ctx, []event.Event{{Tenant: root.ID, Action: action, Target: kind + ":" + id, Outcome: event.OutcomeSuccess}}); err != nil {
			t.Fatal(err)
		}
	}

	alice, _ := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: "alice", Email: "alice@example.com", Enabled: true})
	changed(event.UserCreate, "user", alice.ID)
	bob, _ := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: "bob", Enabled: true})
	changed(event.UserCreate, "user", bob.ID)
	drain(t, o, clk)
	if us := tg.users(t); us["alice"].Email != "alice@example.com" || us["bob"].ID == "" {
		t.Fatalf("first push: %v", us)
	}

	// The target goes down; changes keep coming.
	tg.stop()
	alice.DisplayName = "Alice Liddell"
	alice, _ = src.UpdateUser(ctx, alice)
	changed(event.UserUpdate, "user", alice.ID)
	if err := src.DeleteUser(ctx, root.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	changed(event.UserDelete, "user", bob.ID)
	carol, _ := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: "carol", Enabled: false})
	changed(event.UserCreate, "user", carol.ID)
	g, _ := src.CreateGroup(ctx, store.Group{TenantID: root.ID, Name: "explorers"})
	changed(event.GroupCreate, "group", g.ID)
	for _, u := range []store.User{alice, carol} {
		if err := src.AddGroupMember(ctx, root.ID, g.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		changed(event.GroupMemberAdd, "group", g.ID)
	}
	for range 3 {
		left, err := o.Deliver(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			t.Fatal("changes were dropped while the target was down")
		}
		clk.advance(30 * time.Second)
	}
	if dead, _ := o.DeadLetters(ctx, root.ID); len(dead) != 0 {
		t.Fatalf("an outage produced dead letters: %v", dead)
	}
	pending, _ := o.Pending(ctx, root.ID)
	if len(pending) == 0 || pending[0].Attempts == 0 || pending[0].LastError == "" {
		t.Fatalf("pending: %+v", pending)
	}

	// The source restarts (a new outbox over the same store), then the
	// target comes back on the same address.
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	src = openStore(t, srcDir)
	t.Cleanup(func() { _ = src.Close() })
	o = newOutbox(t, src, url, clk)
	tg.start()
	drain(t, o, clk)

	us := tg.users(t)
	if us["alice"].DisplayName != "Alice Liddell" || us["bob"].ID != "" || us["carol"].ID == "" || us["carol"].Enabled {
		t.Fatalf("after the outage: %+v", us)
	}
	if got := tg.groupMembers(t, "explorers"); !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("group members at the target: %v", got)
	}

	// A change the target refuses for good goes to the dead-letter list,
	// and can be requeued once fixed.
	bad, _ := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: " padded ", Enabled: true})
	changed(event.UserCreate, "user", bad.ID)
	drain(t, o, clk)
	dead, err := o.DeadLetters(ctx, root.ID)
	if err != nil || len(dead) != 1 || dead[0].ResourceID != bad.ID || dead[0].LastError == "" {
		t.Fatalf("dead letters: %+v %v", dead, err)
	}
	bad.Username = "padded"
	if _, err := src.UpdateUser(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := o.Requeue(ctx, root.ID, dead[0].Key); err != nil {
		t.Fatal(err)
	}
	drain(t, o, clk)
	if tg.users(t)["padded"].ID == "" {
		t.Fatal("the requeued change did not arrive")
	}
	if dead, _ := o.DeadLetters(ctx, root.ID); len(dead) != 0 {
		t.Fatalf("dead letters after requeue: %v", dead)
	}
}

func TestRefusesPrivateTargets(t *testing.T) {
	p, err := provscim.New(provscim.Config{URL: "http://127.0.0.1:9/scim2", Token: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Push(context.Background(), abi.ProvisionEvent{Op: abi.ProvisionCreate, Resource: abi.ResourceUser, User: &abi.User{ID: "1", Username: "a"}})
	if !errors.Is(err, provscim.ErrBlockedAddress) || fault.CodeOf(err) != fault.CodeForbidden {
		t.Fatalf("push to loopback: %v", err)
	}
	for _, cfg := range []provscim.Config{
		{URL: "ftp://x/scim2", Token: "x"},
		{URL: "https://u:p@x/scim2", Token: "x"},
		{URL: "https://x/scim2"},
	} {
		if _, err := provscim.New(cfg, nil); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

// TestModuleProvisionsFromTheAuditLog loads provision.scim through the
// extension registry, as a node does, and checks that a user change
// recorded in the audit log reaches the target, and that the queue
// survives closing and loading the instance again.
func TestModuleProvisionsFromTheAuditLog(t *testing.T) {
	ctx := context.Background()
	tg := &target{t: t, dir: t.TempDir()}
	tg.start()
	t.Cleanup(tg.stop)
	src := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	root, _ := src.GetTenantByName(ctx, store.DefaultTenantName)

	reg := extension.NewRegistry()
	reg.Register(provscim.Module())
	// A user from before the provisioner existed: initial_sync pushes it.
	if _, err := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: "early", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"url": "http://" + tg.addr + "/scim2", "token": targetToken, "allow_private": true, "poll_millis": 100, "initial_sync": true})
	load := func() *extension.Instances {
		t.Helper()
		insts, err := reg.Load(ctx, []extension.InstanceConfig{{Module: provscim.ID, Config: cfg}}, extension.LoadOptions{Deps: map[string]any{provscim.DepStore: src}})
		if err != nil {
			t.Fatal(err)
		}
		return insts
	}
	insts := load()
	inst, _ := insts.Get(string(provscim.ID))
	ob := inst.Value().(*provscim.Instance).Outbox()

	// The first round ran during Provision: the cursor is in place.
	if _, err := src.KVGet(ctx, provscim.Namespace, root.ID, "cursor"); err != nil {
		t.Fatalf("no cursor after Provision: %v", err)
	}
	u, _ := src.CreateUser(ctx, store.User{TenantID: root.ID, Username: "dana", Enabled: true})
	if err := src.AppendAudit(ctx, store.AuditEvent{ID: store.NewID(), TenantID: root.ID, Time: time.Now().UTC(), Actor: "system",
		Action: string(event.UserCreate), Target: "user:" + u.ID, Outcome: store.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tg.users(t)["dana"].ID != "" && tg.users(t)["early"].ID != "" })
	if err := insts.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Changes queued while no instance runs are delivered by the next one.
	if err := ob.Enqueue(ctx, root.ID, abi.ResourceUser, u.ID); err != nil {
		t.Fatal(err)
	}
	u.DisplayName = "Dana"
	if _, err := src.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	insts = load()
	t.Cleanup(func() { _ = insts.Close(context.Background()) })
	waitFor(t, func() bool { return tg.users(t)["dana"].DisplayName == "Dana" })
}

// waitFor polls cond until it holds; the bound only stops a broken run.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestREADMEExamples loads every JSON example of the README through the
// module's schema and lifecycle.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	src := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	for i, ex := range examples {
		r := extension.NewRegistry()
		r.Register(provscim.Module())
		set, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: provscim.ID, Config: json.RawMessage(ex[1])}},
			extension.LoadOptions{Deps: map[string]any{provscim.DepStore: src}})
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		if err := set.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r := extension.NewRegistry()
	r.Register(provscim.Module())
	for _, bad := range []string{`{}`, `{"url":"ftp://x"}`, `{"url":"https://x","shoe":1}`, `{"url":"https://x"}`} {
		if _, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: provscim.ID, Config: json.RawMessage(bad)}},
			extension.LoadOptions{Deps: map[string]any{provscim.DepStore: src}}); err == nil {
			t.Fatalf("config %s accepted", bad)
		}
	}
}

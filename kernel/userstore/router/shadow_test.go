package router_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/userstore/router"
)

// shadowDB opens a migrated SQLite database with the tenant "t".
func shadowDB(t *testing.T) (*sqlite.Store, string) {
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
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "t", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return st, tn.ID
}

// TestShadowOnLogin: a login of another store's user leaves one shadow
// row keyed by the routable id, even under concurrent logins; the primary
// store's users get none; a session can refer to the shadow; deleting the
// user through the router removes the shadow.
func TestShadowOnLogin(t *testing.T) {
	r := load(t, router.Config{Domains: map[string]string{"c": "DIR"}})
	st, tid := shadowDB(t)
	r.KeepShadows(st)
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			res, err := r.Authenticate(ctx, "t", "B/b3", "pw-b")
			if err == nil && res.Response.Outcome != abi.UserAuthenticated {
				err = fault.Internal.WithMessage("outcome " + res.Response.Outcome)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent login: %v", err)
		}
	}
	sh, err := st.GetUser(ctx, tid, "B:b-003")
	if err != nil {
		t.Fatalf("no shadow: %v", err)
	}
	if sh.Username != "B/b3" || sh.PasswordHash != "" || !sh.Enabled || !router.IsShadow(sh) || sh.Attributes[router.ShadowAttribute] != "B" {
		t.Fatalf("shadow %+v", sh)
	}
	if n, _ := st.CountUsers(ctx, tid); n != 1 {
		t.Fatalf("%d users after 8 logins of one user, want 1", n)
	}
	// A later login leaves the row as it is when nothing changed.
	if _, err := r.Authenticate(ctx, "t", "b3", "pw-b"); err != nil {
		t.Fatal(err)
	}
	again, _ := st.GetUser(ctx, tid, "B:b-003")
	if again.Version != sh.Version {
		t.Fatalf("unchanged login rewrote the shadow: version %d -> %d", sh.Version, again.Version)
	}
	// The shadow carries what refers to users: a session.
	now := time.Now()
	if _, err := st.CreateSession(ctx, store.Session{ID: "s1", TenantID: tid, UserID: sh.ID, AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("session of the shadow: %v", err)
	}

	// The primary store's users are the database's own: no shadow.
	if _, err := r.Authenticate(ctx, "t", "a1", "pw-a"); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.CountUsers(ctx, tid); n != 1 {
		t.Fatalf("%d users after a primary login, want 1", n)
	}

	// Deleting through the router (a writable store) drops the shadow.
	if _, err := r.Authenticate(ctx, "t", "DIR/shared", "pw-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(ctx, tid, "DIR:c-shared"); err != nil {
		t.Fatalf("no shadow of DIR/shared: %v", err)
	}
	if err := r.DeleteUser(ctx, "t", "DIR:c-shared"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(ctx, tid, "DIR:c-shared"); err == nil {
		t.Fatal("the shadow outlived its user")
	}
}

// TestShadowNameConflicts: a database user that is not a shadow keeps its
// name (the login fails with a conflict), and a stale shadow holding the
// name (the directory entry was recreated under a new id) is renamed.
func TestShadowNameConflicts(t *testing.T) {
	r := load(t, router.Config{})
	st, tid := shadowDB(t)
	r.KeepShadows(st)
	ctx := t.Context()

	if _, err := st.CreateUser(ctx, store.User{TenantID: tid, ID: "local-1", Username: "B/b1", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, "t", "B/b1", "pw-b"); fault.CodeOf(err) != fault.CodeConflict {
		t.Fatalf("login over a local user's name: %v, want a conflict", err)
	}
	if u, _ := st.GetUser(ctx, tid, "local-1"); u.Username != "B/b1" || router.IsShadow(u) {
		t.Fatalf("the local user was changed: %+v", u)
	}

	if _, err := st.CreateUser(ctx, store.User{TenantID: tid, ID: "B:old-id", Username: "B/b2", Enabled: true,
		Attributes: map[string]any{router.ShadowAttribute: "B"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, "t", "B/b2", "pw-b"); err != nil {
		t.Fatalf("login over a stale shadow's name: %v", err)
	}
	if u, _ := st.GetUser(ctx, tid, "B:b-002"); u.Username != "B/b2" {
		t.Fatalf("new shadow %+v", u)
	}
	if u, _ := st.GetUser(ctx, tid, "B:old-id"); u.Username != "B/b2#B:old-id" {
		t.Fatalf("stale shadow %+v", u)
	}
}

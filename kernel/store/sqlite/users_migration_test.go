package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// TestUsersRebuildKeepsReferences: migration 0008 rebuilds the users table;
// the rows that refer to users (sessions, role assignments, group
// memberships) survive it, because the old table is dropped with
// foreign-key enforcement off, and enforcement is back on afterwards.
func TestUsersRebuildKeepsReferences(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn, err := s.CreateTenant(ctx, store.Tenant{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, store.User{TenantID: tn.ID, Username: "alice", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, store.Group{TenantID: tn.ID, Name: "staff"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddGroupMember(ctx, tn.ID, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	se, err := s.CreateSession(ctx, store.Session{TenantID: tn.ID, UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	// Run 0008 once more over the populated table.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	if _, err := raw.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = 8`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	if _, err := s.GetUser(ctx, tn.ID, u.ID); err != nil {
		t.Fatalf("GetUser after the rebuild: %v", err)
	}
	if _, err := s.GetSession(ctx, tn.ID, se.ID); err != nil {
		t.Fatalf("GetSession after the rebuild: %v", err)
	}
	ms, _, err := s.ListGroupMembers(ctx, tn.ID, g.ID, store.Page{})
	if err != nil || len(ms) != 1 || ms[0].ID != u.ID {
		t.Fatalf("ListGroupMembers after the rebuild = %v, %v", ms, err)
	}
	// Enforcement is on again: deleting the user cascades, and a session
	// of a missing user is refused.
	if err := s.DeleteUser(ctx, tn.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, tn.ID, se.ID); err == nil {
		t.Error("the session outlived its user: foreign keys are off after Migrate")
	}
	if _, err := s.CreateSession(ctx, store.Session{TenantID: tn.ID, UserID: "nobody", ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Error("a session of a missing user was stored")
	}
}

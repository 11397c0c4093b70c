package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.Ping(ctx), "Ping")
	ok(t, s.Migrate(ctx), "Migrate on an up-to-date schema")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("concurrent Migrate %d", i))
	}
	// The schema still works after the repeated migrations.
	tn := mkTenant(t, s, "after-migrate")
	mkUser(t, s, tn.ID, "alice")
	ok(t, s.Close(), "Close")
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close: got no error")
	}
}

func testTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := store.Tenant{Name: "acme", DisplayName: "Acme Inc.", Enabled: true, Settings: map[string]any{
		"theme": "dark", "mfa": true, "ttl": 3600, "nested": map[string]any{"list": []any{"x", 1.5, nil}},
	}}
	got, err := s.CreateTenant(ctx, want)
	ok(t, err, "CreateTenant")
	if got.ID == "" || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Fatalf("CreateTenant did not set the id and times: %+v", got)
	}
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, got.CreatedAt, got.UpdatedAt
	same(t, "CreateTenant result", got, want)

	g, err := s.GetTenant(ctx, got.ID)
	ok(t, err, "GetTenant")
	same(t, "GetTenant", g, want)
	g, err = s.GetTenantByName(ctx, "acme")
	ok(t, err, "GetTenantByName")
	same(t, "GetTenantByName", g, want)

	_, err = s.CreateTenant(ctx, store.Tenant{Name: "acme"})
	is(t, err, store.ErrConflict, "CreateTenant with a taken name")
	for _, name := range []string{"", "Acme", "has space", "under_score", "dot.name", "ümlaut", strings.Repeat("a", 64)} {
		_, err := s.CreateTenant(ctx, store.Tenant{Name: name})
		is(t, err, store.ErrInvalid, "CreateTenant named "+name)
	}
	for _, name := range []string{strings.Repeat("a", 63), "0-9", "x"} {
		_, err := s.CreateTenant(ctx, store.Tenant{Name: name})
		ok(t, err, "CreateTenant named "+name)
	}
	id := store.NewID()
	kept, err := s.CreateTenant(ctx, store.Tenant{ID: id, Name: "kept-id"})
	ok(t, err, "CreateTenant with an id")
	if kept.ID != id {
		t.Errorf("CreateTenant with id %q: got id %q", id, kept.ID)
	}
	_, err = s.CreateTenant(ctx, store.Tenant{ID: id, Name: "other-name"})
	is(t, err, store.ErrConflict, "CreateTenant with a taken id")

	_, err = s.GetTenant(ctx, store.NewID())
	is(t, err, store.ErrNotFound, "GetTenant of a missing id")
	_, err = s.GetTenantByName(ctx, "nope")
	is(t, err, store.ErrNotFound, "GetTenantByName of a missing name")

	upd := g
	upd.Name, upd.DisplayName, upd.Enabled, upd.Settings = "acme-corp", "Acme Corp", false, map[string]any{"theme": "light"}
	u, err := s.UpdateTenant(ctx, upd)
	ok(t, err, "UpdateTenant")
	if !u.CreatedAt.Equal(g.CreatedAt) || u.UpdatedAt.Before(g.UpdatedAt) {
		t.Errorf("UpdateTenant times: created %v updated %v, before created %v updated %v",
			u.CreatedAt, u.UpdatedAt, g.CreatedAt, g.UpdatedAt)
	}
	g, err = s.GetTenant(ctx, upd.ID)
	ok(t, err, "GetTenant after UpdateTenant")
	same(t, "GetTenant after UpdateTenant", g, u)
	if g.Name != "acme-corp" || g.Enabled || g.Settings["theme"] != "light" {
		t.Errorf("UpdateTenant did not replace the fields: %+v", g)
	}
	_, err = s.GetTenantByName(ctx, "acme")
	is(t, err, store.ErrNotFound, "GetTenantByName of the old name")

	upd.Name = "kept-id"
	_, err = s.UpdateTenant(ctx, upd)
	is(t, err, store.ErrConflict, "UpdateTenant to a taken name")
	upd.Name = "Bad Name"
	_, err = s.UpdateTenant(ctx, upd)
	is(t, err, store.ErrInvalid, "UpdateTenant to an invalid name")
	_, err = s.UpdateTenant(ctx, store.Tenant{ID: store.NewID(), Name: "ghost"})
	is(t, err, store.ErrNotFound, "UpdateTenant of a missing id")

	var all []string
	for _, name := range []string{"t-1", "t-2", "t-3"} {
		mkTenant(t, s, name)
	}
	ts, _, err := s.ListTenants(ctx, store.Page{})
	ok(t, err, "ListTenants")
	all = ids(ts, func(t store.Tenant) string { return t.ID })
	if len(all) != 8 {
		t.Errorf("ListTenants: got %d tenants, want 8", len(all))
	}
	keys := collectPages(t, 2, func(p store.Page) ([]store.Tenant, string, error) { return s.ListTenants(ctx, p) },
		func(t store.Tenant) string { return t.ID })
	checkPaged(t, "ListTenants by 2", keys, all)

	ok(t, s.DeleteTenant(ctx, id), "DeleteTenant")
	_, err = s.GetTenant(ctx, id)
	is(t, err, store.ErrNotFound, "GetTenant after DeleteTenant")
	is(t, s.DeleteTenant(ctx, id), store.ErrNotFound, "DeleteTenant twice")
}

package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testFlows(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	other := mkTenant(t, s, "other").ID
	def1 := map[string]any{"steps": []any{map[string]any{"options": []any{"password"}}}}
	def2 := map[string]any{"steps": []any{map[string]any{"options": []any{"password"}}, map[string]any{"options": []any{"totp"}}},
		"script": "var onLoginRequest = function (c) { executeStep(1); };"}

	v1, err := s.PutFlow(ctx, store.Flow{TenantID: tid, Name: "admins-mfa", Version: 42, Definition: def1, Comment: "first"})
	ok(t, err, "PutFlow")
	if v1.Version != 1 || v1.CreatedAt.IsZero() {
		t.Fatalf("PutFlow of a new flow: got version %d, created %v; want version 1 and a time", v1.Version, v1.CreatedAt)
	}
	v2, err := s.PutFlow(ctx, store.Flow{TenantID: tid, Name: "admins-mfa", Definition: def2})
	ok(t, err, "PutFlow")
	if v2.Version != 2 {
		t.Fatalf("PutFlow of an existing flow: got version %d, want 2", v2.Version)
	}
	_, err = s.PutFlow(ctx, store.Flow{TenantID: tid, Name: "basic", Definition: def1})
	ok(t, err, "PutFlow basic")
	// The same name in another tenant is another flow.
	o1, err := s.PutFlow(ctx, store.Flow{TenantID: other, Name: "admins-mfa", Definition: def2})
	ok(t, err, "PutFlow in another tenant")
	if o1.Version != 1 {
		t.Errorf("PutFlow in another tenant: got version %d, want 1", o1.Version)
	}

	got, err := s.GetFlow(ctx, tid, "admins-mfa", 0)
	ok(t, err, "GetFlow latest")
	same(t, "GetFlow latest", got, v2)
	got, err = s.GetFlow(ctx, tid, "admins-mfa", 1)
	ok(t, err, "GetFlow 1")
	same(t, "GetFlow 1", got, v1)
	_, err = s.GetFlow(ctx, tid, "admins-mfa", 3)
	is(t, err, store.ErrNotFound, "GetFlow of a missing version")
	_, err = s.GetFlow(ctx, tid, "nope", 0)
	is(t, err, store.ErrNotFound, "GetFlow of a missing flow")

	vs, err := s.ListFlowVersions(ctx, tid, "admins-mfa")
	ok(t, err, "ListFlowVersions")
	if len(vs) != 2 {
		t.Fatalf("ListFlowVersions: got %d versions, want 2", len(vs))
	}
	same(t, "ListFlowVersions[0]", vs[0], v1)
	same(t, "ListFlowVersions[1]", vs[1], v2)
	_, err = s.ListFlowVersions(ctx, tid, "nope")
	is(t, err, store.ErrNotFound, "ListFlowVersions of a missing flow")

	fs, next, err := s.ListFlows(ctx, tid, store.Page{})
	ok(t, err, "ListFlows")
	if len(fs) != 2 || next != "" || fs[0].Name != "admins-mfa" || fs[0].Version != 2 || fs[1].Name != "basic" {
		t.Fatalf("ListFlows: got %+v (next %q), want admins-mfa v2 and basic", fs, next)
	}
	names := collectPages(t, 1, func(p store.Page) ([]store.Flow, string, error) { return s.ListFlows(ctx, tid, p) },
		func(f store.Flow) string { return f.Name })
	same(t, "ListFlows paged", names, []string{"admins-mfa", "basic"})

	_, err = s.PutFlow(ctx, store.Flow{TenantID: tid, Definition: def1})
	is(t, err, store.ErrInvalid, "PutFlow without a name")
	_, err = s.PutFlow(ctx, store.Flow{TenantID: store.NewID(), Name: "x", Definition: def1})
	is(t, err, store.ErrNotFound, "PutFlow in a missing tenant")

	ok(t, s.DeleteFlow(ctx, tid, "admins-mfa"), "DeleteFlow")
	_, err = s.GetFlow(ctx, tid, "admins-mfa", 0)
	is(t, err, store.ErrNotFound, "GetFlow after DeleteFlow")
	is(t, s.DeleteFlow(ctx, tid, "admins-mfa"), store.ErrNotFound, "DeleteFlow twice")
	got, err = s.GetFlow(ctx, other, "admins-mfa", 0)
	ok(t, err, "GetFlow in the other tenant after DeleteFlow")
	same(t, "GetFlow in the other tenant", got, o1)
	// A deleted name starts again at version 1.
	again, err := s.PutFlow(ctx, store.Flow{TenantID: tid, Name: "admins-mfa", Definition: def1})
	ok(t, err, "PutFlow after DeleteFlow")
	if again.Version != 1 {
		t.Errorf("PutFlow after DeleteFlow: got version %d, want 1", again.Version)
	}

	// Concurrent saves of one flow each get their own version.
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.PutFlow(ctx, store.Flow{TenantID: tid, Name: "busy", Definition: map[string]any{"n": i}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("concurrent PutFlow %d", i))
	}
	vs, err = s.ListFlowVersions(ctx, tid, "busy")
	ok(t, err, "ListFlowVersions busy")
	for i, v := range vs {
		if v.Version != int64(i+1) {
			t.Errorf("concurrent PutFlow: version %d at position %d, want %d", v.Version, i, i+1)
		}
	}
	if len(vs) != writers {
		t.Errorf("concurrent PutFlow: got %d versions, want %d", len(vs), writers)
	}

	// Deleting the tenant removes its flows.
	ok(t, s.DeleteTenant(ctx, other), "DeleteTenant")
	_, err = s.GetFlow(ctx, other, "admins-mfa", 0)
	is(t, err, store.ErrNotFound, "GetFlow after DeleteTenant")
}

// Package storetest is the conformance suite of store.Store. Every backend,
// the kernel's SQLite and PostgreSQL ones and any other, must pass Run:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := openFreshStore(t) // new, empty and migrated
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The cases assert the behaviour store.go documents, plus the choices the
// kernel's backends share where the contract is silent: listings ordered by
// id (byte order), cursors that name the last item of a page, single-record
// deletes and updates of a missing record failing with store.ErrNotFound,
// idempotent membership and assignment removal.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Run runs the suite. newStore must return a new, empty, migrated store on
// every call and close it in a t.Cleanup; the store's Close must be safe to
// call twice, because the Lifecycle case closes its store itself. The cases
// run in parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Lifecycle", testLifecycle},
		{"Tenants", testTenants},
		{"TenantIsolation", testTenantIsolation},
		{"TenantCascade", testTenantCascade},
		{"Users", testUsers},
		{"UserPaging", testUserPaging},
		{"UserCascade", testUserCascade},
		{"UserIDsPerTenant", testUserIDsPerTenant},
		{"MissingTenant", testMissingTenant},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Groups", testGroups},
		{"GroupMembers", testGroupMembers},
		{"Roles", testRoles},
		{"RoleAssignments", testRoleAssignments},
		{"Clients", testClients},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"Tokens", testTokens},
		{"TokensBySubject", testTokensBySubject},
		{"TokenExpiry", testTokenExpiry},
		{"SigningKeys", testSigningKeys},
		{"Consents", testConsents},
		{"Audit", testAudit},
		{"AuditPaging", testAuditPaging},
		{"Bundles", testBundles},
		{"PluginKV", testPluginKV},
		{"Flows", testFlows},
		{"Links", testLinks},
		{"ClaimDialects", testClaimDialects},
		{"WebAuthnCredentials", testWebAuthnCredentials},
		{"ConcurrentCreates", testConcurrentCreates},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore(t))
		})
	}
}

// ok fails the test now when err is not nil.
func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

// is reports an error when err does not match target.
func is(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one matching %q", what, err, target)
	}
}

// same reports every field in which the records got and want differ, with
// the store's allowances: times match to the millisecond and must be UTC,
// nil and empty maps, slices and byte slices are equal, and maps and slices
// compare by their JSON encoding (numbers come back as float64).
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

func diff(got, want any) []string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	if gv.Type() != wv.Type() {
		return []string{fmt.Sprintf("got a %s, want a %s", gv.Type(), wv.Type())}
	}
	if gv.Kind() != reflect.Struct {
		if !equal(got, want) {
			return []string{fmt.Sprintf("got %#v, want %#v", got, want)}
		}
		return nil
	}
	var out []string
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !equal(g, w) {
			out = append(out, fmt.Sprintf("%s: got %#v, want %#v", gv.Type().Field(i).Name, g, w))
		}
	}
	return out
}

func equal(g, w any) bool {
	switch w := w.(type) {
	case time.Time:
		g := g.(time.Time)
		if g.IsZero() || w.IsZero() {
			return g.IsZero() && w.IsZero()
		}
		return g.Location() == time.UTC && g.Sub(w).Abs() < time.Millisecond
	case []byte:
		return bytes.Equal(g.([]byte), w)
	case map[string]any, []string:
		if reflect.ValueOf(g).Len() == 0 && reflect.ValueOf(w).Len() == 0 {
			return true
		}
		gj, err1 := json.Marshal(g)
		wj, err2 := json.Marshal(w)
		return err1 == nil && err2 == nil && bytes.Equal(gj, wj)
	}
	return reflect.DeepEqual(g, w)
}

// collectPages lists every page with the limit and returns the keys in the
// order received. It fails when a page is larger than the limit or a cursor
// comes with an empty page.
func collectPages[T any](t *testing.T, limit int, list func(p store.Page) ([]T, string, error), key func(T) string) []string {
	t.Helper()
	var keys []string
	after := ""
	for range 10000 {
		items, next, err := list(store.Page{Limit: limit, After: after})
		ok(t, err, "listing a page")
		if len(items) > (store.Page{Limit: limit}).Normalize().Limit {
			t.Fatalf("page of %d items exceeds the limit %d", len(items), limit)
		}
		for _, it := range items {
			keys = append(keys, key(it))
		}
		if next == "" {
			return keys
		}
		if len(items) == 0 {
			t.Fatalf("empty page came with cursor %q", next)
		}
		after = next
	}
	t.Fatal("paging did not end")
	return nil
}

// checkPaged reports keys that are not want, each exactly once, in
// ascending byte order.
func checkPaged(t *testing.T, what string, keys, want []string) {
	t.Helper()
	if !slices.IsSorted(keys) {
		t.Errorf("%s: keys are not in ascending order: %q", what, keys)
	}
	sorted := slices.Sorted(slices.Values(want))
	if !slices.Equal(keys, sorted) {
		t.Errorf("%s: got %d keys %q, want each of %d keys %q once", what, len(keys), keys, len(sorted), sorted)
	}
}

// ids returns the ids of records.
func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func userID(u store.User) string   { return u.ID }
func groupID(g store.Group) string { return g.ID }
func roleName(r store.Role) string { return r.Name }

func mkTenant(t *testing.T, s store.Store, name string) store.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(t.Context(), store.Tenant{Name: name, Enabled: true})
	ok(t, err, "creating tenant "+name)
	return tn
}

func mkUser(t *testing.T, s store.Store, tenantID, username string) store.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), store.User{TenantID: tenantID, Username: username, Enabled: true})
	ok(t, err, "creating user "+username)
	return u
}

func mkGroup(t *testing.T, s store.Store, tenantID, name string) store.Group {
	t.Helper()
	g, err := s.CreateGroup(t.Context(), store.Group{TenantID: tenantID, Name: name})
	ok(t, err, "creating group "+name)
	return g
}

func mkRole(t *testing.T, s store.Store, tenantID, name string) store.Role {
	t.Helper()
	r, err := s.CreateRole(t.Context(), store.Role{TenantID: tenantID, Name: name, Permissions: []string{name + ":read"}})
	ok(t, err, "creating role "+name)
	return r
}

func mkSession(t *testing.T, s store.Store, tenantID, userID string, expires time.Time) store.Session {
	t.Helper()
	se, err := s.CreateSession(t.Context(), store.Session{TenantID: tenantID, UserID: userID, ExpiresAt: expires})
	ok(t, err, "creating session")
	return se
}

// hour is an expiry far enough away that no test outlives it.
func hour() time.Time { return time.Now().Add(time.Hour) }

// ago returns a time d in the past.
func ago(d time.Duration) time.Time { return time.Now().Add(-d) }

package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// newestFirst orders events as QueryAudit must when their times differ.
func newestFirst(a, b store.AuditEvent) int {
	return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
}

func auditIDs(es []store.AuditEvent) []string {
	return ids(es, func(e store.AuditEvent) string { return e.ID })
}

// queryAll pages through QueryAudit with the limit and returns every event.
func queryAll(t *testing.T, s store.Store, q store.AuditQuery, limit int) []store.AuditEvent {
	t.Helper()
	var all []store.AuditEvent
	q.Limit = limit
	for range 10000 {
		es, next, err := s.QueryAudit(t.Context(), q)
		ok(t, err, "QueryAudit")
		if len(es) > q.Page.Normalize().Limit {
			t.Fatalf("QueryAudit returned %d events with limit %d", len(es), limit)
		}
		all = append(all, es...)
		if next == "" {
			return all
		}
		if len(es) == 0 {
			t.Fatalf("QueryAudit returned an empty page with cursor %q", next)
		}
		q.After = next
	}
	t.Fatal("QueryAudit paging did not end")
	return nil
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.AppendAudit(ctx), "AppendAudit of no events")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	actors := []string{"user:1", "client:web", "system"}
	actions := []string{"login.password", "user.update"}
	outcomes := []string{store.OutcomeSuccess, store.OutcomeFailure, store.OutcomeDenied, store.OutcomeError}
	var all []store.AuditEvent
	for i := range 13 {
		tenant := "tenant-a"
		if i >= 10 {
			tenant = "tenant-b"
		}
		all = append(all, store.AuditEvent{
			ID: store.NewID(), TenantID: tenant, Time: base.Add(time.Duration(i)*time.Second + 123*time.Microsecond),
			RequestID: fmt.Sprint("req-", i), Actor: actors[i%3], Action: actions[i%2], Target: fmt.Sprint("user:", i%4),
			Outcome: outcomes[i%4], Detail: map[string]any{"i": i, "ip": "192.0.2.1", "amr": []any{"pwd"}},
		})
	}
	// Appended out of time order, in one call.
	shuffled := slices.Clone(all)
	slices.Reverse(shuffled)
	ok(t, s.AppendAudit(ctx, shuffled...), "AppendAudit")

	check := func(what string, q store.AuditQuery, keep func(e store.AuditEvent) bool) {
		t.Helper()
		var want []store.AuditEvent
		for _, e := range all {
			if keep(e) {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, newestFirst)
		for _, limit := range []int{0, 3} {
			got := queryAll(t, s, q, limit)
			if fmt.Sprint(auditIDs(got)) != fmt.Sprint(auditIDs(want)) {
				t.Errorf("QueryAudit %s (limit %d): got %d events %q, want %d %q", what, limit,
					len(got), auditIDs(got), len(want), auditIDs(want))
				continue
			}
			for i := range got {
				same(t, "QueryAudit "+what, got[i], want[i])
			}
		}
	}
	check("of tenant A", store.AuditQuery{TenantID: "tenant-a"}, func(e store.AuditEvent) bool { return e.TenantID == "tenant-a" })
	check("of every tenant", store.AuditQuery{}, func(store.AuditEvent) bool { return true })
	check("by actor", store.AuditQuery{TenantID: "tenant-a", Actor: "system"},
		func(e store.AuditEvent) bool { return e.TenantID == "tenant-a" && e.Actor == "system" })
	check("by action", store.AuditQuery{Action: "user.update"},
		func(e store.AuditEvent) bool { return e.Action == "user.update" })
	check("by target", store.AuditQuery{TenantID: "tenant-a", Target: "user:2"},
		func(e store.AuditEvent) bool { return e.TenantID == "tenant-a" && e.Target == "user:2" })
	check("by outcome", store.AuditQuery{Outcome: store.OutcomeDenied},
		func(e store.AuditEvent) bool { return e.Outcome == store.OutcomeDenied })
	check("by actor and outcome", store.AuditQuery{Actor: "user:1", Outcome: store.OutcomeSuccess},
		func(e store.AuditEvent) bool { return e.Actor == "user:1" && e.Outcome == store.OutcomeSuccess })
	since, until := base.Add(2500*time.Millisecond), base.Add(6500*time.Millisecond)
	check("since and until", store.AuditQuery{TenantID: "tenant-a", Since: since, Until: until},
		func(e store.AuditEvent) bool {
			return e.TenantID == "tenant-a" && e.Time.After(since) && e.Time.Before(until)
		})
	check("since", store.AuditQuery{Since: since},
		func(e store.AuditEvent) bool { return e.Time.After(since) })
	check("until", store.AuditQuery{Until: until},
		func(e store.AuditEvent) bool { return e.Time.Before(until) })
	check("matching nothing", store.AuditQuery{Actor: "nobody"}, func(store.AuditEvent) bool { return false })

	// Events without an id or time get both.
	ok(t, s.AppendAudit(ctx, store.AuditEvent{TenantID: "tenant-c", Actor: "system", Action: "key.rotate"}),
		"AppendAudit without id and time")
	es, _, err := s.QueryAudit(ctx, store.AuditQuery{TenantID: "tenant-c"})
	ok(t, err, "QueryAudit")
	if len(es) != 1 || es[0].ID == "" || time.Since(es[0].Time).Abs() > time.Minute || es[0].Time.Location() != time.UTC {
		t.Errorf("AppendAudit without id and time: got %+v, want one event with an id and a current UTC time", es)
	}

	// A batch with an invalid event stores nothing.
	good := store.AuditEvent{ID: store.NewID(), TenantID: "tenant-d", Action: "user.create", Time: time.Now()}
	is(t, s.AppendAudit(ctx, good, store.AuditEvent{TenantID: "tenant-d"}), store.ErrInvalid,
		"AppendAudit with an event without an action")
	es, _, err = s.QueryAudit(ctx, store.AuditQuery{TenantID: "tenant-d"})
	ok(t, err, "QueryAudit")
	if len(es) != 0 {
		t.Errorf("AppendAudit of a refused batch stored %d events", len(es))
	}
	is(t, s.AppendAudit(ctx, all[0]), store.ErrConflict, "AppendAudit with a taken id")
}

func testAuditPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Now().Add(-time.Hour)
	var events []store.AuditEvent
	for i := range store.MaxPageLimit + 1 {
		events = append(events, store.AuditEvent{TenantID: "t", Action: "a", Time: base.Add(time.Duration(i) * time.Millisecond)})
	}
	// Ties in time must not break paging.
	tie := base.Add(-time.Minute)
	for range 7 {
		events = append(events, store.AuditEvent{TenantID: "t", Action: "tie", Time: tie})
	}
	ok(t, s.AppendAudit(ctx, events...), "AppendAudit of many events")
	total := len(events)

	es, next, err := s.QueryAudit(ctx, store.AuditQuery{TenantID: "t"})
	ok(t, err, "QueryAudit with the default limit")
	if len(es) != store.DefaultPageLimit || next == "" {
		t.Errorf("QueryAudit with the default limit: got %d events and cursor %q, want %d and a cursor",
			len(es), next, store.DefaultPageLimit)
	}
	es, next, err = s.QueryAudit(ctx, store.AuditQuery{TenantID: "t", Page: store.Page{Limit: 5000}})
	ok(t, err, "QueryAudit with a limit over the cap")
	if len(es) != store.MaxPageLimit || next == "" {
		t.Errorf("QueryAudit with limit 5000: got %d events and cursor %q, want %d and a cursor",
			len(es), next, store.MaxPageLimit)
	}
	for _, limit := range []int{1000, 3, 250} {
		got := queryAll(t, s, store.AuditQuery{TenantID: "t"}, limit)
		seen := map[string]bool{}
		for i, e := range got {
			if seen[e.ID] {
				t.Fatalf("QueryAudit by %d returned event %s twice", limit, e.ID)
			}
			seen[e.ID] = true
			if i > 0 && e.Time.After(got[i-1].Time) {
				t.Fatalf("QueryAudit by %d: event %d (%v) is newer than the one before (%v)", limit, i, e.Time, got[i-1].Time)
			}
		}
		if len(got) != total {
			t.Errorf("QueryAudit by %d: got %d events, want %d", limit, len(got), total)
		}
	}
	// Paging works within a time window too.
	got := queryAll(t, s, store.AuditQuery{TenantID: "t", Until: base}, 2)
	if len(got) != 7 {
		t.Errorf("QueryAudit of the tied events by 2: got %d, want 7", len(got))
	}
}

package store_test

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func TestSuspension(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var u store.User
	if store.Suspended(u, now) {
		t.Fatal("a user without attributes is suspended")
	}
	store.Suspend(&u, now, time.Time{}, "review")
	s, ok := store.SuspensionOf(u)
	if !ok || !s.Since.Equal(now) || !s.Until.IsZero() || s.Reason != "review" || !store.Suspended(u, now.Add(1000*time.Hour)) {
		t.Fatalf("open-ended suspension %+v %v", s, ok)
	}
	// Suspending again replaces the end and the reason.
	store.Suspend(&u, now, now.Add(time.Hour), "")
	s, _ = store.SuspensionOf(u)
	if !s.Until.Equal(now.Add(time.Hour)) || s.Reason != "" {
		t.Fatalf("replaced suspension %+v (attributes %v)", s, u.Attributes)
	}
	if !store.Suspended(u, now.Add(59*time.Minute)) || store.Suspended(u, now.Add(time.Hour)) {
		t.Fatal("a suspension with an end is not in force exactly until then")
	}
	// An unreadable end never lifts the suspension.
	u.Attributes[store.AttrSuspendedUntil] = "soon"
	if !store.Suspended(u, now.Add(1000*time.Hour)) {
		t.Fatal("an unreadable end lifted the suspension")
	}
	if !store.Unsuspend(&u) || store.Suspended(u, now) || len(u.Attributes) != 0 {
		t.Fatalf("after Unsuspend: %v", u.Attributes)
	}
	if store.Unsuspend(&u) {
		t.Fatal("Unsuspend of an unsuspended user reports a suspension")
	}
	for _, k := range []string{store.AttrSuspendedAt, store.AttrSuspendedUntil, store.AttrSuspensionReason} {
		if !store.IsSuspensionAttr(k) {
			t.Errorf("%s is not reserved", k)
		}
	}
	if store.IsSuspensionAttr("latch.failed_logins") {
		t.Error("latch.failed_logins counted as a suspension attribute")
	}
}

package abi

import (
	"errors"
	"slices"
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/provision"
)

// ProvisionerCases are what a provisioner under test must satisfy.
type ProvisionerCases struct {
	// Events are pushed in order; each must be done or skipped.
	Events []latchabi.ProvisionEvent
	// Delivered, when set, is called after the suite's pushes with the
	// number of pushes made, for the test to check its target saw them.
	Delivered func(t *testing.T, pushes int)
}

// RunProvisioner runs the provisioner suite: every answer passes
// provision.Check and is done or skipped (not a retry: the test's target is
// up); a redelivered event succeeds again (delivery is at least once); the
// event is not modified; concurrent pushes succeed; and a cancelled context
// is honoured within CancelWithin. newInstance is called once per subtest.
func RunProvisioner(t *testing.T, newInstance func(t *testing.T) provision.Provisioner, cases ProvisionerCases) {
	t.Helper()
	if len(cases.Events) == 0 {
		t.Fatal("ProvisionerCases.Events is empty")
	}
	push := func(t *testing.T, p provision.Provisioner, ev latchabi.ProvisionEvent) latchabi.ProvisionResponse {
		t.Helper()
		before := cloneEvent(ev)
		resp, err := provision.Check(p.Push(t.Context(), ev))
		sameRequest(t, "event", before, ev)
		if errors.Is(err, provision.ErrRetry) {
			t.Fatalf("Push(%s): asked for a retry (%v) though the target is up", ev.ID, err)
		}
		if err != nil {
			t.Fatalf("Push(%s): %v (every answer must pass provision.Check)", ev.ID, err)
		}
		return resp
	}
	pushes := 0
	t.Run("pushes", func(t *testing.T) {
		p := newInstance(t)
		for _, ev := range cases.Events {
			push(t, p, ev)
			pushes++
		}
	})
	t.Run("redelivery", func(t *testing.T) {
		p := newInstance(t)
		first := push(t, p, cases.Events[0])
		again := push(t, p, cases.Events[0])
		pushes += 2
		if first.Outcome != again.Outcome {
			t.Fatalf("redelivered event: outcome %q, first time %q", again.Outcome, first.Outcome)
		}
	})
	t.Run("concurrent pushes", func(t *testing.T) {
		p := newInstance(t)
		parallel(concurrency, func(i int) {
			ev := cloneEvent(cases.Events[i%len(cases.Events)])
			if _, err := provision.Check(p.Push(t.Context(), ev)); err != nil {
				t.Errorf("concurrent Push %d (%s): %v", i, ev.ID, err)
			}
		})
		pushes += concurrency
	})
	t.Run("cancelled context", func(t *testing.T) {
		p := newInstance(t)
		ctx := cancelled(t)
		callWithin(t, CancelWithin, func() { _, _ = provision.Check(p.Push(ctx, cloneEvent(cases.Events[0]))) })
		push(t, p, cases.Events[0])
		pushes++
	})
	if cases.Delivered != nil {
		t.Run("delivered", func(t *testing.T) { cases.Delivered(t, pushes) })
	}
}

func cloneEvent(ev latchabi.ProvisionEvent) latchabi.ProvisionEvent {
	c := ev
	if ev.User != nil {
		u := *ev.User
		u.Attributes = cloneClaims(ev.User.Attributes)
		c.User = &u
	}
	if ev.Group != nil {
		g := *ev.Group
		c.Group = &g
	}
	c.Members = slices.Clone(ev.Members)
	c.Config = slices.Clone(ev.Config)
	return c
}

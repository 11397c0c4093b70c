package wasmhost

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCallContext(t *testing.T) {
	type key struct{}
	t.Run("deadline", func(t *testing.T) {
		c := newCallContext(nil)
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		defer cancel()
		start := time.Now()
		c.arm(parent, start, 20*time.Millisecond)
		if d, ok := c.Deadline(); !ok || !d.Equal(start.Add(20*time.Millisecond)) {
			t.Errorf("Deadline = %v, %v", d, ok)
		}
		if c.Value(key{}) != "v" {
			t.Error("the parent's value is not visible")
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done did not close at the deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
			t.Errorf("Err = %v, Cause = %v; want DeadlineExceeded", c.Err(), context.Cause(c))
		}
		if c.disarm() {
			t.Error("a fired context says it can be reused")
		}
	})
	t.Run("parent canceled", func(t *testing.T) {
		c := newCallContext(nil)
		parent, cancel := context.WithCancel(context.Background())
		c.arm(parent, time.Now(), time.Hour)
		cancel()
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done did not close when the parent was canceled")
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", c.Err())
		}
		if c.disarm() {
			t.Error("a fired context says it can be reused")
		}
	})
	t.Run("reused", func(t *testing.T) {
		c := newCallContext(nil)
		for range 1000 {
			parent, cancel := context.WithCancel(context.Background())
			c.arm(parent, time.Now(), time.Hour)
			if c.Err() != nil {
				t.Fatalf("Err = %v during a call", c.Err())
			}
			if !c.disarm() {
				t.Fatal("a context that did not fire cannot be reused")
			}
			cancel() // after disarm: must not fire c
		}
		c.arm(context.Background(), time.Now(), time.Hour)
		if c.Err() != nil {
			t.Errorf("Err = %v: an old parent's cancel reached a later call", c.Err())
		}
		c.disarm()
	})
}

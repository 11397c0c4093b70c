package wasmhost

import (
	"context"
	"sync/atomic"
	"time"
)

// callContext is the context an instance's exports run under: the caller's
// context plus the call deadline. When it fires, it raises the instance's
// stop flag (stop.go); for a module that is not instrumented, wazero
// watches its Done channel instead and stops the guest when it closes
// (RuntimeConfig.WithCloseOnContextDone).
//
// It exists for speed. context.WithTimeout allocates a timer and a cancel
// tree on every call, which costs about as much as the rest of a call; a
// callContext belongs to one instance and is re-armed for each call with a
// timer Reset instead. Its Done channel closes at most once: when the
// deadline passes or the caller's context ends during a call, the
// callContext is spent, and the instance (which wazero has closed, or may
// yet close) is discarded.
//
// The caller's values stay visible through Value. A callContext must not be
// kept beyond the call it was passed to.
type callContext struct {
	// parent (for Value only) and deadline are atomics: a goroutine the
	// guest's host call started (an HTTP dial) may still read them after
	// the call returned and the instance was re-armed for the next one.
	parent   atomic.Pointer[context.Context]
	deadline atomic.Int64 // Unix nanoseconds
	done     chan struct{}
	err      error // written before done is closed; read after
	state    atomic.Uint32
	timer    *time.Timer
	// stopParent unregisters the callback that fires when parent ends;
	// nil when parent cannot end.
	stopParent func() bool
	// onFire, when set, runs when c fires, after Done is closed: it raises
	// the instance's stop flag.
	onFire func()
}

// States of a callContext.
const (
	ctxIdle  uint32 = iota // between calls; reusable
	ctxArmed               // a call is running
	ctxFired               // Done is closed; spent
)

// newCallContext returns an idle callContext that calls onFire (which may
// be nil) when it fires.
func newCallContext(onFire func()) *callContext {
	c := &callContext{done: make(chan struct{}), onFire: onFire}
	c.timer = time.AfterFunc(time.Hour, c.onDeadline)
	c.timer.Stop()
	return c
}

// arm starts a call that began at start with the caller's context parent and
// a deadline timeout from start (or parent's, when earlier).
func (c *callContext) arm(parent context.Context, start time.Time, timeout time.Duration) {
	values := parent
	deadline := start.Add(timeout)
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		deadline = d // parent's Done closes then, and fires c
	}
	c.deadline.Store(deadline.UnixNano())
	c.state.Store(ctxArmed)
	c.timer.Reset(timeout)
	if parent.Done() != nil {
		c.stopParent = context.AfterFunc(parent, func() { c.fire(parent.Err()) })
		// Values only: hide parent's cancellation from context.Cause,
		// which would otherwise report parent's cause (nil) after c's
		// deadline fired.
		values = context.WithoutCancel(parent)
	}
	c.parent.Store(&values)
}

// disarm ends a call and reports whether c can serve another: false when
// it fired, or when its timer or the parent's callback may still fire.
func (c *callContext) disarm() bool {
	stopped := c.timer.Stop()
	if c.stopParent != nil {
		stopped = c.stopParent() && stopped
		c.stopParent = nil
	}
	return c.state.CompareAndSwap(ctxArmed, ctxIdle) && stopped
}

func (c *callContext) onDeadline() {
	c.fire(context.DeadlineExceeded)
}

// fire closes Done with err, once, and only during a call.
func (c *callContext) fire(err error) {
	if c.state.CompareAndSwap(ctxArmed, ctxFired) {
		c.err = err
		close(c.done)
		if c.onFire != nil {
			c.onFire()
		}
	}
}

// Deadline returns the call's deadline.
func (c *callContext) Deadline() (time.Time, bool) {
	return time.Unix(0, c.deadline.Load()), true
}

// Done is closed when the call's deadline passes or the caller's context
// ends.
func (c *callContext) Done() <-chan struct{} {
	return c.done
}

// Err returns nil until Done is closed, then context.DeadlineExceeded or
// the caller's context's error.
func (c *callContext) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Value returns the caller's context's value for key.
func (c *callContext) Value(key any) any {
	if p := c.parent.Load(); p != nil {
		return (*p).Value(key)
	}
	return nil
}

var _ context.Context = (*callContext)(nil)

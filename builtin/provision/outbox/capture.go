package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// Capture turns the user and group changes recorded in each tenant's
// audit log into queued changes. It keeps a per-tenant cursor in the
// outbox's namespace and reads back an overlap window each round, because
// the store's audit sink writes in batches and an event may land shortly
// after later ones; events already seen in the window are skipped, and a
// repeated change after a restart is harmless (delivery sends the
// record's current state).
type Capture struct {
	st   store.Store
	o    *Outbox
	mu   sync.Mutex
	seen map[string]time.Time
	// initialSync queues every user and group of a tenant the first time
	// the tenant is seen.
	initialSync bool
}

// NewCapture returns a capture feeding o from st's audit log. With
// initialSync, the first round for a tenant queues every user and group
// that exists then; otherwise it starts at that moment.
func NewCapture(st store.Store, o *Outbox, initialSync bool) *Capture {
	return &Capture{st: st, o: o, seen: map[string]time.Time{}, initialSync: initialSync}
}

// captureOverlap is how far back each round reads again.
const captureOverlap = 30 * time.Second

var captured = []event.Action{
	event.UserCreate, event.UserUpdate, event.UserDelete,
	event.GroupCreate, event.GroupUpdate, event.GroupDelete, event.GroupMemberAdd, event.GroupMemberRemove,
	event.RoleAssign, event.RoleUnassign,
}

// Run makes one round over every tenant.
func (c *Capture) Run(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		tenants, next, err := c.st.ListTenants(ctx, p)
		if err != nil {
			return fmt.Errorf("listing tenants: %w", err)
		}
		for _, t := range tenants {
			if err := c.tenant(ctx, t); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	horizon := c.o.opts.Now().Add(-2 * captureOverlap)
	for id, at := range c.seen {
		if at.Before(horizon) {
			delete(c.seen, id)
		}
	}
	return nil
}

func (c *Capture) tenant(ctx context.Context, t store.Tenant) error {
	ns := c.o.opts.Namespace
	kv, err := c.st.KVGet(ctx, ns, t.ID, "cursor")
	var cursor time.Time
	switch {
	case errors.Is(err, store.ErrNotFound):
		// First start: provision changes from now on, and with
		// initialSync everything that exists already.
		now := c.o.opts.Now().UTC()
		if c.initialSync {
			if err := c.queueAll(ctx, t); err != nil {
				return err
			}
		}
		return c.setCursor(ctx, t.ID, now)
	case err != nil:
		return fmt.Errorf("reading the capture cursor: %w", err)
	}
	if err := cursor.UnmarshalText(kv.Value); err != nil {
		return c.setCursor(ctx, t.ID, c.o.opts.Now().UTC())
	}
	q := store.AuditQuery{TenantID: t.ID, Since: cursor.Add(-captureOverlap), Outcome: store.OutcomeSuccess, Page: store.Page{Limit: store.MaxPageLimit}}
	var evs []store.AuditEvent
	for range 100 {
		page, next, err := c.st.QueryAudit(ctx, q)
		if err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		evs = append(evs, page...)
		if next == "" {
			break
		}
		q.After = next
	}
	slices.Reverse(evs) // oldest first
	newest := cursor
	var batch []event.Event
	for _, r := range evs {
		if r.Time.After(newest) {
			newest = r.Time
		}
		if _, ok := c.seen[r.ID]; ok || !slices.Contains(captured, event.Action(r.Action)) {
			continue
		}
		c.seen[r.ID] = r.Time
		batch = append(batch, event.FromRecord(r))
	}
	if err := (Sink{O: c.o}).Write(ctx, batch); err != nil {
		return err
	}
	if newest.After(cursor) {
		return c.setCursor(ctx, t.ID, newest)
	}
	return nil
}

// queueAll queues every user, then every group, of the tenant.
func (c *Capture) queueAll(ctx context.Context, t store.Tenant) error {
	q := store.UserQuery{Page: store.Page{Limit: store.MaxPageLimit}}
	for {
		us, next, err := c.st.ListUsers(ctx, t.ID, q)
		if err != nil {
			return fmt.Errorf("listing users for the initial sync: %w", err)
		}
		for _, u := range us {
			if err := c.o.Enqueue(ctx, t.ID, abi.ResourceUser, u.ID); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		q.After = next
	}
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		gs, next, err := c.st.ListGroups(ctx, t.ID, p)
		if err != nil {
			return fmt.Errorf("listing groups for the initial sync: %w", err)
		}
		for _, g := range gs {
			if err := c.o.Enqueue(ctx, t.ID, abi.ResourceGroup, g.ID); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.After = next
	}
}

func (c *Capture) setCursor(ctx context.Context, tenantID string, t time.Time) error {
	b, err := t.MarshalText()
	if err != nil {
		return fmt.Errorf("encoding the capture cursor: %w", err)
	}
	if err := c.st.KVPut(ctx, c.o.opts.Namespace, tenantID, store.KVEntry{Key: "cursor", Value: b}); err != nil {
		return fmt.Errorf("storing the capture cursor: %w", err)
	}
	return nil
}

// Runner collects and delivers in the background: a capture round, then a
// delivery round, every Poll, until it is stopped.
type Runner struct {
	c      *Capture
	o      *Outbox
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs a first capture round now (so that a first start places each
// tenant's cursor before the node accepts changes) and then collects and
// delivers in the background until Stop.
func Start(ctx context.Context, c *Capture) (*Runner, error) {
	if err := c.Run(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{c: c, o: c.o, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.o.opts.Poll)
		defer t.Stop()
		for {
			if err := r.c.Run(ctx); err != nil && ctx.Err() == nil {
				r.o.opts.Log.WarnContext(ctx, "collecting changes failed", "provisioner", r.o.opts.Name, "err", err)
			}
			if _, err := r.o.Deliver(ctx); err != nil && ctx.Err() == nil {
				r.o.opts.Log.WarnContext(ctx, "delivering changes failed", "provisioner", r.o.opts.Name, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return r, nil
}

// Stop ends the background work; queued changes stay in the store for the
// next start.
func (r *Runner) Stop(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping provisioning: %w", ctx.Err())
	}
}

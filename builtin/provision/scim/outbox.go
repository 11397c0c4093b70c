package scim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// Namespace is the plugin key-value namespace of the outbox. Keys:
//
//	q/<time>-<rand>      a queued change (entry JSON), in delivery order
//	dead/<time>-<rand>   a change that failed for good (entry JSON)
//	map/<resource>/<id>  the id the target gave a local record
const Namespace = "latch.provision.scim"

// Options tune an Outbox.
type Options struct {
	// BaseBackoff is the first retry delay; it doubles per attempt up to
	// MaxBackoff. Defaults: 1 second and 5 minutes.
	BaseBackoff, MaxBackoff time.Duration
	// MaxAttempts moves a change to the dead-letter list after that many
	// failed deliveries; 0 means 50 (about four hours at the defaults).
	MaxAttempts int
	// Poll is how often Run looks for due changes; 0 means 1 second.
	Poll time.Duration
	// Log receives delivery failures; nil discards them.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Entry is one queued or dead change.
type Entry struct {
	// Key is the entry's key in Namespace.
	Key string `json:"-"`
	// EventID stays the same on every delivery of the change.
	EventID    string    `json:"event_id"`
	Resource   string    `json:"resource"`
	ResourceID string    `json:"resource_id"`
	Attempts   int       `json:"attempts"`
	NextAt     time.Time `json:"next_at"`
	LastError  string    `json:"last_error,omitempty"`
	QueuedAt   time.Time `json:"queued_at"`
}

// Outbox queues changes durably and delivers them to a Provisioner.
type Outbox struct {
	st   store.Store
	p    provision.Provisioner
	opts Options
	mu   sync.Mutex // one delivery round at a time
}

// NewOutbox returns an outbox over st delivering to p.
func NewOutbox(st store.Store, p provision.Provisioner, opts Options) *Outbox {
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 50
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Outbox{st: st, p: p, opts: opts}
}

// Resolve is the Resolver New needs: it reads the ids the target gave
// records from the outbox's map.
func (o *Outbox) Resolve(ctx context.Context, tenant, resource, localID string) (string, bool, error) {
	t, err := o.st.GetTenantByName(ctx, tenant)
	if err != nil {
		return "", false, fmt.Errorf("loading tenant %q: %w", tenant, err)
	}
	e, err := o.st.KVGet(ctx, Namespace, t.ID, "map/"+resource+"/"+localID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("reading the id map: %w", err)
	}
	return string(e.Value), true, nil
}

func newKey(t time.Time) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%020d-%s", t.UnixNano(), hex.EncodeToString(b))
}

// Enqueue records that a user or group of the tenant changed. Delivery
// reads the record's state at that time, so several changes of one record
// converge to its latest state.
func (o *Outbox) Enqueue(ctx context.Context, tenantID, resource, resourceID string) error {
	if resource != abi.ResourceUser && resource != abi.ResourceGroup {
		return fmt.Errorf("enqueueing: unknown resource %q", resource)
	}
	now := o.opts.Now().UTC()
	key := newKey(now)
	e := Entry{EventID: key, Resource: resource, ResourceID: resourceID, NextAt: now, QueuedAt: now}
	return o.put(ctx, tenantID, "q/"+key, e)
}

func (o *Outbox) put(ctx context.Context, tenantID, key string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding outbox entry: %w", err)
	}
	if err := o.st.KVPut(ctx, Namespace, tenantID, store.KVEntry{Key: key, Value: b}); err != nil {
		return fmt.Errorf("storing outbox entry: %w", err)
	}
	return nil
}

// list reads every entry under prefix.
func (o *Outbox) list(ctx context.Context, tenantID, prefix string) ([]Entry, error) {
	var out []Entry
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		kvs, next, err := o.st.KVList(ctx, Namespace, tenantID, prefix, p)
		if err != nil {
			return nil, fmt.Errorf("listing the outbox: %w", err)
		}
		for _, kv := range kvs {
			var e Entry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				continue
			}
			e.Key = kv.Key
			out = append(out, e)
		}
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

// Pending lists the tenant's queued changes in delivery order.
func (o *Outbox) Pending(ctx context.Context, tenantID string) ([]Entry, error) {
	return o.list(ctx, tenantID, "q/")
}

// DeadLetters lists the tenant's changes that failed for good.
func (o *Outbox) DeadLetters(ctx context.Context, tenantID string) ([]Entry, error) {
	return o.list(ctx, tenantID, "dead/")
}

// Requeue moves a dead letter back into the queue with a fresh attempt
// count (after the operator fixed the cause).
func (o *Outbox) Requeue(ctx context.Context, tenantID, key string) error {
	kv, err := o.st.KVGet(ctx, Namespace, tenantID, key)
	if err != nil || !strings.HasPrefix(key, "dead/") {
		return fmt.Errorf("reading dead letter %q: %w", key, store.ErrNotFound)
	}
	var e Entry
	if err := json.Unmarshal(kv.Value, &e); err != nil {
		return fmt.Errorf("decoding dead letter: %w", err)
	}
	e.Attempts, e.LastError, e.NextAt = 0, "", o.opts.Now().UTC()
	if err := o.put(ctx, tenantID, "q/"+strings.TrimPrefix(key, "dead/"), e); err != nil {
		return err
	}
	return o.st.KVDelete(ctx, Namespace, tenantID, key)
}

// Run delivers due changes until ctx is done.
func (o *Outbox) Run(ctx context.Context) {
	t := time.NewTicker(o.opts.Poll)
	defer t.Stop()
	for {
		if _, err := o.Deliver(ctx); err != nil && ctx.Err() == nil {
			o.opts.Log.WarnContext(ctx, "provisioning round failed", "provisioner", "provision.scim", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Deliver makes one pass over every tenant's queue and returns how many
// changes are still queued. A change waits while an earlier change of the
// same record is backing off, so each record's changes arrive in order.
func (o *Outbox) Deliver(ctx context.Context) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	left := 0
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		tenants, next, err := o.st.ListTenants(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("listing tenants: %w", err)
		}
		for _, t := range tenants {
			n, err := o.deliverTenant(ctx, t)
			if err != nil {
				return 0, err
			}
			left += n
		}
		if next == "" {
			return left, nil
		}
		p.After = next
	}
}

func (o *Outbox) deliverTenant(ctx context.Context, t store.Tenant) (int, error) {
	entries, err := o.Pending(ctx, t.ID)
	if err != nil {
		return 0, err
	}
	waiting := map[string]bool{}
	left := 0
	for _, e := range entries {
		rk := e.Resource + "/" + e.ResourceID
		now := o.opts.Now()
		if waiting[rk] || e.NextAt.After(now) {
			waiting[rk] = true
			left++
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("delivering: %w", err)
		}
		kept, err := o.deliverOne(ctx, t, e)
		if err != nil {
			return 0, err
		}
		if kept {
			waiting[rk] = true
			left++
		}
	}
	return left, nil
}

// deliverOne pushes one change; it reports whether the change stays queued.
func (o *Outbox) deliverOne(ctx context.Context, t store.Tenant, e Entry) (bool, error) {
	ev, err := o.event(ctx, t, e)
	if err != nil {
		return true, err
	}
	resp, perr := provision.Check(o.p.Push(ctx, ev))
	var retry *provision.RetryError
	switch {
	case perr == nil:
		mapKey := "map/" + e.Resource + "/" + e.ResourceID
		if ev.Op == abi.ProvisionDelete {
			if err := o.st.KVDelete(ctx, Namespace, t.ID, mapKey); err != nil {
				return true, fmt.Errorf("clearing the id map: %w", err)
			}
		} else if resp.ExternalID != "" && resp.ExternalID != ev.ExternalID {
			if err := o.st.KVPut(ctx, Namespace, t.ID, store.KVEntry{Key: mapKey, Value: []byte(resp.ExternalID)}); err != nil {
				return true, fmt.Errorf("storing the id map: %w", err)
			}
		}
		if err := o.st.KVDelete(ctx, Namespace, t.ID, e.Key); err != nil {
			return true, fmt.Errorf("removing a delivered change: %w", err)
		}
		return false, nil
	case errors.As(perr, &retry):
		e.Attempts++
		e.LastError = "the target is unavailable; retrying"
		if e.Attempts < o.opts.MaxAttempts {
			wait := o.backoff(e.Attempts)
			if retry.After > wait {
				wait = retry.After
			}
			e.NextAt = o.opts.Now().UTC().Add(wait)
			return true, o.put(ctx, t.ID, e.Key, e)
		}
	default:
		e.Attempts++
		e.LastError = fault.From(perr).Message
		o.opts.Log.WarnContext(ctx, "provisioning failed for good", "provisioner", "provision.scim",
			"tenant", t.Name, "resource", e.Resource, "id", e.ResourceID, "err", perr)
	}
	if err := o.put(ctx, t.ID, "dead/"+strings.TrimPrefix(e.Key, "q/"), e); err != nil {
		return true, err
	}
	if err := o.st.KVDelete(ctx, Namespace, t.ID, e.Key); err != nil {
		return true, fmt.Errorf("removing a dead change from the queue: %w", err)
	}
	return false, nil
}

func (o *Outbox) backoff(attempts int) time.Duration {
	d := o.opts.BaseBackoff
	for i := 1; i < attempts && d < o.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.opts.MaxBackoff)
}

// event builds the provisioning event from the record's current state: a
// record that no longer exists is a delete.
func (o *Outbox) event(ctx context.Context, t store.Tenant, e Entry) (abi.ProvisionEvent, error) {
	ev := abi.ProvisionEvent{ID: e.EventID, Tenant: t.Name, Resource: e.Resource, ResourceID: e.ResourceID, Op: abi.ProvisionUpdate}
	ext, ok, err := o.Resolve(ctx, t.Name, e.Resource, e.ResourceID)
	if err != nil {
		return ev, err
	}
	ev.ExternalID = ext
	if !ok {
		ev.Op = abi.ProvisionCreate
	}
	switch e.Resource {
	case abi.ResourceUser:
		u, err := o.st.GetUser(ctx, t.ID, e.ResourceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ev.Op, ev.User = abi.ProvisionDelete, &abi.User{ID: e.ResourceID}
		case err != nil:
			return ev, fmt.Errorf("loading user: %w", err)
		default:
			ev.User = &abi.User{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
				PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName, FamilyName: u.FamilyName,
				Enabled: u.Enabled, Version: u.Version}
		}
	case abi.ResourceGroup:
		g, err := o.st.GetGroup(ctx, t.ID, e.ResourceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ev.Op, ev.Group = abi.ProvisionDelete, &abi.Group{ID: e.ResourceID}
		case err != nil:
			return ev, fmt.Errorf("loading group: %w", err)
		default:
			ev.Group = &abi.Group{ID: g.ID, Name: g.Name, Description: g.Description}
			p := store.Page{Limit: store.MaxPageLimit}
			for {
				us, next, err := o.st.ListGroupMembers(ctx, t.ID, g.ID, p)
				if err != nil {
					return ev, fmt.Errorf("loading group members: %w", err)
				}
				for _, u := range us {
					ev.Members = append(ev.Members, u.ID)
				}
				if next == "" {
					break
				}
				p.After = next
			}
		}
	}
	if ev.Op == abi.ProvisionDelete && !ok {
		// Never reached the target and gone already: deleting finds it by
		// name only when the name is known, so skip the lookup.
		ev.ExternalID = ""
	}
	return ev, nil
}

// Sink feeds the outbox from the audit event bus: every successful user or
// group change becomes a queued change. Register it with event.NewBus.
type Sink struct{ O *Outbox }

// Name implements event.Sink.
func (Sink) Name() string { return "provision.scim" }

// Write implements event.Sink.
func (s Sink) Write(ctx context.Context, events []event.Event) error {
	var errs []error
	for _, e := range events {
		if e.Outcome != event.OutcomeSuccess || e.Tenant == "" {
			continue
		}
		resource := ""
		switch e.Action {
		case event.UserCreate, event.UserUpdate, event.UserDelete:
			resource = abi.ResourceUser
		case event.GroupCreate, event.GroupUpdate, event.GroupDelete, event.GroupMemberAdd, event.GroupMemberRemove:
			resource = abi.ResourceGroup
		default:
			continue
		}
		kind, id, ok := strings.Cut(e.Target, ":")
		if !ok || kind != resource || id == "" {
			continue
		}
		if err := s.O.Enqueue(ctx, e.Tenant, resource, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var _ event.Sink = Sink{}

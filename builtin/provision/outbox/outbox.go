// Package outbox makes provisioning asynchronous and durable for any
// provisioner (kernel/provision.Provisioner): the builtin outbound SCIM
// connector, and provisioners from plugins such as the webhook.
//
// A Capture reads the user and group changes of every tenant from the
// audit log and queues them in an Outbox, kept in the kernel store's
// plugin key-value space under the outbox's own namespace, so a queued
// change survives restarts and target outages. Delivery sends each
// record's current state in order per record, retries with exponential
// backoff, and moves a change that fails for good to a dead-letter list,
// from which an operator retries or discards it (the admin API's
// /provisioning routes, through kernel/provision.Queue). Rules, when set,
// decide which users and groups reach the target.
package outbox

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

// Key prefixes in an outbox's namespace:
//
//	q/<time>-<rand>      a queued change (entry JSON), in delivery order
//	dead/<time>-<rand>   a change that failed for good (entry JSON)
//	map/<resource>/<id>  the id the target gave a local record
//	cursor               the capture's position in the audit log
const (
	prefixQueued = "q/"
	prefixDead   = "dead/"
)

// Options tune an Outbox.
type Options struct {
	// Namespace is the plugin key-value namespace of the outbox; every
	// provisioner instance needs its own. Required.
	Namespace string
	// Name labels the outbox in logs; empty means Namespace.
	Name string
	// Rules decide which users and groups are provisioned; nil: all.
	Rules *Rules
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
type Entry = provision.QueueEntry

// Outbox queues changes durably and delivers them to a Provisioner.
type Outbox struct {
	st   store.Store
	p    provision.Provisioner
	opts Options
	mu   sync.Mutex // one delivery round at a time
}

// New returns an outbox over st delivering to p.
func New(st store.Store, p provision.Provisioner, opts Options) *Outbox {
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
	if opts.Name == "" {
		opts.Name = opts.Namespace
	}
	return &Outbox{st: st, p: p, opts: opts}
}

// Namespace returns the outbox's key-value namespace.
func (o *Outbox) Namespace() string { return o.opts.Namespace }

// Poll returns how often the outbox is meant to be delivered.
func (o *Outbox) Poll() time.Duration { return o.opts.Poll }

// Resolve reads the id the target gave a local record from the outbox's
// map (tenant is the tenant's name).
func (o *Outbox) Resolve(ctx context.Context, tenant, resource, localID string) (string, bool, error) {
	t, err := o.st.GetTenantByName(ctx, tenant)
	if err != nil {
		return "", false, fmt.Errorf("loading tenant %q: %w", tenant, err)
	}
	return o.resolve(ctx, t.ID, resource, localID)
}

func (o *Outbox) resolve(ctx context.Context, tenantID, resource, localID string) (string, bool, error) {
	e, err := o.st.KVGet(ctx, o.opts.Namespace, tenantID, "map/"+resource+"/"+localID)
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
	return o.put(ctx, tenantID, prefixQueued+key, e)
}

func (o *Outbox) put(ctx context.Context, tenantID, key string, e Entry) error {
	e.ID = ""
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding outbox entry: %w", err)
	}
	if err := o.st.KVPut(ctx, o.opts.Namespace, tenantID, store.KVEntry{Key: key, Value: b}); err != nil {
		return fmt.Errorf("storing outbox entry: %w", err)
	}
	return nil
}

// page reads one page of entries under prefix.
func (o *Outbox) page(ctx context.Context, tenantID, prefix string, p store.Page) ([]Entry, string, error) {
	kvs, next, err := o.st.KVList(ctx, o.opts.Namespace, tenantID, prefix, p.Normalize())
	if err != nil {
		return nil, "", fmt.Errorf("listing the outbox: %w", err)
	}
	out := make([]Entry, 0, len(kvs))
	for _, kv := range kvs {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			continue
		}
		e.Key, e.ID = kv.Key, strings.TrimPrefix(kv.Key, prefix)
		out = append(out, e)
	}
	return out, next, nil
}

// list reads every entry under prefix.
func (o *Outbox) list(ctx context.Context, tenantID, prefix string) ([]Entry, error) {
	var out []Entry
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		es, next, err := o.page(ctx, tenantID, prefix, p)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

// Pending lists the tenant's queued changes in delivery order.
func (o *Outbox) Pending(ctx context.Context, tenantID string) ([]Entry, error) {
	return o.list(ctx, tenantID, prefixQueued)
}

// DeadLetters lists the tenant's changes that failed for good.
func (o *Outbox) DeadLetters(ctx context.Context, tenantID string) ([]Entry, error) {
	return o.list(ctx, tenantID, prefixDead)
}

// ListPending implements provision.Queue.
func (o *Outbox) ListPending(ctx context.Context, tenantID string, p store.Page) ([]Entry, string, error) {
	return o.page(ctx, tenantID, prefixQueued, p)
}

// ListDeadLetters implements provision.Queue.
func (o *Outbox) ListDeadLetters(ctx context.Context, tenantID string, p store.Page) ([]Entry, string, error) {
	return o.page(ctx, tenantID, prefixDead, p)
}

// deadKey turns an entry id or a full "dead/…" key into the key.
func deadKey(id string) (string, bool) {
	id = strings.TrimPrefix(id, prefixDead)
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "/ ") {
		return "", false
	}
	return prefixDead + id, true
}

// Requeue moves a dead letter (by id, or its full key) back into the
// queue with a fresh attempt count, after the operator fixed the cause.
// An unknown dead letter is store.ErrNotFound.
func (o *Outbox) Requeue(ctx context.Context, tenantID, id string) error {
	key, ok := deadKey(id)
	if !ok {
		return fmt.Errorf("reading dead letter %q: %w", id, store.ErrNotFound)
	}
	kv, err := o.st.KVGet(ctx, o.opts.Namespace, tenantID, key)
	if err != nil {
		return fmt.Errorf("reading dead letter %q: %w", id, err)
	}
	var e Entry
	if err := json.Unmarshal(kv.Value, &e); err != nil {
		return fmt.Errorf("decoding dead letter: %w", err)
	}
	e.Attempts, e.LastError, e.NextAt = 0, "", o.opts.Now().UTC()
	if err := o.put(ctx, tenantID, prefixQueued+strings.TrimPrefix(key, prefixDead), e); err != nil {
		return err
	}
	return o.st.KVDelete(ctx, o.opts.Namespace, tenantID, key)
}

// Retry implements provision.Queue: Requeue.
func (o *Outbox) Retry(ctx context.Context, tenantID, id string) error {
	return o.Requeue(ctx, tenantID, id)
}

// RetryAll implements provision.Queue: every dead letter of the tenant
// goes back into the queue; it returns how many did.
func (o *Outbox) RetryAll(ctx context.Context, tenantID string) (int, error) {
	dead, err := o.DeadLetters(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range dead {
		if err := o.Requeue(ctx, tenantID, e.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// Discard implements provision.Queue: it deletes one dead letter for good.
func (o *Outbox) Discard(ctx context.Context, tenantID, id string) error {
	key, ok := deadKey(id)
	if !ok {
		return fmt.Errorf("reading dead letter %q: %w", id, store.ErrNotFound)
	}
	if _, err := o.st.KVGet(ctx, o.opts.Namespace, tenantID, key); err != nil {
		return fmt.Errorf("reading dead letter %q: %w", id, err)
	}
	if err := o.st.KVDelete(ctx, o.opts.Namespace, tenantID, key); err != nil {
		return fmt.Errorf("discarding dead letter %q: %w", id, err)
	}
	return nil
}

// Run delivers due changes until ctx is done.
func (o *Outbox) Run(ctx context.Context) {
	t := time.NewTicker(o.opts.Poll)
	defer t.Stop()
	for {
		if _, err := o.Deliver(ctx); err != nil && ctx.Err() == nil {
			o.opts.Log.WarnContext(ctx, "provisioning round failed", "provisioner", o.opts.Name, "err", err)
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
	ev, skip, err := o.event(ctx, t, e)
	if err != nil {
		return true, err
	}
	if skip {
		// Out of the rules' scope and never pushed: nothing to do.
		if err := o.st.KVDelete(ctx, o.opts.Namespace, t.ID, e.Key); err != nil {
			return true, fmt.Errorf("removing a skipped change: %w", err)
		}
		return false, nil
	}
	resp, perr := provision.Check(o.p.Push(ctx, ev))
	var retry *provision.RetryError
	switch {
	case perr == nil:
		mapKey := "map/" + e.Resource + "/" + e.ResourceID
		if ev.Op == abi.ProvisionDelete {
			if err := o.st.KVDelete(ctx, o.opts.Namespace, t.ID, mapKey); err != nil && !errors.Is(err, store.ErrNotFound) {
				return true, fmt.Errorf("clearing the id map: %w", err)
			}
		} else if resp.ExternalID != "" && resp.ExternalID != ev.ExternalID {
			if err := o.st.KVPut(ctx, o.opts.Namespace, t.ID, store.KVEntry{Key: mapKey, Value: []byte(resp.ExternalID)}); err != nil {
				return true, fmt.Errorf("storing the id map: %w", err)
			}
		}
		if err := o.st.KVDelete(ctx, o.opts.Namespace, t.ID, e.Key); err != nil {
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
		o.opts.Log.WarnContext(ctx, "provisioning failed for good", "provisioner", o.opts.Name,
			"tenant", t.Name, "resource", e.Resource, "id", e.ResourceID, "err", perr)
	}
	e.DeadAt = o.opts.Now().UTC()
	if err := o.put(ctx, t.ID, prefixDead+strings.TrimPrefix(e.Key, prefixQueued), e); err != nil {
		return true, err
	}
	if err := o.st.KVDelete(ctx, o.opts.Namespace, t.ID, e.Key); err != nil {
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
// record that no longer exists is a delete. A record outside the rules is
// deprovisioned when it reached the target before, and skipped otherwise.
func (o *Outbox) event(ctx context.Context, t store.Tenant, e Entry) (abi.ProvisionEvent, bool, error) {
	ev := abi.ProvisionEvent{ID: e.EventID, Tenant: t.Name, Resource: e.Resource, ResourceID: e.ResourceID, Op: abi.ProvisionUpdate}
	ext, known, err := o.resolve(ctx, t.ID, e.Resource, e.ResourceID)
	if err != nil {
		return ev, false, err
	}
	ev.ExternalID = ext
	if !known {
		ev.Op = abi.ProvisionCreate
	}
	rules := o.opts.Rules
	switch e.Resource {
	case abi.ResourceUser:
		u, err := o.st.GetUser(ctx, t.ID, e.ResourceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ev.Op, ev.User = abi.ProvisionDelete, &abi.User{ID: e.ResourceID}
		case err != nil:
			return ev, false, fmt.Errorf("loading user: %w", err)
		default:
			ev.User = &abi.User{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
				PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName, FamilyName: u.FamilyName,
				Enabled: u.Enabled, Version: u.Version}
			in, err := rules.MatchUser(ctx, o.st, t.ID, u)
			if err != nil {
				return ev, false, err
			}
			if !in {
				if !known {
					return ev, true, nil
				}
				if rules.disable() {
					ev.Op, ev.User.Enabled = abi.ProvisionUpdate, false
				} else {
					ev.Op = abi.ProvisionDelete
				}
			}
		}
	case abi.ResourceGroup:
		g, err := o.st.GetGroup(ctx, t.ID, e.ResourceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ev.Op, ev.Group = abi.ProvisionDelete, &abi.Group{ID: e.ResourceID}
		case err != nil:
			return ev, false, fmt.Errorf("loading group: %w", err)
		default:
			ev.Group = &abi.Group{ID: g.ID, Name: g.Name, Description: g.Description}
			if !rules.MatchGroup(g) {
				if !known {
					return ev, true, nil
				}
				ev.Op = abi.ProvisionDelete
				break
			}
			p := store.Page{Limit: store.MaxPageLimit}
			for {
				us, next, err := o.st.ListGroupMembers(ctx, t.ID, g.ID, p)
				if err != nil {
					return ev, false, fmt.Errorf("loading group members: %w", err)
				}
				for _, u := range us {
					// Members outside the rules never reach the target.
					in, err := rules.MatchUser(ctx, o.st, t.ID, u)
					if err != nil {
						return ev, false, err
					}
					if in {
						ev.Members = append(ev.Members, u.ID)
					}
				}
				if next == "" {
					break
				}
				p.After = next
			}
		}
	}
	if ev.Op == abi.ProvisionDelete && !known {
		// Never reached the target and gone already: deleting finds it by
		// name only when the name is known, so skip the lookup.
		ev.ExternalID = ""
	}
	return ev, false, nil
}

// Sink feeds the outbox from the audit event bus: every successful user
// or group change becomes a queued change. With rules, a change of a
// user's group memberships or roles queues the user too, since it may
// move them in or out of scope: a member added or removed, every member
// of a group renamed or given or stripped of a role, and every former
// member of a deleted group (named by the event,
// provision.FormerMembers).
type Sink struct{ O *Outbox }

// Name implements event.Sink.
func (s Sink) Name() string { return "provision.outbox" }

// Write implements event.Sink.
func (s Sink) Write(ctx context.Context, events []event.Event) error {
	var errs []error
	enqueue := func(tenant, resource, id string) {
		if err := s.O.Enqueue(ctx, tenant, resource, id); err != nil {
			errs = append(errs, err)
		}
	}
	rules := s.O.opts.Rules
	for _, e := range events {
		if e.Outcome != event.OutcomeSuccess || e.Tenant == "" {
			continue
		}
		kind, id, ok := strings.Cut(e.Target, ":")
		if !ok || id == "" {
			continue
		}
		switch e.Action {
		case event.UserCreate, event.UserUpdate, event.UserDelete:
			if kind == abi.ResourceUser {
				enqueue(e.Tenant, abi.ResourceUser, id)
			}
		case event.GroupCreate, event.GroupUpdate, event.GroupDelete, event.GroupMemberAdd, event.GroupMemberRemove:
			if kind != abi.ResourceGroup {
				continue
			}
			if rules.dependsOnMembership() {
				// First the users whose scope may change, then the group
				// (whose members are the users in scope).
				switch e.Action {
				case event.GroupDelete:
					// The members left with the group; the event names
					// them (provision.FormerMembers).
					ids, truncated := provision.MemberIDs(e.Detail)
					for _, uid := range ids {
						enqueue(e.Tenant, abi.ResourceUser, uid)
					}
					if truncated {
						errs = append(errs, s.O.enqueueKnownUsers(ctx, e.Tenant))
					}
				case event.GroupUpdate:
					// A renamed group may move all its members.
					errs = append(errs, s.O.enqueueMembers(ctx, e.Tenant, id))
				default:
					if uid, _ := e.Detail["user"].(string); uid != "" {
						enqueue(e.Tenant, abi.ResourceUser, uid)
					}
				}
			}
			enqueue(e.Tenant, abi.ResourceGroup, id)
		case event.RoleAssign, event.RoleUnassign:
			if !rules.dependsOnRoles() {
				continue
			}
			if uid, _ := e.Detail[store.SubjectUser].(string); uid != "" {
				enqueue(e.Tenant, abi.ResourceUser, uid)
			}
			if gid, _ := e.Detail[store.SubjectGroup].(string); gid != "" {
				errs = append(errs, s.O.enqueueMembers(ctx, e.Tenant, gid))
			}
		}
	}
	return errors.Join(errs...)
}

// enqueueKnownUsers queues every user the target holds (those in the id
// map), so that each is checked against the rules again.
func (o *Outbox) enqueueKnownUsers(ctx context.Context, tenantID string) error {
	prefix := "map/" + abi.ResourceUser + "/"
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		kvs, next, err := o.st.KVList(ctx, o.opts.Namespace, tenantID, prefix, p)
		if err != nil {
			return fmt.Errorf("listing the users pushed: %w", err)
		}
		for _, kv := range kvs {
			if err := o.Enqueue(ctx, tenantID, abi.ResourceUser, strings.TrimPrefix(kv.Key, prefix)); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.After = next
	}
}

// enqueueMembers queues every member of a group.
func (o *Outbox) enqueueMembers(ctx context.Context, tenantID, groupID string) error {
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		us, next, err := o.st.ListGroupMembers(ctx, tenantID, groupID, p)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing group members: %w", err)
		}
		for _, u := range us {
			if err := o.Enqueue(ctx, tenantID, abi.ResourceUser, u.ID); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.After = next
	}
}

var (
	_ event.Sink      = Sink{}
	_ provision.Queue = (*Outbox)(nil)
)

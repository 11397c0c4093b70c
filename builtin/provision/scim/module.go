package scim

import (
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "provision.scim"

// DepStore is the dependency the module needs: the kernel store.Store,
// which holds the outbox and whose audit log feeds it.
const DepStore = "store"

//go:embed config.schema.json
var configSchema []byte

// Module returns the provision.scim module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindProvisioner,
		New:          func() any { return new(Instance) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Outbound SCIM 2.0: pushes users and groups to another SCIM service, durably, with retries and a dead-letter list.",
	}
}

// Instance is a provision.scim instance. Its exported fields are its
// configuration (see config.schema.json). Once provisioned it collects the
// user and group changes recorded in the audit log of every tenant into
// its outbox and delivers them in the background until it is closed.
type Instance struct {
	URL           string   `json:"url"`
	Token         string   `json:"token,omitempty"`
	TokenURL      string   `json:"token_url,omitempty"`
	ClientID      string   `json:"client_id,omitempty"`
	ClientSecret  string   `json:"client_secret,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	TimeoutMillis int64    `json:"timeout_millis,omitempty"`
	AllowPrivate  bool     `json:"allow_private,omitempty"`
	MaxAttempts   int      `json:"max_attempts,omitempty"`
	PollMillis    int64    `json:"poll_millis,omitempty"`
	InitialSync   bool     `json:"initial_sync,omitempty"`

	p      *Provisioner
	o      *Outbox
	c      *capture
	cancel context.CancelFunc
	done   chan struct{}
}

// Provision implements extension.Provisioner: it builds the client and the
// outbox and starts delivering.
func (in *Instance) Provision(ctx context.Context, env extension.Env) error {
	d, _ := env.Dep(DepStore)
	st, ok := d.(store.Store)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want a store.Store", ID, DepStore, d)
	}
	var err error
	in.p, err = New(Config{URL: in.URL, Token: in.Token, TokenURL: in.TokenURL, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		Scopes: in.Scopes, Timeout: time.Duration(in.TimeoutMillis) * time.Millisecond, AllowPrivate: in.AllowPrivate}, nil)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	poll := time.Duration(in.PollMillis) * time.Millisecond
	in.o = NewOutbox(st, in.p, Options{MaxAttempts: in.MaxAttempts, Poll: poll, Log: env.Logger})
	in.p.resolve = in.o.Resolve
	in.c = &capture{st: st, o: in.o, seen: map[string]time.Time{}, initialSync: in.InitialSync}
	// The first round runs before the node serves, so that a first start
	// places each tenant's cursor before any change the node accepts.
	if err := in.c.run(ctx); err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel, in.done = cancel, make(chan struct{})
	go func() {
		defer close(in.done)
		t := time.NewTicker(in.o.opts.Poll)
		defer t.Stop()
		for {
			if err := in.c.run(ctx); err != nil && ctx.Err() == nil {
				in.o.opts.Log.WarnContext(ctx, "collecting changes failed", "err", err)
			}
			if _, err := in.o.Deliver(ctx); err != nil && ctx.Err() == nil {
				in.o.opts.Log.WarnContext(ctx, "delivering changes failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Close implements extension.Cleaner: it stops the background delivery.
// Queued changes stay in the store for the next start.
func (in *Instance) Close(ctx context.Context) error {
	if in.cancel == nil {
		return nil
	}
	in.cancel()
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", ID, ctx.Err())
	}
}

// Push implements provision.Provisioner, for callers that deliver events
// themselves.
func (in *Instance) Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	if in.p == nil {
		return abi.ProvisionResponse{}, errors.New("provision.scim: not provisioned")
	}
	return in.p.Push(ctx, ev)
}

// Outbox returns the instance's outbox (pending changes, dead letters,
// requeue), or nil before Provision.
func (in *Instance) Outbox() *Outbox { return in.o }

// capture turns the user and group changes recorded in each tenant's audit
// log into queued changes. It keeps a per-tenant cursor in the outbox
// namespace and reads back an overlap window each round, because the
// store's audit sink writes in batches and an event may land shortly after
// later ones; events already seen in the window are skipped, and a
// repeated change after a restart is harmless (delivery sends the record's
// current state).
type capture struct {
	st   store.Store
	o    *Outbox
	mu   sync.Mutex
	seen map[string]time.Time
	// initialSync queues every user and group of a tenant the first time
	// the tenant is seen.
	initialSync bool
}

// captureOverlap is how far back each round reads again.
const captureOverlap = 30 * time.Second

var provisioned = []event.Action{
	event.UserCreate, event.UserUpdate, event.UserDelete,
	event.GroupCreate, event.GroupUpdate, event.GroupDelete, event.GroupMemberAdd, event.GroupMemberRemove,
}

func (c *capture) run(ctx context.Context) error {
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

func (c *capture) tenant(ctx context.Context, t store.Tenant) error {
	kv, err := c.st.KVGet(ctx, Namespace, t.ID, "cursor")
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
		if _, ok := c.seen[r.ID]; ok || !slices.Contains(provisioned, event.Action(r.Action)) {
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
func (c *capture) queueAll(ctx context.Context, t store.Tenant) error {
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

func (c *capture) setCursor(ctx context.Context, tenantID string, t time.Time) error {
	b, err := t.MarshalText()
	if err != nil {
		return fmt.Errorf("encoding the capture cursor: %w", err)
	}
	if err := c.st.KVPut(ctx, Namespace, tenantID, store.KVEntry{Key: "cursor", Value: b}); err != nil {
		return fmt.Errorf("storing the capture cursor: %w", err)
	}
	return nil
}

var (
	_ extension.Provisioner = (*Instance)(nil)
	_ extension.Cleaner     = (*Instance)(nil)
)

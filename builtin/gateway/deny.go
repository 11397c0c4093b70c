package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Deny policies live in the kernel store's plugin key-value space, under
// the plugin namespace DenyNamespace and the default tenant, one entry per
// policy keyed DenyKeyPrefix + id, its value a DenyPolicy in JSON. The
// admin API writes them; every gateway node re-reads them each
// deny_poll_interval (500ms by default), so a change is in force on every
// node within a second, without a restart.
const (
	DenyNamespace = "latch.gateway"
	DenyKeyPrefix = "deny/"
	// SubscriptionKeyPrefix starts the keys of subscriptions, stored
	// beside the deny policies (same namespace and tenant), each a
	// Subscription in JSON.
	SubscriptionKeyPrefix = "subscription/"
)

// Subscription lets a client call an API that requires subscriptions.
type Subscription struct {
	// API is the API name.
	API string `json:"api"`
	// ClientID is the client's id as its tokens carry it.
	ClientID string `json:"client_id"`
	// CreatedAt is when the subscription was added.
	CreatedAt time.Time `json:"created_at"`
}

// Kinds of deny policy.
const (
	DenyIP     = "ip"
	DenyCIDR   = "cidr"
	DenyClient = "client"
	DenyUser   = "user"
	DenyAPI    = "api"
)

// DenyPolicy is one stored deny policy.
type DenyPolicy struct {
	// Kind is ip, cidr, client, user or api.
	Kind string `json:"kind"`
	// Value is the address, range, client id, user (token subject) or
	// API name.
	Value string `json:"value"`
	// Reason is the operator's note.
	Reason string `json:"reason,omitempty"`
	// CreatedAt is when the policy was added.
	CreatedAt time.Time `json:"created_at"`
}

// denySet is the deny policies in force, immutable.
type denySet struct {
	prefixes []netip.Prefix
	clients  map[string]bool
	users    map[string]bool
	apis     map[string]bool
	// subs maps an API to its subscribed clients.
	subs map[string]map[string]bool
}

func (s *denySet) subscribed(api, client string) bool { return client != "" && s.subs[api][client] }

func (s *denySet) ip(a netip.Addr) bool {
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// denyList keeps the deny policies current by polling the store.
type denyList struct {
	kv       store.PluginKV
	tenantID string
	log      *slog.Logger
	set      atomic.Pointer[denySet]
}

func newDenyList(kv store.PluginKV, tenantID string, log *slog.Logger) *denyList {
	d := &denyList{kv: kv, tenantID: tenantID, log: log}
	d.set.Store(&denySet{})
	return d
}

func (d *denyList) current() *denySet { return d.set.Load() }

// run polls every interval until ctx is done.
func (d *denyList) run(ctx context.Context, every func() time.Duration) {
	for {
		if err := d.load(ctx); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "reading deny policies failed; keeping the last ones", "err", err)
		}
		t := time.NewTimer(every())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// load reads every policy and swaps the set in.
func (d *denyList) load(ctx context.Context) error {
	if d.kv == nil {
		return nil
	}
	next := &denySet{clients: map[string]bool{}, users: map[string]bool{}, apis: map[string]bool{}, subs: map[string]map[string]bool{}}
	err := d.each(ctx, DenyKeyPrefix, func(e store.KVEntry) error {
		var p DenyPolicy
		if err := json.Unmarshal(e.Value, &p); err != nil {
			return err
		}
		return next.add(p)
	})
	if err != nil {
		return fmt.Errorf("listing deny policies: %w", err)
	}
	err = d.each(ctx, SubscriptionKeyPrefix, func(e store.KVEntry) error {
		var s Subscription
		if err := json.Unmarshal(e.Value, &s); err != nil {
			return err
		}
		if next.subs[s.API] == nil {
			next.subs[s.API] = map[string]bool{}
		}
		next.subs[s.API][s.ClientID] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing subscriptions: %w", err)
	}
	d.set.Store(next)
	return nil
}

// each calls fn on every entry under prefix; an entry fn refuses is logged
// and skipped.
func (d *denyList) each(ctx context.Context, prefix string, fn func(store.KVEntry) error) error {
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		entries, after, err := d.kv.KVList(ctx, DenyNamespace, d.tenantID, prefix, page)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				d.log.WarnContext(ctx, "skipping an invalid gateway policy entry", "key", e.Key, "err", err)
			}
		}
		if after == "" {
			return nil
		}
		page.After = after
	}
}

func (s *denySet) add(p DenyPolicy) error {
	switch p.Kind {
	case DenyIP, DenyCIDR:
		pf, err := parsePrefix(p.Value)
		if err != nil {
			return err
		}
		s.prefixes = append(s.prefixes, pf)
	case DenyClient:
		s.clients[p.Value] = true
	case DenyUser:
		s.users[p.Value] = true
	case DenyAPI:
		s.apis[p.Value] = true
	default:
		return fmt.Errorf("unknown kind %q", p.Kind)
	}
	return nil
}

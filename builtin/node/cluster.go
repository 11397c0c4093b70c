package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/cache"
	claimsdialect "github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/builtin/gateway"
	"github.com/latchid/latch/builtin/oauth"
	throttleredis "github.com/latchid/latch/builtin/throttle/redis"
	"github.com/latchid/latch/kernel/notify"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/postgres"
)

// publishTimeout bounds one change notification after a committed write.
const publishTimeout = 2 * time.Second

// changeBus is the node's change-notification bus (kernel/notify).
type changeBus interface {
	notify.Bus
	Close() error
}

// changeMetrics count the node's change notifications.
type changeMetrics struct {
	published *prometheus.CounterVec // topic, result
	received  *prometheus.CounterVec // topic, kind
}

func newChangeMetrics(reg prometheus.Registerer) (*changeMetrics, error) {
	m := &changeMetrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "cluster", Name: "changes_published_total",
			Help: "Change notifications this node published after a committed write, by topic and result (ok, error).",
		}, []string{"topic", "result"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "cluster", Name: "changes_received_total",
			Help: "Change notifications this node's caches handled, by topic and kind (change, resync).",
		}, []string{"topic", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.published, m.received} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering change notification metrics: %w", err)
		}
	}
	return m, nil
}

// openCluster opens what makes the node one of a cluster: the change bus
// (PostgreSQL LISTEN/NOTIFY when the store is PostgreSQL, in process
// otherwise), the shared cache when cache.driver is redis, and the store
// wrapper that announces committed writes of what nodes cache. raw is the
// store as opened, before instrumentation.
func (n *Node) openCluster(ctx context.Context, raw store.Store) (err error) {
	if pg, ok := raw.(*postgres.Store); ok {
		channel, err := pg.NotifyChannel(ctx)
		if err != nil {
			return fmt.Errorf("starting change notifications: %w", err)
		}
		bus, err := notify.NewPostgres(pg.NotifyDialer(), notify.PostgresOptions{Channel: channel, Logger: n.log.With("component", "notify")})
		if err != nil {
			return fmt.Errorf("starting change notifications: %w", err)
		}
		if err := bus.Start(ctx); err != nil {
			return fmt.Errorf("starting change notifications: %w", err)
		}
		n.changes = bus
	} else {
		n.changes = notify.NewLocal(n.log.With("component", "notify"))
	}
	if n.chMetrics, err = newChangeMetrics(n.registry); err != nil {
		return err
	}
	cache.RouteLogs(n.log)
	c, err := cache.Open(n.cfg.Cache)
	if err != nil {
		return fmt.Errorf("opening the shared cache: %w", err)
	}
	n.cache = c
	n.dialects = claimsdialect.NewCache()
	n.directory = oauth.NewDirectory()
	n.store = &announcingStore{Store: n.store, n: n}
	return nil
}

// withCache adds the shared cache to the extensions' dependencies, for
// throttle.redis instances configured without an address of their own,
// and the node's cache of claim dialect tables, for claims.dialect.
func (n *Node) withCache(deps map[string]any) map[string]any {
	if n.cache != nil {
		deps[throttleredis.DepClient] = n.cache
	}
	if n.dialects != nil {
		deps[claimsdialect.DepCache] = n.dialects
	}
	return deps
}

// ready backs /readyz: the store, and the shared cache when there is one,
// must answer.
func (n *Node) ready(ctx context.Context) error {
	if err := n.store.Ping(ctx); err != nil {
		return err
	}
	if n.cache != nil {
		if err := n.cache.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}

// announce publishes c after a committed write. A lost notification is
// logged, not returned: the write stands, and the periodic resync of
// every node's bus catches up.
func (n *Node) announce(ctx context.Context, c notify.Change) {
	if n.changes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := n.changes.Publish(ctx, c); err != nil {
		n.chMetrics.published.WithLabelValues(c.Topic, "error").Inc()
		n.log.WarnContext(ctx, "announcing a change to the other nodes; they pick it up at the next resync", "topic", c.Topic, "err", err)
		return
	}
	n.chMetrics.published.WithLabelValues(c.Topic, "ok").Inc()
}

// followChanges subscribes the node's caches to the change bus: signing
// keys, SAML service providers, claim dialect tables, the oauth
// provider's tenants and clients, gateway deny policies and plugin
// bundles.
// forgetSP drops a tenant's cached service providers ("" all of them); it
// and gw may be nil when the role is off.
func (n *Node) followChanges(forgetSP func(tenantID string), gw interface{ ReloadDeny(context.Context) error }) {
	if n.changes == nil {
		return
	}
	var subs []func()
	subscribe := func(topic string, h notify.Handler) {
		subs = append(subs, n.changes.Subscribe(topic, func(ctx context.Context, c notify.Change) {
			kind := "change"
			if c.Resync {
				kind = "resync"
			}
			n.chMetrics.received.WithLabelValues(topic, kind).Inc()
			h(ctx, c)
		}))
	}
	keys := func(_ context.Context, c notify.Change) {
		if c.Resync || c.Key == "" {
			n.keys.ForgetAll()
			return
		}
		n.keys.Forget(c.Key)
	}
	subscribe(notify.TopicKeys, keys)
	subscribe(notify.TopicTenants, keys)
	if n.dialects != nil {
		d := n.dialects
		dialects := func(_ context.Context, c notify.Change) {
			if c.Resync || c.Key == "" {
				d.ForgetAll()
				return
			}
			d.Forget(c.Key)
		}
		subscribe(notify.TopicClaimDialects, dialects)
		subscribe(notify.TopicTenants, dialects) // renamed or deleted
	}
	// The oauth provider's tenants and clients; a write on this node has
	// dropped them already (announcingStore), so this is for the others.
	dir := n.directory
	subscribe(notify.TopicClients, func(_ context.Context, c notify.Change) {
		if c.Resync {
			dir.ForgetClients("")
			return
		}
		dir.ForgetClients(c.Key)
	})
	subscribe(notify.TopicTenants, func(_ context.Context, c notify.Change) {
		if c.Resync {
			dir.ForgetTenant("")
			return
		}
		dir.ForgetTenant(c.Key)
	})
	if forgetSP != nil {
		sp := func(_ context.Context, c notify.Change) {
			if c.Resync {
				forgetSP("")
				return
			}
			forgetSP(c.Key)
		}
		subscribe(notify.TopicClients, sp)
		subscribe(notify.TopicTenants, sp)
	}
	if gw != nil {
		subscribe(notify.TopicDenyPolicies, func(ctx context.Context, _ notify.Change) {
			if err := gw.ReloadDeny(ctx); err != nil {
				n.log.WarnContext(ctx, "reloading deny policies after a change", "err", err)
			}
		})
	}
	if n.bundles != nil {
		// The bundle set also polls the table; the notification makes a
		// change made on another node load here at once.
		b := n.bundles
		subscribe(notify.TopicBundles, func(ctx context.Context, _ notify.Change) {
			if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
				n.log.WarnContext(ctx, "following plugin bundles after a change", "err", err)
			}
		})
	}
	n.unfollow = func() {
		for _, u := range subs {
			u()
		}
	}
}

// stopFollowing ends the subscriptions of followChanges, waiting for a
// running handler, so that nothing reloads while the node closes.
func (n *Node) stopFollowing() {
	if n.unfollow != nil {
		n.unfollow()
		n.unfollow = nil
	}
}

// closeCluster closes the change bus and the shared cache.
func (n *Node) closeCluster() {
	n.stopFollowing()
	if n.changes != nil {
		if err := n.changes.Close(); err != nil {
			n.log.Warn("closing change notifications", "err", err)
		}
		n.changes = nil
	}
	if n.cache != nil {
		if err := n.cache.Close(); err != nil {
			n.log.Warn("closing the shared cache", "err", err)
		}
		n.cache = nil
	}
}

// announcingStore publishes a change notification after each committed
// write of something nodes cache: clients (and the flows and scripts in
// their settings), versioned flows, tenants, signing keys, claim dialect
// tables, plugin bundles and the gateway's deny policies and
// subscriptions. Claim dialect tables, and the tenants and clients the
// oauth provider caches, are also dropped from this node's caches before
// the write returns, so the next request here sees the change without
// waiting for the bus. Every writer (the admin API, the CLI's
// commands run on a node, dynamic client registration, the key manager)
// goes through it, so none can forget to announce.
type announcingStore struct {
	store.Store
	n *Node
}

func (s *announcingStore) CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	out, err := s.Store.CreateTenant(ctx, t)
	if err == nil {
		s.n.directory.ForgetTenant(out.ID)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicTenants, Key: out.ID})
	}
	return out, err
}

func (s *announcingStore) UpdateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	out, err := s.Store.UpdateTenant(ctx, t)
	if err == nil {
		s.n.dialects.Forget(out.ID) // cached by name: a rename
		s.n.directory.ForgetTenant(out.ID)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicTenants, Key: out.ID})
	}
	return out, err
}

func (s *announcingStore) DeleteTenant(ctx context.Context, id string) error {
	err := s.Store.DeleteTenant(ctx, id)
	if err == nil {
		s.n.dialects.Forget(id)
		s.n.directory.ForgetTenant(id)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicTenants, Key: id})
	}
	return err
}

func (s *announcingStore) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	out, err := s.Store.CreateClient(ctx, c)
	if err == nil {
		s.n.directory.ForgetClients(out.TenantID)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicClients, Key: out.TenantID})
	}
	return out, err
}

func (s *announcingStore) UpdateClient(ctx context.Context, c store.Client) (store.Client, error) {
	out, err := s.Store.UpdateClient(ctx, c)
	if err == nil {
		s.n.directory.ForgetClients(out.TenantID)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicClients, Key: out.TenantID})
	}
	return out, err
}

func (s *announcingStore) DeleteClient(ctx context.Context, tenantID, id string) error {
	err := s.Store.DeleteClient(ctx, tenantID, id)
	if err == nil {
		s.n.directory.ForgetClients(tenantID)
		s.n.announce(ctx, notify.Change{Topic: notify.TopicClients, Key: tenantID})
	}
	return err
}

func (s *announcingStore) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	err := s.Store.CreateSigningKey(ctx, k)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicKeys, Key: k.TenantID})
	}
	return err
}

func (s *announcingStore) RotateSigningKeys(ctx context.Context, tenantID, nextID string, retireAt time.Time) error {
	err := s.Store.RotateSigningKeys(ctx, tenantID, nextID, retireAt)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicKeys, Key: tenantID})
	}
	return err
}

func (s *announcingStore) DeleteExpiredSigningKeys(ctx context.Context, t time.Time) (int, error) {
	c, err := s.Store.DeleteExpiredSigningKeys(ctx, t)
	if err == nil && c > 0 {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicKeys}) // every tenant
	}
	return c, err
}

func (s *announcingStore) PutBundle(ctx context.Context, b store.Bundle) error {
	err := s.Store.PutBundle(ctx, b)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicBundles, Key: b.Name})
	}
	return err
}

func (s *announcingStore) SetBundleState(ctx context.Context, name, version, state string) error {
	err := s.Store.SetBundleState(ctx, name, version, state)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicBundles, Key: name})
	}
	return err
}

func (s *announcingStore) DeleteBundle(ctx context.Context, name, version string) error {
	err := s.Store.DeleteBundle(ctx, name, version)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicBundles, Key: name})
	}
	return err
}

func (s *announcingStore) PutFlow(ctx context.Context, f store.Flow) (store.Flow, error) {
	out, err := s.Store.PutFlow(ctx, f)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicFlows, Key: f.TenantID})
	}
	return out, err
}

func (s *announcingStore) DeleteFlow(ctx context.Context, tenantID, name string) error {
	err := s.Store.DeleteFlow(ctx, tenantID, name)
	if err == nil {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicFlows, Key: tenantID})
	}
	return err
}

func (s *announcingStore) KVPut(ctx context.Context, plugin, tenantID string, e store.KVEntry) error {
	err := s.Store.KVPut(ctx, plugin, tenantID, e)
	if err == nil && plugin == gateway.DenyNamespace {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicDenyPolicies})
	}
	return err
}

func (s *announcingStore) KVDelete(ctx context.Context, plugin, tenantID, key string) error {
	err := s.Store.KVDelete(ctx, plugin, tenantID, key)
	if err == nil && plugin == gateway.DenyNamespace {
		s.n.announce(ctx, notify.Change{Topic: notify.TopicDenyPolicies})
	}
	return err
}

func (s *announcingStore) PutLocalClaim(ctx context.Context, c store.LocalClaim) (store.LocalClaim, error) {
	out, err := s.Store.PutLocalClaim(ctx, c)
	if err == nil {
		s.claimsChanged(ctx, c.TenantID)
	}
	return out, err
}

func (s *announcingStore) DeleteLocalClaim(ctx context.Context, tenantID, uri string) error {
	err := s.Store.DeleteLocalClaim(ctx, tenantID, uri)
	if err == nil {
		s.claimsChanged(ctx, tenantID)
	}
	return err
}

func (s *announcingStore) PutClaimMapping(ctx context.Context, m store.ClaimMapping) (store.ClaimMapping, error) {
	out, err := s.Store.PutClaimMapping(ctx, m)
	if err == nil {
		s.claimsChanged(ctx, m.TenantID)
	}
	return out, err
}

func (s *announcingStore) DeleteClaimMapping(ctx context.Context, tenantID, dialect, claim string) error {
	err := s.Store.DeleteClaimMapping(ctx, tenantID, dialect, claim)
	if err == nil {
		s.claimsChanged(ctx, tenantID)
	}
	return err
}

// claimsChanged drops the tenant's dialect tables here and announces the
// change to the other nodes.
func (s *announcingStore) claimsChanged(ctx context.Context, tenantID string) {
	s.n.dialects.Forget(tenantID)
	s.n.announce(ctx, notify.Change{Topic: notify.TopicClaimDialects, Key: tenantID})
}

// DeleteExpiredKV forwards to the wrapped store's optional store.KVPurger.
func (s *announcingStore) DeleteExpiredKV(ctx context.Context, t time.Time) (int, error) {
	if p, ok := s.Store.(store.KVPurger); ok {
		return p.DeleteExpiredKV(ctx, t)
	}
	return 0, errors.New("the store does not purge plugin key-value entries")
}

var (
	_ store.Store    = (*announcingStore)(nil)
	_ store.KVPurger = (*announcingStore)(nil)
	_ changeBus      = (*notify.Local)(nil)
	_ changeBus      = (*notify.Postgres)(nil)
)

package oauth

import (
	"context"
	"sync"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Bounds of a Directory.
const (
	// directoryTTL is how long a cached tenant or client is used without
	// being read again: the safety net for a write this node is not told
	// about (one made by a process outside the cluster's change bus).
	// Writes through the node, and notifications from the other nodes,
	// drop entries at once.
	directoryTTL = time.Minute
	// maxDirectoryClients caps the cached clients; past it the cache
	// starts over. Unknown client ids are never cached, so the cap holds
	// against callers that try random ones.
	maxDirectoryClients = 10_000
	// maxDirectoryTenants caps the cached tenants the same way.
	maxDirectoryTenants = 1_000
)

// Directory is a node's cache of the tenants and clients that the
// provider reads on every request: the token endpoint resolves the tenant
// and authenticates the client each time, and reading both from the store
// was a tenth of a token's cost. A client is cached as built for fosite,
// so its settings are parsed once per change rather than once per
// request. Only what the store holds is cached, the client secret's hash
// included; secrets themselves are verified on every request.
//
// Entries are dropped when they change: ForgetClients and ForgetTenant
// must be called after every committed write of a client or tenant, on
// this node before the write returns, and on every other node when the
// change bus (kernel/notify TopicClients, TopicTenants) tells of it. The
// provider does so for the writes it makes itself (dynamic client
// registration); a cluster node does so for every other writer. An entry
// is also read again after directoryTTL.
//
// A lookup that raced a change never caches what it read: each forget
// moves a generation on, and a read is stored only when no forget
// happened since it began.
//
// The zero value is not usable; use NewDirectory. A nil *Directory
// caches nothing: every lookup reads the store. It is safe for concurrent
// use.
type Directory struct {
	mu sync.RWMutex
	// gen counts forgets; a read begun at another generation is not
	// cached.
	gen     uint64
	byName  map[string]tenantEntry
	byID    map[string]tenantEntry
	clients map[clientRef]clientEntry
}

type tenantEntry struct {
	info    tenantInfo
	enabled bool
	at      time.Time
}

type clientRef struct{ tenantID, clientID string }

type clientEntry struct {
	c       *client
	enabled bool
	at      time.Time
}

// NewDirectory returns an empty cache.
func NewDirectory() *Directory {
	return &Directory{
		byName:  map[string]tenantEntry{},
		byID:    map[string]tenantEntry{},
		clients: map[clientRef]clientEntry{},
	}
}

// ForgetClients drops the cached clients of the tenant with id tenantID,
// or of every tenant when tenantID is "". Call it after a client of the
// tenant was created, changed or deleted.
func (d *Directory) ForgetClients(tenantID string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.forgetClientsLocked(tenantID)
}

// ForgetTenant drops the cached tenant with id tenantID and its clients,
// or every tenant and client when tenantID is "". Call it after the
// tenant was created, changed (renamed, disabled, its settings) or
// deleted.
func (d *Directory) ForgetTenant(tenantID string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.forgetClientsLocked(tenantID)
	if tenantID == "" {
		clear(d.byName)
		clear(d.byID)
		return
	}
	delete(d.byID, tenantID)
	for name, e := range d.byName {
		if e.info.id == tenantID {
			delete(d.byName, name)
		}
	}
}

func (d *Directory) forgetClientsLocked(tenantID string) {
	if tenantID == "" {
		clear(d.clients)
		return
	}
	for ref := range d.clients {
		if ref.tenantID == tenantID {
			delete(d.clients, ref)
		}
	}
}

// fresh reports whether an entry cached at is still usable at now.
func fresh(at, now time.Time) bool {
	return now.Sub(at) < directoryTTL
}

// tenant returns the tenant named name (byName) or with id key, from the
// cache or from load. load's errors are returned as they are, and not
// cached.
func (d *Directory) tenant(ctx context.Context, key string, byName bool, load func(context.Context) (store.Tenant, error), info func(store.Tenant) tenantInfo) (tenantInfo, bool, error) {
	if d == nil {
		t, err := load(ctx)
		if err != nil {
			return tenantInfo{}, false, err
		}
		return info(t), t.Enabled, nil
	}
	now := time.Now()
	d.mu.RLock()
	m := d.byID
	if byName {
		m = d.byName
	}
	e, ok := m[key]
	gen := d.gen
	d.mu.RUnlock()
	if ok && fresh(e.at, now) {
		return e.info, e.enabled, nil
	}
	t, err := load(ctx)
	if err != nil {
		return tenantInfo{}, false, err
	}
	e = tenantEntry{info: info(t), enabled: t.Enabled, at: now}
	d.mu.Lock()
	if d.gen == gen {
		if len(d.byID) >= maxDirectoryTenants || len(d.byName) >= maxDirectoryTenants {
			clear(d.byID)
			clear(d.byName)
		}
		d.byID[t.ID] = e
		d.byName[t.Name] = e
	}
	d.mu.Unlock()
	return e.info, e.enabled, nil
}

// client returns the client id of tenant t, from the cache or from load,
// built for fosite with the tenant's issuer. load's errors are returned
// as they are, and not cached.
func (d *Directory) client(ctx context.Context, t tenantInfo, id string, maxLifetime time.Duration, load func(ctx context.Context, tenantID, clientID string) (store.Client, error)) (*client, bool, error) {
	if d == nil {
		sc, err := load(ctx, t.id, id)
		if err != nil {
			return nil, false, err
		}
		cl := newClient(sc, maxLifetime)
		cl.issuer = t.issuer
		return cl, sc.Enabled, nil
	}
	now := time.Now()
	ref := clientRef{tenantID: t.id, clientID: id}
	d.mu.RLock()
	e, ok := d.clients[ref]
	gen := d.gen
	d.mu.RUnlock()
	if ok && fresh(e.at, now) && e.c.issuer == t.issuer {
		return e.c, e.enabled, nil
	}
	sc, err := load(ctx, t.id, id)
	if err != nil {
		return nil, false, err
	}
	cl := newClient(sc, maxLifetime)
	cl.issuer = t.issuer
	d.mu.Lock()
	if d.gen == gen {
		if len(d.clients) >= maxDirectoryClients {
			clear(d.clients)
		}
		d.clients[ref] = clientEntry{c: cl, enabled: sc.Enabled, at: now}
	}
	d.mu.Unlock()
	return cl, sc.Enabled, nil
}

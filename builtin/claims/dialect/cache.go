package dialect

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/store"
)

// maxCachedTenants bounds a Cache; when it is full, the next tenant
// loaded empties it first.
const maxCachedTenants = 4096

// Cache keeps every tenant's effective dialect tables, so that mapping
// claims reads nothing from the store once a tenant's tables are loaded.
// The node that owns it drops a tenant's entry when a local claim or a
// mapping of the tenant changes, on this node at write time and on the
// others through the change bus (notify.TopicClaimDialects), and every
// entry on a resync of the bus. A nil *Cache caches nothing. It is safe
// for concurrent use.
type Cache struct {
	mu sync.Mutex
	// gen counts the forgets; a load that began under an older generation
	// does not store its result, which may predate the change.
	gen    uint64
	byName map[string]cachedDialects
}

type cachedDialects struct {
	tenantID string
	d        *claims.Dialects
}

// NewCache returns an empty cache; the Mapper takes it as the optional
// dependency DepCache.
func NewCache() *Cache {
	return &Cache{byName: map[string]cachedDialects{}}
}

// Load returns the tenant's effective dialect tables, from the cache or
// read through t. A tenant that does not exist gets the built-in tables
// and is not cached.
func (c *Cache) Load(ctx context.Context, t Tables, tenant string) (*claims.Dialects, error) {
	if c == nil {
		return Load(ctx, t, tenant)
	}
	c.mu.Lock()
	e, ok := c.byName[tenant]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return e.d, nil
	}
	id, d, err := load(ctx, t, tenant)
	if err != nil || id == "" {
		return d, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if len(c.byName) >= maxCachedTenants {
			clear(c.byName)
		}
		c.byName[tenant] = cachedDialects{tenantID: id, d: d}
	}
	return d, nil
}

// Forget drops the tables of the tenant with that id (not name: the
// change bus names tenants by id).
func (c *Cache) Forget(tenantID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for name, e := range c.byName {
		if e.tenantID == tenantID {
			delete(c.byName, name)
		}
	}
}

// ForgetAll drops every tenant's tables.
func (c *Cache) ForgetAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byName)
}

// Len returns how many tenants' tables are cached.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byName)
}

// Load returns the tenant's effective dialect tables (built-in defaults
// with its stored records over them), read from t.
func Load(ctx context.Context, t Tables, tenant string) (*claims.Dialects, error) {
	_, d, err := load(ctx, t, tenant)
	return d, err
}

// load reads a tenant's tables; the id is empty when the tenant does not
// exist.
func load(ctx context.Context, t Tables, tenant string) (string, *claims.Dialects, error) {
	tn, err := t.GetTenantByName(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return "", claims.NewDialects(nil, nil), nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("loading claim dialects of tenant %q: %w", tenant, err)
	}
	lcs, err := t.ListLocalClaims(ctx, tn.ID)
	if err != nil {
		return "", nil, fmt.Errorf("loading local claims: %w", err)
	}
	cms, err := t.ListClaimMappings(ctx, tn.ID, "")
	if err != nil {
		return "", nil, fmt.Errorf("loading claim mappings: %w", err)
	}
	return tn.ID, claims.NewDialects(LocalFromStore(lcs), MappingsFromStore(cms)), nil
}

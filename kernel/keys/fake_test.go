package keys

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// memKeys is an in-memory store.SigningKeys that follows the contract's
// documented behaviour, with a clock shared with the test and call counters.
type memKeys struct {
	mu    sync.Mutex
	now   func() time.Time
	keys  []store.SigningKey // insertion order
	calls map[string]int
	// failList, when set, is returned by ListSigningKeys.
	failList error
}

var _ store.SigningKeys = (*memKeys)(nil)

func newMemKeys(now func() time.Time) *memKeys {
	return &memKeys{now: now, calls: map[string]int{}}
}

func (s *memKeys) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *memKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["create"]++
	if k.ID == "" || k.TenantID == "" {
		return store.ErrInvalid
	}
	for _, e := range s.keys {
		if e.TenantID == k.TenantID && e.ID == k.ID {
			return store.ErrConflict
		}
	}
	k.PrivateSealed = slices.Clone(k.PrivateSealed)
	k.PublicJWK = slices.Clone(k.PublicJWK)
	s.keys = append(s.keys, k)
	return nil
}

func (s *memKeys) GetSigningKey(_ context.Context, tenantID, id string) (store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["get"]++
	for _, e := range s.keys {
		if e.TenantID == tenantID && e.ID == id {
			return e, nil
		}
	}
	return store.SigningKey{}, store.ErrNotFound
}

func (s *memKeys) ListSigningKeys(_ context.Context, tenantID string) ([]store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["list"]++
	if s.failList != nil {
		return nil, s.failList
	}
	now := s.now()
	var out []store.SigningKey
	for i := len(s.keys) - 1; i >= 0; i-- { // newest first
		e := s.keys[i]
		if e.TenantID != tenantID {
			continue
		}
		if !e.NotAfter.IsZero() && !e.NotAfter.After(now) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *memKeys) RotateSigningKeys(_ context.Context, tenantID, nextID string, retireAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["rotate"]++
	ni := -1
	for i, e := range s.keys {
		if e.TenantID == tenantID && e.ID == nextID {
			ni = i
		}
	}
	if ni < 0 {
		return fmt.Errorf("rotating to %q: %w", nextID, store.ErrNotFound)
	}
	for i, e := range s.keys {
		if i != ni && e.TenantID == tenantID && e.Algorithm == s.keys[ni].Algorithm && e.State == store.KeyActive {
			s.keys[i].State = store.KeyRetiring
			s.keys[i].NotAfter = retireAt
		}
	}
	s.keys[ni].State = store.KeyActive
	s.keys[ni].NotAfter = time.Time{}
	return nil
}

func (s *memKeys) DeleteExpiredSigningKeys(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["purge"]++
	n := 0
	s.keys = slices.DeleteFunc(s.keys, func(e store.SigningKey) bool {
		del := e.State == store.KeyRetiring && e.NotAfter.Before(t)
		if del {
			n++
		}
		return del
	})
	return n, nil
}

// put stores k as is, replacing the key with the same tenant and id: a
// test's stand-in for someone editing the database directly.
func (s *memKeys) put(k store.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.keys {
		if e.TenantID == k.TenantID && e.ID == k.ID {
			s.keys[i] = k
			return
		}
	}
	s.keys = append(s.keys, k)
}

// all returns every stored key of the tenant regardless of NotAfter.
func (s *memKeys) all(tenantID string) []store.SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.SigningKey
	for _, e := range s.keys {
		if e.TenantID == tenantID {
			out = append(out, e)
		}
	}
	return out
}

// fakeClock is a settable clock safe for concurrent reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

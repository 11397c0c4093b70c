package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// countingClients is a client loader that counts its calls and answers
// with the current value of c.
type countingClients struct {
	calls int
	c     store.Client
	err   error
	// during runs inside a load, after the value was read.
	during func()
}

func (l *countingClients) load(_ context.Context, tenantID, clientID string) (store.Client, error) {
	l.calls++
	c, err := l.c, l.err
	if l.during != nil {
		l.during()
	}
	return c, err
}

// TestDirectoryClients: a client is read once and then served from the
// cache; forgetting its tenant's clients (or all) makes the next lookup
// read it again; errors are not cached; another tenant's forget leaves it.
func TestDirectoryClients(t *testing.T) {
	ctx := context.Background()
	d := NewDirectory()
	t1 := tenantInfo{id: "t1", issuer: "https://id.example/t/one"}
	l := &countingClients{c: store.Client{TenantID: "t1", ClientID: "app", SecretHash: "h1", Enabled: true}}
	get := func() (*client, bool) {
		t.Helper()
		c, enabled, err := d.client(ctx, t1, "app", time.Hour, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return c, enabled
	}
	c, enabled := get()
	if c.secretHash != "h1" || !enabled || c.issuer != t1.issuer {
		t.Fatalf("got %+v enabled %v", c, enabled)
	}
	get()
	if l.calls != 1 {
		t.Fatalf("two lookups read the store %d times, want 1", l.calls)
	}

	d.ForgetClients("t2")
	get()
	if l.calls != 1 {
		t.Fatalf("another tenant's forget dropped the client (%d reads)", l.calls)
	}

	l.c.SecretHash, l.c.Enabled = "h2", false
	d.ForgetClients("t1")
	if c, enabled = get(); c.secretHash != "h2" || enabled || l.calls != 2 {
		t.Fatalf("after ForgetClients: hash %q enabled %v reads %d, want h2 false 2", c.secretHash, enabled, l.calls)
	}
	d.ForgetTenant("t1")
	get()
	d.ForgetClients("")
	get()
	if l.calls != 4 {
		t.Fatalf("ForgetTenant and ForgetClients(\"\") left the client cached (%d reads, want 4)", l.calls)
	}

	l.err = store.ErrNotFound
	d.ForgetClients("")
	for range 2 {
		if _, _, err := d.client(ctx, t1, "app", time.Hour, l.load); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	if l.calls != 6 {
		t.Fatalf("a missing client was cached (%d reads, want 6)", l.calls)
	}
}

// TestDirectoryReadRacingForget: a lookup that read the old client while
// a write and its forget happened does not cache what it read, so the
// next lookup sees the write.
func TestDirectoryReadRacingForget(t *testing.T) {
	ctx := context.Background()
	d := NewDirectory()
	ti := tenantInfo{id: "t1", issuer: "https://id.example"}
	l := &countingClients{c: store.Client{ClientID: "app", SecretHash: "old", Enabled: true}}
	l.during = func() {
		// The write commits and is announced after the read.
		l.c.SecretHash = "new"
		d.ForgetClients("t1")
		l.during = nil
	}
	if c, _, err := d.client(ctx, ti, "app", time.Hour, l.load); err != nil || c.secretHash != "old" {
		t.Fatalf("first lookup: %v, %v", c, err)
	}
	c, _, err := d.client(ctx, ti, "app", time.Hour, l.load)
	if err != nil || c.secretHash != "new" {
		t.Fatalf("second lookup got hash %q (%v), want the written one", c.secretHash, err)
	}
}

// TestDirectoryTenants: tenants are cached by name and by id; a forget
// drops both, and the tenant's clients.
func TestDirectoryTenants(t *testing.T) {
	ctx := context.Background()
	d := NewDirectory()
	st := store.Tenant{ID: "t1", Name: "acme", Enabled: true}
	reads := 0
	load := func(context.Context) (store.Tenant, error) { reads++; return st, nil }
	info := func(t store.Tenant) tenantInfo {
		return tenantInfo{id: t.ID, name: t.Name, issuer: "https://id.example/t/" + t.Name}
	}
	for _, byName := range []bool{true, false, true} {
		key := "t1"
		if byName {
			key = "acme"
		}
		ti, enabled, err := d.tenant(ctx, key, byName, load, info)
		if err != nil || ti.id != "t1" || !enabled {
			t.Fatalf("lookup by %q: %+v %v %v", key, ti, enabled, err)
		}
	}
	if reads != 1 {
		t.Fatalf("three lookups read the store %d times, want 1", reads)
	}
	cl := &countingClients{c: store.Client{ClientID: "app", Enabled: true}}
	if _, _, err := d.client(ctx, info(st), "app", time.Hour, cl.load); err != nil {
		t.Fatal(err)
	}

	st.Enabled = false
	d.ForgetTenant("t1")
	for _, byName := range []bool{true, false} {
		key := "t1"
		if byName {
			key = "acme"
		}
		if _, enabled, _ := d.tenant(ctx, key, byName, load, info); enabled {
			t.Errorf("lookup by %q after the tenant was disabled: still enabled", key)
		}
	}
	if _, _, err := d.client(ctx, info(st), "app", time.Hour, cl.load); err != nil || cl.calls != 2 {
		t.Errorf("the tenant's client survived ForgetTenant (%d reads, want 2; %v)", cl.calls, err)
	}

	// A nil directory reads every time.
	var nilDir *Directory
	nilDir.ForgetClients("t1")
	nilDir.ForgetTenant("")
	for range 2 {
		if _, _, err := nilDir.tenant(ctx, "acme", true, load, info); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 4 {
		t.Errorf("a nil directory read the store %d times in all, want 4", reads)
	}
}

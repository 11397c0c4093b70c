package plugin

import (
	"context"
	"encoding/json"

	"github.com/latchid/latch/kernel/extension"
)

// Scope is what the host knows about the call a host_call comes from: the
// extension instance that made it and the tenant of its request. The
// adapters put it in the context of every call into the module; the host
// services (HostCalls) read it back with ScopeFrom, so that a guest reads
// its own instance's configuration and cannot reach another tenant's data.
type Scope struct {
	// Extension is the id of the extension entry called ("authn.pin").
	Extension extension.ID
	// Tenant is the name of the tenant of the request; empty for the
	// lifecycle calls (configure, health, close), which serve every tenant.
	Tenant string
	// Config is the instance's configuration as the operator wrote it.
	Config json.RawMessage
}

type scopeKey struct{}

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeFrom returns the Scope in ctx, or nil when there is none (a call
// that did not come through an adapter).
func ScopeFrom(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// scoped returns ctx carrying the scope of a call by b for tenant.
func (b *base) scoped(ctx context.Context, tenant string) context.Context {
	return WithScope(ctx, &Scope{Extension: b.ext, Tenant: tenant, Config: b.config})
}

package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/store"
)

// tenantInfo is the tenant a request is served for.
type tenantInfo struct {
	id      string
	name    string
	issuer  string
	base    string // "" or "/t/{name}"
	display string
	// settings are the tenant's settings (trusted issuers of the JWT
	// bearer grant).
	settings map[string]any
}

// page describes the tenant to the shared pages.
func (t tenantInfo) page(uiLocales string) login.Page {
	return login.Page{Base: t.base, Brand: t.display, UILocales: uiLocales}
}

type tenantKey struct{}

// withTenant returns ctx carrying t. Every storage and signing call reads
// the tenant from the context; none falls back to a default.
func withTenant(ctx context.Context, t tenantInfo) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// tenantFrom returns the tenant ctx carries.
func tenantFrom(ctx context.Context) (tenantInfo, bool) {
	t, ok := ctx.Value(tenantKey{}).(tenantInfo)
	return t, ok && t.id != ""
}

// errNoTenant is a programmer error: a storage or signing call was made
// without a tenant in its context.
var errNoTenant = errors.New("no tenant in context")

// mustTenant returns the context's tenant or errNoTenant.
func mustTenant(ctx context.Context) (tenantInfo, error) {
	t, ok := tenantFrom(ctx)
	if !ok {
		return tenantInfo{}, errNoTenant
	}
	return t, nil
}

func (p *Provider) tenantInfo(t store.Tenant) tenantInfo {
	ti := tenantInfo{id: t.ID, name: t.Name, issuer: p.Issuer(t.Name), display: t.DisplayName, settings: t.Settings}
	if t.Name != store.DefaultTenantName {
		ti.base = "/t/" + t.Name
	}
	return ti
}

// errUnknownTenant answers requests for a tenant that does not exist or is
// disabled. The two are not told apart.
var errUnknownTenant = &fosite.RFC6749Error{
	ErrorField:       "invalid_request",
	DescriptionField: "No such tenant.",
	CodeField:        http.StatusNotFound,
}

// resolveTenant finds the tenant of the request: the default tenant at the
// root, or, when named, the tenant named by the :tenant path parameter. The
// default tenant is only served at the root, so each tenant has exactly
// one issuer.
func (p *Provider) resolveTenant(c *fiber.Ctx, named bool) (tenantInfo, error) {
	name := store.DefaultTenantName
	if named {
		name = c.Params("tenant")
		if name == store.DefaultTenantName || !restapi.ValidTenantName(name) {
			return tenantInfo{}, errUnknownTenant
		}
	}
	t, enabled, err := p.dir.tenant(c.UserContext(), name, true, func(ctx context.Context) (store.Tenant, error) {
		return p.d.Store.GetTenantByName(ctx, name)
	}, p.tenantInfo)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return tenantInfo{}, errUnknownTenant
	case err != nil:
		return tenantInfo{}, fmt.Errorf("loading tenant %q: %w: %w", name, errStorage, err)
	case !enabled:
		return tenantInfo{}, errUnknownTenant
	}
	return t, nil
}

package admin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

const (
	localTenant = "latch.admin.tenant"
	localActor  = "latch.admin.actor"
)

// authenticate admits admin clients presenting HTTP Basic credentials. Every
// failure answers the same 401, so a caller learns nothing about which part
// was wrong; the audit log records the reason.
func (a *API) authenticate(c *fiber.Ctx) error {
	if raw, ok := bearerToken(c.Get(fiber.HeaderAuthorization)); ok && a.d.Bearer != nil {
		return a.authenticateBearer(c, raw)
	}
	clientID, secretValue, ok := basicCredentials(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return a.unauthenticated(c, "", "missing or malformed basic credentials")
	}
	ctx := c.UserContext()
	root, err := a.d.Store.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		return storeError("tenant", err)
	}
	cl, err := a.d.Store.GetClientByClientID(ctx, root.ID, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Spend the same work as a real check so timing does not tell
		// unknown clients from wrong secrets.
		secret.VerifyClientSecret(secretValue, dummySecretHash)
		return a.unauthenticated(c, clientID, "unknown client")
	case err != nil:
		return storeError("client", err)
	}
	if !secret.VerifyClientSecret(secretValue, cl.SecretHash) {
		return a.unauthenticated(c, clientID, "wrong client secret")
	}
	if !cl.Enabled {
		return a.unauthenticated(c, clientID, "client disabled")
	}
	if !slices.Contains(cl.Scopes, ScopeAdmin) {
		a.audit(c, root.ID, event.AdminAuth, "client:"+clientID, store.OutcomeDenied, map[string]any{"reason": "missing scope " + ScopeAdmin})
		return fault.New(fault.CodeForbidden, "client is not an admin client")
	}
	c.Locals(localActor, "client:"+cl.ClientID)
	return c.Next()
}

// authenticateBearer admits an access token issued by the default tenant to
// an admin client with the admin scope (RFC 6750 section 3.1 for the
// challenges).
func (a *API) authenticateBearer(c *fiber.Ctx, raw string) error {
	ctx := c.UserContext()
	root, err := a.d.Store.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		return storeError("tenant", err)
	}
	clientID, scopes, err := a.d.Bearer.ValidateAdminToken(ctx, root.ID, raw)
	switch {
	case errors.Is(err, ErrInvalidBearer):
		a.audit(c, root.ID, event.AdminAuth, "", store.OutcomeFailure, map[string]any{"reason": "invalid bearer token"})
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-admin", error="invalid_token"`)
		return fault.New(fault.CodeUnauthenticated, "the access token is not valid")
	case err != nil:
		return fault.Unavailable.WithCause(fmt.Errorf("validating bearer token: %w", err))
	}
	if !slices.Contains(scopes, ScopeAdmin) {
		a.audit(c, root.ID, event.AdminAuth, "client:"+clientID, store.OutcomeDenied, map[string]any{"reason": "token lacks scope " + ScopeAdmin})
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-admin", error="insufficient_scope", scope="`+ScopeAdmin+`"`)
		return fault.New(fault.CodeForbidden, "the access token lacks the "+ScopeAdmin+" scope")
	}
	c.Locals(localActor, "client:"+clientID)
	return c.Next()
}

// bearerToken extracts an RFC 6750 section 2.1 bearer token.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != "" && len(tok) <= 8192
}

// dummySecretHash is verified against when the client is unknown.
var dummySecretHash = secret.HashClientSecret("latch-unknown-client")

func (a *API) unauthenticated(c *fiber.Ctx, clientID, reason string) error {
	target := "client:" + clientID
	if clientID == "" {
		target = ""
	}
	a.audit(c, "", event.AdminAuth, target, store.OutcomeFailure, map[string]any{"reason": reason})
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="latch-admin", charset="UTF-8"`)
	return fault.New(fault.CodeUnauthenticated, "valid admin client credentials are required")
}

// basicCredentials parses an RFC 7617 Authorization header. Client ids and
// secrets are form-urlencoded per RFC 6749 section 2.3.1 only by OAuth
// clients; the admin API takes them as sent.
func basicCredentials(h string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return "", "", false
	}
	return user, pass, true
}

// defaultTenant selects the default tenant for routes at the root.
func (a *API) defaultTenant(c *fiber.Ctx) error {
	return restapi.UseDefaultTenant(c, a.d.Store, localTenant)
}

// namedTenant selects the tenant named in the path.
func (a *API) namedTenant(c *fiber.Ctx) error {
	return restapi.UsePathTenant(c, a.d.Store, localTenant)
}

func tenantOf(c *fiber.Ctx) store.Tenant {
	t, _ := c.Locals(localTenant).(store.Tenant)
	return t
}

func actorOf(c *fiber.Ctx) string {
	s, _ := c.Locals(localActor).(string)
	return s
}

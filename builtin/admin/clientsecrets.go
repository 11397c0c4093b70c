package admin

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ClientSecrets is told each new client secret in clear, once, when a
// client is created or its secret rotated. The OAuth provider
// (builtin/oauth) keeps a sealed copy for the clients that authenticate
// with client_secret_jwt, whose HMAC needs the secret itself; the store
// keeps only a hash.
type ClientSecrets interface {
	StoreClientSecret(ctx context.Context, c store.Client, plain string) error
}

// forgetClientSecret tells Deps.ClientSecrets that a client is gone, so a
// sealed copy of its secret is removed with it. A failure leaves a copy
// that no client can use (it is bound to the client id and checked against
// the secret hash of a client created later under that id), so it is
// logged, not returned.
func (a *API) forgetClientSecret(c *fiber.Ctx, cl store.Client) {
	if a.d.ClientSecrets == nil {
		return
	}
	cl.TokenEndpointAuthMethod = ""
	if err := a.d.ClientSecrets.StoreClientSecret(c.UserContext(), cl, ""); err != nil && a.d.Log != nil {
		a.d.Log.WarnContext(c.UserContext(), "removing the sealed client secret", "client_id", cl.ClientID, "err", err)
	}
}

// keepClientSecret passes a new secret to Deps.ClientSecrets, when set.
func (a *API) keepClientSecret(c *fiber.Ctx, cl store.Client, plain string) error {
	if a.d.ClientSecrets == nil || plain == "" {
		return nil
	}
	if err := a.d.ClientSecrets.StoreClientSecret(c.UserContext(), cl, plain); err != nil {
		return fault.New(fault.CodeInternal, "internal error").WithCause(err)
	}
	return nil
}

package admin

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of users' authenticator credentials.
const (
	// ActionUserCredentialDelete: an administrator revoked a credential a
	// user registered with an authenticator (a passkey).
	ActionUserCredentialDelete event.Action = "user.credential.delete" //nolint:gosec // G101: an audit action name, not a credential.
)

// credentialManagers returns the tenant's authenticator instances whose
// users' credentials can be listed and revoked (kernel/authn
// CredentialManager), with their instances.
func (a *API) credentialManagers(c *fiber.Ctx) ([]*extension.Instance, []authn.CredentialManager) {
	if a.d.Extensions == nil {
		return nil, nil
	}
	var (
		insts []*extension.Instance
		mgrs  []authn.CredentialManager
	)
	for _, inst := range a.d.Extensions.Enabled(tenantOf(c).Name, extension.KindAuthenticator) {
		if m, ok := extension.As[authn.CredentialManager](inst); ok {
			insts, mgrs = append(insts, inst), append(mgrs, m)
		}
	}
	return insts, mgrs
}

// listUserCredentials lists the credentials a user registered with the
// tenant's authenticators (passkeys and security keys).
func (a *API) listUserCredentials(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if _, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id")); err != nil {
		return storeError("user", err)
	}
	out := []authn.Credential{}
	_, mgrs := a.credentialManagers(c)
	for _, m := range mgrs {
		cs, err := m.ListCredentials(ctx, t.Name, c.Params("id"))
		if err != nil {
			return fault.Unavailable.WithMessage("listing credentials failed").WithCause(err)
		}
		out = append(out, cs...)
	}
	return c.JSON(newList(out, ""))
}

// deleteUserCredential revokes the credential :credential the user
// registered with the authenticator instance :authenticator.
func (a *API) deleteUserCredential(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	user, name, id := c.Params("id"), c.Params("authenticator"), c.Params("credential")
	insts, mgrs := a.credentialManagers(c)
	for i, inst := range insts {
		if inst.Name() != name {
			continue
		}
		if err := mgrs[i].DeleteCredential(ctx, t.Name, user, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return storeError("credential", err)
			}
			return fault.Unavailable.WithMessage("deleting the credential failed").WithCause(err)
		}
		a.audit(c, t.ID, ActionUserCredentialDelete, "user:"+user, store.OutcomeSuccess, map[string]any{"authenticator": name, "credential": id})
		return c.SendStatus(fiber.StatusNoContent)
	}
	return storeError("credential", store.ErrNotFound)
}

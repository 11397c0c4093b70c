package admin

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of account links.
const (
	// ActionUserLink: an administrator linked a federated identity to a
	// user.
	ActionUserLink event.Action = "user.link"
	// ActionUserUnlink: an administrator removed a user's link.
	ActionUserUnlink event.Action = "user.unlink"
)

// Bounds of a link's fields (the store enforces the same).
const (
	maxLinkIDP     = 128
	maxLinkSubject = 512
)

// linkJSON is an account link: the user's identity at a federated
// identity provider (an authn.oidc_federation or authn.saml_federation
// instance).
type linkJSON struct {
	// IDP is the authenticator instance of the upstream provider.
	IDP string `json:"idp"`
	// Subject is the upstream's id of the user.
	Subject   string    `json:"subject"`
	Email     string    `json:"email,omitempty"`
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}

// linkInput links a federated identity to a user.
type linkInput struct {
	IDP     string `json:"idp"`
	Subject string `json:"subject"`
	Email   string `json:"email,omitempty"`
}

func toLinkJSON(l store.Link) linkJSON {
	return linkJSON{IDP: l.IdP, Subject: l.Subject, Email: l.Email, UserID: l.UserID, CreatedAt: l.CreatedAt}
}

// listUserLinks lists a user's links.
func (a *API) listUserLinks(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if err := a.checkUser(c, c.Params("id")); err != nil {
		return err
	}
	ls, err := a.d.Store.ListLinks(ctx, t.ID, c.Params("id"))
	if err != nil {
		return storeError("link", err)
	}
	out := make([]linkJSON, len(ls))
	for i, l := range ls {
		out[i] = toLinkJSON(l)
	}
	return c.JSON(newList(out, ""))
}

// createUserLink links a federated identity to a user, so that signing in
// through that provider signs in as the user.
func (a *API) createUserLink(c *fiber.Ctx) error {
	t := tenantOf(c)
	var in linkInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkName("idp", in.IDP); err != nil {
		return err
	}
	if len(in.IDP) > maxLinkIDP {
		return invalid("idp", "must be at most %d bytes", maxLinkIDP)
	}
	if in.Subject == "" {
		return invalid("subject", "is required")
	}
	if err := checkText("subject", in.Subject, maxLinkSubject); err != nil {
		return err
	}
	if err := checkEmail("email", in.Email); err != nil {
		return err
	}
	if err := a.attachTo(c, c.Params("id")); err != nil {
		return err
	}
	l, err := a.d.Store.CreateLink(c.UserContext(), store.Link{
		TenantID: t.ID, UserID: c.Params("id"), IdP: in.IDP, Subject: in.Subject, Email: in.Email,
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return storeError("user", err)
		}
		return storeError("link", err)
	}
	a.audit(c, t.ID, ActionUserLink, "user:"+l.UserID, store.OutcomeSuccess, map[string]any{"idp": l.IdP})
	return c.Status(fiber.StatusCreated).JSON(toLinkJSON(l))
}

// deleteUserLink removes the user's link to the identity ?subject= at the
// provider :idp.
func (a *API) deleteUserLink(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	idp, subject := c.Params("idp"), c.Query("subject")
	if subject == "" {
		return invalid("subject", "is required (query parameter)")
	}
	l, err := a.d.Store.FindLink(ctx, t.ID, idp, subject)
	if err != nil {
		return storeError("link", err)
	}
	if l.UserID != c.Params("id") {
		return storeError("link", store.ErrNotFound)
	}
	if err := a.d.Store.DeleteLink(ctx, t.ID, idp, subject); err != nil {
		return storeError("link", err)
	}
	a.audit(c, t.ID, ActionUserUnlink, "user:"+l.UserID, store.OutcomeSuccess, map[string]any{"idp": idp})
	return c.SendStatus(fiber.StatusNoContent)
}

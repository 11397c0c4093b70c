package me

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// list is the JSON shape of every listing (the admin API's).
type list[T any] struct {
	Items []T `json:"items"`
}

func newList[T any](items []T) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items}
}

// param reads a path parameter, unescaped.
func param(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil || v == "" || len(v) > 512 {
		return "", fault.New(fault.CodeNotFound, name+" not found")
	}
	return v, nil
}

// --- sessions ---------------------------------------------------------------

type sessionJSON struct {
	ID         string    `json:"id"`
	AuthTime   time.Time `json:"auth_time"`
	ACR        string    `json:"acr,omitempty"`
	AMR        []string  `json:"amr"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Current marks the session of the browser making the request.
	Current bool `json:"current"`
}

// listSessions answers GET /api/me/sessions.
func (a *API) listSessions(c *fiber.Ctx) error {
	p := principalOf(c)
	ss, err := a.d.Store.ListUserSessions(c.UserContext(), tenantOf(c).ID, p.UserID)
	if err != nil {
		return storeError("session", err)
	}
	out := make([]sessionJSON, 0, len(ss))
	for _, s := range ss {
		amr := s.AMR
		if amr == nil {
			amr = []string{}
		}
		out = append(out, sessionJSON{
			ID: s.ID, AuthTime: s.AuthTime.UTC(), ACR: s.ACR, AMR: amr, IP: s.IP, UserAgent: s.UserAgent,
			CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
			Current: p.Session != nil && p.Session.ID == s.ID,
		})
	}
	return c.JSON(newList(out))
}

// endSessions ends every session of the user but the browser's own and
// returns how many ended.
func (a *API) endSessions(c *fiber.Ctx, userID string) int {
	p := principalOf(c)
	t := tenantOf(c)
	ctx := c.UserContext()
	ss, err := a.d.Store.ListUserSessions(ctx, t.ID, userID)
	if err != nil {
		a.d.Log.WarnContext(ctx, "listing sessions to end", "err", err)
		return 0
	}
	n := 0
	for _, s := range ss {
		if p.Session != nil && p.Session.ID == s.ID {
			continue
		}
		if err := a.d.Store.DeleteSession(ctx, t.ID, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.d.Log.WarnContext(ctx, "ending a session", "err", err)
			continue
		}
		n++
	}
	return n
}

// endOtherSessions answers DELETE /api/me/sessions: every session but the
// calling browser's ends (with an access token: every session).
func (a *API) endOtherSessions(c *fiber.Ctx) error {
	p := principalOf(c)
	n := a.endSessions(c, p.UserID)
	a.auditSelf(c, ActionSessionEnd, event.Ref("user", p.UserID), store.OutcomeSuccess, map[string]any{"sessions": n})
	return c.JSON(fiber.Map{"sessions_ended": n})
}

// endSession answers DELETE /api/me/sessions/{id}. Another user's session
// is not found.
func (a *API) endSession(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	id, err := param(c, "id")
	if err != nil {
		return err
	}
	s, err := a.d.Store.GetSession(c.UserContext(), t.ID, id)
	if err != nil || s.UserID != p.UserID {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return storeError("session", err)
		}
		return fault.New(fault.CodeNotFound, "session not found")
	}
	if err := a.d.Store.DeleteSession(c.UserContext(), t.ID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeError("session", err)
	}
	a.auditSelf(c, ActionSessionEnd, event.Ref("session", id), store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// --- second-factor devices --------------------------------------------------

// devices lists the tenant's authenticators that keep per-user
// credentials.
func (a *API) devices(c *fiber.Ctx) []*extension.Instance {
	var out []*extension.Instance
	for _, inst := range a.d.Extensions.Enabled(tenantOf(c).Name, extension.KindAuthenticator) {
		if _, ok := extension.As[authn.CredentialManager](inst); ok {
			out = append(out, inst)
		}
	}
	return out
}

// listDevices answers GET /api/me/mfa: the credentials of every
// authenticator that keeps them (TOTP, with its recovery codes left in
// details; passkeys and security keys).
func (a *API) listDevices(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	out := []authn.Credential{}
	for _, inst := range a.devices(c) {
		cm, _ := extension.As[authn.CredentialManager](inst)
		var cs []authn.Credential
		err := extension.Call(c.UserContext(), inst, "list_credentials", func(ctx context.Context) error {
			var err error
			cs, err = cm.ListCredentials(ctx, t.Name, p.UserID)
			return err
		})
		if err != nil {
			return fault.Unavailable.WithMessage("an authenticator is not available").WithCause(err)
		}
		for _, x := range cs {
			x.Authenticator = inst.Name()
			out = append(out, x)
		}
	}
	return c.JSON(newList(out))
}

// removeDevice answers DELETE /api/me/mfa/{authenticator}/{credential}.
// The body must confirm the current password ({"current_password":
// "..."}), so that a borrowed session cannot strip the second factor.
func (a *API) removeDevice(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	name, err := param(c, "instance")
	if err != nil {
		return err
	}
	id, err := param(c, "device")
	if err != nil {
		return err
	}
	var in struct {
		Current string `json:"current_password"`
	}
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if in.Current == "" {
		return invalid("current_password", "is required to remove a device")
	}
	if err := a.confirmPassword(c, in.Current, ActionDeviceRemove); err != nil {
		return err
	}
	for _, inst := range a.devices(c) {
		if inst.Name() != name {
			continue
		}
		cm, _ := extension.As[authn.CredentialManager](inst)
		err := extension.Call(c.UserContext(), inst, "delete_credential", func(ctx context.Context) error {
			return cm.DeleteCredential(ctx, t.Name, p.UserID, id)
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fault.New(fault.CodeNotFound, "device not found")
		case err != nil:
			return fault.Unavailable.WithMessage("the authenticator is not available").WithCause(err)
		}
		a.auditSelf(c, ActionDeviceRemove, event.Ref("user", p.UserID), store.OutcomeSuccess, map[string]any{"authenticator": name, "device": id})
		return c.SendStatus(fiber.StatusNoContent)
	}
	return fault.New(fault.CodeNotFound, "device not found")
}

// confirmPassword checks the signed-in user's password with their user
// store (whose lockout rules count a wrong one).
func (a *API) confirmPassword(c *fiber.Ctx, pw string, action event.Action) error {
	s, err := a.findUser(c)
	if err != nil {
		return err
	}
	us, _ := extension.As[userstore.Store](s.inst)
	var res abi.AuthenticateUserResponse
	err = extension.Call(c.UserContext(), s.inst, abi.OpAuthenticateUser, func(ctx context.Context) error {
		var err error
		res, err = userstore.CheckAuthenticate(us.AuthenticateUser(ctx, abi.AuthenticateUserRequest{
			Tenant: tenantOf(c).Name, Username: s.user.Username, Password: pw, Config: s.inst.Config(),
		}))
		return err
	})
	if err != nil {
		return fault.Unavailable.WithMessage("the user store is not available").WithCause(err)
	}
	target := event.Ref("user", principalOf(c).UserID)
	switch {
	case res.Outcome == abi.UserAuthenticated && res.User != nil && res.User.ID == s.user.ID:
		return nil
	case res.Outcome == abi.UserLocked:
		a.auditSelf(c, action, target, store.OutcomeDenied, map[string]any{"reason": "account locked"})
		return fault.New(fault.CodeForbidden, "the account is locked after too many wrong passwords; try again later")
	case res.Outcome == abi.UserDisabled:
		a.auditSelf(c, action, target, store.OutcomeDenied, map[string]any{"reason": "account disabled"})
		return fault.New(fault.CodeForbidden, "the account is disabled")
	default:
		a.auditSelf(c, action, target, store.OutcomeFailure, map[string]any{"reason": "wrong current password"})
		return fault.New(fault.CodeForbidden, "current_password: is not correct").WithField("current_password")
	}
}

// --- consents ---------------------------------------------------------------

type consentJSON struct {
	ClientID   string     `json:"client_id"`
	ClientName string     `json:"client_name,omitempty"`
	Scopes     []string   `json:"scopes"`
	GrantedAt  time.Time  `json:"granted_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// listConsents answers GET /api/me/consents.
func (a *API) listConsents(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	cs, err := a.d.Store.ListUserConsents(c.UserContext(), t.ID, p.UserID)
	if err != nil {
		return storeError("consent", err)
	}
	out := make([]consentJSON, 0, len(cs))
	for _, k := range cs {
		j := consentJSON{ClientID: k.ClientID, Scopes: k.Scopes, GrantedAt: k.GrantedAt.UTC()}
		if j.Scopes == nil {
			j.Scopes = []string{}
		}
		if !k.ExpiresAt.IsZero() {
			e := k.ExpiresAt.UTC()
			j.ExpiresAt = &e
		}
		if cl, err := a.d.Store.GetClientByClientID(c.UserContext(), t.ID, k.ClientID); err == nil {
			j.ClientName = cl.Name
		}
		out = append(out, j)
	}
	return c.JSON(newList(out))
}

// revokeConsent answers DELETE /api/me/consents/{client_id}: the
// application must ask again at the next authorization, and the refresh
// and access tokens it holds for the user are revoked (Deps.Tokens) first,
// so that a failure leaves the consent in place to revoke again.
func (a *API) revokeConsent(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	client, err := param(c, "client")
	if err != nil {
		return err
	}
	if _, err := a.d.Store.GetConsent(c.UserContext(), t.ID, p.UserID, client); err != nil {
		return storeError("consent", err)
	}
	revoked, err := a.revokeTokens(c, client)
	if err != nil {
		return err
	}
	if err := a.d.Store.DeleteConsent(c.UserContext(), t.ID, p.UserID, client); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeError("consent", err)
	}
	a.auditSelf(c, ActionConsentRevoke, event.Ref("user", p.UserID), store.OutcomeSuccess, map[string]any{"client_id": client, "tokens_revoked": revoked})
	return c.SendStatus(fiber.StatusNoContent)
}

// --- linked accounts --------------------------------------------------------

type linkJSON struct {
	IDP       string    `json:"idp"`
	Subject   string    `json:"subject"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// listLinks answers GET /api/me/links: the identities at federated
// identity providers linked to the account.
func (a *API) listLinks(c *fiber.Ctx) error {
	p := principalOf(c)
	ls, err := a.d.Store.ListLinks(c.UserContext(), tenantOf(c).ID, p.UserID)
	if err != nil {
		return storeError("link", err)
	}
	out := make([]linkJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, linkJSON{IDP: l.IdP, Subject: l.Subject, Email: l.Email, CreatedAt: l.CreatedAt.UTC()})
	}
	return c.JSON(newList(out))
}

// removeLink answers DELETE /api/me/links/{idp}/{subject} (both
// path-escaped). Another user's link is not found.
func (a *API) removeLink(c *fiber.Ctx) error {
	p := principalOf(c)
	t := tenantOf(c)
	idp, err := param(c, "idp")
	if err != nil {
		return err
	}
	sub, err := param(c, "subject")
	if err != nil {
		return err
	}
	l, err := a.d.Store.FindLink(c.UserContext(), t.ID, idp, sub)
	if err != nil || l.UserID != p.UserID {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return storeError("link", err)
		}
		return fault.New(fault.CodeNotFound, "link not found")
	}
	if err := a.d.Store.DeleteLink(c.UserContext(), t.ID, idp, sub); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeError("link", err)
	}
	a.auditSelf(c, ActionLinkRemove, event.Ref("user", p.UserID), store.OutcomeSuccess, map[string]any{"idp": idp, "subject": sub})
	return c.SendStatus(fiber.StatusNoContent)
}

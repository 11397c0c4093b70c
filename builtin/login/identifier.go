package login

import (
	"context"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
)

// identified ends an identifier-first step (an authenticator that is an
// authn.Identifier): the user it names becomes the flow's claim, never its
// subject. Later steps must sign in that same user; the username is
// pre-filled; adaptive scripts see the claimed user as the step's subject;
// and a login that proves nothing else cannot complete.
func (s *Service) identified(c *fiber.Ctx, t Tenant, pg Page, f *flow, inst *extension.Instance, resp abi.AuthenticateResponse) error {
	if f.Subject != "" && f.Subject != resp.Subject {
		return s.RenderError(c, fiber.StatusUnauthorized, pg, "login.failed", "")
	}
	f.Claimed = resp.Subject
	username, _ := resp.Claims["username"].(string)
	if username != "" {
		f.LoginHint = truncate(username, 256)
	}
	f.Prefer, _ = resp.Claims[authn.Preference].(string)
	f.History = append(f.History, adaptive.Entry{
		Kind: adaptive.EntryStep, Step: f.Step, Success: true, Authenticator: authenticatorID(inst),
		Subject: &adaptive.Subject{ID: resp.Subject, Username: username},
	})
	f.Authenticator, f.State = inst.Name(), nil
	return s.advance(c, t, pg, f, true)
}

// routeStep chooses the authenticator a step starts with after an
// identifier-first step: the one the identifier preferred (a federated
// login for the user's domain) when the step offers it, else the first
// offered one the claimed user is enrolled with (authn.Enrolment: a
// passkey), else none (the step's first option).
func (s *Service) routeStep(ctx context.Context, t Tenant, f *flow, names []string) string {
	if f.Prefer != "" && slices.Contains(names, f.Prefer) {
		return f.Prefer
	}
	if f.Claimed == "" || f.Subject != "" {
		return ""
	}
	for _, inst := range s.options(t) {
		if !slices.Contains(names, inst.Name()) {
			continue
		}
		if e, ok := extension.As[authn.Enrolment](inst); ok {
			if yes, err := e.Enrolled(ctx, t.Name, f.Claimed); err != nil {
				s.d.Log.WarnContext(ctx, "checking enrolment for identifier-first routing", "authenticator", inst.Name(), "err", err)
			} else if yes {
				return inst.Name()
			}
		}
	}
	return ""
}

package admin

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// InitialAccessTokens issues the tokens that dynamic client registration
// (RFC 7591 section 3) requires (*oauth.Provider).
type InitialAccessTokens interface {
	IssueInitialAccessToken(ctx context.Context, tenantID string, ttl time.Duration) (string, time.Time, error)
}

// ActionInitialTokenIssue is the audit action of issuing an initial access
// token; the token itself is never recorded.
const ActionInitialTokenIssue event.Action = "registration.token.issue"

type initialTokenInput struct {
	// TTLSeconds is the token's lifetime; default one day, at most 30 days.
	TTLSeconds int `json:"ttl_seconds"`
}

type initialTokenJSON struct {
	Token     string    `json:"initial_access_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issueInitialToken issues a single-use initial access token for
// POST /oauth2/register. It is shown once.
func (a *API) issueInitialToken(c *fiber.Ctx) error {
	if a.d.InitialTokens == nil {
		return fault.Unsupported.WithMessage("this server has no dynamic client registration")
	}
	in := initialTokenInput{TTLSeconds: 86400}
	if len(c.Body()) > 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	if in.TTLSeconds < 1 || in.TTLSeconds > 30*86400 {
		return invalid("ttl_seconds", "must be between 1 and %d", 30*86400)
	}
	t := tenantOf(c)
	tok, exp, err := a.d.InitialTokens.IssueInitialAccessToken(c.UserContext(), t.ID, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		return fault.New(fault.CodeInternal, "internal error").WithCause(err)
	}
	a.audit(c, t.ID, ActionInitialTokenIssue, "", store.OutcomeSuccess, map[string]any{"expires_at": exp.UTC().Format(time.RFC3339)})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(initialTokenJSON{Token: tok, ExpiresAt: exp.UTC()})
}

package oauth

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/store"
)

// SessionEndHook is told of an SSO session the end_session endpoint
// ended, so another protocol's parties of the session are logged out too
// (the SAML IdP's EndSessionFrames); it returns front-channel URLs for
// the signed-out page to load in iframes.
type SessionEndHook func(c *fiber.Ctx, tenantName string, sess *store.Session) []string

// OnSessionEnd sets the hook end_session calls after it ended a session
// and notified the session's relying parties. Call it before the node
// serves requests.
func (p *Provider) OnSessionEnd(h SessionEndHook) { p.sessionEnd = h }

// LogoutSession notifies the relying parties of an SSO session another
// protocol ended (a SAML single logout): each that registered a
// backchannel_logout_uri gets a logout token in the background, and the
// frontchannel_logout_uri of each that registered one is returned for
// the signed-out page's iframes. The session's list of relying parties is
// forgotten, so they are notified once.
func (p *Provider) LogoutSession(ctx context.Context, tenantName string, sess *store.Session) []string {
	if sess == nil {
		return nil
	}
	st, err := p.d.Store.GetTenantByName(ctx, tenantName)
	if err != nil {
		p.d.Log.WarnContext(ctx, "logging out the session's clients", "tenant", tenantName, "err", err)
		return nil
	}
	return p.logoutRPs(ctx, p.tenantInfo(st), sess)
}

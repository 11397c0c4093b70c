package login

import (
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// frontchannelRedirectDelay is how long, in seconds, the signed-out page
// lets the relying parties' iframes load before the browser moves on to
// the post-logout redirect URI.
const frontchannelRedirectDelay = "2"

// FrontchannelLogout is the signed-out page of OpenID Connect Front-Channel
// Logout 1.0 section 2: it loads every relying party's
// frontchannel_logout_uri in a hidden iframe, so each can end its own
// session, and then sends the browser on to Next, when set.
type FrontchannelLogout struct {
	Page Page
	// Frames are the relying parties' logout URIs, with iss and sid when
	// asked for (section 2).
	Frames []string
	// Next is the post_logout_redirect_uri (with state), or empty.
	Next string
}

type frontchannelPage struct {
	page
	Frames          []string
	Next, NextLabel string
}

// RenderFrontchannelLogout shows the signed-out page with the relying
// parties' iframes. The page's Content-Security-Policy allows frames from
// their origins only; without JavaScript, a Refresh header moves the
// browser on to Next once the frames had time to load, and a link does so
// at once.
func (s *Service) RenderFrontchannelLogout(c *fiber.Ctx, f FrontchannelLogout) error {
	pg := s.pageFor(c, f.Page, "logout.title")
	pg.Message = text(pg.Lang, "logout.done")
	if err := s.render(c, fiber.StatusOK, "frontchannel", frontchannelPage{
		page: pg, Frames: f.Frames, Next: f.Next, NextLabel: text(pg.Lang, "logout.back"),
	}); err != nil {
		return err
	}
	var origins []string
	for _, fr := range f.Frames {
		if u, err := url.Parse(fr); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") {
			if o := u.Scheme + "://" + u.Host; !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
	}
	frameSrc := "'none'"
	if len(origins) > 0 {
		frameSrc = strings.Join(origins, " ")
	}
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src "+frameSrc+"; form-action *; frame-ancestors 'none'; base-uri 'none'")
	if f.Next != "" {
		c.Set("Refresh", frontchannelRedirectDelay+"; url="+f.Next)
	}
	return nil
}

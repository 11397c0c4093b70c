package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// PathCheckSession is the check_session_iframe of OpenID Connect Session
// Management 1.0 section 3.3.
const PathCheckSession = "/oauth2/check_session"

// browserStateCookie names the cookie of the OP browser state (Session
// Management 1.0 section 3): a value derived from the SSO session, set when
// a code is issued under it and cleared at logout. Unlike the session
// cookie it is readable by script, for the check_session iframe; it holds
// nothing that authenticates.
const browserStateCookie = "latch_bs"

// browserStateLifetime is the cookie's Max-Age; the session's own lifetime
// ends the session sooner.
const browserStateLifetime = 30 * 24 * time.Hour

// checkSessionScript is the iframe's script (Session Management 1.0
// section 3.3.1): for each message "client_id session_state" from a
// relying party's page, it recomputes the session state from the client
// id, the sender's origin, the browser state cookie and the salt, and
// answers "unchanged", "changed" or "error" to that origin.
const checkSessionScript = `(function () {
  "use strict";
  var name = document.documentElement.getAttribute("data-cookie") + "=";
  function browserState() {
    var v = "";
    document.cookie.split(";").forEach(function (c) {
      c = c.trim();
      if (c.indexOf(name) === 0) { v = c.substring(name.length); }
    });
    return v;
  }
  window.addEventListener("message", function (e) {
    if (!e.source || typeof e.data !== "string") { return; }
    var parts = e.data.split(" ");
    var dot = parts.length === 2 ? parts[1].lastIndexOf(".") : -1;
    if (dot < 1 || !window.crypto || !window.crypto.subtle) { e.source.postMessage("error", e.origin); return; }
    var salt = parts[1].substring(dot + 1);
    var data = new TextEncoder().encode(parts[0] + " " + e.origin + " " + browserState() + " " + salt);
    window.crypto.subtle.digest("SHA-256", data).then(function (h) {
      var hex = Array.prototype.map.call(new Uint8Array(h), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      e.source.postMessage(hex + "." + salt === parts[1] ? "unchanged" : "changed", e.origin);
    }, function () { e.source.postMessage("error", e.origin); });
  });
})();`

// checkSessionPage is the iframe's page. The cookie name is an attribute,
// so that the script, and its hash in the Content-Security-Policy, is the
// same for every tenant.
var checkSessionPage = template.Must(template.New("check_session").Parse(`<!DOCTYPE html>
<html lang="en" data-cookie="{{.Cookie}}"><head><meta charset="utf-8"><title>check_session</title>
<script>{{.Script}}</script></head><body></body></html>`))

// checkSessionCSP allows the page's one inline script, and framing by any
// relying party: the iframe answers nothing but "changed" or "unchanged".
var checkSessionCSP = func() string {
	sum := sha256.Sum256([]byte(checkSessionScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'"
}()

// browserStateCookieName is the cookie's name for the tenant.
func browserStateCookieName(tenantName string) string {
	if tenantName == store.DefaultTenantName {
		return browserStateCookie
	}
	return browserStateCookie + "_" + tenantName
}

// checkSession serves the check_session_iframe.
func (p *Provider) checkSession(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	var b strings.Builder
	if err := checkSessionPage.Execute(&b, struct {
		Cookie string
		Script template.JS
	}{browserStateCookieName(t.name), template.JS(checkSessionScript)}); err != nil { //nolint:gosec // G203: a constant script of this package.
		return p.pageFailure(c, t, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentSecurityPolicy, checkSessionCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

// browserState is the OP browser state of an SSO session: a MAC of its id,
// so it changes with the session and reveals nothing of it.
func (p *Provider) browserState(t tenantInfo, sess *store.Session) string {
	m := hmac.New(sha256.New, p.d.HMACKey)
	m.Write([]byte("latch/browser-state/v1\x00" + t.id + "\x00" + sess.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// secureCookies reports whether cookies must be Secure (an https public
// URL).
func (p *Provider) secureCookies() bool { return strings.HasPrefix(p.publicURL, "https://") }

// setBrowserState sets the browser state cookie of sess and returns the
// session_state of Session Management 1.0 section 3 for the client and its
// redirect URI's origin: hex(SHA-256(client_id " " origin " " browser
// state " " salt)) "." salt.
func (p *Provider) setBrowserState(c *fiber.Ctx, t tenantInfo, sess *store.Session, clientID, redirectURI string) (string, error) {
	bs := p.browserState(t, sess)
	p.browserStateCookie(c, t, bs, browserStateLifetime)
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", err
	}
	salt, err := secret.RandomToken(12)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(clientID + " " + u.Scheme + "://" + u.Host + " " + bs + " " + salt))
	return hex.EncodeToString(sum[:]) + "." + salt, nil
}

// clearBrowserState removes the browser state cookie at logout.
func (p *Provider) clearBrowserState(c *fiber.Ctx, t tenantInfo) {
	p.browserStateCookie(c, t, "", -1)
}

func (p *Provider) browserStateCookie(c *fiber.Ctx, t tenantInfo, value string, maxAge time.Duration) {
	ck := &fiber.Cookie{
		Name: browserStateCookieName(t.name), Value: value, Path: "/",
		Secure: p.secureCookies(), SameSite: fiber.CookieSameSiteLaxMode,
	}
	if maxAge < 0 {
		ck.MaxAge, ck.Expires = -1, time.Unix(0, 0)
	} else {
		ck.MaxAge = int(maxAge / time.Second)
	}
	if ck.Secure {
		// The iframe is loaded by relying parties of other sites.
		ck.SameSite = fiber.CookieSameSiteNoneMode
	}
	c.Cookie(ck)
}

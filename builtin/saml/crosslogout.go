package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// redirectURL encodes msg for the HTTP-Redirect binding (SAML bindings
// section 3.4.4): DEFLATE, base64 and URL encoding as param, then
// RelayState and SigAlg, signed with the IdP's key (RSA-SHA256) over
// exactly those octets, the signature appended as Signature.
func redirectURL(k *idpKey, dest, param string, msg []byte, relayState string) (string, error) {
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		return "", fmt.Errorf("deflating message: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return "", fmt.Errorf("deflating message: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("deflating message: %w", err)
	}
	signed := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(z.Bytes()))
	if relayState != "" {
		signed += "&RelayState=" + url.QueryEscape(relayState)
	}
	signed += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	digest := sha256.Sum256([]byte(signed))
	sig, err := k.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing redirect: %w", err)
	}
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	return dest + sep + signed + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig)), nil
}

// notifyKeyBytes is the size of the random key naming the logout state
// behind one PathSLONotify URL.
const notifyKeyBytes = 24

// EndSessionFrames is the OpenID Connect provider's hook for an SSO
// session its end_session endpoint ended (oauth.Provider.OnSessionEnd):
// it forgets the SAML SPs that signed in under sess and returns, for each
// one with a logout endpoint, a PathSLONotify URL for the signed-out
// page to load in an iframe; the iframe sends that SP a signed
// LogoutRequest (SAML profiles section 4.4) and takes its
// LogoutResponse. Failures are logged: the session has ended already.
func (s *Service) EndSessionFrames(c *fiber.Ctx, tenantName string, sess *store.Session) []string {
	ctx := c.UserContext()
	if sess == nil {
		return nil
	}
	st, err := s.d.Store.GetTenantByName(ctx, tenantName)
	if err != nil {
		s.d.Log.WarnContext(ctx, "saml logout of an ended session", "tenant", tenantName, "err", err)
		return nil
	}
	t := s.tenantFor(st)
	parts, err := s.participants(ctx, t, sess.ID)
	if err != nil || len(parts) == 0 {
		if err != nil {
			s.d.Log.WarnContext(ctx, "saml logout of an ended session", "tenant", tenantName, "err", err)
		}
		return nil
	}
	if err := s.d.Store.DeleteToken(ctx, t.id, kindSessionSP, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.d.Log.WarnContext(ctx, "forgetting session participants", "tenant", tenantName, "err", err)
	}
	var frames []string
	now := s.d.Now()
	for entity, pt := range parts {
		p, err := s.loadSP(ctx, t, entity)
		if err != nil {
			continue
		}
		tg, ok := sloTarget(entity, pt, p)
		if !ok {
			continue
		}
		id, err := newID()
		if err != nil {
			continue
		}
		key, err := secret.RandomToken(notifyKeyBytes)
		if err != nil {
			continue
		}
		data, err := json.Marshal(&logoutChain{Current: &tg, CurrentReqID: id, User: sess.UserID, Notify: true})
		if err != nil {
			continue
		}
		if err := s.d.Store.CreateToken(ctx, store.Token{
			Kind: kindLogout, Key: key, TenantID: t.id, Active: true, Data: data, CreatedAt: now, ExpiresAt: now.Add(DefaultStateLifetime),
		}); err != nil {
			s.d.Log.WarnContext(ctx, "saving logout state", "tenant", tenantName, "err", err)
			continue
		}
		frames = append(frames, s.publicURL+t.base+PathSLONotify+"?k="+url.QueryEscape(key))
	}
	return frames
}

// notifyPage sends one SP its LogoutRequest from inside the signed-out
// page's iframe. The request travels in a nested iframe (by its src for
// the Redirect binding, by a form targeting it for HTTP-POST): the
// signed-out page's Content-Security-Policy allows frames from the IdP's
// origin only, and a frame's navigations are held to its parent's
// frame-src, so the SP is framed by this page, whose policy names it.
var notifyPage = template.Must(template.New("notify").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing out…</title></head>
<body>{{if .Post}}<form method="post" action="{{.Action}}" target="sp" id="saml">
<input type="hidden" name="SAMLRequest" value="{{.Value}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
</form>
<iframe name="sp" width="0" height="0"></iframe>
<script nonce="{{.Nonce}}">document.getElementById("saml").submit();</script>{{else}}<iframe src="{{.Action}}" width="0" height="0"></iframe>{{end}}</body></html>
`))

// sloNotify sends, inside the signed-out page's iframe, the LogoutRequest
// of the logout state k names; the SP's LogoutResponse comes back to
// PathSLO with k as RelayState, which ends that state.
func (s *Service) sloNotify(c *fiber.Ctx, t tenant) error {
	ctx := c.UserContext()
	key := c.Query("k")
	if key == "" || len(key) > 64 {
		return s.fail(c, t, http.StatusBadRequest, "The logout is unknown or has expired.")
	}
	tok, err := s.d.Store.GetToken(ctx, t.id, kindLogout, key)
	if errors.Is(err, store.ErrNotFound) {
		return s.fail(c, t, http.StatusBadRequest, "The logout is unknown or has expired.")
	} else if err != nil {
		return s.internal(c, t, err)
	}
	var ch logoutChain
	if err := json.Unmarshal(tok.Data, &ch); err != nil || ch.Current == nil || !ch.Notify {
		return s.fail(c, t, http.StatusBadRequest, "The logout is unknown or has expired.")
	}
	k, err := s.key(ctx, t)
	if err != nil {
		return s.internal(c, t, err)
	}
	tg := *ch.Current
	u, b, err := outbound(k, s.logoutRequestFor(t, tg, ch.CurrentReqID).Element(), tg.SLO, "SAMLRequest", key, tg.Redirect)
	if err != nil {
		return s.internal(c, t, err)
	}
	data := map[string]any{"Post": !tg.Redirect, "RelayState": key, "Action": u}
	if !tg.Redirect {
		data["Action"], data["Value"] = tg.SLO, base64.StdEncoding.EncodeToString(b)
	}
	nonce, err := secret.RandomToken(16)
	if err != nil {
		return s.internal(c, t, err)
	}
	data["Nonce"] = nonce
	var buf bytes.Buffer
	if err := notifyPage.Execute(&buf, data); err != nil {
		return s.internal(c, t, fmt.Errorf("rendering logout notification: %w", err))
	}
	origin := tg.SLO
	if u, err := url.Parse(tg.SLO); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+origin+
		"; frame-src 'self' "+origin+"; frame-ancestors 'self'")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Referrer-Policy", "no-referrer")
	return c.Send(buf.Bytes())
}

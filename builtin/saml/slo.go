package saml

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/beevik/etree"
	csaml "github.com/crewjam/saml"
	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// logoutChain is a single logout walking the session's other SPs (SAML
// profiles section 4.4.3.3): the IdP sends each a LogoutRequest through
// the browser, in turn, then answers the initiating SP, if any.
type logoutChain struct {
	Initiator      string `json:"init,omitempty"` // entity ID; empty when IdP-initiated
	InitiatorReqID string `json:"init_id,omitempty"`
	InitiatorRS    string `json:"init_rs,omitempty"`
	InitiatorSLO   string `json:"init_slo,omitempty"`
	// InitiatorRedirect answers the initiator by the HTTP-Redirect
	// binding (it sent its request so and has a Redirect endpoint).
	InitiatorRedirect bool     `json:"init_redirect,omitempty"`
	Frames            []string `json:"frames,omitempty"` // other protocols' front-channel logout URLs
	// Notify marks the state of one SP notified from another protocol's
	// signed-out page (crosslogout.go).
	Notify       bool     `json:"notify,omitempty"`
	Pending      []target `json:"pending,omitempty"`
	Current      *target  `json:"current,omitempty"`
	CurrentReqID string   `json:"current_id,omitempty"`
	Partial      bool     `json:"partial,omitempty"`
	User         string   `json:"user,omitempty"`
}

type target struct {
	SP string `json:"sp"`
	participant
	SLO      string `json:"slo"`
	Redirect bool   `json:"redirect,omitempty"` // SLO is an HTTP-Redirect endpoint
}

// sloTarget is where p is sent LogoutRequests: its HTTP-POST endpoint,
// else its HTTP-Redirect one; ok is false when it has neither.
func sloTarget(entity string, pt participant, p *sp) (target, bool) {
	switch {
	case p.sloURL != "":
		return target{SP: entity, participant: pt, SLO: p.sloURL}, true
	case p.sloRedirect != "":
		return target{SP: entity, participant: pt, SLO: p.sloRedirect, Redirect: true}, true
	}
	return target{}, false
}

// slo serves single logout (SAML profiles section 4.4) over the
// HTTP-Redirect and HTTP-POST bindings: a LogoutRequest from an SP, a
// LogoutResponse from an SP the IdP asked to log out, or, with neither, an
// IdP-initiated logout of the browser's session (confirmed with a form).
func (s *Service) slo(c *fiber.Ctx, t tenant) error {
	post := c.Method() == fiber.MethodPost
	form, err := readForm(c)
	if err != nil {
		return s.failForm(c, t, err)
	}
	query, _ := url.ParseQuery(string(c.Request().URI().QueryString()))
	has := func(k string) bool { return form.Get(k) != "" || (!post && query.Get(k) != "") }
	switch {
	case has("SAMLRequest"):
		return s.logoutRequest(c, t, form, post)
	case has("SAMLResponse"):
		return s.logoutResponse(c, t, form, post)
	case !post:
		return s.d.Login.RenderLogoutConfirm(c, t.page(), t.base+PathSLO, []login.Hidden{{Name: "logout", Value: "1"}})
	case !s.d.Login.CheckCSRF(c):
		return s.d.Login.RenderError(c, http.StatusForbidden, t.page(), "error.csrf", "")
	}
	sess, err := s.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return s.internal(c, t, err)
	}
	ch := &logoutChain{}
	if err := s.endSession(c, t, sess, "", ch); err != nil {
		return s.internal(c, t, err)
	}
	return s.nextLogout(c, t, ch, "")
}

// logoutRequest serves an SP's LogoutRequest.
func (s *Service) logoutRequest(c *fiber.Ctx, t tenant, form url.Values, post bool) error {
	ctx := c.UserContext()
	in, done := readRequest(s, c, t, form, post, "LogoutRequest", ActionSLO, logoutRequestIssuer)
	if in == nil {
		return done
	}
	m, p, req, signed := in.m, in.p, in.req, in.signed
	now := s.d.Now()
	if err := s.checkRequest(t.sloURL, req.ID, req.Version, req.IssueInstant, req.Destination, signed, now); err != nil {
		return s.fail(c, t, http.StatusBadRequest, "The SAML request is not valid: "+err.Error())
	}
	if req.NotOnOrAfter != nil && !now.Before(req.NotOnOrAfter.Add(s.d.ClockSkew)) {
		return s.fail(c, t, http.StatusBadRequest, "The SAML request has expired.")
	}
	if err := s.remember(c, t, p.entityID, req.ID, req.IssueInstant); err != nil {
		if errors.Is(err, errReplay) {
			return s.fail(c, t, http.StatusBadRequest, "The SAML request was already used.")
		}
		return s.internal(c, t, err)
	}
	ch := &logoutChain{Initiator: p.entityID, InitiatorReqID: req.ID, InitiatorRS: m.relayState, InitiatorSLO: p.sloURL}
	// SAML bindings section 3.4: the response goes back by the binding
	// the request came by when the SP has an endpoint for it.
	if p.sloRedirect != "" && (m.redirect || p.sloURL == "") {
		ch.InitiatorSLO, ch.InitiatorRedirect = p.sloRedirect, true
	}
	sess, err := s.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return s.internal(c, t, err)
	}
	if sess != nil {
		parts, err := s.participants(ctx, t, sess.ID)
		if err != nil {
			return s.internal(c, t, err)
		}
		// The request must name the user this session's assertion named
		// for that SP, so one SP cannot end another user's session.
		got, known := parts[p.entityID]
		if !known || req.NameID == nil || req.NameID.Value != got.NameID ||
			(req.SessionIndex != nil && req.SessionIndex.Value != "" && req.SessionIndex.Value != got.Index) {
			ch.Partial = true
			s.publish(c, t, event.Ref("client", p.clientID), ActionSLO, event.OutcomeFailure, map[string]any{"reason": "principal"})
			return s.nextLogout(c, t, ch, csaml.StatusRequester)
		}
		if err := s.endSession(c, t, sess, p.entityID, ch); err != nil {
			return s.internal(c, t, err)
		}
	}
	return s.nextLogout(c, t, ch, "")
}

// endSession ends the shared login session and queues the session's other
// SPs that have a logout endpoint.
func (s *Service) endSession(c *fiber.Ctx, t tenant, sess *store.Session, initiator string, ch *logoutChain) error {
	ctx := c.UserContext()
	if sess == nil {
		return nil
	}
	parts, err := s.participants(ctx, t, sess.ID)
	if err != nil {
		return err
	}
	for entity, pt := range parts {
		if entity == initiator {
			continue
		}
		p, err := s.loadSP(ctx, t, entity)
		if err != nil {
			ch.Partial = true
			continue
		}
		if tg, ok := sloTarget(entity, pt, p); ok {
			ch.Pending = append(ch.Pending, tg)
		}
	}
	ch.User = sess.UserID
	if err := s.d.Store.DeleteToken(ctx, t.id, kindSessionSP, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("forgetting session participants: %w", err)
	}
	if _, err := s.d.Login.EndSession(c, t.id, t.name); err != nil {
		return err
	}
	if s.d.SessionEnded != nil {
		ch.Frames = append(ch.Frames, s.d.SessionEnded(ctx, t.name, sess)...)
	}
	s.publish(c, t, event.Ref("user", sess.UserID), ActionSLO, event.OutcomeSuccess, map[string]any{"initiator": initiator, "sps": len(parts)})
	return nil
}

// nextLogout sends the browser to the next SP to log out, or, when none is
// left, answers the initiator (or shows the signed-out page). status, when
// set, is the failure to report to the initiator.
func (s *Service) nextLogout(c *fiber.Ctx, t tenant, ch *logoutChain, status string) error {
	ctx := c.UserContext()
	k, err := s.key(ctx, t)
	if err != nil {
		return s.internal(c, t, err)
	}
	if status == "" && len(ch.Pending) > 0 {
		next := ch.Pending[0]
		ch.Pending = ch.Pending[1:]
		id, err := newID()
		if err != nil {
			return s.internal(c, t, err)
		}
		ch.Current, ch.CurrentReqID = &next, id
		key, err := secret.RandomToken(24)
		if err != nil {
			return s.internal(c, t, err)
		}
		data, err := json.Marshal(ch)
		if err != nil {
			return s.internal(c, t, err)
		}
		now := s.d.Now()
		if err := s.d.Store.CreateToken(ctx, store.Token{
			Kind: kindLogout, Key: key, TenantID: t.id, Active: true, Data: data, CreatedAt: now, ExpiresAt: now.Add(DefaultStateLifetime),
		}); err != nil {
			return s.internal(c, t, fmt.Errorf("saving logout state: %w", err))
		}
		if err := s.sendLogoutRequest(c, t, k, next, id, key); err != nil {
			return s.internal(c, t, err)
		}
		return nil
	}
	if ch.Initiator == "" || ch.InitiatorSLO == "" {
		if len(ch.Frames) > 0 {
			return s.d.Login.RenderFrontchannelLogout(c, login.FrontchannelLogout{Page: t.page(), Frames: ch.Frames})
		}
		return s.d.Login.RenderLoggedOut(c, t.page())
	}
	top, second := csaml.StatusSuccess, ""
	switch {
	case status != "":
		top = status
	case ch.Partial:
		second = csaml.StatusPartialLogout
	}
	id, err := newID()
	if err != nil {
		return s.internal(c, t, err)
	}
	resp := &csaml.LogoutResponse{
		ID: id, InResponseTo: ch.InitiatorReqID, Version: "2.0", IssueInstant: s.d.Now().UTC(), Destination: ch.InitiatorSLO,
		Issuer: &csaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: t.entityID},
		Status: csaml.Status{StatusCode: csaml.StatusCode{Value: top}},
	}
	if second != "" {
		resp.Status.StatusCode.StatusCode = &csaml.StatusCode{Value: second}
	}
	u, b, err := outbound(k, resp.Element(), ch.InitiatorSLO, "SAMLResponse", ch.InitiatorRS, ch.InitiatorRedirect)
	if err != nil {
		return s.internal(c, t, err)
	}
	if u == "" {
		return postFormWith(c, ch.InitiatorSLO, "SAMLResponse", b, ch.InitiatorRS, ch.Frames)
	}
	if len(ch.Frames) > 0 {
		return s.d.Login.RenderFrontchannelLogout(c, login.FrontchannelLogout{Page: t.page(), Frames: ch.Frames, Next: u})
	}
	return c.Redirect(u, http.StatusSeeOther)
}

// logoutRequestFor is the IdP's LogoutRequest (id) for tg's participant.
func (s *Service) logoutRequestFor(t tenant, tg target, id string) *csaml.LogoutRequest {
	now := s.d.Now()
	notAfter := now.Add(s.d.AssertionLifetime).UTC()
	return &csaml.LogoutRequest{
		ID: id, Version: "2.0", IssueInstant: now.UTC(), NotOnOrAfter: &notAfter, Destination: tg.SLO,
		Issuer:       &csaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: t.entityID},
		NameID:       &csaml.NameID{Format: tg.Format, NameQualifier: t.entityID, SPNameQualifier: tg.SP, Value: tg.NameID},
		SessionIndex: &csaml.SessionIndex{Value: tg.Index},
	}
}

// sendLogoutRequest sends the browser to tg with a signed LogoutRequest
// (id) for its participant, by tg's binding, with relayState naming the
// logout state.
func (s *Service) sendLogoutRequest(c *fiber.Ctx, t tenant, k *idpKey, tg target, id, relayState string) error {
	u, b, err := outbound(k, s.logoutRequestFor(t, tg, id).Element(), tg.SLO, "SAMLRequest", relayState, tg.Redirect)
	if err != nil {
		return err
	}
	if u != "" {
		return c.Redirect(u, http.StatusSeeOther)
	}
	return postFormWith(c, tg.SLO, "SAMLRequest", b, relayState, nil)
}

// logoutResponse serves an SP's answer to the IdP's LogoutRequest and goes
// on with the chain named by RelayState.
func (s *Service) logoutResponse(c *fiber.Ctx, t tenant, form url.Values, post bool) error {
	ctx := c.UserContext()
	m, err := decodeMessage("SAMLResponse", string(c.Request().URI().QueryString()), form, post)
	if err != nil {
		return s.fail(c, t, http.StatusBadRequest, "The SAML response is not valid: "+err.Error())
	}
	key := m.relayState
	if key == "" || len(key) > 64 {
		return s.fail(c, t, http.StatusBadRequest, "The logout is unknown or has expired.")
	}
	tok, err := s.d.Store.GetToken(ctx, t.id, kindLogout, key)
	if errors.Is(err, store.ErrNotFound) {
		return s.fail(c, t, http.StatusBadRequest, "The logout is unknown or has expired.")
	} else if err != nil {
		return s.internal(c, t, err)
	}
	if err := s.d.Store.DeleteToken(ctx, t.id, kindLogout, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.internal(c, t, err)
	}
	var ch logoutChain
	if err := json.Unmarshal(tok.Data, &ch); err != nil || ch.Current == nil {
		return s.internal(c, t, fmt.Errorf("decoding logout state: %w", err))
	}
	ok := false
	if p, err := s.loadSP(ctx, t, ch.Current.SP); err == nil {
		if resp, _, err := verifyMessage(m, p, nil, logoutResponseIssuer); err == nil {
			ok = resp.InResponseTo == ch.CurrentReqID && resp.Status.StatusCode.Value == csaml.StatusSuccess
		}
	}
	if !ok {
		ch.Partial = true
	}
	ch.Current, ch.CurrentReqID = nil, ""
	return s.nextLogout(c, t, &ch, "")
}

// outbound encodes el, a message of the IdP's to dest as param
// ("SAMLRequest" or "SAMLResponse"), for the binding: with redirect, the
// HTTP-Redirect URL, whose signature is over the query, not the XML (SAML
// bindings section 3.4.4.1); else the document with an enveloped
// signature, for the HTTP-POST form. el is signed in place.
func outbound(k *idpKey, el *etree.Element, dest, param, relayState string, redirect bool) (redirectTo string, doc []byte, err error) {
	if redirect {
		b, err := serialize(el)
		if err != nil {
			return "", nil, err
		}
		u, err := redirectURL(k, dest, param, b, relayState)
		if err != nil {
			return "", nil, err
		}
		return u, nil, nil
	}
	if err := signInPlace(k, el); err != nil {
		return "", nil, err
	}
	b, err := serialize(el)
	if err != nil {
		return "", nil, err
	}
	return "", b, nil
}

// serialize writes el as a document.
func serialize(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("encoding message: %w", err)
	}
	return b, nil
}

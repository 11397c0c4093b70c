package saml

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	csaml "github.com/crewjam/saml"
	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Authentication context classes (SAML authn-context section 3.4) the IdP
// asserts, from the weakest.
const (
	ACUnspecified = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	ACPassword    = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password" //nolint:gosec // G101: a SAML class name, not a credential.
	ACPPT         = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	// ACMFA is the REFEDS multi-factor profile, asserted for sessions
	// signed in with more than one factor.
	ACMFA = "https://refeds.org/profile/mfa"
)

var acRank = map[string]int{ACUnspecified: 0, ACPassword: 1, ACPPT: 2, ACMFA: 3}

// ssoRequest is an SSO request being served; it is kept in the store
// (kindState) while the browser signs in.
type ssoRequest struct {
	SP           string   `json:"sp"`
	ID           string   `json:"id,omitempty"` // the AuthnRequest's ID; empty for IdP-initiated
	ACS          string   `json:"acs"`
	RelayState   string   `json:"rs,omitempty"`
	Force        bool     `json:"force,omitempty"`
	Passive      bool     `json:"passive,omitempty"`
	NameIDFormat string   `json:"nif,omitempty"`
	AuthnContext []string `json:"ac,omitempty"`
	Comparison   string   `json:"cmp,omitempty"`
	Created      int64    `json:"created"` // unix nanoseconds
}

// sso serves SP-initiated SSO (SAML profiles section 4.1) over the
// HTTP-Redirect and HTTP-POST bindings.
func (s *Service) sso(c *fiber.Ctx, t tenant) error {
	post := c.Method() == fiber.MethodPost
	form, err := readForm(c)
	if err != nil {
		return s.failForm(c, t, err)
	}
	in, done := readRequest(s, c, t, form, post, "AuthnRequest", ActionSSO, authnRequestIssuer)
	if in == nil {
		return done
	}
	m, p, req, signed := in.m, in.p, in.req, in.signed
	now := s.d.Now()
	if err := s.checkRequest(t.ssoURL, req.ID, req.Version, req.IssueInstant, req.Destination, signed, now); err != nil {
		return s.fail(c, t, http.StatusBadRequest, "The SAML request is not valid: "+err.Error())
	}
	if req.ProtocolBinding != "" && req.ProtocolBinding != csaml.HTTPPostBinding {
		return s.fail(c, t, http.StatusBadRequest, "Only the HTTP-POST binding is supported for responses.")
	}
	acs, ok := p.acsFor(req.AssertionConsumerServiceURL, req.AssertionConsumerServiceIndex)
	if !ok {
		s.publish(c, t, event.Ref("client", p.clientID), ActionSSO, event.OutcomeFailure, map[string]any{"reason": "acs"})
		return s.fail(c, t, http.StatusBadRequest, "The assertion consumer service URL is not registered for this service provider.")
	}
	if err := s.remember(c, t, p.entityID, req.ID, req.IssueInstant); err != nil {
		if errors.Is(err, errReplay) {
			return s.fail(c, t, http.StatusBadRequest, "The SAML request was already used.")
		}
		return s.internal(c, t, err)
	}
	r := &ssoRequest{SP: p.entityID, ID: req.ID, ACS: acs, RelayState: m.relayState, Created: now.UnixNano()}
	r.Force = req.ForceAuthn != nil && *req.ForceAuthn
	r.Passive = req.IsPassive != nil && *req.IsPassive
	if req.NameIDPolicy != nil && req.NameIDPolicy.Format != nil {
		f, err := nameIDFormat(*req.NameIDPolicy.Format)
		if err != nil {
			return s.sendStatus(c, t, p, r, csaml.StatusRequester, csaml.StatusInvalidNameIDPolicy)
		}
		r.NameIDFormat = f
	}
	if rac := req.RequestedAuthnContext; rac != nil && rac.AuthnContextClassRef != "" {
		r.AuthnContext, r.Comparison = []string{rac.AuthnContextClassRef}, rac.Comparison
	}
	if post {
		// The session cookie is SameSite=Lax, so a cross-site POST does
		// not carry it: without it, continue on a same-site GET, where the
		// browser sends it. A POST that carries a valid one (a same-site
		// SP) is answered at once, without keeping the request in the
		// store for the hop.
		sess, err := s.d.Login.Session(c, t.id, t.name)
		if err != nil {
			return s.internal(c, t, err)
		}
		if sess == nil {
			return s.saveAndRedirect(c, t, r, t.base+PathResume)
		}
	}
	return s.continueSSO(c, t, p, r, false)
}

// spRequest is an SP's request, read and verified by readRequest.
type spRequest[T any] struct {
	m      *message
	p      *sp
	req    *T
	signed bool
}

// readRequest reads c's SAMLRequest (kind names it in errors) from the
// binding, finds its SP by the Issuer and verifies its signature as the SP
// requires, recording refused signatures as failures of action. When the
// request cannot be used it returns nil and the result of answering the
// browser with the error.
func readRequest[T any](s *Service, c *fiber.Ctx, t tenant, form url.Values, post bool, kind string, action event.Action, issuer func(*T) *csaml.Issuer) (*spRequest[T], error) {
	m, err := decodeMessage("SAMLRequest", string(c.Request().URI().QueryString()), form, post)
	if err != nil {
		return nil, s.fail(c, t, http.StatusBadRequest, "The SAML request is not valid: "+err.Error())
	}
	unverified := new(T)
	if err := xmlUnmarshal(m.xml, unverified); err != nil || issuer(unverified) == nil {
		return nil, s.fail(c, t, http.StatusBadRequest, "The SAML request is not a "+kind+" with an Issuer.")
	}
	p, err := s.loadSP(c.UserContext(), t, issuer(unverified).Value)
	if errors.Is(err, errUnknownSP) {
		return nil, s.fail(c, t, http.StatusBadRequest, "The service provider is not registered.")
	} else if err != nil {
		return nil, s.internal(c, t, err)
	}
	req, signed, err := verifyMessage(m, p, unverified, issuer)
	if err != nil {
		s.publish(c, t, event.Ref("client", p.clientID), action, event.OutcomeFailure, map[string]any{"reason": "signature"})
		return nil, s.fail(c, t, http.StatusBadRequest, "The SAML request's signature is missing or not valid.")
	}
	return &spRequest[T]{m: m, p: p, req: req, signed: signed}, nil
}

// readForm reads a POST-binding request's form; it is nil for other
// methods. A body beyond twice maxEncodedMessage is errTooLarge.
func readForm(c *fiber.Ctx) (url.Values, error) {
	if c.Method() != fiber.MethodPost {
		return nil, nil
	}
	if len(c.Body()) > 2*maxEncodedMessage {
		return nil, errTooLarge
	}
	form, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return nil, fmt.Errorf("parsing form: %w", err)
	}
	return form, nil
}

// failForm renders readForm's err.
func (s *Service) failForm(c *fiber.Ctx, t tenant, err error) error {
	if errors.Is(err, errTooLarge) {
		return s.fail(c, t, http.StatusRequestEntityTooLarge, "The SAML message is too large.")
	}
	return s.fail(c, t, http.StatusBadRequest, "The request body is not a valid form.")
}

// The Issuer of each message verifyMessage reads.
func authnRequestIssuer(r *csaml.AuthnRequest) *csaml.Issuer     { return r.Issuer }
func logoutRequestIssuer(r *csaml.LogoutRequest) *csaml.Issuer   { return r.Issuer }
func logoutResponseIssuer(r *csaml.LogoutResponse) *csaml.Issuer { return r.Issuer }

// verifyMessage verifies m's signature as p requires and returns the
// message (an AuthnRequest, a LogoutRequest or a LogoutResponse) decoded
// from what was verified, with issuer naming p. unverified, when not nil,
// is m decoded already: it is returned as it is when the bytes it was
// decoded from are the ones verified (a Redirect-binding signature, which
// covers the whole message, or no signature), so a message is decoded a
// second time only when an enveloped signature was verified.
func verifyMessage[T any](m *message, p *sp, unverified *T, issuer func(*T) *csaml.Issuer) (msg *T, signed bool, err error) {
	decode := func(b []byte) (*T, error) {
		v := new(T)
		if err := xmlUnmarshal(b, v); err != nil {
			return nil, err
		}
		return v, nil
	}
	if m.redirect && m.signature != nil {
		if err := verifyRedirect(m, p.signingCerts); err != nil {
			return nil, false, err
		}
		signed = true
		msg = unverified
		if msg == nil {
			if msg, err = decode(m.xml); err != nil {
				return nil, false, err
			}
		}
	} else {
		b, ok, err := verifiedRoot(m.xml, p.signingCerts, p.requireSigned)
		if err != nil {
			return nil, false, err
		}
		signed, msg = ok, unverified
		if signed || msg == nil {
			if msg, err = decode(b); err != nil {
				return nil, false, err
			}
		}
	}
	if iss := issuer(msg); iss == nil || iss.Value != p.entityID {
		return nil, false, errSignature
	}
	return msg, signed, nil
}

// checkRequest applies the checks common to AuthnRequest and
// LogoutRequest: version, ID, freshness and Destination (required when
// signed, SAML bindings section 3.4.5.2).
func (s *Service) checkRequest(want, id, version string, issued time.Time, dest string, signed bool, now time.Time) error {
	switch {
	case version != "2.0":
		return errors.New("version must be 2.0")
	case id == "" || len(id) > 256:
		return errors.New("the ID is missing or too long")
	case issued.IsZero():
		return errors.New("no IssueInstant")
	case issued.After(now.Add(s.d.ClockSkew)):
		return errors.New("issued in the future")
	case issued.Before(now.Add(-s.d.RequestMaxAge - s.d.ClockSkew)):
		return errors.New("expired")
	}
	if (signed || dest != "") && dest != want {
		return errors.New("the Destination is not this endpoint")
	}
	return nil
}

var errReplay = errors.New("message replayed")

// remember records a message ID until it could no longer be accepted; a
// second use of the ID is errReplay.
func (s *Service) remember(c *fiber.Ctx, t tenant, sp, id string, issued time.Time) error {
	sum := sha256.Sum256([]byte(sp + "\x00" + id))
	err := s.d.Store.CreateToken(c.UserContext(), store.Token{
		Kind: kindRequestID, Key: hex.EncodeToString(sum[:]), TenantID: t.id, ClientID: sp, Active: true,
		CreatedAt: s.d.Now(), ExpiresAt: issued.Add(s.d.RequestMaxAge + 2*s.d.ClockSkew),
	})
	if errors.Is(err, store.ErrConflict) {
		return errReplay
	}
	if err != nil {
		return fmt.Errorf("recording request id: %w", err)
	}
	return nil
}

// saveState keeps r in the store while the browser travels and returns
// its key.
func (s *Service) saveState(c *fiber.Ctx, t tenant, r *ssoRequest) (string, error) {
	key, err := secret.RandomToken(24)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding sso state: %w", err)
	}
	now := s.d.Now()
	if err := s.d.Store.CreateToken(c.UserContext(), store.Token{
		Kind: kindState, Key: key, TenantID: t.id, ClientID: r.SP, Active: true, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(DefaultStateLifetime),
	}); err != nil {
		return "", fmt.Errorf("saving sso state: %w", err)
	}
	return key, nil
}

// saveAndRedirect keeps r in the store and sends the browser to
// path?state=… on this server.
func (s *Service) saveAndRedirect(c *fiber.Ctx, t tenant, r *ssoRequest, path string) error {
	key, err := s.saveState(c, t, r)
	if err != nil {
		return s.internal(c, t, err)
	}
	return c.Redirect(s.d.Login.URL(path+"?state="+url.QueryEscape(key)), http.StatusSeeOther)
}

// resume continues an SSO request after a POST-binding hop or a login.
func (s *Service) resume(c *fiber.Ctx, t tenant) error {
	ctx := c.UserContext()
	key := c.Query("state")
	if key == "" || len(key) > 64 {
		return s.fail(c, t, http.StatusBadRequest, "The sign-in request is missing or has expired.")
	}
	tok, err := s.d.Store.GetToken(ctx, t.id, kindState, key)
	if errors.Is(err, store.ErrNotFound) {
		return s.fail(c, t, http.StatusBadRequest, "The sign-in request is missing or has expired.")
	} else if err != nil {
		return s.internal(c, t, err)
	}
	var r ssoRequest
	if err := json.Unmarshal(tok.Data, &r); err != nil {
		return s.internal(c, t, fmt.Errorf("decoding sso state: %w", err))
	}
	p, err := s.loadSP(ctx, t, r.SP)
	if errors.Is(err, errUnknownSP) {
		return s.fail(c, t, http.StatusBadRequest, "The service provider is not registered.")
	} else if err != nil {
		return s.internal(c, t, err)
	}
	// The state is used once, whatever comes of it.
	if err := s.d.Store.DeleteToken(ctx, t.id, kindState, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.internal(c, t, err)
	}
	// Without login=1 this is the POST binding's hop: no login was tried.
	return s.continueSSO(c, t, p, &r, c.Query("login") != "")
}

// idpInit serves IdP-initiated SSO (SAML profiles section 4.1.5): an
// unsolicited response to the SP named by ?sp=, at its default ACS or the
// registered one named by ?acs=.
func (s *Service) idpInit(c *fiber.Ctx, t tenant) error {
	p, err := s.loadSP(c.UserContext(), t, c.Query("sp"))
	if errors.Is(err, errUnknownSP) {
		return s.fail(c, t, http.StatusBadRequest, "The service provider is not registered.")
	} else if err != nil {
		return s.internal(c, t, err)
	}
	if !p.allowIDPInitiate {
		return s.fail(c, t, http.StatusBadRequest, "This service provider does not accept IdP-initiated sign-in.")
	}
	acs, ok := p.acsFor(c.Query("acs"), "")
	if !ok {
		return s.fail(c, t, http.StatusBadRequest, "The assertion consumer service URL is not registered for this service provider.")
	}
	rs := c.Query("RelayState")
	if len(rs) > maxRelayState {
		return s.fail(c, t, http.StatusBadRequest, "RelayState too long.")
	}
	return s.continueSSO(c, t, p, &ssoRequest{SP: p.entityID, ACS: acs, RelayState: rs, Created: s.d.Now().UnixNano()}, false)
}

// continueSSO answers r for the browser's session, sending the browser to
// sign in first when it has no session good enough.
func (s *Service) continueSSO(c *fiber.Ctx, t tenant, p *sp, r *ssoRequest, afterLogin bool) error {
	ctx := c.UserContext()
	sess, err := s.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return s.internal(c, t, err)
	}
	if sess != nil && r.Force && sess.AuthTime.Before(time.Unix(0, r.Created).Truncate(time.Second)) {
		sess = nil // ForceAuthn: a login older than the request does not count
	}
	if sess == nil {
		switch {
		case r.Passive:
			return s.sendStatus(c, t, p, r, csaml.StatusResponder, csaml.StatusNoPassive)
		case afterLogin:
			return s.sendStatus(c, t, p, r, csaml.StatusResponder, csaml.StatusAuthnFailed)
		}
		key, err := s.saveState(c, t, r)
		if err != nil {
			return s.internal(c, t, err)
		}
		back := t.base + PathResume + "?login=1&state=" + url.QueryEscape(key)
		return c.Redirect(s.d.Login.LoginURL(t.base, back, login.Options{Force: r.Force, Client: p.clientID}), http.StatusSeeOther)
	}
	have := sessionClass(sess)
	if !contextSatisfied(r.Comparison, r.AuthnContext, have) {
		return s.sendStatus(c, t, p, r, csaml.StatusRequester, csaml.StatusNoAuthnContext)
	}
	u, err := s.d.Store.GetUser(ctx, t.id, sess.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.sendStatus(c, t, p, r, csaml.StatusResponder, csaml.StatusUnknownPrincipal)
	case err != nil:
		return s.internal(c, t, err)
	case !u.Enabled:
		return s.sendStatus(c, t, p, r, csaml.StatusResponder, csaml.StatusRequestDenied)
	}
	return s.sendAssertion(c, t, p, r, sess, u, have)
}

// sessionClass is the authentication context class of a session.
func sessionClass(sess *store.Session) string {
	switch {
	case sess.ACR == "2":
		return ACMFA
	case slices.Contains(sess.AMR, "pwd"):
		return ACPPT
	}
	return ACUnspecified
}

// contextSatisfied applies RequestedAuthnContext's comparison (SAML core
// section 3.3.2.2.1) to the class the session has.
func contextSatisfied(cmp string, requested []string, have string) bool {
	if len(requested) == 0 {
		return true
	}
	hr := acRank[have]
	for _, r := range requested {
		rr, known := acRank[r]
		switch cmp {
		case "", "exact":
			if r == have {
				return true
			}
		case "minimum":
			if known && hr >= rr {
				return true
			}
		case "better":
			if known && hr > rr {
				return true
			}
		case "maximum":
			if known && hr <= rr {
				return true
			}
		}
	}
	return false
}

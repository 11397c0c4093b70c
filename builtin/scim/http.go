package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// ContentType is the SCIM media type (RFC 7644 section 8.1).
const ContentType = "application/scim+json"

const (
	localTenant    = "latch.scim.tenant"
	localPrincipal = "latch.scim.principal"
	localBase      = "latch.scim.base"
)

// access is what a route needs from the token.
type access int

const (
	read access = iota
	write
)

// reqCtx is one request as the operations see it, so that HTTP handlers
// and Bulk share them.
type reqCtx struct {
	ctx       context.Context
	tenant    store.Tenant
	principal Principal
	requestID string
	// base is the absolute URL of the tenant's SCIM root, for locations.
	base string
}

func (s *Service) reqCtx(c *fiber.Ctx) *reqCtx {
	t, _ := c.Locals(localTenant).(store.Tenant)
	p, _ := c.Locals(localPrincipal).(Principal)
	base, _ := c.Locals(localBase).(string)
	return &reqCtx{ctx: c.UserContext(), tenant: t, principal: p, requestID: server.RequestID(c), base: base}
}

// handle wraps a handler: it checks the scope the route needs and writes
// any error in the SCIM error form. Tokens issued to a user are refused:
// they reach only /Me and the discovery endpoints (handleSelf), whatever
// their scopes, so a user's token never administers other users.
func (s *Service) handle(need access, h func(*fiber.Ctx, *reqCtx) error) fiber.Handler {
	return s.wrap(need, false, h)
}

// handleSelf is handle for routes a user's own token may use.
func (s *Service) handleSelf(need access, h func(*fiber.Ctx, *reqCtx) error) fiber.Handler {
	return s.wrap(need, true, h)
}

func (s *Service) wrap(need access, self bool, h func(*fiber.Ctx, *reqCtx) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		rc := s.reqCtx(c)
		if rc.principal.User && !self {
			s.audit(rc, "scim.auth", "", store.OutcomeDenied, map[string]any{"reason": "user token outside /Me"})
			return s.fail(c, newErr(http.StatusForbidden, "", "an access token issued to a user may only use /Me"))
		}
		if err := checkScope(rc.principal, need); err != nil {
			s.audit(rc, "scim.auth", "", store.OutcomeDenied, map[string]any{"reason": err.Detail})
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-scim", error="insufficient_scope", scope="`+scopeFor(need)+`"`)
			return s.fail(c, err)
		}
		if len(c.Body()) > MaxBodyBytes {
			return s.fail(c, newErr(http.StatusRequestEntityTooLarge, ErrTypeTooMany, "the request body is larger than %d bytes", MaxBodyBytes))
		}
		if err := h(c, rc); err != nil {
			return s.fail(c, err)
		}
		return nil
	}
}

func scopeFor(need access) string {
	if need == write {
		return ScopeWrite
	}
	return ScopeRead
}

func checkScope(p Principal, need access) *Error {
	if slices.Contains(p.Scopes, ScopeAdmin) {
		return nil
	}
	if need == read && (slices.Contains(p.Scopes, ScopeRead) || slices.Contains(p.Scopes, ScopeWrite)) {
		return nil
	}
	if need == write && slices.Contains(p.Scopes, ScopeWrite) {
		return nil
	}
	return newErr(http.StatusForbidden, "", "insufficient_scope: the access token needs the %s or %s scope", scopeFor(need), ScopeAdmin)
}

// fail writes err as a SCIM error response. Causes are logged, never sent.
func (s *Service) fail(c *fiber.Ctx, err error) error {
	se := asError(err)
	if se.Status >= 500 {
		s.d.Log.ErrorContext(c.UserContext(), "scim request failed", "request_id", server.RequestID(c), "path", c.Path(), "err", err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return writeJSON(c, se.Status, se.body())
}

func writeJSON(c *fiber.Ctx, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encoding scim response: %w", err)
	}
	c.Set(fiber.HeaderContentType, ContentType+"; charset=utf-8")
	return c.Status(status).Send(b)
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// tenantDefault selects the default tenant.
func (s *Service) tenantDefault(c *fiber.Ctx) error {
	t, err := s.d.Store.GetTenantByName(c.UserContext(), store.DefaultTenantName)
	if err != nil {
		return s.fail(c, storeErr("tenant", err))
	}
	c.Locals(localTenant, t)
	c.Locals(localBase, c.BaseURL()+BasePath)
	return c.Next()
}

// tenantNamed selects the tenant named in the path.
func (s *Service) tenantNamed(c *fiber.Ctx) error {
	name := c.Params("tenant")
	if name == "" || len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return s.fail(c, notFound("tenant"))
	}
	t, err := s.d.Store.GetTenantByName(c.UserContext(), name)
	if err != nil {
		return s.fail(c, storeErr("tenant", err))
	}
	if !t.Enabled {
		return s.fail(c, notFound("tenant"))
	}
	c.Locals(localTenant, t)
	c.Locals(localBase, c.BaseURL()+"/t/"+name+BasePath)
	return c.Next()
}

// authenticate admits a valid bearer token (RFC 6750 section 2.1); scopes
// are checked per route. Every failure is the same 401 with a
// WWW-Authenticate challenge (RFC 6750 section 3).
func (s *Service) authenticate(c *fiber.Ctx) error {
	t, _ := c.Locals(localTenant).(store.Tenant)
	raw, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok || s.d.Bearer == nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-scim"`)
		return s.fail(c, newErr(http.StatusUnauthorized, "", "a bearer access token is required"))
	}
	p, err := s.d.Bearer.ValidateSCIMToken(c.UserContext(), t, raw)
	switch {
	case errors.Is(err, ErrInvalidBearer):
		s.d.Audit.Publish(event.Event{Tenant: t.ID, Time: s.d.Now().UTC(), RequestID: server.RequestID(c), Actor: "anonymous",
			Action: "scim.auth", Outcome: store.OutcomeFailure, Detail: map[string]any{"reason": "invalid bearer token"}})
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-scim", error="invalid_token"`)
		return s.fail(c, newErr(http.StatusUnauthorized, "", "the access token is not valid"))
	case err != nil:
		return s.fail(c, &Error{Status: http.StatusServiceUnavailable, Detail: "the service is unavailable", cause: fmt.Errorf("validating bearer token: %w", err)})
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

// bearerToken extracts an RFC 6750 section 2.1 bearer token.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != "" && len(tok) <= 8192
}

// actor names the caller in audit events.
func (rc *reqCtx) actor() string {
	if rc.principal.User {
		return event.Ref("user", rc.principal.Subject)
	}
	if rc.principal.ClientID != "" {
		return event.Ref("client", rc.principal.ClientID)
	}
	return "anonymous"
}

func (s *Service) audit(rc *reqCtx, action event.Action, target, outcome string, detail map[string]any) {
	if detail == nil {
		detail = map[string]any{}
	}
	detail["via"] = "scim"
	s.d.Audit.Publish(event.Event{
		Tenant: rc.tenant.ID, Time: s.d.Now().UTC(), RequestID: rc.requestID,
		Actor: rc.actor(), Action: action, Target: target, Outcome: outcome, Detail: detail,
	})
}

// decodeBody reads the body as one JSON object (RFC 7644 section 3.1),
// keeping numbers exact.
func decodeBody(c *fiber.Ctx) (map[string]any, *Error) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != "" && ct != ContentType && ct != fiber.MIMEApplicationJSON {
		return nil, newErr(http.StatusUnsupportedMediaType, "", "the content type must be %s or application/json", ContentType)
	}
	return decodeObject(c.Body())
}

func decodeObject(body []byte) (map[string]any, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest(ErrTypeInvalidSyntax, "the request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, badRequest(ErrTypeInvalidSyntax, "malformed JSON at byte %d", syn.Offset)
		}
		return nil, badRequest(ErrTypeInvalidSyntax, "the body must be one JSON object")
	}
	if m == nil {
		return nil, badRequest(ErrTypeInvalidSyntax, "the body must be one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest(ErrTypeInvalidSyntax, "malformed JSON: unexpected data after the object")
	}
	return m, nil
}

// etag is the weak entity tag of a version (RFC 7644 section 3.14).
func etag(version string) string { return `W/"` + version + `"` }

func etagOf(v int64) string { return etag(strconv.FormatInt(v, 10)) }

// matchesIfMatch reports whether an If-Match header admits the current
// tag: absent, "*", or a list naming it (weak comparison, RFC 9110
// section 13.1.1 allows it for SCIM's weak tags).
func matchesIfMatch(h, current string) bool {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return true
	}
	cur := strings.TrimPrefix(current, "W/")
	for _, t := range strings.Split(h, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == cur {
			return true
		}
	}
	return false
}

func preconditionFailed(what string) *Error {
	return newErr(http.StatusPreconditionFailed, "", "the %s was changed since that version (If-Match); fetch it again", what)
}

func (s *Service) noRoute(c *fiber.Ctx, _ *reqCtx) error {
	return newErr(http.StatusNotFound, "", "no SCIM endpoint at %s %s", c.Method(), clip(c.Path()))
}

// me serves /Me (RFC 7644 section 3.11): the user the access token was
// issued to, through the same operations as /Users/{id}. Tokens of the
// client credentials grant name a client, not a user, so they get 501.
func (s *Service) me(c *fiber.Ctx, rc *reqCtx) error {
	if !rc.principal.User {
		return newErr(http.StatusNotImplemented, "", "/Me needs an access token issued to a signed-in user; this token was issued to client %q", clip(rc.principal.ClientID))
	}
	if strings.Trim(strings.TrimPrefix(c.Params("*"), "/"), "/") != "" {
		return newErr(http.StatusNotFound, "", "no SCIM endpoint at %s %s", c.Method(), clip(c.Path()))
	}
	id := rc.principal.Subject
	if c.Method() != fiber.MethodGet {
		if err := checkScope(rc.principal, write); err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-scim", error="insufficient_scope", scope="`+ScopeWrite+`"`)
			return err
		}
	}
	switch c.Method() {
	case fiber.MethodGet:
		_, r, err := s.loadUser(rc, id)
		if err != nil {
			return err
		}
		return s.writeResource(c, http.StatusOK, s.users, r)
	case fiber.MethodPut, fiber.MethodPatch:
		body, err := decodeBody(c)
		if err != nil {
			return err
		}
		var r map[string]any
		if c.Method() == fiber.MethodPut {
			r, err = s.replaceUser(rc, id, c.Get(fiber.HeaderIfMatch), body)
		} else {
			r, err = s.patchUser(rc, id, c.Get(fiber.HeaderIfMatch), body)
		}
		if err != nil {
			return err
		}
		return s.writeResource(c, http.StatusOK, s.users, r)
	case fiber.MethodDelete:
		if err := s.deleteUser(rc, id, c.Get(fiber.HeaderIfMatch)); err != nil {
			return err
		}
		return c.SendStatus(http.StatusNoContent)
	}
	return newErr(http.StatusMethodNotAllowed, "", "/Me takes GET, PUT, PATCH and DELETE")
}

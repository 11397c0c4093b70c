package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// PathPAR is the pushed authorization request endpoint (RFC 9126 section
// 2).
const PathPAR = "/oauth2/par"

// ActionPAR is recorded when a client pushes an authorization request
// (RFC 9126), or a push is refused.
const ActionPAR event.Action = "oauth.par"

// ClientSettingRequirePAR is the key in store.Client.Settings that, set to
// true, makes the authorization endpoint accept the client's requests only
// through a pushed request_uri (RFC 9126 section 6).
const ClientSettingRequirePAR = "require_pushed_authorization_requests"

const (
	// kindPAR is the store.Token kind of pushed authorization requests.
	kindPAR = "par"
	// parURNPrefix starts every request_uri this server issues (RFC 9126
	// section 2.2).
	parURNPrefix = "urn:ietf:params:oauth:request_uri:"
	// parLifetime is how long a request_uri may be used: long enough to
	// redirect the browser, short enough to be useless when leaked.
	parLifetime = 90 * time.Second
)

// notAuthParams are the parameters of a pushed request and the claims of
// a request object that are not authorization request parameters (client
// authentication, JWT registered claims): they are dropped.
var notAuthParams = map[string]bool{
	"client_secret": true, "client_assertion": true, "client_assertion_type": true,
	"iss": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "sub": true,
}

// parRecord is what a request_uri stands for.
type parRecord struct {
	Query url.Values `json:"query"`
}

// par serves the pushed authorization request endpoint (RFC 9126). The
// client authenticates as at the token endpoint (public clients with
// their client_id); the request is validated as the authorization
// endpoint would (client, redirect URI, response type, scopes, PKCE), any
// request object in it is verified and unpacked, and the result is stored
// behind a one-time request_uri.
func (p *Provider) par(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	info := &requestInfo{}
	ctx = withRequestInfo(ctx, info)
	r, form, err := formRequest(ctx, c)
	if err != nil {
		return p.writeError(c, err)
	}
	cl, err := p.authenticateClient(ctx, r, form)
	if err != nil {
		p.publish(c, t, "anonymous", ActionPAR, event.Ref("client", truncate(info.clientID, maxAuditID)), event.OutcomeFailure, map[string]any{"reason": info.reason})
		return p.writeError(c, err)
	}
	if form.Get("request_uri") != "" {
		return p.writeError(c, fosite.ErrInvalidRequest.WithHint("A pushed authorization request must not contain request_uri."))
	}
	q := url.Values{}
	for k, v := range form {
		if !notAuthParams[k] {
			q[k] = v
		}
	}
	if id := q.Get("client_id"); id != "" && id != cl.GetID() {
		return p.writeError(c, fosite.ErrInvalidRequest.WithHint("The client_id is not the authenticated client."))
	}
	q.Set("client_id", cl.GetID())
	if q.Get("request") != "" {
		if q, err = p.resolveRequestObject(ctx, t, q); err != nil {
			return p.writeError(c, err)
		}
	}
	if err := p.validateAuthorizeQuery(ctx, q); err != nil {
		return p.writeError(c, err)
	}
	id, err := secret.RandomToken(32)
	if err != nil {
		return p.writeError(c, err)
	}
	data, err := json.Marshal(parRecord{Query: q})
	if err != nil {
		return p.writeError(c, err)
	}
	now := time.Now().UTC()
	if err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kindPAR, Key: id, TenantID: t.id, ClientID: cl.GetID(), Active: true,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(parLifetime),
	}); err != nil {
		return p.writeError(c, fmt.Errorf("storing pushed request: %w: %w", errStorage, err))
	}
	p.publish(c, t, event.Ref("client", cl.GetID()), ActionPAR, "", event.OutcomeSuccess, map[string]any{"scope": q.Get("scope")})
	noStore(c)
	return c.Status(http.StatusCreated).JSON(fiber.Map{
		"request_uri": parURNPrefix + id,
		"expires_in":  int(parLifetime.Seconds()),
	})
}

// validateAuthorizeQuery checks q as the authorization endpoint will:
// fosite's checks of the client, redirect URI, response type, scopes and
// PKCE method, plus PKCE being present when the client needs it.
func (p *Provider) validateAuthorizeQuery(ctx context.Context, q url.Values) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/?"+q.Encode(), http.NoBody)
	if err != nil {
		return err
	}
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return err
	}
	return pkceRequired{}.HandleAuthorizeEndpointRequest(ctx, ar, nil)
}

// resolvePushed replaces an authorization request that names a
// request_uri by the pushed request it stands for (RFC 9126 section 4).
// The request_uri is used once; it must have been pushed by the client
// named by client_id, and not have expired. Request URIs of other forms
// (to be fetched from the client) are not supported.
func (p *Provider) resolvePushed(ctx context.Context, t tenantInfo, q url.Values) (url.Values, error) {
	uri := q.Get("request_uri")
	id, ok := strings.CutPrefix(uri, parURNPrefix)
	if !ok {
		return nil, fosite.ErrRequestURINotSupported.WithHint("Only request_uri values from the pushed authorization request endpoint are accepted.")
	}
	if q.Get("request") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("request and request_uri cannot be used together.")
	}
	if id == "" || len(id) > 64 {
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, used or expired.")
	}
	tok, err := p.d.Store.GetToken(ctx, t.id, kindPAR, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, used or expired.")
	case err != nil:
		return nil, fmt.Errorf("loading pushed request: %w: %w", errStorage, err)
	}
	if err := p.d.Store.DeleteToken(ctx, t.id, kindPAR, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Another request used it first.
			return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, used or expired.")
		}
		return nil, fmt.Errorf("using pushed request: %w: %w", errStorage, err)
	}
	if time.Now().After(tok.ExpiresAt) || tok.ClientID != q.Get("client_id") {
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, used or expired.")
	}
	var rec parRecord
	if err := json.Unmarshal(tok.Data, &rec); err != nil || rec.Query == nil {
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, used or expired.")
	}
	return rec.Query, nil
}

// resolveRequestObject replaces an authorization request carrying a
// request object (RFC 9101) by the parameters inside it. The object must
// be a JWS signed by one of the client's registered keys with an
// asymmetric algorithm (the client's request_object_signing_alg when set;
// never "none"); its "iss", when present, must be the client id, its
// "aud", when present, must include the issuer, exp and nbf are checked
// when present, and a "client_id" in it must match the request's. As RFC
// 9101 section 5 requires, only the parameters inside the object are used:
// those outside it, but client_id, are ignored.
func (p *Provider) resolveRequestObject(ctx context.Context, t tenantInfo, q url.Values) (url.Values, error) {
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("client_id is required with a request object.")
	}
	cl, err := p.storage.client(ctx, clientID)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return nil, fosite.ErrInvalidClient
	case err != nil:
		return nil, err
	}
	algs := pinnedAlgorithms(cl.requestObjectAlg)
	if len(algs) == 0 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The client's request_object_signing_alg is not supported.")
	}
	var reg josejwt.Claims
	params := map[string]any{}
	if err := p.verifyClientJWT(ctx, q.Get("request"), cl.keys, algs, &reg, &params); err != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not signed by the client with an allowed algorithm.")
	}
	if reg.Issuer != "" && reg.Issuer != clientID {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's iss is not the client.")
	}
	exp := josejwt.Expected{Time: time.Now()}
	if len(reg.Audience) > 0 {
		exp.AnyAudience = josejwt.Audience{t.issuer}
	}
	if err := reg.ValidateWithLeeway(exp, assertionLeeway); err != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's aud, exp or nbf is not valid.")
	}
	out, err := requestObjectParams(params)
	if err != nil {
		return nil, err
	}
	if id := out.Get("client_id"); id != "" && id != clientID {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's client_id does not match the request's.")
	}
	out.Set("client_id", clientID)
	return out, nil
}

// requestObjectParams turns a request object's claims into authorization
// request parameters: strings as they are, whole numbers (max_age) in
// decimal, booleans, arrays of strings as repeated parameters, and objects
// (the claims parameter) as JSON. Registered JWT claims are dropped; a
// nested request or request_uri is refused.
func requestObjectParams(claims map[string]any) (url.Values, error) {
	out := url.Values{}
	for k, v := range claims {
		if notAuthParams[k] {
			continue
		}
		if k == "request" || k == "request_uri" {
			return nil, fosite.ErrInvalidRequestObject.WithHint("A request object must not contain request or request_uri.")
		}
		switch x := v.(type) {
		case string:
			out.Set(k, x)
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %q is not an integer.", truncate(k, 64))
			}
			out.Set(k, strconv.FormatInt(int64(x), 10))
		case bool:
			out.Set(k, strconv.FormatBool(x))
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %q must be a list of strings.", truncate(k, 64))
				}
				out.Add(k, s)
			}
		case map[string]any:
			b, err := json.Marshal(x)
			if err != nil {
				return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %q is not valid.", truncate(k, 64))
			}
			out.Set(k, string(b))
		case nil:
		default:
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %q has an unsupported type.", truncate(k, 64))
		}
	}
	return out, nil
}

// resolveAuthorizeQuery unpacks an authorization request that names a
// pushed request_uri or carries a request object, and enforces a
// client's require_pushed_authorization_requests.
func (p *Provider) resolveAuthorizeQuery(ctx context.Context, t tenantInfo, q url.Values) (url.Values, error) {
	switch {
	case q.Get("request_uri") != "":
		return p.resolvePushed(ctx, t, q)
	case q.Get("client_id") == "":
		return q, nil
	}
	cl, err := p.storage.client(ctx, q.Get("client_id"))
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return q, nil // fosite answers for the unknown client
	case err != nil:
		return nil, err
	case cl.requirePAR:
		return nil, fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests (RFC 9126).")
	case q.Get("request") != "":
		return p.resolveRequestObject(ctx, t, q)
	}
	return q, nil
}

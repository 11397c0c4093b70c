package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchid/latch/kernel/store"
)

// Kinds of store.Token this package keeps. Keys are token signatures (the
// third part of a JWT), never tokens.
const (
	kindAccess       = "access"
	kindRefresh      = "refresh"
	kindCode         = "code"
	kindAssertionJTI = "client_assertion_jti"
	kindPKCE         = "pkce"
	kindOIDC         = "oidc"
)

// recordVersion is the version of record this build writes and reads.
const recordVersion = 1

// storage implements fosite's storage interfaces over the kernel store. The
// tenant of every call comes from the context (withTenant); a call without
// one fails. Lookups are by (tenant, kind, key), so a token of one tenant
// is not found through another.
type storage struct {
	st          Store
	maxLifetime time.Duration
	// dir caches clients per node.
	dir *Directory
}

// client returns the enabled client id of the context's tenant, or
// fosite.ErrNotFound.
func (s *storage) client(ctx context.Context, id string) (*client, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading client: %w", err)
	}
	if id == "" {
		return nil, fosite.ErrNotFound
	}
	cl, enabled, err := s.dir.client(ctx, t, id, s.maxLifetime, s.st.GetClientByClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fosite.ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("loading client: %w: %w", errStorage, err)
	case !enabled:
		return nil, fosite.ErrNotFound
	}
	return cl, nil
}

// GetClient returns an enabled client of the context's tenant
// (fosite.ClientManager).
func (s *storage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ClientAssertionJWTValid returns fosite.ErrJTIKnown when a client
// assertion's jti was already used (RFC 7523 section 3, item 7).
func (s *storage) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("checking client assertion: %w", err)
	}
	_, err = s.st.GetToken(ctx, t.id, kindAssertionJTI, jti)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("checking client assertion: %w: %w", errStorage, err)
	}
	return fosite.ErrJTIKnown
}

// SetClientAssertionJWT records a client assertion's jti until exp.
func (s *storage) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("recording client assertion: %w", err)
	}
	err = s.st.CreateToken(ctx, store.Token{Kind: kindAssertionJTI, Key: jti, TenantID: t.id, Active: true, ExpiresAt: exp})
	switch {
	case errors.Is(err, store.ErrConflict):
		return fosite.ErrJTIKnown
	case err != nil:
		return fmt.Errorf("recording client assertion: %w: %w", errStorage, err)
	}
	return nil
}

// CreateAuthorizeCodeSession stores the request behind an authorization
// code.
func (s *storage) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.create(ctx, kindCode, code, fosite.AuthorizeCode, req)
}

// GetAuthorizeCodeSession returns the request behind a code; for a used
// code it returns the request with fosite.ErrInvalidatedAuthorizeCode.
func (s *storage) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, kindCode, code, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession marks a code used.
func (s *storage) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	return s.deactivate(ctx, kindCode, code)
}

// CreateAccessTokenSession stores the request behind an access token under
// the token's signature.
func (s *storage) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.create(ctx, kindAccess, signature, fosite.AccessToken, req)
}

// GetAccessTokenSession returns the request behind an access token; for a
// revoked token it returns the request with fosite.ErrInactiveToken.
func (s *storage) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getActive(ctx, kindAccess, signature, session)
}

// DeleteAccessTokenSession removes an access token's record.
func (s *storage) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.delete(ctx, kindAccess, signature)
}

// CreateRefreshTokenSession stores the request behind a refresh token.
func (s *storage) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	return s.create(ctx, kindRefresh, signature, fosite.RefreshToken, req)
}

// GetRefreshTokenSession returns the request behind a refresh token; for a
// revoked token it returns the request with fosite.ErrInactiveToken.
func (s *storage) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getActive(ctx, kindRefresh, signature, session)
}

// DeleteRefreshTokenSession removes a refresh token's record.
func (s *storage) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.delete(ctx, kindRefresh, signature)
}

// RotateRefreshToken retires a used refresh token and the access tokens of
// its grant.
func (s *storage) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	if err := s.deactivate(ctx, kindRefresh, signature); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	return s.revoke(ctx, kindAccess, requestID)
}

// RevokeRefreshToken revokes the refresh tokens of a grant (RFC 7009
// section 2.1).
func (s *storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.revoke(ctx, kindRefresh, requestID)
}

// RevokeAccessToken revokes the access tokens of a grant (RFC 7009 section
// 2.1). Records stay, inactive, until they expire.
func (s *storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.revoke(ctx, kindAccess, requestID)
}

// CreatePKCERequestSession stores the PKCE challenge of a code.
func (s *storage) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.create(ctx, kindPKCE, signature, fosite.AuthorizeCode, req)
}

// GetPKCERequestSession returns the request holding a code's challenge.
func (s *storage) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.get(ctx, kindPKCE, signature, session)
	return req, err
}

// DeletePKCERequestSession removes a code's challenge once used.
func (s *storage) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.delete(ctx, kindPKCE, signature)
}

// CreateOpenIDConnectSession stores the OpenID Connect request of a code.
// fosite passes the code itself; it is stored under its hash.
func (s *storage) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.create(ctx, kindOIDC, codeKey(code), fosite.AuthorizeCode, req)
}

// GetOpenIDConnectSession returns the OpenID Connect request of a code.
func (s *storage) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	got, _, err := s.get(ctx, kindOIDC, codeKey(code), req.GetSession())
	return got, err
}

// DeleteOpenIDConnectSession removes the OpenID Connect request of a code.
func (s *storage) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.delete(ctx, kindOIDC, codeKey(code))
}

func (s *storage) create(ctx context.Context, kind, key string, tt fosite.TokenType, req fosite.Requester) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("storing %s token: %w", kind, err)
	}
	sess, ok := req.GetSession().(*session)
	if !ok {
		return fmt.Errorf("storing %s token: session of type %T is not a Latch session", kind, req.GetSession())
	}
	expires := sess.GetExpiresAt(tt)
	if expires.IsZero() {
		expires = time.Now().Add(s.maxLifetime)
	}
	data, err := json.Marshal(recordOf(req, sess))
	if err != nil {
		return fmt.Errorf("storing %s token: encoding record: %w", kind, err)
	}
	err = s.st.CreateToken(ctx, store.Token{
		Kind:      kind,
		Key:       key,
		TenantID:  t.id,
		RequestID: req.GetID(),
		ClientID:  req.GetClient().GetID(),
		Subject:   sess.Subject,
		Active:    true,
		Data:      data,
		CreatedAt: req.GetRequestedAt(),
		ExpiresAt: expires,
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("storing %s token: %w", kind, err)
		}
		return fmt.Errorf("storing %s token: %w: %w", kind, errStorage, err)
	}
	return nil
}

// getActive is get for tokens: an inactive one is returned with
// fosite.ErrInactiveToken, as fosite's revocation and introspection expect.
func (s *storage) getActive(ctx context.Context, kind, key string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, kind, key, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// get rebuilds the request behind a record. A record whose client is gone
// or disabled is not found: deleting or disabling a client ends its
// tokens.
func (s *storage) get(ctx context.Context, kind, key string, _ fosite.Session) (fosite.Requester, bool, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("loading %s token: %w", kind, err)
	}
	if key == "" {
		return nil, false, fosite.ErrNotFound
	}
	tok, err := s.st.GetToken(ctx, t.id, kind, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, fosite.ErrNotFound
	case err != nil:
		return nil, false, fmt.Errorf("loading %s token: %w: %w", kind, errStorage, err)
	}
	var rec record
	if err := json.Unmarshal(tok.Data, &rec); err != nil {
		return nil, false, fmt.Errorf("loading %s token: decoding record: %w", kind, err)
	}
	if rec.Version != recordVersion {
		return nil, false, fmt.Errorf("loading %s token: record version %d is not %d", kind, rec.Version, recordVersion)
	}
	cl, err := s.client(ctx, tok.ClientID)
	if err != nil {
		return nil, false, err
	}
	// The record is read into a fresh session, never into fs: fosite
	// passes the live session of the request being handled, whose token
	// expiries it has just set (the code grant reads the code again when it
	// issues the tokens), and fosite's own stores ignore it too.
	sess := newSession()
	rec.Session.fill(sess)
	rec.ID.fill(sess)
	form := rec.Form
	if form == nil {
		form = url.Values{}
	}
	return &fosite.Request{
		ID:                tok.RequestID,
		RequestedAt:       rec.RequestedAt,
		Client:            cl,
		RequestedScope:    nonNil(rec.RequestedScope),
		GrantedScope:      nonNil(rec.GrantedScope),
		RequestedAudience: nonNil(rec.RequestedAudience),
		GrantedAudience:   nonNil(rec.GrantedAudience),
		Form:              form,
		Session:           sess,
	}, tok.Active, nil
}

func (s *storage) deactivate(ctx context.Context, kind, key string) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("deactivating %s token: %w", kind, err)
	}
	err = s.st.DeactivateToken(ctx, t.id, kind, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fosite.ErrNotFound
	case err != nil:
		return fmt.Errorf("deactivating %s token: %w: %w", kind, errStorage, err)
	}
	return nil
}

func (s *storage) delete(ctx context.Context, kind, key string) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("deleting %s token: %w", kind, err)
	}
	err = s.st.DeleteToken(ctx, t.id, kind, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fosite.ErrNotFound
	case err != nil:
		return fmt.Errorf("deleting %s token: %w: %w", kind, errStorage, err)
	}
	return nil
}

func (s *storage) revoke(ctx context.Context, kind, requestID string) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return fmt.Errorf("revoking %s tokens: %w", kind, err)
	}
	if _, err := s.st.DeactivateByRequestID(ctx, t.id, kind, requestID); err != nil {
		return fmt.Errorf("revoking %s tokens: %w: %w", kind, errStorage, err)
	}
	return nil
}

// record is the JSON kept in store.Token.Data: what fosite needs to
// rebuild the request behind a token. The request id, client id and
// subject live in the token's columns. It never holds a secret: the form
// is fosite's sanitised copy, and client_secret is dropped again here.
type record struct {
	Version           int           `json:"v"`
	RequestedAt       time.Time     `json:"requested_at"`
	RequestedScope    []string      `json:"requested_scope,omitempty"`
	GrantedScope      []string      `json:"granted_scope,omitempty"`
	RequestedAudience []string      `json:"requested_audience,omitempty"`
	GrantedAudience   []string      `json:"granted_audience,omitempty"`
	Form              url.Values    `json:"form,omitempty"`
	Session           sessionRecord `json:"session"`
	// ID holds the ID token's claims of an OpenID Connect grant.
	ID *idRecord `json:"id,omitempty"`
}

// idRecord is the part of an ID token's claims that outlives the request:
// what the refresh grant needs to issue a new ID token for the same
// authentication.
type idRecord struct {
	Subject  string         `json:"sub,omitempty"`
	AuthTime time.Time      `json:"auth_time,omitzero"`
	ACR      string         `json:"acr,omitempty"`
	AMR      []string       `json:"amr,omitempty"`
	Nonce    string         `json:"nonce,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}

// sessionRecord is the part of a fosite JWT session that is stored.
type sessionRecord struct {
	Subject   string                         `json:"sub,omitempty"`
	Username  string                         `json:"username,omitempty"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`
	Claims    claimsRecord                   `json:"claims"`
	// CodeJKT is session.CodeJKT.
	CodeJKT string `json:"dpop_jkt,omitempty"`
	// Attributes is session.Attributes.
	Attributes map[string]any `json:"attrs,omitempty"`
}

// claimsRecord holds the claims of the JWT issued for the session.
type claimsRecord struct {
	JTI       string         `json:"jti,omitempty"`
	Issuer    string         `json:"iss,omitempty"`
	Subject   string         `json:"sub,omitempty"`
	Audience  []string       `json:"aud,omitempty"`
	IssuedAt  time.Time      `json:"iat,omitzero"`
	NotBefore time.Time      `json:"nbf,omitzero"`
	ExpiresAt time.Time      `json:"exp,omitzero"`
	Scope     []string       `json:"scope,omitempty"`
	Extra     map[string]any `json:"extra,omitempty"`
}

func recordOf(req fosite.Requester, sess *session) record {
	form := url.Values{}
	for k, v := range req.GetRequestForm() {
		if k != "client_secret" {
			form[k] = v
		}
	}
	rec := record{
		Version:           recordVersion,
		RequestedAt:       req.GetRequestedAt(),
		RequestedScope:    req.GetRequestedScopes(),
		GrantedScope:      req.GetGrantedScopes(),
		RequestedAudience: req.GetRequestedAudience(),
		GrantedAudience:   req.GetGrantedAudience(),
		Form:              form,
		Session: sessionRecord{
			Subject:   sess.Subject,
			Username:  sess.Username,
			ExpiresAt: sess.ExpiresAt,
			CodeJKT:   sess.CodeJKT,
			// Attributes: what UserInfo releases for this grant.
			Attributes: sess.Attributes,
		},
	}
	if c := sess.IDClaims; c != nil {
		rec.ID = &idRecord{
			Subject: c.Subject, AuthTime: c.AuthTime, ACR: c.AuthenticationContextClassReference,
			AMR: c.AuthenticationMethodsReferences, Nonce: c.Nonce, Extra: c.Extra,
		}
	}
	if c := sess.JWTClaims; c != nil {
		rec.Session.Claims = claimsRecord{
			JTI: c.JTI, Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
			IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, ExpiresAt: c.ExpiresAt,
			Scope: c.Scope, Extra: c.Extra,
		}
	}
	return rec
}

// fill copies the stored ID token claims into sess.
func (r *idRecord) fill(sess *session) {
	if r == nil {
		return
	}
	c := sess.IDTokenClaims()
	c.Subject, c.AuthTime, c.AuthenticationContextClassReference = r.Subject, r.AuthTime, r.ACR
	c.AuthenticationMethodsReferences, c.Nonce = r.AMR, r.Nonce
	if r.Extra != nil {
		c.Extra = r.Extra
	}
}

// fill copies the stored session into sess.
func (r sessionRecord) fill(sess *session) {
	sess.Subject = r.Subject
	sess.Username = r.Username
	sess.CodeJKT = r.CodeJKT
	sess.Attributes = r.Attributes
	sess.ExpiresAt = make(map[fosite.TokenType]time.Time, len(r.ExpiresAt))
	for k, v := range r.ExpiresAt {
		sess.ExpiresAt[k] = v
	}
	c := r.Claims
	sess.JWTClaims = &jwt.JWTClaims{
		JTI: c.JTI, Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, ExpiresAt: c.ExpiresAt,
		Scope: c.Scope, Extra: c.Extra, ScopeField: jwt.JWTScopeFieldString,
	}
	if sess.JWTClaims.Extra == nil {
		sess.JWTClaims.Extra = map[string]any{}
	}
}

func nonNil(s []string) fosite.Arguments {
	if s == nil {
		return fosite.Arguments{}
	}
	return s
}

var (
	_ fosite.Storage                     = (*storage)(nil)
	_ oauth2.CoreStorage                 = (*storage)(nil)
	_ oauth2.TokenRevocationStorage      = (*storage)(nil)
	_ pkce.PKCERequestStorage            = (*storage)(nil)
	_ openid.OpenIDConnectRequestStorage = (*storage)(nil)
)

package oauth

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"
)

// session is the fosite session of every request: the claims of the JWT
// access token (the embedded oauth2.JWTSession, used by the JWT strategy)
// and, for OpenID Connect requests, those of the ID token (openid.Session).
// One type serves both so that a token record rebuilt from the store can
// feed the access token strategy and the ID token strategy alike, as the
// refresh grant needs.
type session struct {
	oauth2.JWTSession
	// IDClaims are the ID token's claims; nil outside OpenID Connect.
	IDClaims *jwt.IDTokenClaims
	// IDHeaders are the ID token's JOSE headers.
	IDHeaders *jwt.Headers
	// CodeJKT is the dpop_jkt of the authorization request (RFC 9449
	// section 10): the code may only be exchanged with a DPoP proof of
	// that key.
	CodeJKT string
	// Attributes are the user attributes the login released from a
	// federated attribute step (login.Attributes), which UserInfo
	// releases instead of the account's; nil when the account's own are
	// released.
	Attributes map[string]any
}

// newSession returns an empty session for a request.
func newSession() *session {
	return &session{
		JWTSession: oauth2.JWTSession{
			JWTClaims: &jwt.JWTClaims{Extra: map[string]any{}},
			JWTHeader: &jwt.Headers{Extra: map[string]any{}},
			ExpiresAt: map[fosite.TokenType]time.Time{},
		},
	}
}

// IDTokenClaims returns the ID token's claims (openid.Session).
func (s *session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.IDClaims == nil {
		s.IDClaims = &jwt.IDTokenClaims{Extra: map[string]any{}}
	}
	return s.IDClaims
}

// IDTokenHeaders returns the ID token's headers (openid.Session). Their typ
// is "JWT", so that an ID token is never taken for an access token (RFC
// 9068 section 4).
func (s *session) IDTokenHeaders() *jwt.Headers {
	if s.IDHeaders == nil {
		s.IDHeaders = &jwt.Headers{Extra: map[string]any{}}
	}
	s.IDHeaders.Extra["typ"] = idTokenType
	return s.IDHeaders
}

// Clone returns a deep copy (fosite.Session).
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := &session{JWTSession: oauth2.JWTSession{
		Username:  s.Username,
		Subject:   s.Subject,
		ExpiresAt: maps.Clone(s.ExpiresAt),
	}, CodeJKT: s.CodeJKT, Attributes: maps.Clone(s.Attributes)}
	if s.JWTClaims != nil {
		cl := *s.JWTClaims
		cl.Audience = slices.Clone(cl.Audience)
		cl.Scope = slices.Clone(cl.Scope)
		cl.Extra = maps.Clone(cl.Extra)
		c.JWTClaims = &cl
	}
	if s.JWTHeader != nil {
		c.JWTHeader = &jwt.Headers{Extra: maps.Clone(s.JWTHeader.Extra)}
	}
	if s.IDClaims != nil {
		cl := *s.IDClaims
		cl.Audience = slices.Clone(cl.Audience)
		cl.AuthenticationMethodsReferences = slices.Clone(cl.AuthenticationMethodsReferences)
		cl.Extra = maps.Clone(cl.Extra)
		c.IDClaims = &cl
	}
	if s.IDHeaders != nil {
		c.IDHeaders = &jwt.Headers{Extra: maps.Clone(s.IDHeaders.Extra)}
	}
	return c
}

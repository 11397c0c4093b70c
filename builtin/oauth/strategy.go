package oauth

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// accessTokenStrategy is fosite's JWT strategy with a fresh identity per
// token: fosite copies the claims of the grant into every access token it
// issues for it, so a refreshed token would repeat the first one's jti and
// iat. RFC 9068 section 2.2 and RFC 7519 section 4.1.7 want a unique jti.
// Authorization codes and refresh tokens stay opaque HMAC tokens (the
// embedded strategy's HMACSHAStrategy).
type accessTokenStrategy struct {
	*oauth2.DefaultJWTStrategy
}

// GenerateAccessToken issues an access token with a new jti and iat: a
// JWT, or for a client whose access_token_format is "opaque" an opaque
// HMAC token whose claims live only in the token record, for
// introspection (RFC 7662) to tell.
func (s *accessTokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	sess, ok := r.GetSession().(*session)
	if ok && sess.JWTClaims != nil {
		sess.JWTClaims.JTI = uuid.NewString()
		sess.JWTClaims.IssuedAt = time.Time{}
		sess.JWTClaims.NotBefore = time.Time{}
	}
	if cl, isClient := r.GetClient().(*client); isClient && cl.opaqueTokens {
		if ok && sess.JWTClaims != nil {
			// The claims a JWT would carry, kept in the record.
			sess.JWTClaims.With(sess.GetExpiresAt(fosite.AccessToken), r.GetGrantedScopes(), r.GetGrantedAudience()).
				WithDefaults(time.Now().UTC(), s.Config.GetAccessTokenIssuer(ctx))
		}
		return s.HMACSHAStrategy.GenerateAccessToken(ctx, r)
	}
	return s.DefaultJWTStrategy.GenerateAccessToken(ctx, r)
}

// isJWT tells a JWT access token (three dot-separated parts) from an
// opaque one (two).
func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

// AccessTokenSignature returns the key of an access token's record: the
// JWS signature of a JWT, the HMAC of an opaque token.
func (s *accessTokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		return s.DefaultJWTStrategy.AccessTokenSignature(ctx, token)
	}
	return s.HMACSHAStrategy.AccessTokenSignature(ctx, token)
}

// ValidateAccessToken checks a JWT's signature and claims, or an opaque
// token's HMAC and its record's expiry.
func (s *accessTokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if isJWT(token) {
		return s.DefaultJWTStrategy.ValidateAccessToken(ctx, r, token)
	}
	return s.HMACSHAStrategy.ValidateAccessToken(ctx, r, token)
}

// pkceRequired refuses an authorization request without a PKCE challenge
// from a client that must send one: every public client, and every
// confidential client whose require_pkce setting is not false. It runs
// before the code handler; fosite's PKCE handler then checks the method
// (S256 only) and, at the token endpoint, the verifier.
type pkceRequired struct{}

// HandleAuthorizeEndpointRequest implements fosite.AuthorizeEndpointHandler.
func (pkceRequired) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	cl, ok := ar.GetClient().(*client)
	if !ok || !cl.requirePKCE {
		return nil
	}
	if ar.GetRequestForm().Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("This client must send a PKCE code_challenge (RFC 7636) with code_challenge_method=S256.")
	}
	return nil
}

var _ fosite.AuthorizeEndpointHandler = pkceRequired{}

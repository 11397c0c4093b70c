package oauth

import (
	"context"
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

// GenerateAccessToken issues a JWT access token with a new jti and iat.
func (s *accessTokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if sess, ok := r.GetSession().(*session); ok && sess.JWTClaims != nil {
		sess.JWTClaims.JTI = uuid.NewString()
		sess.JWTClaims.IssuedAt = time.Time{}
		sess.JWTClaims.NotBefore = time.Time{}
	}
	return s.DefaultJWTStrategy.GenerateAccessToken(ctx, r)
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

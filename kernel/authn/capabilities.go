package authn

import (
	"context"
	"time"
)

// Identifier is implemented by authenticators that only find out who the
// user claims to be (identifier-first login): they answer authenticated
// with the claimed subject, but prove nothing. When IdentifiesOnly reports
// true, a login flow keeps the subject as a hint for the steps that
// follow (routing, a pre-filled username), never as the flow's known
// subject, so a later second factor or enrolment cannot be reached by
// typing someone else's name.
type Identifier interface {
	IdentifiesOnly() bool
}

// Preference is the key in AuthenticateResponse.Claims under which an
// Identifier names the authenticator instance the next step should start
// with (a federated login for the user's email domain, for instance). A
// login flow honours it only when the next step offers that instance.
const Preference = "latch:prefer_authenticator"

// Enrolment is implemented by authenticators that keep credentials per
// user (passkeys, TOTP secrets): Enrolled reports whether the user has
// one. A login flow that knows who the user claims to be starts a step
// with the first offered authenticator the user is enrolled with.
// tenant is the tenant's name, as in AuthenticateRequest.
type Enrolment interface {
	Enrolled(ctx context.Context, tenant, subject string) (bool, error)
}

// Credential describes one credential a user registered with an
// authenticator, as administrators see it. It holds nothing secret.
type Credential struct {
	// ID identifies the credential within its authenticator instance.
	ID string `json:"id"`
	// Authenticator is the instance name.
	Authenticator string `json:"authenticator"`
	// Type says what it is ("webauthn").
	Type string `json:"type"`
	// Nickname is the user's name for it.
	Nickname   string    `json:"nickname,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Details holds type-specific, non-secret attributes (a passkey's
	// AAGUID, transports, backup flags, signature counter).
	Details map[string]any `json:"details,omitempty"`
}

// CredentialManager is implemented by authenticators whose users'
// credentials administrators may list and revoke. tenant is the tenant's
// name; subject the user's id. DeleteCredential returns an error matching
// store.ErrNotFound when the user has no such credential.
type CredentialManager interface {
	ListCredentials(ctx context.Context, tenant, subject string) ([]Credential, error)
	DeleteCredential(ctx context.Context, tenant, subject, id string) error
}

package store

import (
	"context"
	"time"
)

// WebAuthnCredential is a public-key credential (a passkey or a security
// key) a user registered with an authn.webauthn instance (W3C Web
// Authentication Level 3, §4 "public key credential source" as the relying
// party keeps it). Nothing in it is secret: the private key never leaves
// the authenticator.
type WebAuthnCredential struct {
	TenantID string
	// UserID is the local user the credential signs in.
	UserID string
	// ID is the credential id, base64url without padding, 1..1366
	// characters (the 1023-byte limit of §5.1.2). It is unique per tenant.
	ID string
	// Authenticator names the authn.webauthn instance that registered it.
	Authenticator string
	// PublicKey is the COSE-encoded public key.
	PublicKey []byte
	// AttestationType and AttestationFormat describe the attestation the
	// authenticator gave at registration ("none", "self", "basic";
	// "packed", "tpm", ...).
	AttestationType   string
	AttestationFormat string
	// AAGUID names the authenticator model, as a UUID string; the nil
	// UUID when the authenticator did not say.
	AAGUID string
	// SignCount is the last signature counter seen (§6.1.1); 0 for
	// authenticators that keep none.
	SignCount uint32
	// CloneWarning is set when a counter went backwards: the credential
	// may have been cloned.
	CloneWarning bool
	// Transports are the hints the browser gave ("internal", "usb",
	// "hybrid", ...).
	Transports []string
	// Attachment is "platform" or "cross-platform" when the browser said.
	Attachment string
	// UserVerified records whether user verification was done at
	// registration; BackupEligible and BackupState are the BE and BS
	// flags (§6.1): a synced passkey is eligible.
	UserVerified   bool
	BackupEligible bool
	BackupState    bool
	// Discoverable is set when the credential is a client-side
	// discoverable credential (a resident key), usable without a
	// username.
	Discoverable bool
	// Nickname is the user's name for it, at most 64 characters.
	Nickname   string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// WebAuthnUse is what a successful assertion changes on a credential.
type WebAuthnUse struct {
	SignCount    uint32
	CloneWarning bool
	BackupState  bool
	UsedAt       time.Time
}

// WebAuthnCredentials stores WebAuthn credentials, unique per (tenant,
// credential id). Deleting a user deletes its credentials.
type WebAuthnCredentials interface {
	// CreateWebAuthnCredential records c. It is ErrConflict when the
	// credential id is already registered in the tenant, ErrNotFound when
	// the user does not exist. CreatedAt defaults to now.
	CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential) (WebAuthnCredential, error)
	// GetWebAuthnCredential returns a credential by id.
	GetWebAuthnCredential(ctx context.Context, tenantID, id string) (WebAuthnCredential, error)
	// ListWebAuthnCredentials lists a user's credentials, oldest first.
	ListWebAuthnCredentials(ctx context.Context, tenantID, userID string) ([]WebAuthnCredential, error)
	// UseWebAuthnCredential records a successful assertion.
	UseWebAuthnCredential(ctx context.Context, tenantID, id string, u WebAuthnUse) error
	// DeleteWebAuthnCredential removes a user's credential; ErrNotFound
	// when the user has no credential with that id.
	DeleteWebAuthnCredential(ctx context.Context, tenantID, userID, id string) error
}

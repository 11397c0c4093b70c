package federation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Token kinds of the single-use records of a round trip.
const (
	kindPending = "federation_pending"
	kindResult  = "federation_result"
)

// PendingTTL is how long a user has at the upstream provider; ResultTTL
// how long the browser has to come back to the login flow afterwards.
const (
	PendingTTL = 10 * time.Minute
	ResultTTL  = 2 * time.Minute
)

// Pending is a round trip to the upstream provider in progress.
type Pending struct {
	// Instance is the authenticator instance; FlowID the login flow it
	// runs in; Return where the browser goes back to (the step's
	// callback URL).
	Instance string `json:"instance"`
	FlowID   string `json:"flow_id"`
	Return   string `json:"return"`
	// KnownSubject is the user an earlier step of the flow signed in:
	// the federated identity is linked to them.
	KnownSubject string `json:"known_subject,omitempty"`
	// Nonce and Verifier are the OpenID Connect nonce and the PKCE code
	// verifier; RequestID the SAML AuthnRequest id.
	Nonce     string `json:"nonce,omitempty"`
	Verifier  string `json:"verifier,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Result is a verified, resolved upstream answer waiting for its flow.
type Result struct {
	FlowID   string         `json:"flow_id"`
	Instance string         `json:"instance"`
	UserID   string         `json:"user_id"`
	Username string         `json:"username,omitempty"`
	Issuer   string         `json:"issuer"`
	Subject  string         `json:"subject"`
	Claims   map[string]any `json:"claims,omitempty"`
	AMR      []string       `json:"amr,omitempty"`
	Created  bool           `json:"created,omitempty"`
	Linked   bool           `json:"linked,omitempty"`
}

// NewKey returns a random key for a pending record (an OAuth state), 256
// bits in base64url.
func NewKey() (string, error) { return secret.RandomToken(32) }

// storeKey is the record key of a round trip's key: its hash, so that a
// copy of the tokens table cannot be replayed at the endpoint.
func storeKey(key string) string {
	sum := sha256.Sum256([]byte("latch/federation/" + key))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SavePending stores p under key for PendingTTL.
func SavePending(ctx context.Context, st store.Tokens, tenantID, key string, p Pending) error {
	return put(ctx, st, tenantID, kindPending, key, p, PendingTTL)
}

// TakePending returns and deletes the pending record of key. It is
// store.ErrNotFound when there is none (unknown, expired, or taken
// already: a replay).
func TakePending(ctx context.Context, st store.Tokens, tenantID, key string) (Pending, error) {
	var p Pending
	err := take(ctx, st, tenantID, kindPending, key, &p)
	return p, err
}

// SaveResult stores r under key for ResultTTL.
func SaveResult(ctx context.Context, st store.Tokens, tenantID, key string, r Result) error {
	return put(ctx, st, tenantID, kindResult, key, r, ResultTTL)
}

// TakeResult returns and deletes the result of key, as TakePending.
func TakeResult(ctx context.Context, st store.Tokens, tenantID, key string) (Result, error) {
	var r Result
	err := take(ctx, st, tenantID, kindResult, key, &r)
	return r, err
}

func put(ctx context.Context, st store.Tokens, tenantID, kind, key string, v any, ttl time.Duration) error {
	if key == "" {
		return fmt.Errorf("saving %s: empty key", kind)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", kind, err)
	}
	now := time.Now()
	if err := st.CreateToken(ctx, store.Token{
		Kind: kind, Key: storeKey(key), TenantID: tenantID, Active: true,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}); err != nil {
		return fmt.Errorf("saving %s: %w", kind, err)
	}
	return nil
}

func take(ctx context.Context, st store.Tokens, tenantID, kind, key string, v any) error {
	if key == "" || len(key) > 512 {
		return store.ErrNotFound
	}
	k := storeKey(key)
	tok, err := st.GetToken(ctx, tenantID, kind, k)
	if err != nil {
		return err
	}
	// Deleting decides who took it: of two concurrent takers, one
	// deletes and the other finds nothing.
	if err := st.DeleteToken(ctx, tenantID, kind, k); err != nil {
		return err
	}
	if err := json.Unmarshal(tok.Data, v); err != nil {
		return fmt.Errorf("decoding %s: %w", kind, errors.Join(store.ErrNotFound, err))
	}
	return nil
}

package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// client_secret_jwt (OpenID Connect Core 1.0 section 9, RFC 7523 section
// 2.2 with an HMAC): the client MACs its assertion with its secret, so the
// server needs the secret itself, not only its hash. Latch keeps a copy
// sealed under a key derived from the master key (Deps.ClientSecretKey),
// for the clients registered with this method only; every other client's
// secret exists as a SHA-256 hash alone.
const (
	// kindSealedSecret is the store.Token kind, keyed by client_id, of the
	// sealed secret of a client_secret_jwt client.
	kindSealedSecret = "client_secret_sealed"
	// sealedSecretLifetime is the record's expiry: it lives as long as the
	// client does, and is replaced when the secret is.
	sealedSecretLifetime = 100 * 365 * 24 * time.Hour
)

// secretJWTAlgorithms are the JWS algorithms of client_secret_jwt
// assertions.
var secretJWTAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// secretAD is the associated data a client's secret is sealed with, so a
// sealed value copied to another client or tenant does not open.
func secretAD(tenantID, clientID string) []byte {
	return []byte("latch/oauth/client-secret/v1\x00" + tenantID + "\x00" + clientID)
}

// StoreClientSecret is told a client's new secret in clear, when the admin
// API creates the client or rotates its secret. For a client that
// authenticates with client_secret_jwt it keeps a sealed copy; for any
// other client it removes a copy left from an earlier method. A client
// switched to client_secret_jwt later needs its secret rotated.
func (p *Provider) StoreClientSecret(ctx context.Context, c store.Client, plain string) error {
	if p.secretBox == nil {
		return nil
	}
	if err := p.d.Store.DeleteToken(ctx, c.TenantID, kindSealedSecret, c.ClientID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("replacing the sealed client secret: %w", err)
	}
	if c.TokenEndpointAuthMethod != authMethodSecretJWT || plain == "" || c.Public {
		return nil
	}
	sealed, err := p.secretBox.Seal([]byte(plain), secretAD(c.TenantID, c.ClientID))
	if err != nil {
		return fmt.Errorf("sealing the client secret: %w", err)
	}
	now := time.Now().UTC()
	if err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kindSealedSecret, Key: c.ClientID, TenantID: c.TenantID, ClientID: c.ClientID, Active: true,
		Data: sealed, CreatedAt: now, ExpiresAt: now.Add(sealedSecretLifetime),
	}); err != nil {
		return fmt.Errorf("storing the sealed client secret: %w", err)
	}
	return nil
}

// clientSecret opens the sealed secret of a client_secret_jwt client and
// checks it against the client's current secret hash, so a copy left from
// before a rotation is never used.
func (p *Provider) clientSecret(ctx context.Context, t tenantInfo, cl *client) ([]byte, error) {
	if p.secretBox == nil {
		return nil, errors.New("client_secret_jwt is not enabled on this node")
	}
	tok, err := p.d.Store.GetToken(ctx, t.id, kindSealedSecret, cl.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errors.New("no sealed secret: rotate the client's secret")
	case err != nil:
		return nil, fmt.Errorf("loading the sealed client secret: %w: %w", errStorage, err)
	}
	plain, err := p.secretBox.Open(tok.Data, secretAD(t.id, cl.id))
	if err != nil {
		return nil, fmt.Errorf("opening the sealed client secret: %w", err)
	}
	if !secret.VerifyClientSecret(string(plain), cl.secretHash) {
		return nil, errors.New("the sealed secret is not the client's current one: rotate the client's secret")
	}
	return plain, nil
}

// verifySecretJWT checks a client_secret_jwt assertion's MAC with the
// client's secret and decodes its claims.
func (p *Provider) verifySecretJWT(ctx context.Context, t tenantInfo, cl *client, raw string, dest *assertionClaims) error {
	algs := secretJWTAlgorithms
	if cl.authSigningAlg != "" {
		if !slices.Contains(secretJWTAlgorithms, jose.SignatureAlgorithm(cl.authSigningAlg)) {
			return errors.New("the client's token_endpoint_auth_signing_alg is not an HMAC algorithm")
		}
		algs = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(cl.authSigningAlg)}
	}
	tok, err := josejwt.ParseSigned(raw, algs)
	if err != nil {
		return fmt.Errorf("parsing JWT: %w", err)
	}
	if len(tok.Headers) != 1 {
		return errors.New("the JWT must have exactly one signature")
	}
	key, err := p.clientSecret(ctx, t, cl)
	if err != nil {
		return err
	}
	if err := tok.Claims(key, dest); err != nil {
		return errors.New("the MAC does not verify with the client's secret")
	}
	return nil
}

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
)

// KeySigner gives the signer of a tenant's active key (kernel/keys.Manager
// implements it).
type KeySigner interface {
	Signer(ctx context.Context, tenantID, alg string) (*keys.Signer, error)
}

// backendSigner issues the backend JWTs: the caller's claims mapped from
// the issuer's dialect to the local one and on to the backend JWT dialect by
// the tenant's claim mappers, signed with Latch's key of the default tenant
// (published at its JWKS endpoint). A JWT is cached per caller token and API
// until shortly before it expires.
type backendSigner struct {
	keys      KeySigner
	tenant    string // tenant id
	tenantNm  string // tenant name, for the mappers
	publicURL string
	mappers   func() []*extension.Instance

	mu    sync.Mutex
	cache map[bjwtKey]bjwtEntry
}

type bjwtKey struct{ api, token string }

type bjwtEntry struct {
	jwt     string
	refresh time.Time
}

// maxBackendJWTs bounds the cache; at the bound it is emptied of expired
// entries, then cleared.
const maxBackendJWTs = 100_000

// registered claims of the caller's token that the backend JWT sets itself.
var ownClaims = []string{"iss", "aud", "exp", "nbf", "iat", "jti"}

func (b *backendSigner) token(ctx context.Context, api *apiRT, p *principal, now time.Time) (string, error) {
	k := bjwtKey{api.cfg.Name, p.raw}
	b.mu.Lock()
	e, ok := b.cache[k]
	b.mu.Unlock()
	if ok && now.Before(e.refresh) {
		return e.jwt, nil
	}
	cfg := api.cfg.BackendJWT
	cl := maps.Clone(p.claims)
	for _, c := range ownClaims {
		delete(cl, c)
	}
	cl, err := b.mapClaims(ctx, p.issuer.cfg.Issuer, p.subject, cl)
	if err != nil {
		return "", err
	}
	if len(cfg.Claims) > 0 {
		kept := make(map[string]any, len(cfg.Claims)+6)
		for _, c := range cfg.Claims {
			if v, ok := cl[c]; ok {
				kept[c] = v
			}
		}
		cl = kept
	}
	exp := now.Add(cfg.Lifetime)
	if p.expiry.Before(exp) {
		exp = p.expiry
	}
	iss := cfg.Issuer
	if iss == "" {
		iss = b.publicURL
	}
	cl["iss"], cl["aud"], cl["iat"], cl["exp"] = iss, cfg.Audience, now.Unix(), exp.Unix()
	if _, ok := cl["sub"]; !ok && p.subject != "" {
		cl["sub"] = p.subject
	}
	if p.clientID != "" {
		cl["client_id"] = p.clientID
	}
	payload, err := json.Marshal(cl)
	if err != nil {
		return "", fmt.Errorf("encoding backend JWT claims: %w", err)
	}
	s, err := b.keys.Signer(ctx, b.tenant, cfg.Algorithm)
	if err != nil {
		return "", fmt.Errorf("signing backend JWT: %w", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing backend JWT: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("serializing backend JWT: %w", err)
	}
	// Reuse it until a fifth of its life (at most 30s) is left.
	margin := min(30*time.Second, exp.Sub(now)/5)
	b.mu.Lock()
	if len(b.cache) >= maxBackendJWTs {
		for key, e := range b.cache {
			if !now.Before(e.refresh) {
				delete(b.cache, key)
			}
		}
		if len(b.cache) >= maxBackendJWTs {
			clear(b.cache)
		}
	}
	b.cache[k] = bjwtEntry{jwt: out, refresh: exp.Add(-margin)}
	b.mu.Unlock()
	return out, nil
}

// mapClaims runs the tenant's claim mappers, remote -> local then local ->
// backend_jwt.
func (b *backendSigner) mapClaims(ctx context.Context, issuer, subject string, cl map[string]any) (map[string]any, error) {
	if b.mappers == nil {
		return cl, nil
	}
	chain := b.mappers()
	for _, step := range [][2]string{{abi.DialectRemote, abi.DialectLocal}, {abi.DialectLocal, abi.DialectBackendJWT}} {
		for _, inst := range chain {
			m, ok := extension.As[claims.Mapper](inst)
			if !ok {
				continue
			}
			req := abi.MapRequest{Tenant: b.tenantNm, From: step[0], To: step[1], Issuer: issuer, Subject: subject, Claims: cl}
			err := extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
				out, err := claims.Check(m.Map(ctx, req))
				if err == nil {
					cl = out
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("mapping claims for the backend JWT: %w", err)
			}
		}
	}
	return cl, nil
}

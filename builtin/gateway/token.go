package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxTokenBytes bounds a bearer token; longer ones are refused before
// parsing.
const maxTokenBytes = 16 << 10

// principal is a validated caller.
type principal struct {
	issuer   *issuerRT
	subject  string
	clientID string
	scopes   []string
	audience jwt.Audience
	claims   map[string]any
	expiry   time.Time
	raw      string
}

// issuerRT is a trusted issuer at run time.
type issuerRT struct {
	cfg  IssuerConfig
	algs []jose.SignatureAlgorithm
	keys *jwksCache
}

// tokenError is a refused token: the reason goes to the client in the
// WWW-Authenticate header (RFC 6750 section 3) and the JSON body.
type tokenError struct {
	reason string
	// unavailable means the issuer's keys could not be had.
	unavailable bool
	issuer      *issuerRT
}

func (e *tokenError) Error() string { return e.reason }

func refuse(format string, args ...any) *tokenError {
	return &tokenError{reason: fmt.Sprintf(format, args...)}
}

// validator checks JWTs against the configured issuers.
type validator struct {
	byIss         map[string]*issuerRT
	allAlgs       []jose.SignatureAlgorithm
	cache         *tokenCache
	introspectors []*introspector
}

// validate checks raw's signature against its issuer's keys and its time
// claims. The audience, the issuer's admission for the route and the scopes
// are the caller's to check: they differ per route, while this verdict is
// cached per token.
func (v *validator) validate(ctx context.Context, raw string, now time.Time) (*principal, *tokenError) {
	if p := v.cache.get(raw, now); p != nil {
		return p, nil
	}
	if len(raw) > maxTokenBytes {
		return nil, refuse("the token is longer than %d bytes", maxTokenBytes)
	}
	if strings.Count(raw, ".") != 2 {
		if len(v.introspectors) > 0 {
			return v.introspect(ctx, raw, now)
		}
		return nil, refuse("the token is not a JWT in compact form")
	}
	// ParseSigned refuses "none" and every algorithm no issuer pins
	// (HS256 among them) before any key is looked at.
	tok, err := jwt.ParseSigned(raw, v.allAlgs)
	if err != nil {
		return nil, refuse("malformed or unaccepted token: %s", jwtReason(err))
	}
	if len(tok.Headers) != 1 {
		return nil, refuse("the token must have exactly one signature")
	}
	h := tok.Headers[0]
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, refuse("malformed token claims")
	}
	is := v.byIss[unverified.Issuer]
	if is == nil {
		return nil, refuse("the token's issuer is not trusted")
	}
	if is.keys == nil {
		return nil, refuse("the token's issuer accepts only opaque tokens")
	}
	if !slices.Contains(is.algs, jose.SignatureAlgorithm(h.Algorithm)) {
		return nil, refuse("algorithm %s is not accepted for this issuer", h.Algorithm)
	}
	if h.KeyID == "" {
		return nil, refuse("the token has no kid")
	}
	key, err := is.keys.key(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrKeysUnavailable) {
			return nil, &tokenError{reason: "the issuer's keys are unavailable", unavailable: true, issuer: is}
		}
		return nil, refuse("the token's signing key is unknown")
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, refuse("the token's algorithm does not match its key")
	}
	var (
		std jwt.Claims
		all map[string]any
	)
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		return nil, refuse("the token's signature is invalid")
	}
	if std.Expiry == nil {
		return nil, refuse("the token has no exp")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: is.cfg.Issuer, Time: now}, is.cfg.ClockSkew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, refuse("the token is expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, refuse("the token is not valid yet")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, refuse("the token was issued in the future")
	case err != nil:
		return nil, refuse("the token's claims are invalid")
	}
	p := &principal{
		issuer: is, subject: std.Subject, audience: std.Audience, claims: all,
		expiry: std.Expiry.Time().Add(is.cfg.ClockSkew), raw: raw,
		scopes: scopesOf(all), clientID: clientIDOf(all, is.cfg.ClientIDClaim),
	}
	v.cache.put(raw, p, now)
	return p, nil
}

// jwtReason says briefly why go-jose refused a token, without echoing it.
func jwtReason(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "unexpected signature algorithm"):
		return "the algorithm is not accepted"
	case strings.Contains(s, "compact JWS format must have three parts"):
		return "not a compact JWS"
	default:
		return "cannot be parsed"
	}
}

// scopesOf reads the "scope" claim (a space-separated string, RFC 8693
// section 4.2) or "scp" (a list or a string).
func scopesOf(c map[string]any) []string {
	for _, name := range []string{"scope", "scp"} {
		switch v := c[name].(type) {
		case string:
			return strings.Fields(v)
		case []any:
			out := make([]string, 0, len(v))
			for _, s := range v {
				if s, ok := s.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return nil
}

// clientIDOf reads the calling client's id: the configured claim, else
// client_id (RFC 9068 section 2.2), else azp.
func clientIDOf(c map[string]any, claim string) string {
	names := []string{"client_id", "azp"}
	if claim != "" {
		names = []string{claim}
	}
	for _, n := range names {
		if s, ok := c[n].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// tokenCache remembers validated tokens until shortly before they expire,
// so that a client's repeated calls cost one map lookup rather than a
// signature check. It holds at most maxEntries tokens; a full shard is
// emptied of expired entries, then of an arbitrary one.
type tokenCache struct {
	ttl    time.Duration
	seed   maphash.Seed
	shards [16]tokenShard
	per    int
}

type tokenShard struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	p     *principal
	until time.Time
}

func newTokenCache(ttl time.Duration, maxEntries int) *tokenCache {
	c := &tokenCache{ttl: ttl, seed: maphash.MakeSeed(), per: max(1, maxEntries/16)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(raw string) *tokenShard {
	return &c.shards[maphash.String(c.seed, raw)%uint64(len(c.shards))]
}

func (c *tokenCache) get(raw string, now time.Time) *principal {
	if c == nil || c.ttl <= 0 {
		return nil
	}
	s := c.shard(raw)
	s.mu.RLock()
	e, ok := s.m[raw]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.p
}

func (c *tokenCache) put(raw string, p *principal, now time.Time) {
	if c == nil || c.ttl <= 0 {
		return
	}
	until := now.Add(c.ttl)
	if p.expiry.Before(until) {
		until = p.expiry
	}
	s := c.shard(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.per {
		for k, e := range s.m {
			if !now.Before(e.until) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.per {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[raw] = cachedToken{p: p, until: until}
}

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

const (
	// maxJWKSBytes bounds a fetched JWK Set.
	maxJWKSBytes = 1 << 20
	// noKeysRefetch is the least time between fetches while an issuer's
	// keys were never had.
	noKeysRefetch = 250 * time.Millisecond
)

// Errors of key lookup.
var (
	// ErrKeysUnavailable means an issuer's keys were never fetched.
	ErrKeysUnavailable = errors.New("issuer keys unavailable")
	// ErrUnknownKey means no key of the issuer has the token's kid.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrForbiddenAddress is the SSRF guard refusing an address (the
	// shared guard's error, so errors.Is matches either).
	ErrForbiddenAddress = safehttp.ErrForbiddenAddress
)

// keySet is one fetched JWK Set, immutable.
type keySet struct {
	byKid   map[string]jose.JSONWebKey
	fetched time.Time
}

// jwksCache keeps one issuer's keys: fetched at start, again after the TTL
// and when a token names an unknown kid (at most once per minRefetch). A
// failed fetch keeps the last good keys.
//
// Why by hand: go-jose parses the keys; what is left is sixty lines of
// caching whose policy is the point (refetch rate, last good keys, fail
// modes, the SSRF-guarded client), which JWKS caching packages either fix
// differently or hide behind their own HTTP client.
type jwksCache struct {
	uri        string
	ttl        time.Duration
	minRefetch time.Duration
	client     *http.Client
	log        *slog.Logger
	m          *metrics
	issuer     string

	keys atomic.Pointer[keySet]

	mu        sync.Mutex // serializes fetches
	lastFetch time.Time
	lastErr   error
}

func newJWKSCache(is IssuerConfig, log *slog.Logger, m *metrics) *jwksCache {
	return &jwksCache{
		uri: is.JWKSURI, ttl: is.JWKSTTL, minRefetch: is.JWKSMinRefetch,
		client: safeClient(is.AllowPrivateNetwork), log: log, m: m, issuer: is.Name,
	}
}

// key returns the key with kid, fetching when the keys are stale or the kid
// is unknown.
func (c *jwksCache) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	ks := c.keys.Load()
	if ks != nil {
		if k, ok := ks.byKid[kid]; ok {
			if time.Since(ks.fetched) > c.ttl {
				c.refreshAsync()
			}
			return k, nil
		}
	}
	// Unknown kid (a rotation at the issuer) or no keys yet.
	ks, err := c.refresh(ctx, false)
	if ks == nil {
		if err == nil {
			err = errors.New("no fetch yet")
		}
		return jose.JSONWebKey{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	if k, ok := ks.byKid[kid]; ok {
		return k, nil
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// refreshAsync fetches in the background (the TTL ran out while the keys
// still serve).
func (c *jwksCache) refreshAsync() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.refresh(ctx, false)
	}()
}

// refresh fetches the set unless a fetch happened less than minRefetch ago
// (force skips that check, for the start). It returns the current keys
// (the last good ones when the fetch fails) and the fetch error.
func (c *jwksCache) refresh(ctx context.Context, force bool) (*keySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.minRefetch
	if c.keys.Load() == nil {
		// No keys yet (the issuer was down at start, or it is this very
		// node, whose listener opens after the gateway is built): try
		// again sooner, still at a bounded rate.
		limit = min(limit, noKeysRefetch)
	}
	if !force && time.Since(c.lastFetch) < limit {
		return c.keys.Load(), c.lastErr
	}
	c.lastFetch = time.Now()
	ks, err := c.fetch(ctx)
	c.lastErr = err
	if err != nil {
		c.m.jwksFetches.WithLabelValues(c.issuer, "error").Inc()
		c.log.WarnContext(ctx, "fetching issuer keys failed; keeping the last good keys", "issuer", c.issuer, "jwks_uri", c.uri, "err", err)
		return c.keys.Load(), err
	}
	c.m.jwksFetches.WithLabelValues(c.issuer, "ok").Inc()
	c.keys.Store(ks)
	return ks, nil
}

func (c *jwksCache) fetch(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.uri, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", c.uri, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", c.uri, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: status %d", c.uri, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.uri, err)
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("reading %s: larger than %d bytes", c.uri, maxJWKSBytes)
	}
	return parseJWKS(b)
}

// parseJWKS parses a JWK Set (RFC 7517 section 5), keeping the public
// signing keys that have a kid. Private and symmetric keys are refused: a
// JWKS that publishes one is misconfigured, and an "oct" key would let a
// token be signed with HS256 by anyone who reads the set.
func parseJWKS(b []byte) (*keySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parsing JWK set: %w", err)
	}
	if raw.Keys == nil {
		return nil, errors.New("parsing JWK set: no \"keys\" member")
	}
	ks := &keySet{byKid: make(map[string]jose.JSONWebKey, len(raw.Keys)), fetched: time.Now()}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue // RFC 7517 section 5: ignore keys that cannot be used
		}
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		ks.byKid[k.KeyID] = k
	}
	return ks, nil
}

// safeClient returns the HTTP client for fetching an issuer's keys and
// introspecting tokens: the shared SSRF-guarded transport, whose dialer
// refuses every address that is not public unicast after DNS resolution
// (so a name that resolves to an internal address is refused too) unless
// allowPrivate is set, with no proxy and a 5 s bound on connecting, the
// TLS handshake and the response headers; the whole exchange is bounded by
// 10 s and no redirect is followed.
func safeClient(allowPrivate bool) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: safehttp.Transport(allowPrivate, 5*time.Second),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the JWKS endpoint redirected; set jwks_uri to the final URL")
		},
	}
}

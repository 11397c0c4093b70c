package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// Limits of remote JWK Set fetching (a client's jwks_uri).
const (
	// maxJWKSBytes caps a fetched JWK Set; larger answers are refused.
	maxJWKSBytes = 64 << 10
	// jwksCacheTTL is how long a fetched set is used before it is fetched
	// again.
	jwksCacheTTL = 5 * time.Minute
	// jwksRefetchInterval is the least time between two fetches of one
	// URI, also when a key id is unknown (a client rotated its keys): a
	// flood of assertions with made-up key ids cannot turn into a flood of
	// fetches.
	jwksRefetchInterval = 30 * time.Second
	// jwksFetchTimeout bounds one fetch, connection included.
	jwksFetchTimeout = 5 * time.Second
	// maxCachedJWKS bounds the cache; it is emptied when full.
	maxCachedJWKS = 4096
)

// jwksFetcher fetches and caches the JWK Sets of clients' jwks_uri. Its
// HTTP client is safehttp's: it refuses, after DNS resolution, every
// address that is not a public unicast address (unless allowPrivate),
// follows no redirect, sends no proxy-bound requests, gives up after
// jwksFetchTimeout and reads at most maxJWKSBytes.
type jwksFetcher struct {
	http *http.Client

	mu    sync.Mutex
	cache map[string]*jwksEntry
}

type jwksEntry struct {
	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
	err     error
}

func newJWKSFetcher(allowPrivate bool) *jwksFetcher {
	return &jwksFetcher{http: safehttp.NewClient(allowPrivate, jwksFetchTimeout, maxJWKSBytes), cache: map[string]*jwksEntry{}}
}

// get returns the set at uri: the cached one while fresh, else a new
// fetch. With force, a set older than jwksRefetchInterval is fetched again
// (the caller did not find the key it needs). A failed fetch is cached for
// jwksRefetchInterval too.
func (f *jwksFetcher) get(ctx context.Context, uri string, force bool) (*jose.JSONWebKeySet, error) {
	f.mu.Lock()
	e := f.cache[uri]
	if e == nil {
		if len(f.cache) >= maxCachedJWKS {
			clear(f.cache)
		}
		e = &jwksEntry{}
		f.cache[uri] = e
	}
	f.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	age := time.Since(e.fetched)
	switch {
	case e.fetched.IsZero():
	case e.err != nil && age < jwksRefetchInterval:
		return nil, e.err
	case e.err == nil && age < jwksCacheTTL && (!force || age < jwksRefetchInterval):
		return e.set, nil
	}
	set, err := f.fetch(ctx, uri)
	e.fetched = time.Now()
	if err != nil {
		e.err = err
		return nil, err
	}
	e.set, e.err = set, nil
	return set, nil
}

func (f *jwksFetcher) fetch(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	body, err := safehttp.Get(ctx, f.http, uri, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, fmt.Errorf("fetching jwks: %w", err)
	}
	set := &jose.JSONWebKeySet{}
	if err := json.Unmarshal(body, set); err != nil {
		return nil, fmt.Errorf("fetching jwks: decoding: %w", err)
	}
	return set, nil
}

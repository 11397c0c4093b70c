package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
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

// errForbiddenAddress is the SSRF guard refusing to connect to an address
// that is not a public unicast address.
var errForbiddenAddress = errors.New("address not allowed")

// jwksFetcher fetches and caches the JWK Sets of clients' jwks_uri. Its
// HTTP client refuses, after DNS resolution, every address that is not a
// public unicast address (unless allowPrivate), follows no redirect, sends
// no proxy-bound requests, and gives up after jwksFetchTimeout.
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
	return &jwksFetcher{http: guardedHTTPClient(allowPrivate, jwksFetchTimeout), cache: map[string]*jwksEntry{}}
}

// guardedHTTPClient returns an HTTP client for URLs that clients register.
// The dialer's Control hook sees the address actually dialled, after name
// resolution, so a host name that resolves to an internal address is
// refused as well as a literal one.
func guardedHTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errForbiddenAddress, address)
			}
			if !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s is not a public address", errForbiddenAddress, ap.Addr())
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}
}

// publicAddr reports whether a is a globally routable unicast address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!cgnat.Contains(a)
}

// cgnat is the shared address space of RFC 6598 (carrier-grade NAT).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// checkFetchURL accepts absolute https URLs, and http ones when private
// addresses are allowed (development and tests).
func checkFetchURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("checking url %q: must be an absolute URL without user or fragment", raw)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !allowHTTP) {
		return fmt.Errorf("checking url %q: must be https", raw)
	}
	return nil
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("fetching jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching jwks: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching jwks: reading: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetching jwks: larger than %d bytes", maxJWKSBytes)
	}
	set := &jose.JSONWebKeySet{}
	if err := json.Unmarshal(body, set); err != nil {
		return nil, fmt.Errorf("fetching jwks: decoding: %w", err)
	}
	return set, nil
}

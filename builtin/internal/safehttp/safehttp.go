// Package safehttp is the HTTP client the built-in extensions reach URLs
// that tenants, clients or upstream providers register: discovery
// documents, key sets, metadata, logout notifications, SCIM targets.
//
// Its dialer checks the address actually dialled, after name resolution,
// and refuses every address that is not a public unicast address (unless
// private networks are allowed, for development and tests), so a host name
// that resolves to an internal address is refused as well as a literal
// one. The client uses no proxy, follows no redirect, gives up after its
// timeout and caps every response body.
package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrForbiddenAddress is the guard refusing to connect to an address that
// is not a public unicast address.
var ErrForbiddenAddress = errors.New("address not allowed")

// ErrTooLarge is returned by a capped body read past its cap.
var ErrTooLarge = errors.New("response too large")

// DefaultMaxBody caps response bodies when NewClient is given no cap.
const DefaultMaxBody = 1 << 20

// specialNets are address ranges that are not public beyond what
// netip.Addr's predicates cover.
var specialNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and the limited broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: may reach any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
}

// PublicAddr reports whether a is a globally routable unicast address.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range specialNets {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Control returns a net.Dialer Control hook that refuses every address
// that is not public, with an error wrapping ErrForbiddenAddress; nil when
// allowPrivate.
func Control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	if allowPrivate {
		return nil
	}
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		if !PublicAddr(ap.Addr()) {
			return fmt.Errorf("%w: %s is not a public address", ErrForbiddenAddress, ap.Addr())
		}
		return nil
	}
}

// Transport returns the guarded transport: the dialer refuses addresses
// that are not public (unless allowPrivate), no proxy is used, and
// connecting, the TLS handshake and waiting for the response headers are
// each bounded by timeout. Bodies are not capped; NewClient does that.
func Transport(allowPrivate bool, timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: timeout, Control: Control(allowPrivate)}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
}

// NewClient returns the guarded client: Transport's guard, no redirect
// followed, the whole exchange bounded by timeout, and every response body
// capped at maxBody bytes (DefaultMaxBody when maxBody <= 0); reading past
// the cap fails with ErrTooLarge.
func NewClient(allowPrivate bool, timeout time.Duration, maxBody int64) *http.Client {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: limitBody{next: Transport(allowPrivate, timeout), max: maxBody},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}
}

// limitBody caps every response body.
type limitBody struct {
	next http.RoundTripper
	max  int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{r: io.LimitReader(resp.Body, l.max+1), c: resp.Body, max: l.max}
	return resp, nil
}

type cappedBody struct {
	r   io.Reader
	c   io.Closer
	n   int64
	max int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, b.max)
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.c.Close() }

// CheckURL accepts absolute https URLs without user or fragment, and http
// ones when allowHTTP (development and tests).
func CheckURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("checking url %q: must be an absolute URL without user or fragment", raw)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !allowHTTP) {
		return fmt.Errorf("checking url %q: must be https", raw)
	}
	return nil
}

// Get fetches rawURL with c, asking for accept when it is not empty, and
// returns the body of a 200 answer (capped by c's transport when c comes
// from NewClient).
func Get(ctx context.Context, c *http.Client, rawURL, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: status %d", rawURL, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	return b, nil
}

package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// Limits of outbound HTTP.
const (
	// DefaultHTTPTimeout bounds a request without its own timeout; the
	// call's deadline bounds every request too.
	DefaultHTTPTimeout = 5 * time.Second
	// MaxHTTPTimeout caps a request's own timeout.
	MaxHTTPTimeout = 30 * time.Second
	// DefaultHTTPMaxResponseBytes caps a response body: the body beyond it
	// is cut. It leaves room for the envelope in a 1 MiB message.
	DefaultHTTPMaxResponseBytes = 1<<20 - 64<<10
	// MaxHTTPRequestHeaders bounds the header lines of a request.
	MaxHTTPRequestHeaders = 64
)

// HTTPOptions configure a plugin's outbound HTTP.
type HTTPOptions struct {
	// Hosts is the operator's allow-list (config.PluginConfig.HTTPHosts):
	// "api.example.com" (https, port 443), "*.example.com" (any subdomain),
	// "api.example.com:8443" (another port), "http://10.0.0.7:8080" (plain
	// http to that host and port only). A connection to a loopback,
	// private, link-local or otherwise non-public address is refused unless
	// the entry names that address itself ("127.0.0.1:8443").
	Hosts []string
	// Timeout is the default timeout; zero means DefaultHTTPTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; zero means
	// DefaultHTTPMaxResponseBytes.
	MaxResponseBytes int
}

// hostRule is one parsed allow-list entry.
type hostRule struct {
	scheme   string // "https" or "http"
	host     string // lowercase name or address, without the "*." of a wildcard
	wildcard bool
	port     string
	addr     netip.Addr // set when host is an IP address
}

// parseHostRule parses one allow-list entry.
func parseHostRule(s string) (hostRule, error) {
	r := hostRule{scheme: "https"}
	rest := strings.ToLower(strings.TrimSpace(s))
	if after, ok := strings.CutPrefix(rest, "http://"); ok {
		r.scheme, rest = "http", after
	} else if after, ok := strings.CutPrefix(rest, "https://"); ok {
		rest = after
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return hostRule{}, fmt.Errorf("http host %q: want host, *.domain, host:port or http://host:port", s)
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return hostRule{}, fmt.Errorf("http host %q: bad port %q", s, p)
		}
	}
	if port == "" {
		port = "443"
		if r.scheme == "http" {
			port = "80"
		}
	}
	r.port = port
	if after, ok := strings.CutPrefix(host, "*."); ok {
		r.wildcard, host = true, after
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.Contains(host, "*") {
		return hostRule{}, fmt.Errorf("http host %q: a wildcard may only be a leading \"*.\"", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if r.wildcard {
			return hostRule{}, fmt.Errorf("http host %q: an address takes no wildcard", s)
		}
		r.addr = a.Unmap()
	}
	r.host = host
	return r, nil
}

// matches reports whether the rule allows scheme://host:port.
func (r hostRule) matches(scheme, host, port string) bool {
	if scheme != r.scheme || port != r.port {
		return false
	}
	if r.wildcard {
		return strings.HasSuffix(host, "."+r.host)
	}
	if r.addr.IsValid() {
		a, err := netip.ParseAddr(host)
		return err == nil && a.Unmap() == r.addr
	}
	return host == r.host
}

// httpClient makes a plugin's outbound requests.
type httpClient struct {
	rules   []hostRule
	client  *http.Client
	timeout time.Duration
	maxBody int
}

// newHTTPClient parses the allow-list and builds the client.
func newHTTPClient(o HTTPOptions) (*httpClient, error) {
	c := &httpClient{timeout: o.Timeout, maxBody: o.MaxResponseBytes}
	if c.timeout <= 0 {
		c.timeout = DefaultHTTPTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultHTTPMaxResponseBytes
	}
	var explicit []netip.Addr
	for _, h := range o.Hosts {
		r, err := parseHostRule(h)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, r)
		if r.addr.IsValid() {
			explicit = append(explicit, r.addr)
		}
	}
	dialer := &net.Dialer{
		Timeout: c.timeout,
		// Control sees the address actually dialled, after resolution, so
		// a name that resolves (or re-resolves) to an internal address is
		// refused here whatever the allow-list matched by name.
		Control: func(_, address string, _ syscall.RawConn) error {
			return checkDialAddress(address, explicit)
		},
	}
	c.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never through a proxy the environment names
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    c.timeout,
			ResponseHeaderTimeout:  c.timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		// Redirects are not followed: the guest sees the 3xx and may ask
		// for the new location, which the allow-list checks again.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// errBlockedAddress is the cause of a refused connection.
var errBlockedAddress = errors.New("refusing to connect to a non-public address")

// checkDialAddress refuses a connection to a non-public address that no
// allow-list entry names.
func checkDialAddress(address string, explicit []netip.Addr) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", errBlockedAddress, address)
	}
	a := ap.Addr().Unmap()
	for _, e := range explicit {
		if a == e {
			return nil
		}
	}
	if !publicAddr(a) {
		return fmt.Errorf("%w: %s", errBlockedAddress, a)
	}
	return nil
}

// nonPublic lists the ranges besides those netip classifies that must not
// be reached from a plugin: this network, shared address space (CGNAT),
// IETF protocol assignments, benchmarking, the documentation ranges,
// reserved, and NAT64 / 6to4 / Teredo, which can embed internal IPv4
// addresses.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// publicAddr reports whether a is a public unicast address.
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// allowed checks u against the allow-list.
func (c *httpClient) allowed(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	for _, r := range c.rules {
		if r.matches(u.Scheme, host, port) {
			return true
		}
	}
	return false
}

// do serves http.do.
func (h *HostCalls) do(ctx context.Context, r abi.HTTPRequest) (abi.Message, error) {
	c := h.http
	if c == nil {
		return nil, fault.Unavailable.WithMessage("outbound HTTP is not available to this plugin")
	}
	u, err := url.Parse(r.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fault.InvalidRequest.WithMessage("the url must be an absolute http(s) URL without credentials")
	}
	if !c.allowed(u) {
		return nil, fault.Forbidden.WithMessagef("%s://%s is not among the hosts granted to this plugin", u.Scheme, u.Host)
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if len(r.Headers) > MaxHTTPRequestHeaders {
		return nil, fault.InvalidRequest.WithMessagef("%d headers are over the limit of %d", len(r.Headers), MaxHTTPRequestHeaders)
	}
	timeout := c.timeout
	if r.TimeoutMillis > 0 {
		timeout = min(time.Duration(r.TimeoutMillis)*time.Millisecond, MaxHTTPTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return nil, fault.InvalidRequest.WithMessagef("the request is not valid: %v", err)
	}
	for k, vs := range r.Headers {
		if strings.EqualFold(k, "Host") {
			continue // the URL's host is the one the allow-list checked
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, errBlockedAddress):
			return nil, fault.Forbidden.WithMessagef("%s resolves to a non-public address that is not granted", u.Host)
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fault.Timeout.WithMessagef("the request to %s timed out", u.Host)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fault.Timeout.WithMessagef("the request to %s timed out", u.Host)
		}
		return nil, fault.Unavailable.WithMessagef("the request to %s failed", u.Host).WithCause(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxBody)))
	if err != nil {
		return nil, fault.Unavailable.WithMessagef("reading the response from %s failed", u.Host).WithCause(err)
	}
	return &abi.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body}, nil
}

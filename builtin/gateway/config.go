package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/kernel/keys"
)

// ErrInvalidConfig wraps every error of a routes file that parses but does
// not make sense. Check it with errors.Is.
var ErrInvalidConfig = errors.New("invalid gateway configuration")

// MaxConfigBytes bounds a routes file.
const MaxConfigBytes = 4 << 20

// Defaults of the routes file.
const (
	DefaultBackendJWTHeader   = "X-JWT-Assertion"
	DefaultBackendJWTLifetime = 5 * time.Minute
	DefaultClockSkew          = 30 * time.Second
	DefaultJWKSTTL            = 10 * time.Minute
	DefaultJWKSMinRefetch     = 10 * time.Second
	DefaultConnectTimeout     = 5 * time.Second
	DefaultRequestTimeout     = 60 * time.Second
	DefaultIdleTimeout        = 90 * time.Second
	DefaultMaxBodyBytes       = 10 << 20
	DefaultMaxRetryBodyBytes  = 64 << 10
	DefaultThrottler          = "throttle.local"
	DefaultDenyPollInterval   = 500 * time.Millisecond
	DefaultTokenCacheTTL      = 30 * time.Second
)

// Fail modes of an issuer whose keys cannot be had, and of a throttler that
// cannot answer.
const (
	FailClosed = "closed"
	FailOpen   = "open"
)

// Config is a routes file: the gateway's issuers, APIs and upstreams. Every
// field is documented in docs/gateway.md. Decoding is strict: an unknown
// field is an error naming its line.
type Config struct {
	// Issuers are the token issuers the gateway trusts.
	Issuers []IssuerConfig `yaml:"issuers"`
	// APIs are the published APIs, matched by host and base path.
	APIs []APIConfig `yaml:"apis"`
	// Upstreams are the backends the APIs forward to.
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	// TrustedProxies are addresses and CIDR ranges whose X-Forwarded-For
	// is believed when finding the client's IP (for IP deny policies and
	// throttling by IP).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DenyPollInterval is how often deny policies are re-read from the
	// store. Default 500ms.
	DenyPollInterval time.Duration `yaml:"deny_poll_interval"`
	// AccessLog logs one line per request (method, path, API, route,
	// status, duration, client IP) at info level.
	AccessLog bool `yaml:"access_log"`
	// TokenCacheTTL bounds how long a validated JWT's verdict is reused
	// (never past the token's expiry); 0 means the default 30s, a negative
	// value turns the cache off.
	TokenCacheTTL time.Duration `yaml:"token_cache_ttl"`
	// Tracing exports OpenTelemetry spans (see TracingConfig).
	Tracing *TracingConfig `yaml:"tracing"`
}

// IssuerConfig is one trusted token issuer.
type IssuerConfig struct {
	// Name is how APIs refer to the issuer.
	Name string `yaml:"name"`
	// Issuer is the exact "iss" value of its tokens.
	Issuer string `yaml:"issuer"`
	// JWKSURI is where its signing keys are published.
	JWKSURI string `yaml:"jwks_uri"`
	// Audiences are the accepted "aud" values; a token must carry one. An
	// API may narrow them.
	Audiences []string `yaml:"audiences"`
	// Algorithms are the accepted JWS algorithms (pinned): RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway on exp, nbf and iat. Default 30s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// JWKSTTL is how long fetched keys are used before they are fetched
	// again. Default 10m.
	JWKSTTL time.Duration `yaml:"jwks_ttl"`
	// JWKSMinRefetch is the least time between two fetches caused by an
	// unknown kid. Default 10s.
	JWKSMinRefetch time.Duration `yaml:"jwks_min_refetch"`
	// OnKeysUnavailable is "closed" (default: refuse with 503 when no
	// keys were ever fetched) or "open" (forward the request without
	// validating the token, as an anonymous caller).
	OnKeysUnavailable string `yaml:"on_keys_unavailable"`
	// AllowPrivateNetwork lets the JWKS fetch reach loopback, private and
	// link-local addresses (the SSRF guard refuses them by default).
	AllowPrivateNetwork bool `yaml:"allow_private_network"`
	// AllowHTTP lets jwks_uri use plain http.
	AllowHTTP bool `yaml:"allow_http"`
	// ClientIDClaim is the claim naming the calling client. Default
	// "client_id", then "azp".
	ClientIDClaim string `yaml:"client_id_claim"`
	// Introspection validates the issuer's opaque (non-JWT) tokens by RFC
	// 7662 token introspection. With it, jwks_uri and algorithms may be
	// left out for an issuer of opaque tokens only.
	Introspection *IntrospectionConfig `yaml:"introspection"`
}

// IntrospectionConfig is an RFC 7662 introspection endpoint.
type IntrospectionConfig struct {
	// Endpoint is the introspection URL; the SSRF guard and allow_http of
	// the issuer apply.
	Endpoint string `yaml:"endpoint"`
	// ClientID authenticates the gateway (HTTP Basic).
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the secret.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// CacheTTL is how long an active answer is reused (never past the
	// token's exp). Default 30s.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeCacheTTL is how long an inactive answer is reused. Default
	// 5s.
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
}

// APIConfig is one published API.
type APIConfig struct {
	// Name identifies the API in metrics, deny policies and throttle keys.
	Name string `yaml:"name,omitempty"`
	// Hosts, when set, limits the API to these Host header values.
	Hosts []string `yaml:"hosts,omitempty"`
	// BasePath is the path prefix of the API ("/orders").
	BasePath string `yaml:"base_path,omitempty"`
	// Upstream names the upstream requests go to.
	Upstream string `yaml:"upstream,omitempty"`
	// StripBasePath removes BasePath before forwarding.
	StripBasePath bool `yaml:"strip_base_path,omitempty"`
	// Security says who may call; default: a valid token of any issuer.
	Security SecurityConfig `yaml:"security,omitempty"`
	// Subscription requires the calling client (its client id claim) to
	// hold a subscription to the API, managed through the admin API.
	Subscription bool `yaml:"subscription,omitempty"`
	// Throttle limits the API's traffic.
	Throttle *ThrottleConfig `yaml:"throttle,omitempty"`
	// BackendJWT sends a signed JWT to the upstream.
	BackendJWT *BackendJWTConfig `yaml:"backend_jwt,omitempty"`
	// RequestHeaders adds and removes headers before forwarding.
	RequestHeaders HeaderOps `yaml:"request_headers,omitempty"`
	// ResponseHeaders adds and removes headers of the response.
	ResponseHeaders HeaderOps `yaml:"response_headers,omitempty"`
	// MaxBodyBytes caps request bodies. Default 10 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// Routes are the API's operations; none means every path under
	// BasePath with the API's settings.
	Routes []RouteConfig `yaml:"routes,omitempty"`
	// CORS answers browsers' cross-origin requests (see CORSConfig).
	CORS *CORSConfig `yaml:"cors,omitempty"`
	// Policy is a CEL expression over request and claims that must hold
	// for every request of the API (see docs/gateway.md); false is a 403.
	Policy string `yaml:"policy,omitempty"`
}

// SecurityConfig says how callers authenticate.
type SecurityConfig struct {
	// None turns token validation off for the API or route.
	None bool `yaml:"none,omitempty"`
	// Issuers limits accepted issuers by name; empty means all.
	Issuers []string `yaml:"issuers,omitempty"`
	// Audiences, when set, replaces the issuers' audiences.
	Audiences []string `yaml:"audiences,omitempty"`
	// Scopes must all be granted to the token.
	Scopes []string `yaml:"scopes,omitempty"`
}

// RouteConfig is one operation of an API.
type RouteConfig struct {
	// Name identifies the route in metrics; default the method list and
	// path.
	Name string `yaml:"name,omitempty"`
	// Path below the API's base path: exact ("/items"), or a prefix when
	// it ends in "/*" ("/items/*").
	Path string `yaml:"path,omitempty"`
	// Methods limits the route; empty means any.
	Methods []string `yaml:"methods,omitempty"`
	// Rewrite replaces the matched path (for a prefix route, the prefix)
	// in the forwarded request.
	Rewrite string `yaml:"rewrite,omitempty"`
	// Scopes are required in addition to the API's.
	Scopes []string `yaml:"scopes,omitempty"`
	// Security, when set, replaces the API's.
	Security *SecurityConfig `yaml:"security,omitempty"`
	// Throttle, when set, applies in addition to the API's.
	Throttle *ThrottleConfig `yaml:"throttle,omitempty"`
	// Policy is a CEL expression that must hold, in addition to the
	// API's.
	Policy string `yaml:"policy,omitempty"`
}

// HeaderOps edits headers.
type HeaderOps struct {
	// Add sets headers (replacing any value).
	Add map[string]string `yaml:"add,omitempty"`
	// Remove deletes headers.
	Remove []string `yaml:"remove,omitempty"`
}

// ThrottleConfig is a rate limit policy.
type ThrottleConfig struct {
	// Rate units per Period.
	Rate int64 `yaml:"rate,omitempty"`
	// Period of the rate. Default 1s.
	Period time.Duration `yaml:"period,omitempty"`
	// Burst is how many units may be spent at once; default Rate.
	Burst int64 `yaml:"burst,omitempty"`
	// Key says what is counted: "api" (default), "route", "client",
	// "user", "ip", "header:<name>", "claim:<name>" or "cel:<expression>"
	// (a CEL expression over request and claims yielding the key string).
	Key string `yaml:"key,omitempty"`
	// Throttler names the throttler extension instance. Default
	// "throttle.local"; "throttle.redis" shares one limit across nodes.
	Throttler string `yaml:"throttler,omitempty"`
	// Fail is "closed" (default: refuse with 503 when the throttler cannot
	// answer) or "open" (let the request through).
	Fail string `yaml:"fail,omitempty"`
}

// BackendJWTConfig is the JWT sent to the upstream.
type BackendJWTConfig struct {
	// Header carries the JWT. Default X-JWT-Assertion.
	Header string `yaml:"header,omitempty"`
	// Issuer is the "iss" claim; default the node's public URL.
	Issuer string `yaml:"issuer,omitempty"`
	// Audience is the "aud" claim; default the API name.
	Audience string `yaml:"audience,omitempty"`
	// Lifetime bounds "exp"; never past the caller's token. Default 5m.
	Lifetime time.Duration `yaml:"lifetime,omitempty"`
	// Algorithm of Latch's signing key; default the keys' default.
	Algorithm string `yaml:"algorithm,omitempty"`
	// Claims lists the claims copied (after mapping); empty means every
	// mapped claim.
	Claims []string `yaml:"claims,omitempty"`
}

// UpstreamConfig is one backend service.
type UpstreamConfig struct {
	// Name is how APIs refer to it.
	Name string `yaml:"name"`
	// Endpoints are its addresses with weights (canary releases).
	Endpoints []EndpointConfig `yaml:"endpoints"`
	// PreserveHost forwards the client's Host header.
	PreserveHost bool `yaml:"preserve_host"`
	// Timeouts bound the calls.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
	// Retries repeats failed calls.
	Retries RetriesConfig `yaml:"retries"`
	// Breaker stops calling a failing upstream.
	Breaker *BreakerConfig `yaml:"breaker"`
	// MaxConcurrent caps requests in flight to the upstream; 0 means no
	// cap.
	MaxConcurrent int `yaml:"max_concurrent"`
	// HealthCheck probes the endpoints.
	HealthCheck *HealthCheckConfig `yaml:"health_check"`
	// TLS configures https endpoints: the CA to trust and the client
	// certificate to present (mTLS).
	TLS *UpstreamTLSConfig `yaml:"tls"`
}

// UpstreamTLSConfig is the TLS of the calls to an upstream.
type UpstreamTLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the upstream's server
	// certificate; default the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and key the
	// gateway presents (mTLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate
	// (default the endpoint's host).
	ServerName string `yaml:"server_name"`
}

// EndpointConfig is one address of an upstream.
type EndpointConfig struct {
	// URL is scheme, host and optional path prefix
	// ("http://10.0.0.5:8080/v1").
	URL string `yaml:"url"`
	// Weight is its share of traffic. Default 1; 0 drains the endpoint.
	Weight *int `yaml:"weight"`
}

// TimeoutsConfig bounds upstream calls.
type TimeoutsConfig struct {
	// Connect bounds dialling. Default 5s.
	Connect time.Duration `yaml:"connect"`
	// Request bounds the whole exchange, retries included. Default 60s.
	Request time.Duration `yaml:"request"`
	// PerTry bounds each attempt until the response headers. Default:
	// none beyond Request.
	PerTry time.Duration `yaml:"per_try"`
	// Idle closes pooled connections unused this long. Default 90s.
	Idle time.Duration `yaml:"idle"`
}

// RetriesConfig repeats failed attempts.
type RetriesConfig struct {
	// Attempts is the most tries in all (1 = no retry). Default 1.
	Attempts int `yaml:"attempts"`
	// On lists what is retried: "connect_failure", "reset", "timeout" and
	// status codes ("502", "503", "504").
	On []string `yaml:"on"`
	// NonIdempotent allows repeating POST, PATCH and other non-idempotent
	// requests that may have reached the upstream. A connect failure is
	// always safe to retry: the request was never sent.
	NonIdempotent bool `yaml:"non_idempotent"`
	// BackoffBase and BackoffMax shape the exponential backoff with full
	// jitter. Defaults 25ms and 1s.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// BudgetRatio is the share of requests that may be retries. Default
	// 0.2.
	BudgetRatio float64 `yaml:"budget_ratio"`
	// BudgetMinPerSecond retries are always allowed. Default 10.
	BudgetMinPerSecond int `yaml:"budget_min_per_second"`
	// MaxBodyBytes is the largest request body kept for a retry; larger
	// bodies are not retried. Default 64 KiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// BreakerConfig is a circuit breaker.
type BreakerConfig struct {
	// MinRequests is the least requests in the window before it may open.
	// Default 20.
	MinRequests uint32 `yaml:"min_requests"`
	// FailureRatio opens it. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// Window is the rolling window. Default 10s.
	Window time.Duration `yaml:"window"`
	// OpenFor is how long it stays open before half-opening. Default 30s.
	OpenFor time.Duration `yaml:"open_for"`
	// HalfOpenProbes is how many requests try the upstream when half-open;
	// that many successes close it. Default 1.
	HalfOpenProbes uint32 `yaml:"half_open_probes"`
	// Fallback, when set, is the response while open.
	Fallback *FallbackConfig `yaml:"fallback"`
}

// FallbackConfig is a fixed response.
type FallbackConfig struct {
	Status      int    `yaml:"status"`
	ContentType string `yaml:"content_type"`
	Body        string `yaml:"body"`
}

// HealthCheckConfig probes endpoints.
type HealthCheckConfig struct {
	// Path is requested with GET; a 2xx answer is healthy.
	Path string `yaml:"path"`
	// Interval between probes. Default 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// UnhealthyAfter consecutive failures take an endpoint out. Default 3.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// HealthyAfter consecutive successes put it back. Default 2.
	HealthyAfter int `yaml:"healthy_after"`
}

// LoadConfig reads, decodes and validates a routes file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the routes file.
	if err != nil {
		return nil, fmt.Errorf("reading routes file: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading routes file %s: %w", path, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("routes file %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a routes file strictly and validates it, filling in
// defaults.
func ParseConfig(b []byte) (*Config, error) {
	c, err := decodeConfig(b)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// decodeConfig decodes a routes file strictly, without validating it.
func decodeConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidConfig, MaxConfigBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalidConfig)
		}
		return nil, fmt.Errorf("%w: decoding: %w", ErrInvalidConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalidConfig)
	}
	return &c, nil
}

var (
	nameRe    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	headerRe  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	paramRe   = regexp.MustCompile(`^\{[A-Za-z0-9_.-]+\}$`)
	// jwsAlgorithms are the asymmetric algorithms an issuer may pin.
	// Symmetric (HS*) and "none" are never accepted: a JWKS publishes
	// public keys, and an HMAC keyed with a public key is forgeable.
	jwsAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	retryOns      = []string{"connect_failure", "reset", "timeout"}
)

func (c *Config) validate() error {
	if c.DenyPollInterval == 0 {
		c.DenyPollInterval = DefaultDenyPollInterval
	}
	if c.DenyPollInterval < 50*time.Millisecond {
		return errors.New("deny_poll_interval: must be at least 50ms")
	}
	if c.TokenCacheTTL == 0 {
		c.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if err := c.Tracing.validate(); err != nil {
		return err
	}
	for i, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			return fmt.Errorf("trusted_proxies[%d]: %w", i, err)
		}
	}
	issuers := map[string]bool{}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		path := fmt.Sprintf("issuers[%d]", i)
		if err := is.validate(path); err != nil {
			return err
		}
		if issuers[is.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, is.Name)
		}
		issuers[is.Name] = true
	}
	upstreams := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		path := fmt.Sprintf("upstreams[%d]", i)
		if err := u.validate(path); err != nil {
			return err
		}
		if upstreams[u.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, u.Name)
		}
		upstreams[u.Name] = true
	}
	apis := map[string]bool{}
	for i := range c.APIs {
		a := &c.APIs[i]
		path := fmt.Sprintf("apis[%d]", i)
		if !nameRe.MatchString(a.Name) {
			return fmt.Errorf("%s.name: must be 1 to 128 letters, digits, '_', '-' or '.'", path)
		}
		if apis[a.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, a.Name)
		}
		apis[a.Name] = true
		if a.BasePath == "" {
			a.BasePath = "/"
		}
		if !strings.HasPrefix(a.BasePath, "/") || strings.Contains(a.BasePath, "//") || strings.ContainsAny(a.BasePath, "?#*") {
			return fmt.Errorf("%s.base_path: must be a path starting with '/' without '?', '#', '*' or '//'", path)
		}
		if a.BasePath != "/" {
			a.BasePath = strings.TrimSuffix(a.BasePath, "/")
		}
		if !upstreams[a.Upstream] {
			return fmt.Errorf("%s.upstream: no upstream is named %q", path, a.Upstream)
		}
		if err := a.Security.validate(path+".security", issuers); err != nil {
			return err
		}
		if a.Subscription && a.Security.None {
			return fmt.Errorf("%s.subscription: needs callers with tokens (security.none is set)", path)
		}
		if err := validateThrottle(path+".throttle", a.Throttle); err != nil {
			return err
		}
		if err := a.CORS.validate(path + ".cors"); err != nil {
			return err
		}
		if _, err := compilePolicy(a.Policy); err != nil {
			return fmt.Errorf("%s.policy: %w", path, err)
		}
		if err := validateHeaders(path+".request_headers", a.RequestHeaders); err != nil {
			return err
		}
		if err := validateHeaders(path+".response_headers", a.ResponseHeaders); err != nil {
			return err
		}
		if a.MaxBodyBytes == 0 {
			a.MaxBodyBytes = DefaultMaxBodyBytes
		}
		if a.MaxBodyBytes < 0 {
			return fmt.Errorf("%s.max_body_bytes: must be >= 0", path)
		}
		if b := a.BackendJWT; b != nil {
			if b.Header == "" {
				b.Header = DefaultBackendJWTHeader
			}
			if !headerRe.MatchString(b.Header) {
				return fmt.Errorf("%s.backend_jwt.header: %q is not a header name", path, b.Header)
			}
			if b.Lifetime == 0 {
				b.Lifetime = DefaultBackendJWTLifetime
			}
			if b.Lifetime < 10*time.Second || b.Lifetime > 24*time.Hour {
				return fmt.Errorf("%s.backend_jwt.lifetime: must be between 10s and 24h", path)
			}
			if b.Audience == "" {
				b.Audience = a.Name
			}
			if b.Algorithm != "" {
				if err := keys.CheckAlgorithm(b.Algorithm); err != nil {
					return fmt.Errorf("%s.backend_jwt.algorithm: %w", path, err)
				}
			}
		}
		routes := map[string]bool{}
		for j := range a.Routes {
			r := &a.Routes[j]
			rpath := fmt.Sprintf("%s.routes[%d]", path, j)
			if err := r.validate(rpath, issuers); err != nil {
				return err
			}
			if routes[r.Name] {
				return fmt.Errorf("%s.name: %q is used twice in the API", rpath, r.Name)
			}
			routes[r.Name] = true
		}
	}
	return nil
}

func (is *IssuerConfig) validate(path string) error {
	if !nameRe.MatchString(is.Name) {
		return fmt.Errorf("%s.name: must be 1 to 128 letters, digits, '_', '-' or '.'", path)
	}
	if is.Issuer == "" {
		return fmt.Errorf("%s.issuer: required", path)
	}
	if is.Introspection != nil {
		if err := is.Introspection.validate(path+".introspection", is.AllowHTTP); err != nil {
			return err
		}
		if is.JWKSURI == "" && len(is.Algorithms) == 0 {
			return is.defaults(path)
		}
	}
	u, err := url.Parse(is.JWKSURI)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return fmt.Errorf("%s.jwks_uri: must be an absolute URL without credentials", path)
	case u.Scheme == "http" && !is.AllowHTTP:
		return fmt.Errorf("%s.jwks_uri: must use https (set allow_http for a test issuer)", path)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%s.jwks_uri: scheme %q is not http(s)", path, u.Scheme)
	}
	if len(is.Algorithms) == 0 {
		return fmt.Errorf("%s.algorithms: required: pin the algorithms the issuer signs with", path)
	}
	for k, a := range is.Algorithms {
		if !slices.Contains(jwsAlgorithms, a) {
			return fmt.Errorf("%s.algorithms[%d]: %q is not one of %s", path, k, a, strings.Join(jwsAlgorithms, ", "))
		}
	}
	return is.defaults(path)
}

func (is *IssuerConfig) defaults(path string) error {
	if len(is.Audiences) == 0 {
		return fmt.Errorf("%s.audiences: required: tokens must be meant for the gateway", path)
	}
	if is.ClockSkew == 0 {
		is.ClockSkew = DefaultClockSkew
	}
	if is.ClockSkew < 0 || is.ClockSkew > 5*time.Minute {
		return fmt.Errorf("%s.clock_skew: must be between 0 and 5m", path)
	}
	if is.JWKSTTL == 0 {
		is.JWKSTTL = DefaultJWKSTTL
	}
	if is.JWKSTTL < time.Second {
		return fmt.Errorf("%s.jwks_ttl: must be at least 1s", path)
	}
	if is.JWKSMinRefetch == 0 {
		is.JWKSMinRefetch = DefaultJWKSMinRefetch
	}
	if is.JWKSMinRefetch < 10*time.Millisecond {
		return fmt.Errorf("%s.jwks_min_refetch: must be at least 10ms", path)
	}
	switch is.OnKeysUnavailable {
	case "":
		is.OnKeysUnavailable = FailClosed
	case FailClosed, FailOpen:
	default:
		return fmt.Errorf("%s.on_keys_unavailable: must be %q or %q", path, FailClosed, FailOpen)
	}
	return nil
}

func (c *IntrospectionConfig) validate(path string, allowHTTP bool) error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return fmt.Errorf("%s.endpoint: must be an absolute URL without credentials", path)
	case u.Scheme == "http" && !allowHTTP:
		return fmt.Errorf("%s.endpoint: must use https (set allow_http for a test issuer)", path)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%s.endpoint: scheme %q is not http(s)", path, u.Scheme)
	}
	if c.ClientID == "" {
		return fmt.Errorf("%s.client_id: required", path)
	}
	if c.ClientSecretEnv != "" && !envNameRe.MatchString(c.ClientSecretEnv) {
		return fmt.Errorf("%s.client_secret_env: %q is not an environment variable name", path, c.ClientSecretEnv)
	}
	c.CacheTTL = orDefault(c.CacheTTL, 30*time.Second)
	c.NegativeCacheTTL = orDefault(c.NegativeCacheTTL, 5*time.Second)
	if c.CacheTTL < 0 || c.NegativeCacheTTL < 0 {
		return fmt.Errorf("%s: cache TTLs must not be negative", path)
	}
	return nil
}

func (s *SecurityConfig) validate(path string, issuers map[string]bool) error {
	if s.None && (len(s.Issuers) > 0 || len(s.Scopes) > 0 || len(s.Audiences) > 0) {
		return fmt.Errorf("%s: none cannot be combined with issuers, audiences or scopes", path)
	}
	for i, n := range s.Issuers {
		if !issuers[n] {
			return fmt.Errorf("%s.issuers[%d]: no issuer is named %q", path, i, n)
		}
	}
	if !s.None && len(issuers) == 0 {
		return fmt.Errorf("%s: tokens are required but no issuer is configured (set none: true for an open API)", path)
	}
	return nil
}

func (r *RouteConfig) validate(path string, issuers map[string]bool) error {
	if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?#") ||
		(strings.Contains(r.Path, "*") && !strings.HasSuffix(r.Path, "/*")) || strings.Count(r.Path, "*") > 1 {
		return fmt.Errorf("%s.path: must start with '/' and may end with '/*' (a prefix)", path)
	}
	if strings.ContainsAny(r.Path, "{}") {
		if strings.Contains(r.Path, "*") {
			return fmt.Errorf("%s.path: a template ({param} segments) cannot also be a prefix", path)
		}
		for _, seg := range strings.Split(r.Path[1:], "/") {
			if strings.ContainsAny(seg, "{}") && !paramRe.MatchString(seg) {
				return fmt.Errorf("%s.path: the segment %q must be a whole {param} (letters, digits, '_', '-', '.')", path, seg)
			}
		}
	}
	for i, m := range r.Methods {
		if !headerRe.MatchString(m) || strings.ToUpper(m) != m {
			return fmt.Errorf("%s.methods[%d]: %q is not an upper-case HTTP method", path, i, m)
		}
	}
	if r.Rewrite != "" && !strings.HasPrefix(r.Rewrite, "/") {
		return fmt.Errorf("%s.rewrite: must start with '/'", path)
	}
	if r.Name == "" {
		r.Name = strings.Join(r.Methods, ",") + " " + r.Path
		r.Name = strings.TrimSpace(r.Name)
	}
	if r.Security != nil {
		if err := r.Security.validate(path+".security", issuers); err != nil {
			return err
		}
	}
	if _, err := compilePolicy(r.Policy); err != nil {
		return fmt.Errorf("%s.policy: %w", path, err)
	}
	return validateThrottle(path+".throttle", r.Throttle)
}

func validateThrottle(path string, t *ThrottleConfig) error {
	if t == nil {
		return nil
	}
	if t.Rate <= 0 {
		return fmt.Errorf("%s.rate: must be > 0", path)
	}
	if t.Period == 0 {
		t.Period = time.Second
	}
	if t.Period < time.Millisecond {
		return fmt.Errorf("%s.period: must be at least 1ms", path)
	}
	if t.Burst < 0 {
		return fmt.Errorf("%s.burst: must be >= 0", path)
	}
	if t.Key == "" {
		t.Key = "api"
	}
	switch k, arg, _ := strings.Cut(t.Key, ":"); k {
	case "api", "route", "client", "user", "ip":
		if arg != "" {
			return fmt.Errorf("%s.key: %q takes no argument", path, k)
		}
	case "header", "claim":
		if arg == "" || (k == "header" && !headerRe.MatchString(arg)) {
			return fmt.Errorf("%s.key: %q needs a name (%s:<name>)", path, k, k)
		}
	case "cel":
		if _, err := compileKey(arg); err != nil {
			return fmt.Errorf("%s.key: %w", path, err)
		}
	default:
		return fmt.Errorf("%s.key: %q is not api, route, client, user, ip, header:<name>, claim:<name> or cel:<expression>", path, t.Key)
	}
	if t.Throttler == "" {
		t.Throttler = DefaultThrottler
	}
	switch t.Fail {
	case "":
		t.Fail = FailClosed
	case FailClosed, FailOpen:
	default:
		return fmt.Errorf("%s.fail: must be %q or %q", path, FailClosed, FailOpen)
	}
	return nil
}

func validateHeaders(path string, h HeaderOps) error {
	for k, v := range h.Add {
		if !headerRe.MatchString(k) {
			return fmt.Errorf("%s.add: %q is not a header name", path, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%s.add.%s: the value holds a control character", path, k)
		}
	}
	for i, k := range h.Remove {
		if !headerRe.MatchString(k) {
			return fmt.Errorf("%s.remove[%d]: %q is not a header name", path, i, k)
		}
	}
	return nil
}

func (u *UpstreamConfig) validate(path string) error {
	if !nameRe.MatchString(u.Name) {
		return fmt.Errorf("%s.name: must be 1 to 128 letters, digits, '_', '-' or '.'", path)
	}
	if len(u.Endpoints) == 0 {
		return fmt.Errorf("%s.endpoints: at least one is required", path)
	}
	for i := range u.Endpoints {
		e := &u.Endpoints[i]
		p, err := url.Parse(e.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("%s.endpoints[%d].url: must be an http(s) URL without credentials, query or fragment", path, i)
		}
		if e.Weight == nil {
			one := 1
			e.Weight = &one
		}
		if *e.Weight < 0 || *e.Weight > 10000 {
			return fmt.Errorf("%s.endpoints[%d].weight: must be between 0 and 10000", path, i)
		}
	}
	t := &u.Timeouts
	t.Connect = orDefault(t.Connect, DefaultConnectTimeout)
	t.Request = orDefault(t.Request, DefaultRequestTimeout)
	t.Idle = orDefault(t.Idle, DefaultIdleTimeout)
	if t.Connect < 0 || t.Request < 0 || t.Idle < 0 || t.PerTry < 0 {
		return fmt.Errorf("%s.timeouts: must not be negative", path)
	}
	r := &u.Retries
	if r.Attempts == 0 {
		r.Attempts = 1
	}
	if r.Attempts < 1 || r.Attempts > 10 {
		return fmt.Errorf("%s.retries.attempts: must be between 1 and 10", path)
	}
	for i, on := range r.On {
		if slices.Contains(retryOns, on) {
			continue
		}
		if code, err := strconv.Atoi(on); err != nil || code < 500 || code > 599 {
			return fmt.Errorf("%s.retries.on[%d]: %q is not connect_failure, reset, timeout or a 5xx status", path, i, on)
		}
	}
	r.BackoffBase = orDefault(r.BackoffBase, 25*time.Millisecond)
	r.BackoffMax = orDefault(r.BackoffMax, time.Second)
	if r.BudgetRatio == 0 {
		r.BudgetRatio = 0.2
	}
	if r.BudgetRatio < 0 || r.BudgetRatio > 1 {
		return fmt.Errorf("%s.retries.budget_ratio: must be between 0 and 1", path)
	}
	if r.BudgetMinPerSecond == 0 {
		r.BudgetMinPerSecond = 10
	}
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultMaxRetryBodyBytes
	}
	if b := u.Breaker; b != nil {
		if b.MinRequests == 0 {
			b.MinRequests = 20
		}
		if b.FailureRatio == 0 {
			b.FailureRatio = 0.5
		}
		if b.FailureRatio < 0 || b.FailureRatio > 1 {
			return fmt.Errorf("%s.breaker.failure_ratio: must be between 0 and 1", path)
		}
		b.Window = orDefault(b.Window, 10*time.Second)
		b.OpenFor = orDefault(b.OpenFor, 30*time.Second)
		if b.HalfOpenProbes == 0 {
			b.HalfOpenProbes = 1
		}
		if f := b.Fallback; f != nil {
			if f.Status == 0 {
				f.Status = http.StatusServiceUnavailable
			}
			if f.Status < 200 || f.Status > 599 {
				return fmt.Errorf("%s.breaker.fallback.status: must be an HTTP status", path)
			}
		}
	}
	if u.MaxConcurrent < 0 {
		return fmt.Errorf("%s.max_concurrent: must be >= 0", path)
	}
	if t := u.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s.tls: cert_file and key_file go together", path)
	}
	if h := u.HealthCheck; h != nil {
		if !strings.HasPrefix(h.Path, "/") {
			return fmt.Errorf("%s.health_check.path: must start with '/'", path)
		}
		h.Interval = orDefault(h.Interval, 5*time.Second)
		h.Timeout = orDefault(h.Timeout, time.Second)
		if h.UnhealthyAfter == 0 {
			h.UnhealthyAfter = 3
		}
		if h.HealthyAfter == 0 {
			h.HealthyAfter = 2
		}
		if h.Interval < 10*time.Millisecond {
			return fmt.Errorf("%s.health_check.interval: must be at least 10ms", path)
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// parsePrefix parses an address or a CIDR range.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parsing CIDR range %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing address %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

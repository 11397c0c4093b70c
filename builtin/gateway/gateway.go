// Package gateway is Latch's API security gateway: it publishes APIs
// declared in a routes file (YAML) in front of upstream services and, for
// every request, runs the short form of the pipeline:
//
//	match route -> CORS (preflights answered) -> deny (IP, CIDR, API)
//	-> validate token (JWKS per issuer) -> deny (client, user) -> scopes
//	-> CEL policies -> throttle -> backend JWT (claims mapped by the
//	tenant's ClaimMappers) -> proxy (timeouts, retries, circuit breaker,
//	concurrency cap, health-checked weighted endpoints, mTLS, trace
//	context)
//
// The routes file, merged with the APIs and upstreams stored through the
// admin API (stored.go), is watched and hot-reloaded: a configuration that
// fails to parse or validate is refused and the running one stays;
// requests in flight finish on the configuration they started with.
//
// # The proxy
//
// The gateway's listener is net/http's server, and httputil.ReverseProxy
// shapes each proxied request and response: hop-by-hop headers (those the
// Connection header names included), X-Forwarded-*, streaming bodies both
// ways without buffering. The upstream leg is fasthttp's HostClient for
// idempotent requests without a streamed body, which it carries in the
// calling goroutine (net/http's Transport hands each exchange to two
// goroutines per connection); the Transport carries the rest (streamed request bodies, non-idempotent
// requests, protocol upgrades, 1xx, trailers, per_try timeouts), whose
// semantics the HostClient cannot keep. fastpath.go has the details.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/throttle"
)

// Deps are what the gateway needs from the node.
type Deps struct {
	// KV holds the deny policies (see DenyNamespace); nil disables them.
	KV store.PluginKV
	// TenantID and TenantName identify the default tenant: its deny
	// policies, its signing keys for backend JWTs and its claim mappers.
	TenantID, TenantName string
	// Keys signs backend JWTs; nil refuses APIs that ask for them.
	Keys KeySigner
	// PublicURL is the default issuer of backend JWTs.
	PublicURL string
	// Throttler returns the throttler extension instance of a name.
	Throttler func(name string) (*extension.Instance, bool)
	// ClaimMappers returns the default tenant's claim mappers, in order.
	ClaimMappers func() []*extension.Instance
	// Log receives the gateway's logs; nil discards.
	Log *slog.Logger
	// Registerer receives the metrics; nil discards.
	Registerer prometheus.Registerer
	// TracerProvider, when set, receives the spans in place of the routes
	// file's tracing exporter.
	TracerProvider trace.TracerProvider
}

// Gateway is the proxy handler with its current configuration.
type Gateway struct {
	d      Deps
	path   string
	m      *metrics
	deny   *denyList
	signer *backendSigner
	rt     atomic.Pointer[runtime]
	hash   [32]byte
	reload sync.Mutex
	// badHash is the last state (routes file and stored documents)
	// refused, so that pollers report a bad state once.
	badHash [32]byte
	pollDur atomic.Int64
	// jwks keeps the key caches across reloads, by issuer name and
	// jwks_uri, so that a reload does not refetch every issuer's keys.
	jwks map[string]*jwksCache
	// tr is the tracing of the current configuration; nil: none.
	tr atomic.Pointer[tracing]
}

// New loads the routes file at path and builds the gateway; it fetches every
// issuer's keys once (a failure is logged: the fail mode applies).
func New(ctx context.Context, d Deps, path string) (*Gateway, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	g := &Gateway{d: d, path: path, m: m, jwks: map[string]*jwksCache{}}
	if d.TracerProvider != nil {
		g.tr.Store(tracingOf(d.TracerProvider))
	}
	g.deny = newDenyList(d.KV, d.TenantID, d.Log)
	g.signer = &backendSigner{keys: d.Keys, tenant: d.TenantID, tenantNm: d.TenantName, publicURL: d.PublicURL,
		mappers: d.ClaimMappers, cache: map[bjwtKey]bjwtEntry{}}
	b, err := g.readFile()
	if err != nil {
		return nil, err
	}
	st, err := g.loadStored(ctx)
	if err != nil {
		d.Log.WarnContext(ctx, "reading the stored gateway APIs failed; starting with the routes file alone", "err", err)
		st = nil
	}
	cfg, skipped, err := merge(b, st)
	if err != nil {
		return nil, fmt.Errorf("routes file %s: %w", path, err)
	}
	g.warnSkipped(ctx, skipped)
	if err := g.apply(ctx, stateHash(b, st), cfg); err != nil {
		return nil, err
	}
	if err := g.deny.load(ctx); err != nil {
		d.Log.WarnContext(ctx, "reading deny policies failed", "err", err)
	}
	return g, nil
}

// readFile reads the routes file.
func (g *Gateway) readFile() ([]byte, error) {
	b, err := os.ReadFile(g.path)
	if err != nil {
		return nil, fmt.Errorf("reading routes file: %w", err)
	}
	return b, nil
}

func (g *Gateway) warnSkipped(ctx context.Context, skipped []string) {
	for _, s := range skipped {
		g.d.Log.WarnContext(ctx, "a stored gateway document is left out: the routes file uses its name", "name", s)
	}
}

// apply builds the runtime of cfg and swaps it in.
func (g *Gateway) apply(ctx context.Context, hash [32]byte, cfg *Config) error {
	if err := g.applyTracing(ctx, cfg.Tracing); err != nil {
		return err
	}
	rt, err := g.build(ctx, cfg)
	if err != nil {
		return err
	}
	old := g.rt.Swap(rt)
	g.hash = hash
	g.pollDur.Store(int64(cfg.DenyPollInterval))
	if old != nil {
		// In-flight requests hold old and finish on its transports; only
		// idle connections and health checks stop now.
		old.close()
	}
	return nil
}

// applyTracing starts the exporter of a changed tracing configuration and
// stops the previous one (after flushing its spans).
func (g *Gateway) applyTracing(ctx context.Context, c *TracingConfig) error {
	if g.d.TracerProvider != nil {
		return nil
	}
	want := TracingConfig{Exporter: ExporterNone}
	if c != nil {
		want = *c
	}
	cur := g.tr.Load()
	if (cur == nil && want.Exporter == ExporterNone) || (cur != nil && cur.cfg == want) {
		return nil
	}
	next, err := newTracing(ctx, &want)
	if err != nil {
		return err
	}
	g.tr.Store(next)
	if cur != nil && cur.shutdown != nil {
		go func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = cur.shutdown(sctx)
		}()
	}
	return nil
}

// Reload re-reads the routes file and the stored APIs and upstreams. A
// state that fails to read, parse or validate is refused: the error is
// returned and the running configuration stays.
func (g *Gateway) Reload(ctx context.Context) error {
	_, err := g.reloadState(ctx)
	return err
}

// reloadState is Reload; fresh reports whether err is news (not the
// refusal of a state already refused).
func (g *Gateway) reloadState(ctx context.Context) (fresh bool, err error) {
	g.reload.Lock()
	defer g.reload.Unlock()
	b, err := g.readFile()
	if err != nil {
		g.m.reloads.WithLabelValues("error").Inc()
		return true, err
	}
	st, err := g.loadStored(ctx)
	if err != nil {
		return true, err
	}
	h := stateHash(b, st)
	if h == g.hash {
		return false, nil
	}
	cfg, skipped, err := merge(b, st)
	if err != nil {
		err = fmt.Errorf("routes file %s: %w", g.path, err)
	} else {
		err = g.apply(ctx, h, cfg)
	}
	if err != nil {
		fresh = h != g.badHash
		if fresh {
			g.m.reloads.WithLabelValues("error").Inc()
		}
		g.badHash = h
		return fresh, err
	}
	g.warnSkipped(ctx, skipped)
	g.m.reloads.WithLabelValues("ok").Inc()
	g.d.Log.InfoContext(ctx, "gateway routes reloaded", "file", g.path)
	return true, nil
}

// runStored follows the stored APIs and upstreams: it reloads every deny
// poll interval (a no-op when nothing changed).
func (g *Gateway) runStored(ctx context.Context) {
	for {
		t := time.NewTimer(time.Duration(g.pollDur.Load()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if fresh, err := g.reloadState(ctx); err != nil && fresh && ctx.Err() == nil {
			g.d.Log.ErrorContext(ctx, "refusing the changed gateway configuration; the running configuration stays", "err", err)
		}
	}
}

// Run keeps the gateway current until ctx is done: it polls the routes file
// every second (a poll rather than a file-system watch, so that files
// replaced through symlinks, as mounted config maps are, are seen too) and
// the deny policies every deny_poll_interval.
func (g *Gateway) Run(ctx context.Context) {
	go g.deny.run(ctx, func() time.Duration { return time.Duration(g.pollDur.Load()) })
	go g.runStored(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastMod time.Time
	var lastSize int64 = -1
	for {
		select {
		case <-ctx.Done():
			g.rt.Load().close()
			if tr := g.tr.Load(); tr != nil && tr.shutdown != nil {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = tr.shutdown(sctx)
				cancel()
			}
			return
		case <-t.C:
		}
		fi, err := os.Stat(g.path)
		if err != nil {
			g.d.Log.WarnContext(ctx, "checking the routes file", "err", err)
			continue
		}
		if fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
		if fresh, err := g.reloadState(ctx); err != nil && fresh {
			g.d.Log.ErrorContext(ctx, "refusing the changed routes file; the running configuration stays", "err", err)
		}
	}
}

// Serve serves the gateway on ln until ctx is done, then drains in-flight
// requests for up to drain.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, drain time.Duration) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.d.Log.Handler(), slog.LevelWarn),
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go g.Run(runCtx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the gateway: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("draining the gateway: %w", err)
	}
	return nil
}

// ReloadDeny re-reads the deny policies and the stored APIs and upstreams
// now (the admin API calls it after a change, and the cluster's change
// notification on every other node, so that the change applies at once).
func (g *Gateway) ReloadDeny(ctx context.Context) error {
	if err := g.deny.load(ctx); err != nil {
		return err
	}
	if fresh, err := g.reloadState(ctx); err != nil && fresh {
		g.d.Log.ErrorContext(ctx, "refusing the changed gateway configuration; the running configuration stays", "err", err)
	}
	return nil
}

// runtime is one configuration, built and immutable.
type runtime struct {
	cfg       *Config
	apis      []*apiRT
	upstreams map[string]*upstream
	trusted   []netip.Prefix
	validator *validator
	closeOnce sync.Once
}

func (rt *runtime) close() {
	rt.closeOnce.Do(func() {
		for _, u := range rt.upstreams {
			u.close()
		}
	})
}

type apiRT struct {
	cfg      *APIConfig
	hosts    map[string]bool
	routes   []*routeRT
	up       *upstream
	proxy    *httputil.ReverseProxy
	throttle *throttleRT
	cors     *corsRT
}

type routeRT struct {
	name      string
	exact     string   // exact path, or
	prefix    string   // prefix (with trailing '/'), or
	segments  []string // a template's segments, "" standing for a {param}
	literals  int      // the template's literal segments
	methods   []string
	rewrite   string
	sec       secRT
	throttles []*throttleRT
	policies  []*policy
}

type secRT struct {
	none      bool
	issuers   map[string]bool // nil: any
	audiences []string        // nil: the issuer's
	scopes    []string
}

type throttleRT struct {
	cfg   *ThrottleConfig
	limit abi.Limit
	kind  string
	arg   string
	scope string  // "api" or the route name, in keys
	expr  *policy // the key expression of kind "cel"
}

func (g *Gateway) build(ctx context.Context, cfg *Config) (*runtime, error) {
	rt := &runtime{cfg: cfg, upstreams: map[string]*upstream{}}
	for _, p := range cfg.TrustedProxies {
		pf, _ := parsePrefix(p) // validated
		rt.trusted = append(rt.trusted, pf)
	}
	v := &validator{byIss: map[string]*issuerRT{}, cache: newTokenCache(cfg.TokenCacheTTL, 100_000)}
	algs := map[string]bool{}
	var fresh []*jwksCache
	for _, ic := range cfg.Issuers {
		if v.byIss[ic.Issuer] != nil {
			return nil, fmt.Errorf("%w: issuers %q: the issuer %q is configured twice", ErrInvalidConfig, ic.Name, ic.Issuer)
		}
		is := &issuerRT{cfg: ic}
		for _, a := range ic.Algorithms {
			is.algs = append(is.algs, jose.SignatureAlgorithm(a))
			algs[a] = true
		}
		if ic.JWKSURI != "" {
			key := ic.Name + "\x00" + ic.JWKSURI + "\x00" + strconv.FormatBool(ic.AllowPrivateNetwork)
			c := g.jwks[key]
			if c == nil {
				c = newJWKSCache(ic, g.d.Log, g.m)
				fresh = append(fresh, c)
			}
			c.ttl, c.minRefetch = ic.JWKSTTL, ic.JWKSMinRefetch
			g.jwks[key] = c
			is.keys = c
		}
		if ic.Introspection != nil {
			in, err := newIntrospector(is)
			if err != nil {
				return nil, err
			}
			v.introspectors = append(v.introspectors, in)
		}
		v.byIss[ic.Issuer] = is
	}
	for a := range algs {
		v.allAlgs = append(v.allAlgs, jose.SignatureAlgorithm(a))
	}
	rt.validator = v
	for _, c := range fresh {
		if _, err := c.refresh(ctx, true); err != nil {
			g.d.Log.WarnContext(ctx, "fetching issuer keys at start failed", "issuer", c.issuer, "err", err)
		}
	}
	for i := range cfg.Upstreams {
		uc := cfg.Upstreams[i]
		u, err := newUpstream(uc, g.d.Log, g.m)
		if err != nil {
			rt.close()
			return nil, fmt.Errorf("%w: upstreams %q: %w", ErrInvalidConfig, uc.Name, err)
		}
		rt.upstreams[uc.Name] = u
	}
	for i := range cfg.APIs {
		ac := &cfg.APIs[i]
		a := &apiRT{cfg: ac, up: rt.upstreams[ac.Upstream]}
		if len(ac.Hosts) > 0 {
			a.hosts = map[string]bool{}
			for _, h := range ac.Hosts {
				a.hosts[strings.ToLower(h)] = true
			}
		}
		if ac.BackendJWT != nil && g.d.Keys == nil {
			rt.close()
			return nil, fmt.Errorf("%w: apis %q: backend_jwt needs Latch's signing keys, which this node lacks", ErrInvalidConfig, ac.Name)
		}
		if ac.Throttle != nil {
			t, err := g.throttleRT(ac.Throttle, "api")
			if err != nil {
				rt.close()
				return nil, fmt.Errorf("%w: apis %q throttle: %w", ErrInvalidConfig, ac.Name, err)
			}
			a.throttle = t
		}
		a.cors = newCORS(ac.CORS)
		apiPolicy, err := compilePolicy(ac.Policy)
		if err != nil {
			rt.close()
			return nil, fmt.Errorf("%w: apis %q policy: %w", ErrInvalidConfig, ac.Name, err)
		}
		apiSec := secOf(ac.Security)
		routes := ac.Routes
		if len(routes) == 0 {
			routes = []RouteConfig{{Name: "*", Path: "/*"}}
		}
		for j := range routes {
			rc := routes[j]
			r := &routeRT{name: rc.Name, methods: rc.Methods, rewrite: rc.Rewrite, sec: apiSec}
			if p, ok := strings.CutSuffix(rc.Path, "*"); ok {
				r.prefix = p
			} else if strings.Contains(rc.Path, "{") {
				for _, seg := range strings.Split(rc.Path[1:], "/") {
					if strings.HasPrefix(seg, "{") {
						seg = ""
					} else {
						r.literals++
					}
					r.segments = append(r.segments, seg)
				}
			} else {
				r.exact = rc.Path
			}
			if rc.Security != nil {
				r.sec = secOf(*rc.Security)
			}
			r.sec.scopes = append(slices.Clone(r.sec.scopes), rc.Scopes...)
			if a.throttle != nil {
				r.throttles = append(r.throttles, a.throttle)
			}
			if apiPolicy != nil {
				r.policies = append(r.policies, apiPolicy)
			}
			rp, err := compilePolicy(rc.Policy)
			if err != nil {
				rt.close()
				return nil, fmt.Errorf("%w: apis %q routes %q policy: %w", ErrInvalidConfig, ac.Name, rc.Name, err)
			}
			if rp != nil {
				r.policies = append(r.policies, rp)
			}
			if rc.Throttle != nil {
				t, err := g.throttleRT(rc.Throttle, rc.Name)
				if err != nil {
					rt.close()
					return nil, fmt.Errorf("%w: apis %q routes %q throttle: %w", ErrInvalidConfig, ac.Name, rc.Name, err)
				}
				r.throttles = append(r.throttles, t)
			}
			a.routes = append(a.routes, r)
		}
		a.proxy = g.newProxy(a)
		rt.apis = append(rt.apis, a)
	}
	// Longest base path first; an API with hosts before one without.
	sort.SliceStable(rt.apis, func(i, j int) bool {
		a, b := rt.apis[i], rt.apis[j]
		if len(a.cfg.BasePath) != len(b.cfg.BasePath) {
			return len(a.cfg.BasePath) > len(b.cfg.BasePath)
		}
		return a.hosts != nil && b.hosts == nil
	})
	return rt, nil
}

func secOf(s SecurityConfig) secRT {
	r := secRT{none: s.None, audiences: s.Audiences, scopes: s.Scopes}
	if len(s.Issuers) > 0 {
		r.issuers = map[string]bool{}
		for _, n := range s.Issuers {
			r.issuers[n] = true
		}
	}
	return r
}

func (g *Gateway) throttleRT(c *ThrottleConfig, scope string) (*throttleRT, error) {
	if g.d.Throttler == nil {
		return nil, errors.New("this node has no throttlers")
	}
	inst, ok := g.d.Throttler(c.Throttler)
	if !ok {
		return nil, fmt.Errorf("no throttler instance is named %q", c.Throttler)
	}
	if _, ok := extension.As[throttle.Throttler](inst); !ok {
		return nil, fmt.Errorf("instance %q is not a throttler", c.Throttler)
	}
	l := abi.Limit{Rate: c.Rate, PeriodMillis: c.Period.Milliseconds(), Burst: c.Burst}
	if err := throttle.ValidateLimit(l); err != nil {
		return nil, err
	}
	kind, arg, _ := strings.Cut(c.Key, ":")
	t := &throttleRT{cfg: c, limit: l, kind: kind, arg: arg, scope: scope}
	if kind == "cel" {
		expr, err := compileKey(arg)
		if err != nil {
			return nil, err
		}
		t.expr = expr
	}
	return t, nil
}

// match finds the API and route of r. It returns the API alone when the
// path matches but no route allows the method (405).
func (rt *runtime) match(r *http.Request) (*apiRT, *routeRT, string, bool) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	path := r.URL.Path
	for _, a := range rt.apis {
		if a.hosts != nil && !a.hosts[host] {
			continue
		}
		rest, ok := underBase(path, a.cfg.BasePath)
		if !ok {
			continue
		}
		var best *routeRT
		pathMatched := false
		for _, rr := range a.routes {
			var hit bool
			switch {
			case rr.exact != "":
				hit = rest == rr.exact
			case rr.segments != nil:
				hit = rr.matchTemplate(rest)
			default:
				hit = strings.HasPrefix(rest, rr.prefix) || rest+"/" == rr.prefix
			}
			if !hit {
				continue
			}
			pathMatched = true
			if len(rr.methods) > 0 && !slices.Contains(rr.methods, r.Method) {
				continue
			}
			if best == nil || rr.rank() > best.rank() || (rr.rank() == best.rank() && rr.finer(best)) {
				best = rr
			}
		}
		if best != nil {
			return a, best, rest, true
		}
		if pathMatched {
			return a, nil, rest, true
		}
	}
	return nil, nil, "", false
}

// template is the route's path with {} for each parameter.
func (r *routeRT) template() string {
	var b strings.Builder
	for _, s := range r.segments {
		b.WriteByte('/')
		if s == "" {
			s = "{}"
		}
		b.WriteString(s)
	}
	return b.String()
}

// rank orders kinds of route: exact paths before templates before
// prefixes.
func (r *routeRT) rank() int {
	switch {
	case r.exact != "":
		return 2
	case r.segments != nil:
		return 1
	}
	return 0
}

// finer reports whether r is more specific than o, a route of its rank.
func (r *routeRT) finer(o *routeRT) bool {
	if r.segments != nil {
		return r.literals > o.literals
	}
	return len(r.prefix) > len(o.prefix)
}

// matchTemplate reports whether path matches the template: as many
// segments, literal ones equal, a {param} any non-empty segment.
func (r *routeRT) matchTemplate(path string) bool {
	rest := path[1:]
	for i, seg := range r.segments {
		var part string
		if i == len(r.segments)-1 {
			part, rest = rest, ""
			if strings.Contains(part, "/") {
				return false
			}
		} else {
			var ok bool
			part, rest, ok = strings.Cut(rest, "/")
			if !ok {
				return false
			}
		}
		if seg == "" {
			if part == "" {
				return false
			}
		} else if part != seg {
			return false
		}
	}
	return true
}

// underBase returns path below base ("/" at least) and whether path is
// base or below it.
func underBase(path, base string) (string, bool) {
	if base == "/" {
		return path, true
	}
	rest, ok := strings.CutPrefix(path, base)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// ServeHTTP runs the gateway's pipeline for one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := g.rt.Load()
	a, route, rest, ok := rt.match(r)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no API is published at this path")
		return
	}
	if a.cors != nil {
		// Preflights are answered here, before authentication (browsers
		// send no credentials with them) and without the upstream.
		if isPreflight(r) {
			a.cors.preflight(w, r)
			return
		}
		a.cors.actual(w.Header(), r.Header.Get("Origin"))
	}
	if route == nil {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the API has no operation for this method and path")
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	var span trace.Span
	tr := g.tr.Load()
	if tr != nil {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = tr.tracer.Start(ctx, "gateway "+a.cfg.Name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
			attribute.String("latch.api", a.cfg.Name), attribute.String("latch.route", route.name)))
		r = r.WithContext(ctx)
	}
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if span != nil {
			endSpan(span, status)
		}
		g.m.requests.WithLabelValues(a.cfg.Name, route.name, a.cfg.Upstream, strconv.Itoa(status)).Inc()
		g.m.duration.WithLabelValues(a.cfg.Name, route.name, a.cfg.Upstream).Observe(time.Since(start).Seconds())
		if rt.cfg.AccessLog {
			g.d.Log.InfoContext(r.Context(), "gateway request", "method", r.Method, "path", r.URL.Path, "api", a.cfg.Name,
				"route", route.name, "status", status, "duration", time.Since(start), "client_ip", rt.clientIP(r).String())
		}
	}()
	g.serve(sw, r, rt, a, route, rest, start, tr)
}

func (g *Gateway) serve(w *statusWriter, r *http.Request, rt *runtime, a *apiRT, route *routeRT, rest string, now time.Time, tr *tracing) {
	ctx := r.Context()
	ip := rt.clientIP(r)
	deny := g.deny.current()
	switch {
	case deny.apis[a.cfg.Name]:
		g.denied(w, a, DenyAPI)
		return
	case ip.IsValid() && deny.ip(ip):
		g.denied(w, a, DenyIP)
		return
	}

	var p *principal
	if !route.sec.none {
		raw, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
			return
		}
		var terr *tokenError
		p, terr = rt.validator.validate(ctx, raw, now)
		switch {
		case terr != nil && terr.unavailable && terr.issuer.cfg.OnKeysUnavailable == FailOpen && route.sec.admits(terr.issuer):
			g.d.Log.WarnContext(ctx, "issuer keys unavailable: forwarding without validation (fail-open)", "issuer", terr.issuer.cfg.Name, "api", a.cfg.Name)
			p = nil
		case terr != nil && terr.unavailable:
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the token cannot be validated now: the issuer's keys are unavailable")
			return
		case terr != nil:
			invalidToken(w, terr.reason)
			return
		default:
			if !route.sec.admits(p.issuer) {
				invalidToken(w, "the token's issuer is not accepted for this API")
				return
			}
			auds := route.sec.audiences
			if auds == nil {
				auds = p.issuer.cfg.Audiences
			}
			if !slices.ContainsFunc(auds, p.audience.Contains) {
				invalidToken(w, "the token is not meant for this API (audience)")
				return
			}
			if now.After(p.expiry) {
				invalidToken(w, "the token is expired")
				return
			}
			if p.clientID != "" && deny.clients[p.clientID] {
				g.denied(w, a, DenyClient)
				return
			}
			if p.subject != "" && deny.users[p.subject] {
				g.denied(w, a, DenyUser)
				return
			}
			for _, s := range route.sec.scopes {
				if !slices.Contains(p.scopes, s) {
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latch", error="insufficient_scope", scope=%q`, strings.Join(route.sec.scopes, " ")))
					writeError(w, http.StatusForbidden, "insufficient_scope", "the token lacks the scope "+strconv.Quote(s))
					return
				}
			}
		}
	}

	if len(route.policies) > 0 {
		vars := policyVars(r, a, route, p, ip, route.policies)
		for _, pol := range route.policies {
			allowed, err := pol.allows(vars)
			if err != nil {
				g.d.Log.DebugContext(ctx, "gateway policy failed to evaluate; refusing", "api", a.cfg.Name, "route", route.name, "err", err)
			}
			if !allowed {
				g.m.denied.WithLabelValues(a.cfg.Name, "policy").Inc()
				writeError(w, http.StatusForbidden, "forbidden", "the request is refused by the API's policy")
				return
			}
		}
	}

	if a.cfg.Subscription && (p == nil || !deny.subscribed(a.cfg.Name, p.clientID)) {
		writeError(w, http.StatusForbidden, "forbidden", "the client is not subscribed to this API")
		return
	}

	if !g.throttle(w, r, a, route, p, ip) {
		return
	}

	if r.ContentLength > a.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("the body is larger than %d bytes", a.cfg.MaxBodyBytes))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
	}

	// A shallow copy: the reverse proxy clones it once more for the
	// outbound request, and the headers edited here are the inbound
	// request's own.
	out := new(http.Request)
	*out = *r
	u := *r.URL
	out.URL = &u
	if bj := a.cfg.BackendJWT; bj != nil {
		out.Header.Del(bj.Header) // never pass a caller's own assertion on
		if p != nil {
			tok, err := g.signer.token(ctx, a, p, now)
			if err != nil {
				g.d.Log.ErrorContext(ctx, "issuing the backend JWT failed", "api", a.cfg.Name, "err", err)
				writeError(w, http.StatusInternalServerError, "internal", "the backend token could not be issued")
				return
			}
			out.Header.Set(bj.Header, tok)
		}
	}
	for _, h := range a.cfg.RequestHeaders.Remove {
		out.Header.Del(h)
	}
	for k, v := range a.cfg.RequestHeaders.Add {
		out.Header.Set(k, v)
	}
	out.URL.Path, out.URL.RawPath = a.outPath(route, rest), ""
	if r.URL.RawPath != "" {
		// Keep the client's escaping (an encoded slash stays encoded):
		// apply the same strip and rewrite to the escaped path.
		if restRaw, ok := underBase(r.URL.RawPath, a.cfg.BasePath); ok {
			if raw := a.outPath(route, restRaw); unescapesTo(raw, out.URL.Path) {
				out.URL.RawPath = raw
			}
		}
	}
	if t := a.up.cfg.Timeouts.Request; t > 0 {
		tctx, cancel := context.WithTimeout(ctx, t)
		defer cancel()
		out = out.WithContext(tctx)
	}
	if tr != nil {
		// A client span around the upstream call; the upstream continues
		// the trace from its traceparent.
		cctx, span := tr.tracer.Start(out.Context(), "upstream "+a.cfg.Upstream, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("latch.upstream", a.cfg.Upstream)))
		out.Header.Del("Traceparent")
		out.Header.Del("Tracestate")
		propagator.Inject(cctx, propagation.HeaderCarrier(out.Header))
		out = out.WithContext(cctx)
		defer func() { endSpan(span, w.status) }()
	}
	a.proxy.ServeHTTP(w, out)
}

// outPath is the forwarded path of rest (the path below the base path):
// rewritten by the route, under the base path unless it is stripped.
func (a *apiRT) outPath(route *routeRT, rest string) string {
	path := rest
	if route.rewrite != "" {
		if route.exact != "" || route.segments != nil {
			path = route.rewrite
		} else {
			path = singleJoin(route.rewrite, strings.TrimPrefix(rest, strings.TrimSuffix(route.prefix, "/")))
		}
	}
	if !a.cfg.StripBasePath && a.cfg.BasePath != "/" {
		path = a.cfg.BasePath + path
	}
	return path
}

func unescapesTo(raw, path string) bool {
	p, err := url.PathUnescape(raw)
	return err == nil && p == path
}

func (s secRT) admits(is *issuerRT) bool { return s.issuers == nil || s.issuers[is.cfg.Name] }

// throttle applies the route's limits and sets the RateLimit headers; it
// reports whether the request may go on.
func (g *Gateway) throttle(w http.ResponseWriter, r *http.Request, a *apiRT, route *routeRT, p *principal, ip netip.Addr) bool {
	if len(route.throttles) == 0 {
		return true
	}
	ctx := r.Context()
	var tightest *abi.AllowResponse
	var tightLimit abi.Limit
	for _, t := range route.throttles {
		key := t.key(a, route, r, p, ip)
		inst, ok := g.d.Throttler(t.cfg.Throttler)
		var resp abi.AllowResponse
		var err error
		if !ok {
			err = fault.Unavailable.WithMessage("throttler " + t.cfg.Throttler + " is not loaded")
		} else {
			th, _ := extension.As[throttle.Throttler](inst)
			err = extension.Call(ctx, inst, abi.OpAllow, func(ctx context.Context) error {
				var err error
				resp, err = throttle.Check(th.Allow(ctx, abi.AllowRequest{Tenant: g.d.TenantName, Key: key, Limit: t.limit, Config: inst.Config()}))
				return err
			})
		}
		if err != nil {
			if t.cfg.Fail == FailOpen {
				g.d.Log.WarnContext(ctx, "throttler failed; letting the request through (fail open)", "api", a.cfg.Name, "err", err)
				continue
			}
			g.d.Log.ErrorContext(ctx, "throttler failed; refusing the request (fail closed)", "api", a.cfg.Name, "err", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the rate limiter cannot answer")
			return false
		}
		if tightest == nil || !resp.Allowed || resp.Remaining < tightest.Remaining {
			rc := resp
			tightest, tightLimit = &rc, t.limit
		}
		if !resp.Allowed {
			break
		}
	}
	if tightest == nil {
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.FormatInt(tightLimit.Rate, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(tightest.Remaining, 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(tightest.ResetAfterMillis), 10))
	h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", tightLimit.Rate, ceilSeconds(tightLimit.PeriodMillis)))
	if tightest.Allowed {
		return true
	}
	retry := ceilSeconds(tightest.RetryAfterMillis)
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	g.m.throttled.WithLabelValues(a.cfg.Name).Inc()
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"code": "rate_limited", "message": "rate limit exceeded; retry later",
		"retry_after_seconds": retry,
	})
	return false
}

func ceilSeconds(ms int64) int64 { return int64(math.Ceil(float64(ms) / 1000)) }

// key builds the throttle key: the API (and route) and what is counted.
func (t *throttleRT) key(a *apiRT, route *routeRT, r *http.Request, p *principal, ip netip.Addr) string {
	base := "gw:" + a.cfg.Name + ":" + t.scope + ":" + t.kind
	var v string
	switch t.kind {
	case "api":
		return base
	case "route":
		return base + ":" + route.name
	case "client":
		if p != nil {
			v = p.clientID
		}
	case "user":
		if p != nil {
			v = p.subject
		}
	case "ip":
		v = ip.String()
	case "header":
		v = r.Header.Get(t.arg)
		base += ":" + t.arg
	case "cel":
		v = t.expr.keyOf(policyVars(r, a, route, p, ip, []*policy{t.expr}))
		sum := sha256.Sum256([]byte(t.arg))
		base += ":" + hex.EncodeToString(sum[:8])
	case "claim":
		if p != nil {
			if s, ok := p.claims[t.arg].(string); ok {
				v = s
			} else if c, ok := p.claims[t.arg]; ok {
				b, _ := json.Marshal(c)
				v = string(b)
			}
		}
		base += ":" + t.arg
	}
	return base + "=" + v
}

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not a trusted proxy.
func (rt *runtime) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !rt.trustedAddr(ip) {
		return ip
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return ip
			}
			a = a.Unmap()
			if !rt.trustedAddr(a) {
				return a
			}
			ip = a
		}
	}
	return ip
}

func (rt *runtime) trustedAddr(a netip.Addr) bool {
	for _, p := range rt.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (g *Gateway) denied(w http.ResponseWriter, a *apiRT, kind string) {
	g.m.denied.WithLabelValues(a.cfg.Name, kind).Inc()
	writeError(w, http.StatusForbidden, "forbidden", "the request is denied by policy")
}

// newProxy builds the API's reverse proxy over its upstream.
func (g *Gateway) newProxy(a *apiRT) *httputil.ReverseProxy {
	up := a.up
	resp := a.cfg.ResponseHeaders
	cors := a.cors != nil
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = up.cfg.Name // replaced per attempt by the upstream
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  up,
		BufferPool: copyBuffers,
		// No periodic flushing: headers and a small body leave in one
		// write. ReverseProxy still flushes at once for responses of
		// unknown length and for text/event-stream, so streams stream.
		FlushInterval: 0,
		ModifyResponse: func(r *http.Response) error {
			if cors {
				for _, h := range corsResponseHeaders {
					r.Header.Del(h)
				}
			}
			for _, h := range resp.Remove {
				r.Header.Del(h)
			}
			for k, v := range resp.Add {
				r.Header.Set(k, v)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.proxyError(w, r, up, err)
		},
		ErrorLog: slog.NewLogLogger(g.d.Log.Handler(), slog.LevelDebug),
	}
}

// copyBuffers recycles the proxy's 32 KiB copy buffers; without a pool
// ReverseProxy allocates one per request.
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, up *upstream, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
	case errors.Is(err, errBreakerOpen):
		if fb := up.cfg.Breaker.Fallback; fb != nil {
			if fb.ContentType != "" {
				w.Header().Set("Content-Type", fb.ContentType)
			}
			w.WriteHeader(fb.Status)
			_, _ = w.Write([]byte(fb.Body))
			return
		}
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(up.cfg.Breaker.OpenFor.Seconds())), 10))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the upstream is failing; its circuit breaker is open")
	case errors.Is(err, errSaturated):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the upstream is at its concurrency limit")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errPerTry):
		writeError(w, http.StatusGatewayTimeout, "timeout", "the upstream did not answer in time")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
	default:
		g.d.Log.WarnContext(r.Context(), "upstream call failed", "upstream", up.cfg.Name, "err", err)
		writeError(w, http.StatusBadGateway, "bad_gateway", "the upstream could not be reached")
	}
}

// bearer extracts the token of an RFC 6750 section 2.1 Authorization
// header.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func invalidToken(w http.ResponseWriter, reason string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latch", error="invalid_token", error_description=%q`, reason))
	writeError(w, http.StatusUnauthorized, "invalid_token", reason)
}

// writeError writes the gateway's JSON error, {"code", "message"}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// statusWriter records the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// RouteInfo describes one published route, for the admin API.
type RouteInfo struct {
	API       string   `json:"api"`
	Route     string   `json:"route"`
	Hosts     []string `json:"hosts,omitempty"`
	Path      string   `json:"path"`
	Methods   []string `json:"methods,omitempty"`
	Upstream  string   `json:"upstream"`
	Issuers   []string `json:"issuers,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	Open      bool     `json:"open,omitempty"`
	Breaker   string   `json:"breaker,omitempty"`
	Endpoints []string `json:"endpoints"`
	Healthy   []string `json:"healthy_endpoints"`
}

// Routes lists the published routes of the running configuration.
func (g *Gateway) Routes() []RouteInfo {
	rt := g.rt.Load()
	var out []RouteInfo
	for _, a := range rt.apis {
		for _, r := range a.routes {
			path := r.exact
			switch {
			case r.segments != nil:
				path = r.template()
			case path == "":
				path = r.prefix + "*"
			}
			if a.cfg.BasePath != "/" {
				path = a.cfg.BasePath + path
			}
			ri := RouteInfo{API: a.cfg.Name, Route: r.name, Hosts: a.cfg.Hosts, Path: path, Methods: r.methods,
				Upstream: a.cfg.Upstream, Scopes: r.sec.scopes, Open: r.sec.none, Breaker: a.up.breakerState(),
				Endpoints: []string{}, Healthy: []string{}}
			for n := range r.sec.issuers {
				ri.Issuers = append(ri.Issuers, n)
			}
			sort.Strings(ri.Issuers)
			for e, ok := range a.up.healthyEndpoints() {
				ri.Endpoints = append(ri.Endpoints, e)
				if ok {
					ri.Healthy = append(ri.Healthy, e)
				}
			}
			sort.Strings(ri.Endpoints)
			sort.Strings(ri.Healthy)
			out = append(out, ri)
		}
	}
	return out
}

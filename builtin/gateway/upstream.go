package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// Errors of an upstream call, turned into responses by the proxy's error
// handler.
var (
	errBreakerOpen = errors.New("upstream circuit breaker is open")
	errSaturated   = errors.New("upstream concurrency limit reached")
	errPerTry      = errors.New("upstream attempt timed out")
)

// upstream is one backend at run time: its endpoints, its connection pool
// and its resilience policies. It is the http.RoundTripper of the APIs'
// reverse proxies, so each proxied request passes through its retry loop
// and breaker exactly once.
type upstream struct {
	cfg       UpstreamConfig
	endpoints []*endpoint
	transport *http.Transport
	breaker   *gobreaker.TwoStepCircuitBreaker[struct{}]
	sem       chan struct{}
	budget    *retryBudget
	retryOn   map[string]bool
	log       *slog.Logger
	m         *metrics

	stop chan struct{}
	done sync.WaitGroup
}

type endpoint struct {
	url     *url.URL
	weight  int
	healthy atomic.Bool
	// fails and oks count consecutive probe results.
	fails, oks int
	// hc carries the endpoint's requests but those fastEligible
	// refuses (fastpath.go).
	hc *fasthttp.HostClient
}

func newUpstream(cfg UpstreamConfig, log *slog.Logger, m *metrics) (*upstream, error) {
	tlsCfg, err := upstreamTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	u := &upstream{cfg: cfg, log: log, m: m, stop: make(chan struct{}), retryOn: map[string]bool{}}
	d := &net.Dialer{Timeout: cfg.Timeouts.Connect, KeepAlive: 30 * time.Second}
	for _, e := range cfg.Endpoints {
		p, _ := url.Parse(e.URL) // validated
		ep := &endpoint{url: p, weight: *e.Weight, hc: newHostClient(p, tlsCfg, d, cfg)}
		ep.healthy.Store(true)
		u.endpoints = append(u.endpoints, ep)
	}
	for _, on := range cfg.Retries.On {
		u.retryOn[on] = true
	}
	// The net/http Transport carries the requests the HostClients do not
	// (fastpath.go) and the health checks: it keeps up to 1024 idle
	// connections per endpoint so that 64 or more concurrent clients never
	// wait for a dial, and speaks HTTP/1.1 to upstreams (no compression
	// negotiation: bodies pass through untouched).
	u.transport = &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       cfg.Timeouts.Idle,
		TLSHandshakeTimeout:   cfg.Timeouts.Connect,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // per_try bounds the wait for headers
		TLSClientConfig:       tlsCfg,
	}
	if cfg.MaxConcurrent > 0 {
		u.sem = make(chan struct{}, cfg.MaxConcurrent)
	}
	u.budget = newRetryBudget(cfg.Retries.BudgetRatio, cfg.Retries.BudgetMinPerSecond)
	if b := cfg.Breaker; b != nil {
		u.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:         cfg.Name,
			MaxRequests:  b.HalfOpenProbes,
			Interval:     b.Window,
			BucketPeriod: max(b.Window/10, time.Millisecond),
			Timeout:      b.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.Requests >= b.MinRequests && float64(c.TotalFailures) >= b.FailureRatio*float64(c.Requests)
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				m.breakerState.WithLabelValues(name).Set(float64(to))
				log.InfoContext(context.Background(), "upstream circuit breaker changed state", "upstream", name, "from", from.String(), "to", to.String())
			},
		})
		m.breakerState.WithLabelValues(cfg.Name).Set(0)
	}
	if cfg.HealthCheck != nil {
		u.done.Add(1)
		go u.healthLoop()
	}
	return u, nil
}

// upstreamTLS loads the CA bundle and client certificate of an upstream;
// nil config is the system's defaults.
func upstreamTLS(c *UpstreamTLSConfig) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls.cert_file and tls.key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// close stops the health checks and drops idle connections; requests in
// flight finish on their connections.
func (u *upstream) close() {
	close(u.stop)
	u.done.Wait()
	u.transport.CloseIdleConnections()
	for _, ep := range u.endpoints {
		fastIdleClose(ep)
	}
}

// breakerState returns the breaker's state name, "" without one.
func (u *upstream) breakerState() string {
	if u.breaker == nil {
		return ""
	}
	return u.breaker.State().String()
}

// pick chooses an endpoint by weight among the healthy ones (all when none
// is healthy), avoiding avoid when another exists.
func (u *upstream) pick(avoid *endpoint) *endpoint {
	if len(u.endpoints) == 1 {
		return u.endpoints[0]
	}
	total := 0
	for _, e := range u.endpoints {
		if e.healthy.Load() && e != avoid {
			total += e.weight
		}
	}
	useAll := total == 0
	if useAll {
		for _, e := range u.endpoints {
			total += e.weight
		}
	}
	if total == 0 {
		return u.endpoints[0]
	}
	n := rand.IntN(total) //nolint:gosec // G404: load balancing needs no cryptographic randomness.
	for _, e := range u.endpoints {
		if !useAll && (!e.healthy.Load() || e == avoid) {
			continue
		}
		if n -= e.weight; n < 0 {
			return e
		}
	}
	return u.endpoints[0]
}

// RoundTrip sends req to an endpoint, retrying and tripping the breaker as
// configured.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.sem != nil {
		select {
		case u.sem <- struct{}{}:
		default:
			return nil, errSaturated
		}
	}
	release := func() {
		if u.sem != nil {
			<-u.sem
		}
	}
	var done func(error)
	if u.breaker != nil {
		d, err := u.breaker.Allow()
		if err != nil {
			release()
			return nil, errBreakerOpen
		}
		done = d
	}
	resp, err := u.roundTrip(req)
	if done != nil {
		switch {
		case err != nil && errors.Is(err, context.Canceled) && req.Context().Err() != nil:
			done(nil) // the client went away: says nothing about the upstream
		case err != nil:
			done(err)
		case resp.StatusCode >= 500:
			done(errors.New(resp.Status))
		default:
			done(nil)
		}
	}
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = withRelease(resp.Body, release)
	return resp, nil
}

// roundTrip is the retry loop.
func (u *upstream) roundTrip(req *http.Request) (*http.Response, error) {
	r := u.cfg.Retries
	attempts := r.Attempts
	idempotent := isIdempotent(req.Method) || r.NonIdempotent
	var body []byte
	if attempts > 1 && req.Body != nil && req.Body != http.NoBody {
		// Keep the body for a second attempt when it is small enough;
		// a larger one is streamed and never retried.
		b, err := io.ReadAll(io.LimitReader(req.Body, r.MaxBodyBytes+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > r.MaxBodyBytes {
			req.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
			attempts = 1
		} else {
			_ = req.Body.Close()
			body = b
		}
	}
	u.budget.deposit()
	var last *endpoint
	for try := 0; ; try++ {
		ep := u.pick(last)
		last = ep
		out := u.outRequest(req, ep, body)
		resp, err := u.try(out, ep)
		if try+1 >= attempts {
			return resp, err
		}
		reason, retry := u.retryable(resp, err, idempotent)
		if !retry || !u.budget.withdraw() {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		u.m.retries.WithLabelValues(u.cfg.Name, reason).Inc()
		if err := sleepCtx(req.Context(), backoff(r.BackoffBase, r.BackoffMax, try)); err != nil {
			return nil, err
		}
	}
}

// outRequest aims a copy of req at ep.
func (u *upstream) outRequest(req *http.Request, ep *endpoint, body []byte) *http.Request {
	out := new(http.Request)
	*out = *req
	ou := *req.URL
	ou.Scheme, ou.Host = ep.url.Scheme, ep.url.Host
	if p := ep.url.Path; p != "" && p != "/" {
		ou.Path = singleJoin(p, req.URL.Path)
		if req.URL.RawPath != "" {
			ou.RawPath = singleJoin(ep.url.EscapedPath(), req.URL.RawPath)
		}
	}
	out.URL = &ou
	if !u.cfg.PreserveHost {
		out.Host = ""
	}
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
	}
	return out
}

func singleJoin(a, b string) string {
	switch {
	case a[len(a)-1] == '/' && len(b) > 0 && b[0] == '/':
		return a + b[1:]
	case a[len(a)-1] != '/' && (len(b) == 0 || b[0] != '/'):
		return a + "/" + b
	}
	return a + b
}

// try makes one attempt on ep, through its HostClient when it can carry
// the request; per_try bounds the wait for the response headers.
func (u *upstream) try(out *http.Request, ep *endpoint) (*http.Response, error) {
	perTry := u.cfg.Timeouts.PerTry
	if perTry <= 0 {
		if ep.hc != nil && fastEligible(out) {
			return fastTry(out, ep)
		}
		return u.transport.RoundTrip(out)
	}
	ctx, cancel := context.WithCancel(out.Context())
	var fired atomic.Bool
	t := time.AfterFunc(perTry, func() { fired.Store(true); cancel() })
	resp, err := u.transport.RoundTrip(out.WithContext(ctx))
	t.Stop()
	if err != nil {
		cancel()
		if fired.Load() {
			return nil, errPerTry
		}
		return nil, err
	}
	resp.Body = withRelease(resp.Body, cancel)
	return resp, nil
}

// retryable says whether an attempt's outcome may be retried, and why. A
// connect failure is retried for every method: the request never left.
// Anything else may have reached the upstream, so it is retried only for
// idempotent requests (or when non_idempotent is configured).
func (u *upstream) retryable(resp *http.Response, err error, idempotent bool) (string, bool) {
	if err != nil {
		var op *net.OpError
		switch {
		case errors.As(err, &op) && op.Op == "dial":
			return "connect_failure", u.retryOn["connect_failure"]
		case errors.Is(err, errPerTry):
			return "timeout", idempotent && u.retryOn["timeout"]
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
			errors.Is(err, fasthttp.ErrConnectionClosed):
			return "reset", idempotent && u.retryOn["reset"]
		}
		return "", false
	}
	code := strconv.Itoa(resp.StatusCode)
	return code, idempotent && u.retryOn[code]
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// backoff is exponential with full jitter: a random wait between 0 and
// min(max, base·2^try). One line does not call for a backoff package.
func backoff(base, maxWait time.Duration, try int) time.Duration {
	d := base << min(try, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	return time.Duration(rand.Int64N(int64(d) + 1)) //nolint:gosec // G404: jitter needs no cryptographic randomness.
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// releaseBody runs release once when the body is closed.
type releaseBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// releaseConn is the releaseBody of a switched protocol's connection (a
// 101 response): ReverseProxy writes to it as well.
type releaseConn struct {
	*releaseBody
	w io.Writer
}

func (c releaseConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// withRelease wraps body so that closing it runs release once; a writable
// body (an upgraded connection) stays writable.
func withRelease(body io.ReadCloser, release func()) io.ReadCloser {
	rb := &releaseBody{ReadCloser: body, release: release}
	if w, ok := body.(io.ReadWriteCloser); ok {
		return releaseConn{releaseBody: rb, w: w}
	}
	return rb
}

// retryBudget caps retries at a share of requests (written here: no
// maintained Go package offers a retry budget apart from a whole proxy): every request deposits
// ratio tokens (up to a cap of ten seconds' worth of the floor), every retry
// takes one; minPerSecond retries a second are always allowed. So when an
// upstream fails wholesale, retries add at most ratio more load instead of
// multiplying it by the attempt count.
type retryBudget struct {
	mu        sync.Mutex
	ratio     float64
	tokens    float64
	cap       float64
	floor     int
	second    int64
	usedFloor int
	// unix returns the current second (a fixed one in tests).
	unix func() int64
}

func newRetryBudget(ratio float64, minPerSecond int) *retryBudget {
	return &retryBudget{ratio: ratio, floor: minPerSecond, cap: max(100, float64(minPerSecond)*10),
		unix: func() int64 { return time.Now().Unix() }}
}

func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.cap, b.tokens+b.ratio)
	b.mu.Unlock()
}

func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := b.unix(); now != b.second {
		b.second, b.usedFloor = now, 0
	}
	if b.usedFloor < b.floor {
		b.usedFloor++
		return true
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// healthLoop probes every endpoint each interval.
func (u *upstream) healthLoop() {
	defer u.done.Done()
	hc := u.cfg.HealthCheck
	client := &http.Client{Transport: u.transport, Timeout: hc.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
		}
		for _, ep := range u.endpoints {
			ok := probe(client, ep.url, hc.Path)
			u.record(ep, ok)
		}
	}
}

func probe(c *http.Client, base *url.URL, path string) bool {
	target := *base
	target.Path = singleJoin(base.Path+"/", path)
	target.Path = singleJoin("/", target.Path)
	resp, err := c.Get(target.String())
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func (u *upstream) record(ep *endpoint, ok bool) {
	hc := u.cfg.HealthCheck
	if ok {
		ep.fails, ep.oks = 0, ep.oks+1
		if !ep.healthy.Load() && ep.oks >= hc.HealthyAfter {
			ep.healthy.Store(true)
			u.log.InfoContext(context.Background(), "upstream endpoint is healthy again", "upstream", u.cfg.Name, "endpoint", ep.url.Host)
		}
	} else {
		ep.oks, ep.fails = 0, ep.fails+1
		if ep.healthy.Load() && ep.fails >= hc.UnhealthyAfter {
			ep.healthy.Store(false)
			u.log.WarnContext(context.Background(), "upstream endpoint failed its health checks", "upstream", u.cfg.Name, "endpoint", ep.url.Host)
		}
	}
	v := 0.0
	if ep.healthy.Load() {
		v = 1
	}
	u.m.endpointHealthy.WithLabelValues(u.cfg.Name, ep.url.Host).Set(v)
}

// healthyEndpoints lists the endpoints' hosts and health, for the admin
// API.
func (u *upstream) healthyEndpoints() map[string]bool {
	out := make(map[string]bool, len(u.endpoints))
	for _, e := range u.endpoints {
		out[e.url.String()] = e.healthy.Load()
	}
	return out
}

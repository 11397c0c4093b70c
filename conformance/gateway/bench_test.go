package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"

	"github.com/latchid/latch/builtin/gateway"
	throttlelocal "github.com/latchid/latch/builtin/throttle/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

const benchRoutes = `
token_cache_ttl: {{CACHE}}
issuers:
  - name: bench
    issuer: https://bench.example
    jwks_uri: {{JWKS}}
    audiences: [bench-api]
    algorithms: [RS256]
    allow_http: true
    allow_private_network: true
apis:
  - {name: plain, base_path: /plain, strip_base_path: true, upstream: up, security: {none: true}}
  - {name: jwt, base_path: /jwt, strip_base_path: true, upstream: up}
  - name: full
    base_path: /full
    strip_base_path: true
    upstream: up
    throttle: {rate: 1000000000, period: 1s, key: client}
    backend_jwt: {}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}"}]
`

// benchConns is the number of client connections of the load run.
const benchConns = 64

// result is one load run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	// cpu is the process's CPU time per request: load generator,
	// upstream and proxy together. Less sensitive than req/s to other
	// work on a shared machine; a variant's excess over the direct run is
	// what its proxy costs.
	cpu time.Duration
}

var (
	benchMu      sync.Mutex
	benchResults = map[string]result{}
)

// BenchmarkGatewayLoad is the loopback load run: 64 keep-alive connections
// send small GETs to the same upstream directly, through the plain proxy,
// with RS256 JWT validation (with and without the validated-token cache),
// and with JWT + throttling (throttle.local) + backend JWT. It reports
// requests/s, p50/p99 latency and the process's CPU time per request per
// variant, and prints each as a ratio to the direct run (the CPU time as
// its excess over the direct run: what the proxy costs, a figure a shared
// machine disturbs less than throughput).
func BenchmarkGatewayLoad(b *testing.B) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"n":42}`))
	}))
	up.Start()
	defer up.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	defer jwks.Close()

	// A bare httputil.ReverseProxy with a default Transport: the floor
	// of any net/http proxy on this machine.
	target, _ := url.Parse(up.URL)
	bare := httputil.NewSingleHostReverseProxy(target)
	bare.Transport = &http.Transport{MaxIdleConnsPerHost: 1024}
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()
	// A bare fasthttp proxy (server and HostClient, whole bodies
	// buffered): how much a fasthttp data path could gain.
	fastURL := startFastProxy(b, target.Host)
	cached := startBenchGateway(b, up.URL, jwks.URL, "30s")
	uncached := startBenchGateway(b, up.URL, jwks.URL, "-1s")
	tokens := make([]string, benchConns)
	for i := range tokens {
		now := time.Now()
		tokens[i] = signWith(b, jose.RS256, key, "k1", map[string]any{
			"iss": "https://bench.example", "aud": "bench-api", "sub": fmt.Sprintf("user-%d", i), "client_id": fmt.Sprintf("app-%d", i),
			"scope": "read", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
	}
	variants := []struct {
		name, url string
		auth      bool
	}{
		{"direct", up.URL + "/x", false},
		{"bare_reverseproxy", bareSrv.URL + "/x", false},
		{"bare_fasthttp_proxy", fastURL + "/x", false},
		{"proxy", cached + "/plain/x", false},
		{"jwt", cached + "/jwt/x", true},
		{"jwt_nocache", uncached + "/jwt/x", true},
		{"jwt_throttle_backendjwt", cached + "/full/x", true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var toks []string
			if v.auth {
				toks = tokens
			}
			r := load(b, v.url, toks, b.N)
			b.ReportMetric(r.rps, "req/s")
			b.ReportMetric(float64(r.p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(r.p99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(r.cpu.Nanoseconds())/1000, "cpu-µs/req")
			benchMu.Lock()
			benchResults[v.name] = r
			benchMu.Unlock()
		})
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	d, ok := benchResults["direct"]
	if !ok || d.rps == 0 {
		return
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-26s %10s %8s %9s %9s %8s %8s %9s %10s\n", "variant", "req/s", "÷direct", "p50", "p99", "p50÷dir", "p99÷dir",
		"cpu/req", "proxy cpu")
	for _, v := range variants {
		r, ok := benchResults[v.name]
		if !ok {
			continue
		}
		fmt.Fprintf(&sb, "%-26s %10.0f %8.2f %9s %9s %8.2f %8.2f %9s %10s\n", v.name, r.rps, r.rps/d.rps, r.p50, r.p99,
			float64(r.p50)/float64(d.p50), float64(r.p99)/float64(d.p99), r.cpu, r.cpu-d.cpu)
	}
	// Printed rather than logged, so that `make bench` records the table
	// in bin/bench/go.txt whatever -v says.
	fmt.Print(sb.String())
}

// startBenchGateway runs an in-process gateway and returns its URL.
func startBenchGateway(b *testing.B, upURL, jwksURL, cacheTTL string) string {
	b.Helper()
	dir := b.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tenant, err := st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, DisplayName: "Default", Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	box, err := secret.NewBox(mk)
	if err != nil {
		b.Fatal(err)
	}
	km := keys.NewManager(st, box, keys.Options{})
	if err := km.EnsureKeys(ctx, tenant.ID); err != nil {
		b.Fatal(err)
	}
	reg := extension.NewRegistry()
	reg.Register(throttlelocal.Module())
	set, err := reg.Load(ctx, []extension.InstanceConfig{{Module: throttlelocal.ID}}, extension.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close(ctx) })
	routes := strings.NewReplacer("{{UP}}", upURL, "{{JWKS}}", jwksURL, "{{CACHE}}", cacheTTL).Replace(benchRoutes)
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(ctx, gateway.Deps{
		KV: st, TenantID: tenant.ID, TenantName: tenant.Name, Keys: km, PublicURL: "https://latch.example",
		Throttler: set.Get,
	}, path)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Serve(sctx, ln, time.Second) }()
	b.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// load sends n GETs to url over benchConns keep-alive connections (worker i
// sends tokens[i] when tokens is set) and measures them.
func load(b *testing.B, target string, tokens []string, n int) result {
	b.Helper()
	per := max(1, n/benchConns)
	lat := make([][]time.Duration, benchConns)
	clients := make([]*http.Client, benchConns)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		// Warm the connection.
		_ = get(clients[i], target, tokenAt(tokens, i))
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls := make([]time.Duration, 0, per)
			tok := tokenAt(tokens, i)
			for range per {
				t0 := time.Now()
				if err := get(clients[i], target, tok); err != nil {
					b.Error(err)
					return
				}
				ls = append(ls, time.Since(t0))
			}
			lat[i] = ls
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return result{}
	}
	return result{
		rps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2],
		p99: all[min(len(all)-1, len(all)*99/100)],
		cpu: cpu / time.Duration(len(all)),
	}
}

func tokenAt(tokens []string, i int) string {
	if tokens == nil {
		return ""
	}
	return tokens[i%len(tokens)]
}

func get(c *http.Client, target, tok string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", target, resp.StatusCode)
	}
	return nil
}

// startFastProxy serves a minimal fasthttp reverse proxy to addr.
func startFastProxy(b *testing.B, addr string) string {
	b.Helper()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		req := &ctx.Request
		req.Header.Del("Connection")
		if err := client.Do(req, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The gateway role of the cluster test: every node also runs the API
// gateway on a listener of its own, with one API throttled by a
// throttle.redis instance configured without an address, so it uses the
// nodes' shared cache (cache.driver: redis).
const (
	// gatewayRate is the throttled API's limit: gatewayRate requests per
	// second with a burst of as many, for the whole cluster.
	gatewayRate = 20
	gatewayPath = "/limited/ping"
)

const clusterRoutes = `apis:
  - name: limited
    base_path: /limited
    upstream: echo
    security: {none: true}
    throttle: {rate: %d, period: 1s, key: api, throttler: throttle.redis}
upstreams:
  - name: echo
    endpoints: [{url: %q}]
`

// The extensions of the builtin defaults, and throttle.redis without an
// address of its own.
const clusterExtensions = `extensions:
  instances:
    - {name: userstore.local, module: userstore.local}
    - {name: authn.password, module: authn.password}
    - {name: authn.totp, module: authn.totp}
    - {name: claims.mapping, module: claims.mapping}
    - {name: throttle.local, module: throttle.local}
    - {name: throttle.redis, module: throttle.redis}
`

// redisAddr returns the test Redis's address, or "" when it is not set.
func redisAddr() string { return os.Getenv("LATCH_TEST_REDIS_ADDR") }

// gatewaySetup is the configuration of the nodes' gateway role.
type gatewaySetup struct {
	env   []string // shared by the nodes
	addrs []string // node i's gateway host:port
}

// newGatewaySetup writes the routes and configuration files for n nodes
// sharing the Redis at addr under a key prefix of this test's own.
func newGatewaySetup(t *testing.T, n int, addr string) *gatewaySetup {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pong")) }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, fmt.Appendf(nil, clusterRoutes, gatewayRate, up.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(cfg, []byte(clusterExtensions), 0o600); err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	g := &gatewaySetup{env: []string{
		"LATCH_CONFIG=" + cfg,
		"LATCH_GATEWAY_ROUTES_FILE=" + routes,
		"LATCH_CACHE_DRIVER=redis",
		"LATCH_CACHE_ADDR=" + addr,
		"LATCH_CACHE_KEY_PREFIX=latch-cluster-test:" + hex.EncodeToString(suffix) + ":",
	}}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.addrs = append(g.addrs, ln.Addr().String())
		_ = ln.Close()
	}
	return g
}

// perNode is node i's own gateway listener.
func (g *gatewaySetup) perNode(i int) []string {
	return []string{"LATCH_GATEWAY_LISTEN=" + g.addrs[i]}
}

// gatewayLoad drives the throttled API round robin over the nodes'
// gateways, as a load balancer would, skipping a gateway whose
// connection failed.
type gatewayLoad struct {
	addrs []string
	down  []atomic.Bool

	ok, refused, interrupted atomic.Int64
	mu                       sync.Mutex
	first, last              time.Time
	other                    []string
}

func newGatewayLoad(addrs []string) *gatewayLoad {
	return &gatewayLoad{addrs: addrs, down: make([]atomic.Bool, len(addrs))}
}

func (g *gatewayLoad) worker(ctx context.Context, id int) {
	client := &http.Client{Timeout: 5 * time.Second}
	for i := id; ctx.Err() == nil; i++ {
		k := i % len(g.addrs)
		if g.down[k].Load() {
			continue
		}
		start := time.Now()
		resp, err := client.Get("http://" + g.addrs[k] + gatewayPath)
		end := time.Now()
		g.mu.Lock()
		if g.first.IsZero() || start.Before(g.first) {
			g.first = start
		}
		if end.After(g.last) {
			g.last = end
		}
		g.mu.Unlock()
		if err != nil {
			g.down[k].Store(true) // the node died; the balancer takes it out
			g.interrupted.Add(1)
			continue
		}
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			g.ok.Add(1)
		case http.StatusTooManyRequests:
			g.refused.Add(1)
		default:
			g.mu.Lock()
			if len(g.other) < 10 {
				g.other = append(g.other, fmt.Sprintf("gateway %d: status %d", k, resp.StatusCode))
			}
			g.mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check asserts that the cluster as a whole let through no more than one
// limit allows over the traffic's span (a burst, then gatewayRate per
// second), not one per node, and not much less either.
func (g *gatewayLoad) check(t *testing.T, nodes int) {
	t.Helper()
	span := g.last.Sub(g.first)
	limit := gatewayRate + int64(float64(gatewayRate)*span.Seconds()) + 1
	ok, refused := g.ok.Load(), g.refused.Load()
	t.Logf("throttled gateway traffic over %s across %d nodes: %d allowed, %d refused (429), %d interrupted by the kill; one cluster-wide limit allows at most %d, one limit per node would allow up to %d",
		span.Round(time.Millisecond), nodes, ok, refused, g.interrupted.Load(), limit, int64(nodes)*limit)
	for _, o := range g.other {
		t.Errorf("unexpected answer: %s", o)
	}
	if ok > limit {
		t.Errorf("%d requests allowed, more than the cluster-wide limit's %d", ok, limit)
	}
	if refused == 0 {
		t.Error("no request was refused: the traffic never reached the limit")
	}
	// Interrupted requests may have spent a unit without being counted.
	if floor := limit/2 - g.interrupted.Load(); ok < floor {
		t.Errorf("only %d requests allowed, fewer than %d: the limit is not being refilled", ok, floor)
	}
}

package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestGateway builds a gateway over routes (with {{UP}} and {{SLOW}}
// replaced) and returns its handler's test server.
func newTestGateway(t *testing.T, routes string) (*Gateway, *httptest.Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), Deps{}, path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); g.rt.Load().close() })
	return g, srv
}

type seen struct {
	mu    sync.Mutex
	paths []string
	hdrs  []http.Header
}

func (s *seen) last() (string, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.paths) == 0 {
		return "", nil
	}
	return s.paths[len(s.paths)-1], s.hdrs[len(s.hdrs)-1]
}

func newEcho(t *testing.T) (*httptest.Server, *seen) {
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.EscapedPath())
		s.hdrs = append(s.hdrs, r.Header.Clone())
		s.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/slow") {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		w.Header().Set("Server", "echo")
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (result, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return result{StatusCode: resp.StatusCode, Header: resp.Header}, string(b)
}

// result is what do reports of a response (its body already closed).
type result struct {
	StatusCode int
	Header     http.Header
}

func TestProxyBehaviour(t *testing.T) {
	up, s := newEcho(t)
	_, gw := newTestGateway(t, strings.ReplaceAll(`
apis:
  - name: shop
    base_path: /shop
    strip_base_path: true
    upstream: up
    security: {none: true}
    max_body_bytes: 10
    request_headers: {add: {X-Gateway: latch}, remove: [Cookie]}
    response_headers: {remove: [Server], add: {X-Served-By: latch}}
    routes:
      - {path: /items/*, methods: [GET]}
      - {path: /legacy/*, rewrite: /v2/}
      - {path: /upload, methods: [POST]}
      - {path: /slow}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}/base"}]
    timeouts: {request: 200ms}
`, "{{UP}}", up.URL))

	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		upPath                   string
	}{
		{name: "prefix route", method: "GET", path: "/shop/items/7", status: 200, upPath: "/base/items/7"},
		{name: "rewrite", method: "GET", path: "/shop/legacy/a/b", status: 200, upPath: "/base/v2/a/b"},
		{name: "encoded slash kept", method: "GET", path: "/shop/items/a%2Fb", status: 200, upPath: "/base/items/a%2Fb"},
		{name: "no API", method: "GET", path: "/nope", status: 404},
		{name: "not under the base", method: "GET", path: "/shopping", status: 404},
		{name: "method not allowed", method: "DELETE", path: "/shop/items/7", status: 405},
		{name: "body within the limit", method: "POST", path: "/shop/upload", body: "0123456789", status: 200, upPath: "/base/upload"},
		{name: "body over the limit", method: "POST", path: "/shop/upload", body: "0123456789x", status: 413},
		{name: "upstream too slow", method: "GET", path: "/shop/slow", status: 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, out := do(t, tt.method, gw.URL+tt.path, body, map[string]string{"Cookie": "s=1"})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, out, tt.status)
			}
			if tt.status >= 400 && !strings.Contains(out, `"code"`) {
				t.Fatalf("error body is not the JSON error: %s", out)
			}
			if tt.upPath == "" {
				return
			}
			p, h := s.last()
			if p != tt.upPath || h.Get("X-Gateway") != "latch" || h.Get("Cookie") != "" || h.Get("X-Forwarded-For") == "" {
				t.Fatalf("upstream saw %s %v", p, h)
			}
			if resp.Header.Get("Server") != "" || resp.Header.Get("X-Served-By") != "latch" {
				t.Fatalf("response headers %v", resp.Header)
			}
		})
	}
}

func TestConcurrencyCapAndWeights(t *testing.T) {
	var a, b atomic.Int64
	release := make(chan struct{})
	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Add(1)
		if r.URL.Path == "/hold" {
			<-release
		}
	}))
	defer upA.Close()
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.Add(1) }))
	defer upB.Close()
	_, gw := newTestGateway(t, `
apis:
  - {name: w, base_path: /w, strip_base_path: true, upstream: weighted, security: {none: true}}
  - {name: c, base_path: /c, strip_base_path: true, upstream: capped, security: {none: true}}
upstreams:
  - name: weighted
    endpoints: [{url: "`+upA.URL+`", weight: 3}, {url: "`+upB.URL+`", weight: 0}]
  - name: capped
    max_concurrent: 1
    endpoints: [{url: "`+upA.URL+`"}]
`)
	for range 20 {
		if resp, _ := do(t, "GET", gw.URL+"/w/x", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if b.Load() != 0 || a.Load() != 20 {
		t.Fatalf("weight 0 endpoint got %d of 20 requests", b.Load())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = do(t, "GET", gw.URL+"/c/hold", nil, nil)
	}()
	for a.Load() < 21 {
		time.Sleep(5 * time.Millisecond)
	}
	if resp, body := do(t, "GET", gw.URL+"/c/x", nil, nil); resp.StatusCode != 503 || !strings.Contains(body, "concurrency") {
		t.Fatalf("over the cap: %d %s", resp.StatusCode, body)
	}
	close(release)
	<-done
	if resp, _ := do(t, "GET", gw.URL+"/c/x", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after the held request finished: %d", resp.StatusCode)
	}
}

func TestHealthChecks(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !healthy.Load() {
				w.WriteHeader(500)
			}
			return
		}
		hits.Add(1)
	}))
	defer sick.Close()
	good := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer good.Close()
	g, gw := newTestGateway(t, `
apis:
  - {name: h, base_path: /h, upstream: up, security: {none: true}}
upstreams:
  - name: up
    endpoints: [{url: "`+sick.URL+`"}, {url: "`+good.URL+`"}]
    health_check: {path: /healthz, interval: 10ms, unhealthy_after: 2, healthy_after: 1}
`)
	up := g.rt.Load().upstreams["up"]
	waitFor(t, "the sick endpoint is taken out", func() bool { return !up.endpoints[0].healthy.Load() })
	before := hits.Load()
	for range 20 {
		do(t, "GET", gw.URL+"/h/x", nil, nil)
	}
	if hits.Load() != before {
		t.Fatal("an unhealthy endpoint got traffic")
	}
	healthy.Store(true)
	waitFor(t, "the endpoint is back", func() bool { return up.endpoints[0].healthy.Load() })
}

func TestReloadRefusesBadConfig(t *testing.T) {
	up, _ := newEcho(t)
	routes := `
apis:
  - {name: a, base_path: /a, upstream: up, security: {none: true}}
upstreams:
  - {name: up, endpoints: [{url: "` + up.URL + `"}]}
`
	g, gw := newTestGateway(t, routes)
	if err := os.WriteFile(g.path, []byte(routes+"  - {name: up, endpoints: []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := g.Reload(t.Context())
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Reload = %v, want ErrInvalidConfig", err)
	}
	if resp, _ := do(t, "GET", gw.URL+"/a/x", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after a refused reload: %d", resp.StatusCode)
	}
	if err := os.WriteFile(g.path, []byte(strings.Replace(routes, "/a,", "/b,", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, "GET", gw.URL+"/b/x", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after a good reload: %d", resp.StatusCode)
	}
	if _, err := New(t.Context(), Deps{}, filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("New accepted a missing routes file")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

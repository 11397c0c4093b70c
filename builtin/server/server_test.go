package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/fault"
)

type harness struct {
	url    string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	ready  *atomic.Bool
}

// start serves a server with a few test routes on a loopback port.
func start(t *testing.T, routes func(app *fiber.App)) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	ready := &atomic.Bool{}
	ready.Store(true)
	log := slog.New(slog.DiscardHandler)
	s, err := server.New(server.Config{
		Listen: "127.0.0.1:0", BodyLimit: 1 << 10, ShutdownTimeout: 5 * time.Second,
	}, log, reg, func(context.Context) error {
		if !ready.Load() {
			return errors.New("store down")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes != nil {
		routes(s.App())
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{url: "http://" + ln.Addr().String(), reg: reg, cancel: cancel, done: make(chan error, 1), ready: ready}
	go func() { h.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return h
}

// reply is what a test needs of a response, read in full.
type reply struct {
	StatusCode int
	Header     http.Header
}

func get(t *testing.T, url string, hdr ...string) (reply, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header}, string(b)
}

func TestProbes(t *testing.T) {
	h := start(t, nil)
	if resp, _ := get(t, h.url+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if resp, _ := get(t, h.url+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	h.ready.Store(false)
	resp, body := get(t, h.url+"/readyz")
	if resp.StatusCode != 503 || strings.Contains(body, "store down") {
		t.Fatalf("readyz with the store down: %d %s (the cause must not leak)", resp.StatusCode, body)
	}
	if resp, _ := get(t, h.url+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz must not depend on the store: %d", resp.StatusCode)
	}
}

func TestRequestID(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct {
		name, in string
		kept     bool
	}{
		{"well-formed id is kept", "abc-123_x.y", true},
		{"absent id is generated", "", false},
		{"log-forging id is replaced", "a\nb", false},
		{"over-long id is replaced", strings.Repeat("a", 65), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.in != "" && !strings.Contains(tc.in, "\n") {
				hdr = []string{"X-Request-Id", tc.in}
			}
			resp, _ := get(t, h.url+"/healthz", hdr...)
			got := resp.Header.Get("X-Request-Id")
			if tc.kept && got != tc.in {
				t.Fatalf("id %q, want %q kept", got, tc.in)
			}
			if !tc.kept && (got == "" || got == tc.in) {
				t.Fatalf("id %q: want a new one", got)
			}
		})
	}
}

func TestErrorsAreJSON(t *testing.T) {
	h := start(t, func(app *fiber.App) {
		app.Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })
		app.Get("/fault", func(*fiber.Ctx) error {
			return fault.RateLimited.WithMessage("slow down").WithRetryAfter(1500 * time.Millisecond)
		})
		app.Get("/plain", func(*fiber.Ctx) error { return errors.New("secret internal detail") })
	})
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/boom", 500, "internal"},
		{"/fault", 429, "rate_limited"},
		{"/plain", 500, "internal"},
		{"/missing", 404, "not_found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, h.url+tc.path)
			var e server.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("not JSON: %s", body)
			}
			if resp.StatusCode != tc.status || e.Code != tc.code || e.RequestID == "" {
				t.Fatalf("got %d %+v", resp.StatusCode, e)
			}
			if strings.Contains(body, "secret internal detail") || strings.Contains(body, "kaboom") {
				t.Fatalf("internal detail leaked: %s", body)
			}
			if tc.path == "/fault" && resp.Header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q, want 2", resp.Header.Get("Retry-After"))
			}
		})
	}
	// The panic hurt only its own request.
	if resp, _ := get(t, h.url+"/healthz"); resp.StatusCode != 200 {
		t.Fatal("server unhealthy after a handler panic")
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	h := start(t, func(app *fiber.App) {
		app.Get("/things/:id", func(c *fiber.Ctx) error { return c.SendString(c.Params("id")) })
	})
	for _, id := range []string{"a", "b", "c"} {
		_, _ = get(t, h.url+"/things/"+id)
	}
	_, _ = get(t, h.url+"/no/such/path")
	if got := testutil.ToFloat64(counter(t, h.reg, "GET", "/things/:id", "200")); got != 3 {
		t.Errorf("route-pattern counter %v, want 3", got)
	}
	if got := testutil.ToFloat64(counter(t, h.reg, "GET", "unmatched", "404")); got != 1 {
		t.Errorf("unmatched counter %v, want 1", got)
	}
	resp, body := get(t, h.url+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(body, `latch_http_requests_total{method="GET",route="/things/:id",status="200"} 3`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `route="/things/a"`) {
		t.Fatal("raw paths used as labels")
	}
}

func counter(t *testing.T, reg *prometheus.Registry, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "latch_http_requests_total" {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"method": labels[0], "route": labels[1], "status": labels[2]}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			c.Add(m.GetCounter().GetValue())
		}
	}
	return c
}

// TestShutdownDrainsInFlight: a request already being served when shutdown
// starts completes normally; new connections are refused.
func TestShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := start(t, func(app *fiber.App) {
		app.Get("/slow", func(c *fiber.Ctx) error {
			close(entered)
			<-release
			return c.SendString("finished")
		})
	})
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(h.url + "/slow")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	<-entered
	h.cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-h.done:
		t.Fatalf("server stopped before the in-flight request finished: %v", err)
	default:
	}
	close(release)
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	h.done <- nil // for the cleanup
	if resp, err := http.Get(h.url + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("server still accepting after shutdown")
	}
}

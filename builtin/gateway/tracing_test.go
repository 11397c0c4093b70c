package gateway

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTracing records the spans in memory: a server span continuing the
// caller's traceparent, a client span under it, and the upstream receiving
// the client span's context in its traceparent header.
func TestTracing(t *testing.T) {
	var mu sync.Mutex
	var gotParent string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotParent = r.Header.Get("Traceparent")
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/boom") {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	path := filepath.Join(t.TempDir(), "routes.yaml")
	routes := strings.ReplaceAll(`
apis: [{name: traced, base_path: /t, upstream: up, security: {none: true}}]
upstreams: [{name: up, endpoints: [{url: "{{UP}}"}]}]
`, "{{UP}}", up.URL)
	if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), Deps{TracerProvider: tp}, path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); g.rt.Load().close() })

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const callerSpan = "00f067aa0ba902b7"
	r, body := do(t, http.MethodGet, srv.URL+"/t/x", nil, map[string]string{"Traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
	if r.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("%d %s", r.StatusCode, body)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %+v", len(spans), spans)
	}
	var server, client tracetest.SpanStub
	for _, s := range spans {
		switch s.SpanKind {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			client = s
		}
	}
	if server.Name != "gateway traced" || server.SpanContext.TraceID().String() != callerTrace || server.Parent.SpanID().String() != callerSpan || !server.Parent.IsRemote() {
		t.Fatalf("server span %+v", server)
	}
	if client.Name != "upstream up" || client.Parent.SpanID() != server.SpanContext.SpanID() || client.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Fatalf("client span %+v", client)
	}
	mu.Lock()
	parent := gotParent
	mu.Unlock()
	if want := "00-" + callerTrace + "-" + client.SpanContext.SpanID().String() + "-01"; parent != want {
		t.Fatalf("upstream traceparent %q, want %q", parent, want)
	}

	// A new trace starts without a caller's traceparent; a 5xx marks the
	// spans as errors.
	exp.Reset()
	if r, _ := do(t, http.MethodGet, srv.URL+"/t/boom", nil, nil); r.StatusCode != http.StatusBadGateway {
		t.Fatalf("boom: %d", r.StatusCode)
	}
	spans = exp.GetSpans()
	if len(spans) != 2 || spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() || spans[0].SpanContext.TraceID().String() == callerTrace {
		t.Fatalf("spans of a new trace: %+v", spans)
	}
	for _, s := range spans {
		if s.Status.Code.String() != "Error" {
			t.Fatalf("span %s status %v", s.Name, s.Status)
		}
	}
}

func TestTracingConfig(t *testing.T) {
	for _, c := range []struct{ tracing, want string }{
		{`{exporter: jaeger}`, "tracing.exporter"},
		{`{exporter: otlp_http}`, "tracing.endpoint"},
		{`{exporter: otlp_http, endpoint: "ftp://x"}`, "tracing.endpoint"},
		{`{exporter: otlp_http, endpoint: "http://127.0.0.1:4318/v1/traces", sample_ratio: 2}`, "sample_ratio"},
	} {
		if _, err := ParseConfig([]byte("tracing: " + c.tracing + "\n")); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.tracing, err, c.want)
		}
	}
	// An OTLP exporter starts (it sends in the background; a collector
	// that is down costs no request).
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte("tracing: {exporter: otlp_http, endpoint: \"http://127.0.0.1:1/v1/traces\", sample_ratio: 0.5}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), Deps{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if tr := g.tr.Load(); tr == nil || tr.cfg.SampleRatio != 0.5 || tr.cfg.ServiceName != "latch-gateway" {
		t.Fatalf("tracing %+v", tr)
	}
	if err := os.WriteFile(path, []byte("tracing: {exporter: none}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(t.Context()); err != nil || g.tr.Load() != nil {
		t.Fatalf("turning tracing off: %v %+v", err, g.tr.Load())
	}
}

package gateway

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig exports OpenTelemetry spans of the proxied requests: a
// server span per request (continuing the caller's W3C traceparent) and a
// client span per upstream call, whose context goes to the upstream in the
// traceparent header.
type TracingConfig struct {
	// Exporter is "none" (default: no spans; the caller's traceparent
	// passes through untouched) or "otlp_http".
	Exporter string `yaml:"exporter"`
	// Endpoint is the OTLP/HTTP traces URL
	// ("http://collector:4318/v1/traces").
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces sampled (a caller's sampled
	// flag is followed). Default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names the gateway in traces. Default "latch-gateway".
	ServiceName string `yaml:"service_name"`
}

// Tracing exporters.
const (
	ExporterNone     = "none"
	ExporterOTLPHTTP = "otlp_http"
)

func (t *TracingConfig) validate() error {
	if t == nil {
		return nil
	}
	switch t.Exporter {
	case "", ExporterNone:
		t.Exporter = ExporterNone
	case ExporterOTLPHTTP:
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("tracing.endpoint: must be the http(s) URL of an OTLP/HTTP traces endpoint")
		}
	default:
		return fmt.Errorf("tracing.exporter: must be %q or %q", ExporterNone, ExporterOTLPHTTP)
	}
	if t.SampleRatio == 0 {
		t.SampleRatio = 1
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		return fmt.Errorf("tracing.sample_ratio: must be between 0 and 1")
	}
	if t.ServiceName == "" {
		t.ServiceName = "latch-gateway"
	}
	return nil
}

// propagator reads and writes W3C trace context headers.
var propagator = propagation.TraceContext{}

// tracing is the gateway's tracer provider of the current configuration.
type tracing struct {
	cfg      TracingConfig
	provider trace.TracerProvider
	shutdown func(context.Context) error
	tracer   trace.Tracer
}

// newTracing builds the exporter of cfg (nil: no tracing).
func newTracing(ctx context.Context, cfg *TracingConfig) (*tracing, error) {
	if cfg == nil || cfg.Exporter == ExporterNone {
		return nil, nil
	}
	u, _ := url.Parse(cfg.Endpoint) // validated
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(u.Path)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: building the OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))))
	return &tracing{cfg: *cfg, provider: tp, shutdown: tp.Shutdown, tracer: tp.Tracer("github.com/latchid/latch/builtin/gateway")}, nil
}

func tracingOf(tp trace.TracerProvider) *tracing {
	return &tracing{provider: tp, tracer: tp.Tracer("github.com/latchid/latch/builtin/gateway")}
}

// endSpan ends span with the response status.
func endSpan(span trace.Span, status int) {
	if status == 0 {
		status = 200
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
	span.End()
}

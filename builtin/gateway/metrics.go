package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/extension"
)

// metrics are the gateway's Prometheus metrics, all prefixed
// latch_gateway_.
type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	throttled       *prometheus.CounterVec
	denied          *prometheus.CounterVec
	retries         *prometheus.CounterVec
	breakerState    *prometheus.GaugeVec
	endpointHealthy *prometheus.GaugeVec
	jwksFetches     *prometheus.CounterVec
	reloads         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "requests_total",
			Help: "Requests by API, route, upstream and response status.",
		}, []string{"api", "route", "upstream", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "Time from request to response headers, by API, route and upstream.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api", "route", "upstream"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "throttled_total",
			Help: "Requests refused by a rate limit, by API.",
		}, []string{"api"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "denied_total",
			Help: "Requests refused by a deny policy, by API and policy kind.",
		}, []string{"api", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "upstream_retries_total",
			Help: "Retried upstream attempts, by upstream and reason.",
		}, []string{"upstream", "reason"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "breaker_state",
			Help: "Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
		endpointHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "endpoint_healthy",
			Help: "1 when an upstream endpoint passes its health checks.",
		}, []string{"upstream", "endpoint"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "jwks_fetches_total",
			Help: "JWK Set fetches by issuer and result (ok, error).",
		}, []string{"issuer", "result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "gateway", Name: "config_reloads_total",
			Help: "Routes file reloads by result (ok, error).",
		}, []string{"result"}),
	}
	var err error
	if m.requests, err = extension.RegisterCollector(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = extension.RegisterCollector(reg, m.duration); err != nil {
		return nil, err
	}
	if m.throttled, err = extension.RegisterCollector(reg, m.throttled); err != nil {
		return nil, err
	}
	if m.denied, err = extension.RegisterCollector(reg, m.denied); err != nil {
		return nil, err
	}
	if m.retries, err = extension.RegisterCollector(reg, m.retries); err != nil {
		return nil, err
	}
	if m.breakerState, err = extension.RegisterCollector(reg, m.breakerState); err != nil {
		return nil, err
	}
	if m.endpointHealthy, err = extension.RegisterCollector(reg, m.endpointHealthy); err != nil {
		return nil, err
	}
	if m.jwksFetches, err = extension.RegisterCollector(reg, m.jwksFetches); err != nil {
		return nil, err
	}
	if m.reloads, err = extension.RegisterCollector(reg, m.reloads); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a second gateway in one process, as in tests).

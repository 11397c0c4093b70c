package wasmhost

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds, the "kind" label of latch_wasm_call_errors_total and the
// "reason" label of latch_wasm_instances_discarded_total.
const (
	kindTrap        = "trap"
	kindTimeout     = "timeout"
	kindCanceled    = "canceled"
	kindMemoryLimit = "memory_limit"
	kindBadReply    = "bad_reply"
	kindBadHostCall = "bad_host_call"
	kindHostCall    = "host_call"
	kindTooLarge    = "too_large"
	kindUnavailable = "unavailable"
	kindClosed      = "closed"
	kindInstantiate = "instantiate"
)

// errorKinds lists every kind, so that each module's counters exist (at 0)
// from the start.
var errorKinds = []string{
	kindTrap, kindTimeout, kindCanceled, kindMemoryLimit, kindBadReply,
	kindBadHostCall, kindHostCall, kindTooLarge, kindUnavailable, kindClosed, kindInstantiate,
}

// metrics are the host's collectors; every series is labelled by module id.
type metrics struct {
	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	instances *prometheus.GaugeVec
	idle      *prometheus.GaugeVec
	discarded *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "calls_total",
			Help: "Calls into WASM modules (latch_handle), by module.",
		}, []string{"module"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "call_errors_total",
			Help: "Calls into WASM modules that failed, by module and kind (trap, timeout, bad_reply, ...).",
		}, []string{"module", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "call_duration_seconds",
			Help: "Duration of calls into WASM modules, waiting for an instance included.",
			Buckets: []float64{
				.000005, .00001, .000025, .00005, .0001, .00025, .0005,
				.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5,
			},
		}, []string{"module"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "instances",
			Help: "Live instances of a WASM module (idle and busy).",
		}, []string{"module"}),
		idle: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "instances_idle",
			Help: "Idle instances of a WASM module, ready for a call.",
		}, []string{"module"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "wasm", Name: "instances_discarded_total",
			Help: "Instances of a WASM module thrown away after a failed call, by reason (the error kind).",
		}, []string{"module", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors()[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("registering wasm host metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.calls, m.errors, m.duration, m.instances, m.idle, m.discarded}
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

// moduleMetrics are one module's series, looked up once at load so that a
// call touches no label maps.
type moduleMetrics struct {
	calls     prometheus.Counter
	duration  prometheus.Observer
	errors    map[string]prometheus.Counter // by kind; read-only after load
	instances prometheus.Gauge
	idle      prometheus.Gauge
	discarded map[string]prometheus.Counter // by reason; read-only after load
}

func (m *metrics) forModule(id string) *moduleMetrics {
	mm := &moduleMetrics{
		calls:     m.calls.WithLabelValues(id),
		duration:  m.duration.WithLabelValues(id),
		errors:    map[string]prometheus.Counter{},
		instances: m.instances.WithLabelValues(id),
		idle:      m.idle.WithLabelValues(id),
		discarded: map[string]prometheus.Counter{},
	}
	for _, k := range errorKinds {
		mm.errors[k] = m.errors.WithLabelValues(id, k)
		mm.discarded[k] = m.discarded.WithLabelValues(id, k)
	}
	return mm
}

// forget deletes every series of module id.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"module": id}
	m.calls.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.instances.DeletePartialMatch(l)
	m.idle.DeletePartialMatch(l)
	m.discarded.DeletePartialMatch(l)
}

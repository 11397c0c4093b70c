package extension_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/extension"
)

// TestRegisterCollector returns the collector already registered under the
// same description, so a reloaded instance counts into the old series,
// and refuses a clashing one of another shape.
func TestRegisterCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "latch_test_total", Help: "test"}
	first, err := extension.RegisterCollector(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	first.Inc()
	second, err := extension.RegisterCollector(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatal("the second registration did not return the first collector")
	}
	if _, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(opts, []string{"kind"})); err == nil {
		t.Fatal("a clashing collector of another shape was accepted")
	}
}

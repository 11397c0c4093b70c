package extension

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterCollector registers c on reg, or returns the collector already
// registered under the same description. Extensions register their own
// metrics when provisioned, and a reloaded configuration provisions the
// new instance before the old one is closed: both then count into the
// same series instead of failing on the duplicate.
func RegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("registering metrics: %w", err)
}

// Package instrumented wraps a store.Store so that every call is timed and
// every failure counted in Prometheus, by method:
//
//	latch_store_call_duration_seconds{method}   histogram
//	latch_store_errors_total{method}            counter (store.ErrNotFound is not a failure)
//
// The wrapper is generated from the store.Store interface (see
// internal/gen), so it follows every change to the contract.
package instrumented

//go:generate go run ./internal/gen

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/store"
)

// Store is an instrumented store.Store.
type Store struct {
	next     store.Store
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// Wrap instruments next, registering its metrics on reg.
func Wrap(next store.Store, reg prometheus.Registerer) (*Store, error) {
	s := &Store{
		next: next,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "store", Name: "call_duration_seconds",
			Help:    "Latency of store calls, by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "store", Name: "errors_total",
			Help: "Store calls that failed, by method (not-found answers are not failures).",
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{s.duration, s.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() store.Store { return s.next }

func (s *Store) observe(method string, start time.Time, err error) {
	s.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		s.errors.WithLabelValues(method).Inc()
	}
}

// Migrate runs the wrapped store's migrations.
func (s *Store) Migrate(ctx context.Context) error { return s.next.Migrate(ctx) }

// Ping times the wrapped store's Ping.
func (s *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.next.Ping(ctx)
	s.observe("Ping", start, err)
	return err
}

// Close closes the wrapped store.
func (s *Store) Close() error { return s.next.Close() }

var _ store.Store = (*Store)(nil)

// DeleteExpiredKV forwards to the wrapped store when it implements
// store.KVPurger; otherwise it purges nothing.
func (s *Store) DeleteExpiredKV(ctx context.Context, t time.Time) (int, error) {
	p, ok := s.next.(store.KVPurger)
	if !ok {
		return 0, nil
	}
	start := time.Now()
	n, err := p.DeleteExpiredKV(ctx, t)
	s.observe("DeleteExpiredKV", start, err)
	return n, err
}

var _ store.KVPurger = (*Store)(nil)

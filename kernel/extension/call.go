package extension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/fault"
)

// Metrics records every call into an extension, labelled by extension (the
// module id), kind and op:
//
//	latch_extension_calls_total             counter
//	latch_extension_errors_total            counter (calls that returned an error, panics included)
//	latch_extension_panics_total            counter (calls that panicked)
//	latch_extension_call_duration_seconds   histogram
type Metrics struct {
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	panics   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them on reg (never the global
// default registry unless the caller passes it).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"extension", "kind", "op"}
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "extension", Name: "calls_total",
			Help: "Calls into extensions.",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "extension", Name: "errors_total",
			Help: "Calls into extensions that returned an error or panicked.",
		}, labels),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "extension", Name: "panics_total",
			Help: "Calls into extensions that panicked.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "extension", Name: "call_duration_seconds",
			Help:    "Duration of calls into extensions.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.panics, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering extension metrics: %w", err)
		}
	}
	return m, nil
}

type opObservers struct {
	calls, errors, panics prometheus.Counter
	duration              prometheus.Observer
}

func (i *Instance) observersFor(op string) *opObservers {
	if o, ok := i.observers.Load(op); ok {
		return o.(*opObservers)
	}
	lv := []string{string(i.id), string(i.kind), op}
	o := &opObservers{
		calls:    i.metrics.calls.WithLabelValues(lv...),
		errors:   i.metrics.errors.WithLabelValues(lv...),
		panics:   i.metrics.panics.WithLabelValues(lv...),
		duration: i.metrics.duration.WithLabelValues(lv...),
	}
	actual, _ := i.observers.LoadOrStore(op, o)
	return actual.(*opObservers)
}

// ErrPanicked is matched (errors.Is) by the error Call returns when the
// extension panicked.
var ErrPanicked = errors.New("extension panicked")

// PanicError is the cause of the fault Call returns for a panic: the value
// and the goroutine's stack, for logs.
type PanicError struct {
	// Value is what the extension panicked with.
	Value any
	// Stack is the stack trace at the panic.
	Stack []byte
}

// Error describes the panic without the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%s: %v", ErrPanicked, e.Value)
}

// Is makes errors.Is(err, ErrPanicked) hold.
func (e *PanicError) Is(target error) bool {
	return target == ErrPanicked
}

// Call runs fn, which calls the instance's op ("authenticate",
// "find_users", ... the abi.Op… names), and is the one way the kernel calls
// into an extension. It
//
//   - returns a context error without calling fn when ctx is already done;
//   - records the call, its duration and any error in the instance's
//     Metrics;
//   - recovers a panic in fn into a fault.Internal error (matching
//     ErrPanicked) and logs it with its stack, so an extension bug fails the
//     request instead of the server;
//   - prefixes a returned error with "plugin/<id>: calling <op>: " (adding
//     the instance name when it differs from the id), wrapping it with %w so
//     errors.Is and errors.As still see the extension's own error.
//
// An outcome that is not a failure (not authenticated, a grant that
// declines) is a result, not an error: fn should capture it and return nil.
func Call(ctx context.Context, inst *Instance, op string, fn func(ctx context.Context) error) (err error) {
	if err := ctx.Err(); err != nil {
		return inst.wrap(op, err)
	}
	var o *opObservers
	if inst.metrics != nil {
		o = inst.observersFor(op)
		o.calls.Inc()
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			pe := &PanicError{Value: r, Stack: debug.Stack()}
			inst.logger.ErrorContext(ctx, "extension panicked",
				slog.String("op", op), slog.Any("panic", r), slog.String("stack", string(pe.Stack)))
			err = inst.wrap(op, fault.Internal.WithCause(pe))
			if o != nil {
				o.panics.Inc()
			}
		}
		if o != nil {
			o.duration.Observe(time.Since(start).Seconds())
			if err != nil {
				o.errors.Inc()
			}
		}
	}()
	if err := fn(ctx); err != nil {
		return inst.wrap(op, err)
	}
	return nil
}

func (i *Instance) wrap(op string, err error) error {
	if i.name == string(i.id) {
		return fmt.Errorf("plugin/%s: calling %s: %w", i.id, op, err)
	}
	return fmt.Errorf("plugin/%s: calling %s on %q: %w", i.id, op, i.name, err)
}

var _ error = (*PanicError)(nil)

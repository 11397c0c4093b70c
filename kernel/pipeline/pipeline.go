// Package pipeline runs a request through the kernel's stages in a fixed
// order. The order is data, written in one place (Chain.order in
// stages.go): the identity chain
//
//	ingress -> throttle -> authenticate -> resolve_user -> map_claims
//	        -> authorize -> issue -> provision -> audit
//
// and the gateway's short chain
//
//	throttle -> validate_token -> map_claims -> authorize -> backend_jwt
//	         -> proxy -> audit
//
// Builtin code registers handlers per stage at start-up (Pipeline.Handle);
// Run calls them in stage order, then registration order within a stage. The
// first error stops the flow, and then only the stages that run always
// (audit) still run, with Flow.Err set, so failures are audited too.
// Cancellation and deadlines of the request's context are honoured between
// handlers, and inside them, since every handler gets the context.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/fault"
)

// Handler does one stage's work on a flow. It returns nil to let the flow go
// on, calls Flow.Halt to end it successfully, or returns an error to stop it
// (a *fault.Error tells the front door what to answer; any other error is
// answered as fault.Internal). It must return promptly when ctx is done.
type Handler interface {
	Handle(ctx context.Context, f *Flow) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, f *Flow) error

// Handle calls h.
func (h HandlerFunc) Handle(ctx context.Context, f *Flow) error { return h(ctx, f) }

// DefaultAlwaysTimeout is how long the always-run stages get after the
// request's context is done.
const DefaultAlwaysTimeout = 2 * time.Second

// Options configure a Pipeline.
type Options struct {
	// Metrics records stage timings; nil records nothing.
	Metrics *Metrics
	// AlwaysTimeout bounds the always-run stages (audit) when the request's
	// context is already done: they get a context that is not canceled
	// with the request but ends after this long. 0 means
	// DefaultAlwaysTimeout.
	AlwaysTimeout time.Duration
}

type registered struct {
	name string
	h    Handler
}

type stageRun struct {
	stage    Stage
	always   bool
	handlers []registered
	ok, fail prometheus.Observer
}

// Pipeline is a chain with its handlers. Register handlers with Handle at
// start-up, then call Run from any number of goroutines.
type Pipeline struct {
	chain  Chain
	stages []*stageRun
	opts   Options
	frozen atomic.Bool

	flowsOK, flowsHalted prometheus.Counter
}

// New returns a pipeline for the chain with no handlers. It panics on an
// unknown chain (a programmer error).
func New(chain Chain, opts Options) *Pipeline {
	order := chain.order()
	if order == nil {
		panic(fmt.Sprintf("pipeline: unknown chain %q", chain))
	}
	if opts.AlwaysTimeout <= 0 {
		opts.AlwaysTimeout = DefaultAlwaysTimeout
	}
	p := &Pipeline{chain: chain, opts: opts}
	for _, s := range order {
		sr := &stageRun{stage: s.stage, always: s.always}
		if m := opts.Metrics; m != nil {
			sr.ok = m.stageDuration.WithLabelValues(string(chain), string(s.stage), "ok")
			sr.fail = m.stageDuration.WithLabelValues(string(chain), string(s.stage), "error")
		}
		p.stages = append(p.stages, sr)
	}
	if m := opts.Metrics; m != nil {
		p.flowsOK = m.flows.WithLabelValues(string(chain), "ok")
		p.flowsHalted = m.flows.WithLabelValues(string(chain), "halted")
	}
	return p
}

// Chain returns the pipeline's chain.
func (p *Pipeline) Chain() Chain { return p.chain }

// Handle registers h under name for stage. Handlers of a stage run in
// registration order. It panics, as start-up programmer errors, when the
// stage is not in the chain, name is empty or taken in the stage, h is nil,
// or Run has already been called.
func (p *Pipeline) Handle(stage Stage, name string, h Handler) {
	if p.frozen.Load() {
		panic(fmt.Sprintf("pipeline: registering handler %q for stage %q after Run", name, stage))
	}
	if name == "" || h == nil {
		panic(fmt.Sprintf("pipeline: registering a handler for stage %q without a name or handler", stage))
	}
	for _, s := range p.stages {
		if s.stage != stage {
			continue
		}
		for _, r := range s.handlers {
			if r.name == name {
				panic(fmt.Sprintf("pipeline: registering handler %q for stage %q twice", name, stage))
			}
		}
		s.handlers = append(s.handlers, registered{name: name, h: h})
		return
	}
	panic(fmt.Sprintf("pipeline: registering handler %q: chain %q has no stage %q", name, p.chain, stage))
}

// HandlerNames returns the names of the handlers of stage, in order.
func (p *Pipeline) HandlerNames(stage Stage) []string {
	for _, s := range p.stages {
		if s.stage == stage {
			out := make([]string, len(s.handlers))
			for i, r := range s.handlers {
				out[i] = r.name
			}
			return out
		}
	}
	return nil
}

// Run takes f through the chain's stages. It returns nil when every stage
// passed or a handler halted the flow, and otherwise the error that stopped
// it, which carries a *fault.Error (see fault.From): the handler's own
// fault, fault.Timeout or fault.Canceled when ctx ended, or fault.Internal
// for any other error and for a handler that panicked. Errors of the
// always-run stages are joined to it.
func (p *Pipeline) Run(ctx context.Context, f *Flow) error {
	p.frozen.Store(true)
	f.Chain = p.chain
	var alwaysErrs []error
	for _, s := range p.stages {
		stopped := f.Err != nil || f.halted
		if len(s.handlers) == 0 || (stopped && !s.always) {
			continue
		}
		sctx := ctx
		if stopped && ctx.Err() != nil {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), p.opts.AlwaysTimeout)
			defer cancel()
		}
		if err := p.runStage(sctx, s, f); err != nil {
			if stopped {
				alwaysErrs = append(alwaysErrs, err)
			} else {
				f.Err, f.FailedStage = err, s.stage
			}
		}
	}
	f.stage = ""
	p.countFlow(f)
	if len(alwaysErrs) > 0 {
		return errors.Join(append([]error{f.Err}, alwaysErrs...)...)
	}
	return f.Err
}

// runStage runs the handlers of one stage, stopping at the first error or
// halt, and records the stage's duration.
func (p *Pipeline) runStage(ctx context.Context, s *stageRun, f *Flow) (err error) {
	f.stage = s.stage
	start := time.Now()
	defer func() {
		if s.ok != nil {
			d := time.Since(start).Seconds()
			if err != nil {
				s.fail.Observe(d)
			} else {
				s.ok.Observe(d)
			}
		}
	}()
	wasHalted := f.halted
	for _, r := range s.handlers {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("running stage %s: %w", s.stage, fault.From(cerr))
		}
		if err := callHandler(ctx, r.h, f); err != nil {
			var fe *fault.Error
			if !errors.As(err, &fe) {
				err = fault.From(err)
			}
			return fmt.Errorf("running stage %s (%s): %w", s.stage, r.name, err)
		}
		if f.halted && !wasHalted {
			return nil
		}
	}
	return nil
}

// callHandler calls h, turning a panic into a fault.Internal so that a bug
// fails one request, not the server.
func callHandler(ctx context.Context, h Handler, f *Flow) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Internal.WithCause(fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack()))
		}
	}()
	return h.Handle(ctx, f)
}

func (p *Pipeline) countFlow(f *Flow) {
	m := p.opts.Metrics
	if m == nil {
		return
	}
	switch {
	case f.Err != nil:
		m.flows.WithLabelValues(string(p.chain), string(fault.CodeOf(f.Err))).Inc()
	case f.halted:
		p.flowsHalted.Inc()
	default:
		p.flowsOK.Inc()
	}
}

// Metrics records pipeline runs:
//
//	latch_pipeline_stage_duration_seconds{chain,stage,outcome}  histogram, outcome ok|error
//	latch_pipeline_flows_total{chain,outcome}                   counter, outcome ok|halted|<fault code>
type Metrics struct {
	stageDuration *prometheus.HistogramVec
	flows         *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "pipeline", Name: "stage_duration_seconds",
			Help:    "Time spent in each pipeline stage.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"chain", "stage", "outcome"}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "pipeline", Name: "flows_total",
			Help: "Flows run through a pipeline, by outcome (ok, halted, or the fault code).",
		}, []string{"chain", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.stageDuration, m.flows} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering pipeline metrics: %w", err)
		}
	}
	return m, nil
}

var _ Handler = HandlerFunc(nil)

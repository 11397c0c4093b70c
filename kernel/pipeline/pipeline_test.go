package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/pipeline"
)

func TestChainOrder(t *testing.T) {
	tests := []struct {
		chain pipeline.Chain
		want  string
	}{
		{pipeline.Identity, "ingress throttle authenticate resolve_user map_claims authorize issue provision audit"},
		{pipeline.Gateway, "throttle validate_token map_claims authorize backend_jwt proxy audit"},
		{"nope", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.chain), func(t *testing.T) {
			var names []string
			for _, s := range tt.chain.Stages() {
				names = append(names, string(s))
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Fatalf("Stages() = %q, want %q", got, tt.want)
			}
			if tt.want != "" && !tt.chain.Always(pipeline.StageAudit) {
				t.Fatal("audit does not run always")
			}
			if tt.chain.Always(pipeline.StageThrottle) {
				t.Fatal("throttle runs always")
			}
		})
	}
}

// recorder is a fake handler that notes its name in a shared log and then
// does what it is told.
type recorder struct {
	log  *[]string
	name string
	do   func(ctx context.Context, f *pipeline.Flow) error
}

func (r recorder) Handle(ctx context.Context, f *pipeline.Flow) error {
	*r.log = append(*r.log, r.name)
	if r.do != nil {
		return r.do(ctx, f)
	}
	return nil
}

func TestRunOrder(t *testing.T) {
	var log []string
	p := pipeline.New(pipeline.Identity, pipeline.Options{})
	// Registered out of stage order on purpose.
	for _, r := range []struct {
		stage pipeline.Stage
		name  string
	}{
		{pipeline.StageAudit, "audit"},
		{pipeline.StageIssue, "issue"},
		{pipeline.StageIngress, "ingress"},
		{pipeline.StageAuthenticate, "authn-1"},
		{pipeline.StageAuthenticate, "authn-2"},
		{pipeline.StageThrottle, "throttle"},
		{pipeline.StageMapClaims, "claims"},
	} {
		p.Handle(r.stage, r.name, recorder{log: &log, name: r.name})
	}
	f := pipeline.NewFlow("acme", "req-1")
	if err := p.Run(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	want := []string{"ingress", "throttle", "authn-1", "authn-2", "claims", "issue", "audit"}
	if !slices.Equal(log, want) {
		t.Fatalf("ran %q, want %q", log, want)
	}
	if f.Chain != pipeline.Identity {
		t.Fatalf("flow chain = %q", f.Chain)
	}
	if got := p.HandlerNames(pipeline.StageAuthenticate); !slices.Equal(got, []string{"authn-1", "authn-2"}) {
		t.Fatalf("HandlerNames = %q", got)
	}
}

var errDB = errors.New("db down")

func TestRunStops(t *testing.T) {
	tests := []struct {
		name       string
		failAt     pipeline.Stage
		do         func(ctx context.Context, f *pipeline.Flow) error
		wantRan    []string
		wantCode   fault.Code // "" means Run returns nil
		wantErr    string
		wantFailed pipeline.Stage
	}{
		{
			name:    "no failure",
			failAt:  pipeline.StageAuthorize,
			do:      func(context.Context, *pipeline.Flow) error { return nil },
			wantRan: []string{"ingress", "authenticate", "authorize", "authorize-2", "issue", "audit"},
		},
		{
			name:       "fault stops the flow, audit still runs",
			failAt:     pipeline.StageAuthorize,
			do:         func(context.Context, *pipeline.Flow) error { return fault.Forbidden.WithMessage("admins only") },
			wantRan:    []string{"ingress", "authenticate", "authorize", "audit"},
			wantCode:   fault.CodeForbidden,
			wantErr:    "running stage authorize (authorize): forbidden: admins only",
			wantFailed: pipeline.StageAuthorize,
		},
		{
			name:       "plain error becomes internal and keeps its cause",
			failAt:     pipeline.StageAuthenticate,
			do:         func(context.Context, *pipeline.Flow) error { return fmt.Errorf("reading session: %w", errDB) },
			wantRan:    []string{"ingress", "authenticate", "audit"},
			wantCode:   fault.CodeInternal,
			wantErr:    "running stage authenticate (authenticate): internal: internal error: reading session: db down",
			wantFailed: pipeline.StageAuthenticate,
		},
		{
			name:       "panic becomes internal",
			failAt:     pipeline.StageIngress,
			do:         func(context.Context, *pipeline.Flow) error { panic("nil map") },
			wantRan:    []string{"ingress", "audit"},
			wantCode:   fault.CodeInternal,
			wantErr:    "handler panicked: nil map",
			wantFailed: pipeline.StageIngress,
		},
		{
			name:    "halt ends the flow successfully, audit still runs",
			failAt:  pipeline.StageAuthenticate,
			do:      func(_ context.Context, f *pipeline.Flow) error { f.Halt(); return nil },
			wantRan: []string{"ingress", "authenticate", "audit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			p := pipeline.New(pipeline.Identity, pipeline.Options{})
			var auditSaw error
			for _, s := range []pipeline.Stage{pipeline.StageIngress, pipeline.StageAuthenticate, pipeline.StageAuthorize, pipeline.StageIssue} {
				r := recorder{log: &log, name: string(s)}
				if s == tt.failAt {
					r.do = tt.do
				}
				p.Handle(s, string(s), r)
			}
			p.Handle(pipeline.StageAuthorize, "authorize-2", recorder{log: &log, name: "authorize-2"})
			p.Handle(pipeline.StageAudit, "audit", recorder{log: &log, name: "audit", do: func(_ context.Context, f *pipeline.Flow) error {
				auditSaw = f.Err
				return nil
			}})
			f := pipeline.NewFlow("acme", "req-1")
			err := p.Run(t.Context(), f)
			if !slices.Equal(log, tt.wantRan) {
				t.Errorf("ran %q, want %q", log, tt.wantRan)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if fault.CodeOf(err) != tt.wantCode {
				t.Errorf("code = %q, want %q (err %v)", fault.CodeOf(err), tt.wantCode, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			// Identity: audit must see the very error Run returns, not one
			// that merely matches it (fault.Error.Is matches by code).
			if auditSaw != err || f.FailedStage != tt.wantFailed { //nolint:errorlint // identity check on purpose; see the comment above
				t.Errorf("audit saw %v, failed stage %q; want %v, %q", auditSaw, f.FailedStage, err, tt.wantFailed)
			}
		})
	}
}

func TestRunDeadline(t *testing.T) {
	var log []string
	p := pipeline.New(pipeline.Identity, pipeline.Options{AlwaysTimeout: time.Second})
	p.Handle(pipeline.StageIngress, "ingress", recorder{log: &log, name: "ingress"})
	p.Handle(pipeline.StageAuthenticate, "slow", recorder{log: &log, name: "slow", do: func(ctx context.Context, _ *pipeline.Flow) error {
		select {
		case <-ctx.Done(): // the blocking stage is woken by the deadline
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("deadline never reached the stage")
		}
	}})
	p.Handle(pipeline.StageIssue, "issue", recorder{log: &log, name: "issue"})
	auditCtxErr := errors.New("audit did not run")
	p.Handle(pipeline.StageAudit, "audit", recorder{log: &log, name: "audit", do: func(ctx context.Context, _ *pipeline.Flow) error {
		auditCtxErr = ctx.Err()
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("audit context has no deadline")
		}
		return nil
	}})

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx, pipeline.NewFlow("acme", "req-1"))
	if time.Since(start) > 5*time.Second {
		t.Fatal("Run did not stop at the deadline")
	}
	if fault.CodeOf(err) != fault.CodeTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v (code %q), want timeout", err, fault.CodeOf(err))
	}
	if want := []string{"ingress", "slow", "audit"}; !slices.Equal(log, want) {
		t.Fatalf("ran %q, want %q", log, want)
	}
	if auditCtxErr != nil {
		t.Fatalf("audit ran with a done context: %v", auditCtxErr)
	}
}

func TestRunCanceledBetweenStages(t *testing.T) {
	var log []string
	ctx, cancel := context.WithCancel(t.Context())
	p := pipeline.New(pipeline.Gateway, pipeline.Options{})
	p.Handle(pipeline.StageValidateToken, "jwt", recorder{log: &log, name: "jwt", do: func(context.Context, *pipeline.Flow) error {
		cancel() // the client went away while the stage ran
		return nil
	}})
	p.Handle(pipeline.StageProxy, "proxy", recorder{log: &log, name: "proxy"})
	err := p.Run(ctx, pipeline.NewFlow("acme", "req-1"))
	if fault.CodeOf(err) != fault.CodeCanceled {
		t.Fatalf("Run error = %v, want canceled", err)
	}
	if !strings.HasPrefix(err.Error(), "running stage proxy: canceled") {
		t.Fatalf("error %q does not name the stage it stopped before", err)
	}
	if !slices.Equal(log, []string{"jwt"}) {
		t.Fatalf("ran %q, want only jwt", log)
	}
}

func TestAlwaysStageErrorIsJoined(t *testing.T) {
	p := pipeline.New(pipeline.Identity, pipeline.Options{})
	p.Handle(pipeline.StageIssue, "issue", pipeline.HandlerFunc(func(context.Context, *pipeline.Flow) error { return fault.Conflict }))
	p.Handle(pipeline.StageAudit, "audit", pipeline.HandlerFunc(func(context.Context, *pipeline.Flow) error { return errDB }))
	err := p.Run(t.Context(), pipeline.NewFlow("acme", "r"))
	if fault.CodeOf(err) != fault.CodeConflict || !errors.Is(err, errDB) {
		t.Fatalf("Run error = %v, want the conflict first and the audit error joined", err)
	}
}

func TestHandlePanics(t *testing.T) {
	noop := pipeline.HandlerFunc(func(context.Context, *pipeline.Flow) error { return nil })
	tests := []struct {
		name string
		do   func(p *pipeline.Pipeline)
		want string
	}{
		{"stage not in chain", func(p *pipeline.Pipeline) { p.Handle(pipeline.StageProxy, "x", noop) }, `has no stage "proxy"`},
		{"empty name", func(p *pipeline.Pipeline) { p.Handle(pipeline.StageIssue, "", noop) }, "without a name"},
		{"nil handler", func(p *pipeline.Pipeline) { p.Handle(pipeline.StageIssue, "x", nil) }, "without a name or handler"},
		{"duplicate", func(p *pipeline.Pipeline) {
			p.Handle(pipeline.StageIssue, "x", noop)
			p.Handle(pipeline.StageIssue, "x", noop)
		}, "twice"},
		{"after run", func(p *pipeline.Pipeline) {
			_ = p.Run(context.Background(), pipeline.NewFlow("t", "r"))
			p.Handle(pipeline.StageIssue, "x", noop)
		}, "after Run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pipeline.New(pipeline.Identity, pipeline.Options{})
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Fatalf("panic = %v, want one mentioning %q", r, tt.want)
				}
			}()
			tt.do(p)
		})
	}
	t.Run("unknown chain", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("New accepted an unknown chain")
			}
		}()
		pipeline.New("nope", pipeline.Options{})
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Identity, pipeline.Options{Metrics: m})
	fail := false
	p.Handle(pipeline.StageAuthorize, "rbac", pipeline.HandlerFunc(func(context.Context, *pipeline.Flow) error {
		if fail {
			return fault.Forbidden
		}
		return nil
	}))
	for _, f := range []bool{false, false, true} {
		fail = f
		_ = p.Run(t.Context(), pipeline.NewFlow("acme", "r"))
	}
	want := `
# HELP latch_pipeline_flows_total Flows run through a pipeline, by outcome (ok, halted, or the fault code).
# TYPE latch_pipeline_flows_total counter
latch_pipeline_flows_total{chain="identity",outcome="forbidden"} 1
latch_pipeline_flows_total{chain="identity",outcome="halted"} 0
latch_pipeline_flows_total{chain="identity",outcome="ok"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_pipeline_flows_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "latch_pipeline_stage_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var stage, outcome string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "stage":
					stage = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			counts[stage+"/"+outcome] = mt.GetHistogram().GetSampleCount()
		}
	}
	if counts["authorize/ok"] != 2 || counts["authorize/error"] != 1 || counts["issue/ok"] != 0 {
		t.Fatalf("stage timings = %v", counts)
	}
}

func TestFlowKeysAndDecisions(t *testing.T) {
	type route struct{ backend string }
	routeKey := pipeline.NewKey[route]("gateway.route")
	otherKey := pipeline.NewKey[route]("gateway.route") // same name, different key
	p := pipeline.New(pipeline.Gateway, pipeline.Options{})
	p.Handle(pipeline.StageAuthorize, "rbac", pipeline.HandlerFunc(func(_ context.Context, f *pipeline.Flow) error {
		routeKey.Set(f, route{backend: "orders"})
		f.Decide("rbac", "allow", "role:reader")
		return nil
	}))
	f := pipeline.NewFlow("acme", "r")
	if err := p.Run(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if r, ok := routeKey.Get(f); !ok || r.backend != "orders" {
		t.Fatalf("routeKey.Get = %v, %v", r, ok)
	}
	if _, ok := otherKey.Get(f); ok {
		t.Fatal("a different key with the same name read the value")
	}
	want := []pipeline.Decision{{Stage: pipeline.StageAuthorize, By: "rbac", Effect: "allow", Reason: "role:reader"}}
	if !slices.Equal(f.Decisions, want) {
		t.Fatalf("decisions = %+v", f.Decisions)
	}
}

func BenchmarkPipelineRun(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := pipeline.NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	p := pipeline.New(pipeline.Identity, pipeline.Options{Metrics: m})
	for _, s := range pipeline.Identity.Stages() {
		p.Handle(s, string(s), pipeline.HandlerFunc(func(_ context.Context, f *pipeline.Flow) error {
			f.Subject = "u-1"
			return nil
		}))
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Run(ctx, &pipeline.Flow{Tenant: "acme", RequestID: "r"}); err != nil {
			b.Fatal(err)
		}
	}
}

package plugin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/wasmhost"
)

// nativeAlways and nativeUpper are the Go twins of the pin guest's
// throttle.always and claims.upper, for BenchmarkLoginPipelineBuiltin.
type nativeAlways struct{}

func (nativeAlways) Allow(context.Context, abi.AllowRequest) (abi.AllowResponse, error) {
	return abi.AllowResponse{Allowed: true, Remaining: 42}, nil
}

type nativeUpper struct{}

func (nativeUpper) Map(_ context.Context, req abi.MapRequest) (abi.MapResponse, error) {
	out := make(map[string]any, len(req.Claims))
	for k, v := range req.Claims {
		if s, ok := v.(string); ok {
			v = strings.ToUpper(s)
		}
		out[k] = v
	}
	return abi.MapResponse{Claims: out}, nil
}

// pipeline is the three instances of a login: the throttle, the
// authenticator and the claim mapper.
type pipeline struct {
	throttle, authn, claims *extension.Instance
}

func loadPipeline(b *testing.B, reg *extension.Registry) pipeline {
	b.Helper()
	met, err := extension.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	set, err := reg.Load(context.Background(), []extension.InstanceConfig{
		{Module: "throttle.always"}, {Module: "authn.pin", Config: pinConfig("1234")}, {Module: "claims.upper"},
	}, extension.LoadOptions{Metrics: met})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close(context.Background()) })
	return pipeline{instance(b, set, "throttle.always"), instance(b, set, "authn.pin"), instance(b, set, "claims.upper")}
}

// login runs one login through the three extensions as the kernel calls
// them: throttle the client, authenticate, map the subject's claims.
func (p pipeline) login(ctx context.Context) error {
	th, _ := extension.As[throttle.Throttler](p.throttle)
	err := extension.Call(ctx, p.throttle, abi.OpAllow, func(ctx context.Context) error {
		_, err := throttle.Check(th.Allow(ctx, abi.AllowRequest{Tenant: "acme", Key: "login:ip:203.0.113.7", Cost: 1, Limit: abi.Limit{Rate: 10, PeriodMillis: 60_000}}))
		return err
	})
	if err != nil {
		return err
	}
	resp, err := authenticate(ctx, p.authn, map[string][]string{"pin": {"1234"}})
	if err != nil {
		return err
	}
	m, _ := extension.As[claims.Mapper](p.claims)
	return extension.Call(ctx, p.claims, abi.OpMapClaims, func(ctx context.Context) error {
		_, err := claims.Check(m.Map(ctx, abi.MapRequest{Tenant: "acme", From: abi.DialectLocal, To: abi.DialectOIDC, Subject: resp.Subject,
			Claims: map[string]any{"name": "alice", "email": "alice@example.com", "groups": []any{"ops"}}}))
		return err
	})
}

func benchLogin(b *testing.B, p pipeline) {
	ctx := context.Background()
	for range 500 {
		if err := p.login(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.login(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginPipelineWASM is a login through three WASM extensions of
// one module (throttle, authenticator, claim mapper), each a call into a
// warm pooled instance.
func BenchmarkLoginPipelineWASM(b *testing.B) {
	reg, _ := pinModule(b, wasmhost.ModuleOptions{MaxInstances: 1})
	benchLogin(b, loadPipeline(b, reg))
}

// BenchmarkLoginPipelineBuiltin is the same login through the three
// extensions' Go twins compiled in: the baseline.
func BenchmarkLoginPipelineBuiltin(b *testing.B) {
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "throttle.always", New: func() any { return nativeAlways{} }})
	reg.Register(extension.Module{ID: "authn.pin", New: func() any { return new(nativePin) }})
	reg.Register(extension.Module{ID: "claims.upper", New: func() any { return nativeUpper{} }})
	benchLogin(b, loadPipeline(b, reg))
}

var (
	_ authn.Authenticator = (*nativePin)(nil)
	_ throttle.Throttler  = nativeAlways{}
	_ claims.Mapper       = nativeUpper{}
)

package plugin_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/wasmhost"
)

// nativePin is the Go twin of the pin guest's authenticator, for
// BenchmarkAuthenticateBuiltin.
type nativePin struct {
	Pin string `json:"pin"`
}

var nativeAMR = []string{"otp"}

func (p *nativePin) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	got := req.Params["pin"]
	switch {
	case len(got) == 0:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{{Name: "pin", Type: abi.FieldOTP}}}}, nil
	case p.Pin != "" && got[0] == p.Pin:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "pin-user", AMR: nativeAMR}, nil
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}, nil
}

// benchInstance loads one authn.pin instance from reg with the extension
// metrics on, as a node does.
func benchInstance(b *testing.B, reg *extension.Registry) *extension.Instance {
	b.Helper()
	met, err := extension.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	set, err := reg.Load(context.Background(), []extension.InstanceConfig{{Module: "authn.pin", Config: pinConfig("1234")}},
		extension.LoadOptions{Metrics: met})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close(context.Background()) })
	return instance(b, set, "authn.pin")
}

// benchAuthenticate measures one authentication step through the kind
// interface, extension.Call and authn.Check.
func benchAuthenticate(b *testing.B, inst *extension.Instance) {
	ctx := context.Background()
	params := map[string][]string{"pin": {"1234"}}
	for range 1000 { // warm up: the guest's heap, the metrics' label cache
		if _, err := authenticate(ctx, inst, params); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := authenticate(ctx, inst, params)
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
			b.Fatalf("authenticate = %q, %v", resp.Outcome, err)
		}
	}
}

// BenchmarkAuthenticateWASM is an authentication step of the pin guest: the
// adapter encoding the request into a Call, the WASM host's call into a
// warm instance, the Go guest decoding it and encoding its answer, and the
// adapter decoding the Reply.
func BenchmarkAuthenticateWASM(b *testing.B) {
	reg, _ := pinModule(b, wasmhost.ModuleOptions{MaxInstances: 1})
	benchAuthenticate(b, benchInstance(b, reg))
}

// BenchmarkAuthenticateBuiltin is the same step with the same pin check
// compiled into the server, the baseline of BenchmarkAuthenticateWASM.
func BenchmarkAuthenticateBuiltin(b *testing.B) {
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "authn.pin", New: func() any { return new(nativePin) }})
	benchAuthenticate(b, benchInstance(b, reg))
}

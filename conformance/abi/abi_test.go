package abi_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin"
	abiconf "github.com/latchid/latch/conformance/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/wasmhost"
	"github.com/latchid/latch/sdk/plugintest"
)

// pinAuthenticator is a native authenticator written for this test: the
// form parameter pin against a fixed pin.
type pinAuthenticator struct{ pin string }

func (p pinAuthenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	if err := ctx.Err(); err != nil {
		return abi.AuthenticateResponse{}, err
	}
	got := req.Params["pin"]
	switch {
	case len(got) == 0:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{
			Kind: abi.ChallengeForm, Fields: []abi.Field{{Name: "pin", Type: abi.FieldOTP, Required: true}},
		}}, nil
	case got[0] == p.pin:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "pin-user"}, nil
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}, nil
}

var pinCases = abiconf.AuthenticatorCases{
	Accept:  abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Params: map[string][]string{"pin": {"1234"}}},
	Subject: "pin-user",
	Reject:  abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Params: map[string][]string{"pin": {"9999"}}},
}

var mapCases = abiconf.ClaimsMapperCases{
	Requests: []abi.MapRequest{
		{Tenant: "acme", From: "oidc", To: "saml", Subject: "u-1", Claims: map[string]any{"name": "alice", "groups": []any{"a", "b"}, "age": float64(30)}},
		{Tenant: "acme", From: "oidc", To: "saml", Claims: map[string]any{}},
	},
}

func TestNative(t *testing.T) {
	t.Parallel()
	abiconf.RunAuthenticator(t, func(*testing.T) authn.Authenticator { return pinAuthenticator{pin: "1234"} }, pinCases)
}

// loadInstance loads one instance of module from r with config and
// returns its value as T, closed when the test ends.
func loadInstance[T any](t *testing.T, r *extension.Registry, module extension.ID, config string) T {
	t.Helper()
	insts, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: module, Config: json.RawMessage(config)}}, extension.LoadOptions{})
	if err != nil {
		t.Fatalf("loading %s: %v", module, err)
	}
	t.Cleanup(func() {
		if err := insts.Close(context.Background()); err != nil {
			t.Errorf("closing %s: %v", module, err)
		}
	})
	v, ok := extension.As[T](insts.All()[0])
	if !ok {
		t.Fatalf("%s does not implement %T", module, *new(T))
	}
	return v
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	r := extension.NewRegistry()
	builtin.Register(r)
	t.Run("throttle.local", func(t *testing.T) {
		abiconf.RunThrottler(t, func(t *testing.T) throttle.Throttler {
			return loadInstance[throttle.Throttler](t, r, "throttle.local", `{}`)
		}, abiconf.ThrottlerCases{Tenant: "acme", Limit: abi.Limit{Rate: 3, PeriodMillis: 60_000}, Allowance: 3})
	})
	t.Run("claims.mapping", func(t *testing.T) {
		cases := mapCases
		cases.Want = []map[string]any{mapCases.Requests[0].Claims, {}} // no mappings: passed through
		abiconf.RunClaimsMapper(t, func(t *testing.T) claims.Mapper {
			return loadInstance[claims.Mapper](t, r, "claims.mapping", `{}`)
		}, cases)
	})
}

func TestWASM(t *testing.T) {
	t.Parallel()
	wasm := pinGuest(t)
	host, err := wasmhost.New(t.Context(), wasmhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(context.Background()) })
	m, desc, err := plugin.LoadWASM(t.Context(), host, "testpin", wasm, wasmhost.ModuleOptions{MaxInstances: 4})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := plugin.Modules("testpin", desc, m)
	if err != nil {
		t.Fatal(err)
	}
	r := extension.NewRegistry()
	for _, mod := range mods {
		r.Register(mod)
	}
	t.Run("authn.pin", func(t *testing.T) {
		abiconf.RunAuthenticator(t, func(t *testing.T) authn.Authenticator {
			return loadInstance[authn.Authenticator](t, r, "authn.pin", `{"pin":"1234"}`)
		}, pinCases)
	})
	t.Run("throttle.always", func(t *testing.T) {
		abiconf.RunThrottler(t, func(t *testing.T) throttle.Throttler {
			return loadInstance[throttle.Throttler](t, r, "throttle.always", `{}`)
		}, abiconf.ThrottlerCases{Tenant: "acme", Limit: abi.Limit{Rate: 3, PeriodMillis: 60_000}, Allowance: 3, NeverRefuses: true})
	})
	t.Run("claims.upper", func(t *testing.T) {
		// The empty request must come back empty: the encoding leaves
		// empty maps out and claims.Check reads that as "drop them all".
		cases := abiconf.ClaimsMapperCases{
			Requests: mapCases.Requests,
			Want:     []map[string]any{{"name": "ALICE", "groups": []any{"a", "b"}, "age": float64(30)}, {}},
		}
		abiconf.RunClaimsMapper(t, func(t *testing.T) claims.Mapper {
			return loadInstance[claims.Mapper](t, r, "claims.upper", `{}`)
		}, cases)
	})
}

// pinGuest builds the pin test guest of kernel/plugin once per test binary.
var pinGuest = func() func(t *testing.T) []byte {
	build := sync.OnceValues(func() ([]byte, error) {
		dir, err := os.MkdirTemp("", "conformance-abi-")
		if err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		return plugintest.BuildWASM("../../kernel/plugin/testdata/guests/pin", filepath.Join(dir, "pin.wasm"))
	})
	return func(t *testing.T) []byte {
		t.Helper()
		w, err := build()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
}()

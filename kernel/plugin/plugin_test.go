package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/wasmhost"
)

// pinModule loads the pin guest into a fresh host and registers its
// extensions into a fresh registry.
func pinModule(tb testing.TB, opts wasmhost.ModuleOptions) (*extension.Registry, *wasmhost.Module) {
	tb.Helper()
	ctx := context.Background()
	m, desc, err := plugin.LoadWASM(ctx, newHost(tb), "testpin", guestWasm(tb, "pin"), opts)
	if err != nil {
		tb.Fatalf("LoadWASM: %v", err)
	}
	mods, err := plugin.Modules("testpin", desc, m)
	if err != nil {
		tb.Fatalf("Modules: %v", err)
	}
	reg := extension.NewRegistry()
	for _, mod := range mods {
		reg.Register(mod)
	}
	return reg, m
}

// loadInstances loads configs from reg, closing them when the test ends.
func loadInstances(tb testing.TB, reg *extension.Registry, configs ...extension.InstanceConfig) *extension.Instances {
	tb.Helper()
	set, err := reg.Load(context.Background(), configs, extension.LoadOptions{})
	if err != nil {
		tb.Fatalf("loading instances: %v", err)
	}
	tb.Cleanup(func() {
		if err := set.Close(context.Background()); err != nil {
			tb.Errorf("closing instances: %v", err)
		}
	})
	return set
}

func instance(tb testing.TB, set *extension.Instances, name string) *extension.Instance {
	tb.Helper()
	inst, ok := set.Get(name)
	if !ok {
		tb.Fatalf("no instance %q", name)
	}
	return inst
}

// authenticate runs one authentication step through extension.Call and
// authn.Check, as the kernel does.
func authenticate(ctx context.Context, inst *extension.Instance, params map[string][]string) (abi.AuthenticateResponse, error) {
	a, ok := extension.As[authn.Authenticator](inst)
	if !ok {
		return abi.AuthenticateResponse{}, errors.New("not an authenticator")
	}
	req := abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Step: 1, Params: params}
	var resp abi.AuthenticateResponse
	err := extension.Call(ctx, inst, abi.OpAuthenticate, func(ctx context.Context) error {
		var err error
		resp, err = authn.Check(a.Authenticate(ctx, req))
		return err
	})
	return resp, err
}

func pinConfig(pin string) json.RawMessage {
	return json.RawMessage(`{"pin":"` + pin + `"}`)
}

func TestModules(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{})
	var ids []string
	for _, m := range reg.Modules() {
		ids = append(ids, string(m.ID))
		if len(m.ConfigSchema) == 0 {
			t.Errorf("%s: no config schema", m.ID)
		}
		if !strings.Contains(m.Description, "testpin") {
			t.Errorf("%s: description %q does not name the module", m.ID, m.Description)
		}
	}
	if got, want := strings.Join(ids, " "), "authn.pin claims.upper throttle.always"; got != want {
		t.Fatalf("modules = %s, want %s", got, want)
	}
}

func TestAuthenticate(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{MaxInstances: 2})
	set := loadInstances(t, reg, extension.InstanceConfig{Module: "authn.pin", Config: pinConfig("1234")})
	inst := instance(t, set, "authn.pin")
	tests := []struct {
		name        string
		pin         []string // nil: no parameter
		wantOutcome string
		wantIs      []error // the error must match each
	}{
		{name: "right pin", pin: []string{"1234"}, wantOutcome: abi.OutcomeAuthenticated},
		{name: "wrong pin", pin: []string{"9999"}, wantOutcome: abi.OutcomeNotAuthenticated},
		{name: "no pin asks for one", wantOutcome: abi.OutcomeChallenge},
		{name: "guest refuses the call", pin: []string{"forbidden"}, wantIs: []error{fault.Forbidden}},
		{name: "operation failure", pin: []string{"down"}, wantIs: []error{fault.Unavailable}},
		{name: "malformed reply", pin: []string{"garbage"}, wantIs: []error{fault.Internal, plugin.ErrMalformedReply}},
		{name: "trap", pin: []string{"panic"}, wantIs: []error{fault.Internal, wasmhost.ErrTrapped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params map[string][]string
			if tt.pin != nil {
				params = map[string][]string{"pin": tt.pin}
			}
			resp, err := authenticate(context.Background(), inst, params)
			if len(tt.wantIs) > 0 {
				if err == nil {
					t.Fatalf("Authenticate = %+v, want an error", resp)
				}
				for _, target := range tt.wantIs {
					if !errors.Is(err, target) {
						t.Errorf("error %q does not match %v", err, target)
					}
				}
				if !strings.HasPrefix(err.Error(), "plugin/authn.pin: calling authenticate: ") {
					t.Errorf("error %q lacks the extension prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if resp.Outcome != tt.wantOutcome {
				t.Fatalf("outcome = %q, want %q", resp.Outcome, tt.wantOutcome)
			}
			switch resp.Outcome {
			case abi.OutcomeAuthenticated:
				if resp.Subject != "pin-user" || len(resp.AMR) != 1 || resp.AMR[0] != "otp" {
					t.Errorf("response = %+v", resp)
				}
			case abi.OutcomeNotAuthenticated:
				if resp.Reason != abi.ReasonInvalidCredentials {
					t.Errorf("reason = %q", resp.Reason)
				}
			case abi.OutcomeChallenge:
				if resp.Challenge.Kind != abi.ChallengeForm || resp.Challenge.Fields[0].Name != "pin" {
					t.Errorf("challenge = %+v", resp.Challenge)
				}
			}
		})
	}
}

// TestTrapFailsOneCall: a guest that traps fails that call only; the next
// call gets a fresh instance.
func TestTrapFailsOneCall(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{MaxInstances: 1})
	set := loadInstances(t, reg, extension.InstanceConfig{Module: "authn.pin", Config: pinConfig("1234")})
	inst := instance(t, set, "authn.pin")
	ctx := context.Background()
	for i := range 3 {
		if _, err := authenticate(ctx, inst, map[string][]string{"pin": {"panic"}}); !errors.Is(err, fault.Internal) {
			t.Fatalf("trap %d: error = %v, want an internal fault", i, err)
		}
		resp, err := authenticate(ctx, inst, map[string][]string{"pin": {"1234"}})
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
			t.Fatalf("call after trap %d = %+v, %v", i, resp, err)
		}
	}
}

func TestConfiguration(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{MaxInstances: 2})
	ctx := context.Background()

	t.Run("each instance gets its own configuration", func(t *testing.T) {
		set := loadInstances(t, reg,
			extension.InstanceConfig{Name: "first", Module: "authn.pin", Config: pinConfig("1234")},
			extension.InstanceConfig{Name: "second", Module: "authn.pin", Config: pinConfig("5678")},
		)
		for _, tt := range []struct {
			inst, pin, want string
		}{
			{"first", "1234", abi.OutcomeAuthenticated},
			{"first", "5678", abi.OutcomeNotAuthenticated},
			{"second", "5678", abi.OutcomeAuthenticated},
			{"second", "1234", abi.OutcomeNotAuthenticated},
		} {
			resp, err := authenticate(ctx, instance(t, set, tt.inst), map[string][]string{"pin": {tt.pin}})
			if err != nil || resp.Outcome != tt.want {
				t.Errorf("%s with pin %s = %q, %v; want %q", tt.inst, tt.pin, resp.Outcome, err, tt.want)
			}
		}
	})

	refusals := []struct {
		name   string
		config string
		wantIs error
		want   []string
	}{
		{name: "guest refuses in configure", config: `{"pin":"0000"}`, wantIs: fault.InvalidRequest,
			want: []string{`loading extension "authn.pin" (authn.pin): provisioning: plugin/authn.pin: calling configure: `, "pin 0000 is too weak"}},
		{name: "schema refuses a bad value", config: `{"pin":"abc"}`, wantIs: fault.InvalidRequest, want: []string{"config.pin: must match the pattern"}},
		{name: "schema refuses an unknown field", config: `{"colour":"red"}`, wantIs: fault.InvalidRequest, want: []string{"config.colour: unknown field"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Load(ctx, []extension.InstanceConfig{{Module: "authn.pin", Config: json.RawMessage(tt.config)}}, extension.LoadOptions{})
			if err == nil {
				t.Fatal("Load accepted the configuration")
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not match %v", err, tt.wantIs)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestThrottlerAndMapper(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{})
	set := loadInstances(t, reg,
		extension.InstanceConfig{Module: "throttle.always"},
		extension.InstanceConfig{Module: "claims.upper"},
	)
	ctx := context.Background()

	th, _ := extension.As[throttle.Throttler](instance(t, set, "throttle.always"))
	var allow abi.AllowResponse
	err := extension.Call(ctx, instance(t, set, "throttle.always"), abi.OpAllow, func(ctx context.Context) error {
		var err error
		allow, err = throttle.Check(th.Allow(ctx, abi.AllowRequest{Tenant: "acme", Key: "k", Cost: 1, Limit: abi.Limit{Rate: 1, PeriodMillis: 1000}}))
		return err
	})
	if err != nil || !allow.Allowed || allow.Remaining != 42 {
		t.Errorf("Allow = %+v, %v", allow, err)
	}

	mp, _ := extension.As[claims.Mapper](instance(t, set, "claims.upper"))
	in := map[string]any{"name": "alice", "age": 42.0}
	before := maps.Clone(in)
	var got map[string]any
	err = extension.Call(ctx, instance(t, set, "claims.upper"), abi.OpMapClaims, func(ctx context.Context) error {
		var err error
		got, err = claims.Check(mp.Map(ctx, abi.MapRequest{Tenant: "acme", From: abi.DialectRemote, To: abi.DialectLocal, Claims: in}))
		return err
	})
	if err != nil || got["name"] != "ALICE" || got["age"] != 42.0 {
		t.Errorf("Map = %v, %v", got, err)
	}
	if !maps.Equal(in, before) {
		t.Errorf("Map changed its request's claims: %v", in)
	}

	if _, ok := extension.As[authn.Authenticator](instance(t, set, "claims.upper")); ok {
		t.Error("a claim mapper adapter also implements authn.Authenticator")
	}
}

func TestHealthAndClose(t *testing.T) {
	reg, m := pinModule(t, wasmhost.ModuleOptions{})
	ctx := context.Background()
	set, err := reg.Load(ctx, []extension.InstanceConfig{
		{Module: "authn.pin", Config: pinConfig("1234")},
		{Module: "claims.upper"},
	}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := set.Health(ctx)
	if err == nil {
		t.Fatal("Health reported every instance healthy; claims.upper never is")
	}
	if st[0].Err != nil {
		t.Errorf("authn.pin: %v", st[0].Err)
	}
	if !errors.Is(st[1].Err, fault.Unavailable) || !strings.Contains(st[1].Err.Error(), "upper is never healthy") {
		t.Errorf("claims.upper: %v, want the guest's unavailable", st[1].Err)
	}
	if err := set.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The module outlives its instances: its owner closes it.
	if _, err := m.Call(ctx, []byte{0x08, 0x02}); err != nil {
		t.Errorf("the module was closed with its instances: %v", err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = authenticate(ctx, instance(t, set, "authn.pin"), map[string][]string{"pin": {"1234"}})
	if !errors.Is(err, fault.Unavailable) || !errors.Is(err, wasmhost.ErrClosed) {
		t.Errorf("a call after the module closed: %v, want unavailable (closed)", err)
	}
}

// TestConcurrentCalls runs calls on several instances at once (with -race).
func TestConcurrentCalls(t *testing.T) {
	reg, _ := pinModule(t, wasmhost.ModuleOptions{MaxInstances: 3})
	set := loadInstances(t, reg, extension.InstanceConfig{Module: "authn.pin", Config: pinConfig("1234")})
	inst := instance(t, set, "authn.pin")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 40 {
				pin, want := "1234", abi.OutcomeAuthenticated
				if (g+i)%2 == 1 {
					pin, want = "4321", abi.OutcomeNotAuthenticated
				}
				resp, err := authenticate(context.Background(), inst, map[string][]string{"pin": {pin}})
				if err != nil || resp.Outcome != want {
					t.Errorf("goroutine %d call %d = %q, %v; want %q", g, i, resp.Outcome, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadWASMRefusesUngrantedCapability(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	_, _, err := plugin.LoadWASM(ctx, host, "greedy", guestWasm(t, "greedy"), wasmhost.ModuleOptions{Grants: []string{"log"}})
	const want = `module greedy requests capability "http" (hosts [api.example.com]) which was not granted`
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, plugin.ErrNotGranted) {
		t.Fatalf("LoadWASM error = %v, want one containing %q", err, want)
	}
	if !strings.HasPrefix(err.Error(), `loading wasm module "greedy": `) {
		t.Errorf("error %q does not name the module first", err)
	}
	if host.Module("greedy") != nil {
		t.Error("the refused module was left loaded")
	}

	// Granted (with a HostCaller, as http is served through host_call), the
	// same module loads, under the same id now that it is free.
	m, desc, err := plugin.LoadWASM(ctx, host, "greedy", guestWasm(t, "greedy"), wasmhost.ModuleOptions{
		Grants:     []string{abi.CapabilityHTTP},
		HostCaller: plugin.UnsupportedHostCalls,
	})
	if err != nil {
		t.Fatalf("LoadWASM with the grant: %v", err)
	}
	if desc.Name != "greedy" || m.ID() != "greedy" {
		t.Errorf("loaded %q as %q", desc.Name, m.ID())
	}
}

func TestLoadWASMRefusesANonModule(t *testing.T) {
	_, _, err := plugin.LoadWASM(context.Background(), newHost(t), "text", []byte("hello"), wasmhost.ModuleOptions{})
	if !errors.Is(err, wasmhost.ErrInvalidModule) || !strings.Contains(err.Error(), `loading wasm module "text"`) {
		t.Fatalf("LoadWASM = %v", err)
	}
}

func TestUnsupportedHostCalls(t *testing.T) {
	req, err := (&abi.HostCall{Op: abi.HostOpKVGet}).AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := plugin.UnsupportedHostCalls.HostCall(context.Background(), "m", req)
	if err != nil {
		t.Fatal(err)
	}
	var rep abi.HostReply
	if err := rep.UnmarshalWire(out); err != nil {
		t.Fatal(err)
	}
	if rep.Error == nil || rep.Error.Code != abi.CodeUnsupported || !strings.Contains(rep.Error.Message, "kv.get") {
		t.Fatalf("reply = %+v", rep)
	}
}

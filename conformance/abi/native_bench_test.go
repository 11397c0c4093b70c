package abi_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/plugin/native"
	"github.com/latchid/latch/kernel/wasmhost"
	"github.com/latchid/latch/sdk/plugintest"
)

// ipAllowTwin is the Go twin of plugins/ipallow compiled into the server,
// the baseline of BenchmarkIPAllow.
type ipAllowTwin struct{ allow []netip.Prefix }

func (a ipAllowTwin) Authenticate(_ context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	ip, err := netip.ParseAddr(req.IP)
	if err != nil {
		return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: "no_client_ip"}, nil
	}
	for _, p := range a.allow {
		if p.Contains(ip.Unmap()) {
			return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: req.KnownSubject}, nil
		}
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: "network_not_allowed"}, nil
}

const ipallowConfig = `{"allow":["10.0.0.0/8"]}`

// BenchmarkIPAllow is one authentication step of the same authenticator
// (plugins/ipallow) compiled in, as a WASM module and as a native plugin
// over go-plugin: through the kind interface and authn.Check, one call at
// a time.
func BenchmarkIPAllow(b *testing.B) {
	run := func(b *testing.B, a authn.Authenticator) {
		ctx := context.Background()
		for range 200 {
			if _, err := a.Authenticate(ctx, ipallowCases.Accept); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := authn.Check(a.Authenticate(ctx, ipallowCases.Accept))
			if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
				b.Fatalf("authenticate = %q, %v", resp.Outcome, err)
			}
		}
	}
	b.Run("builtin", func(b *testing.B) {
		run(b, ipAllowTwin{allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	})
	b.Run("wasm", func(b *testing.B) {
		host, err := wasmhost.New(b.Context(), wasmhost.Options{CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = host.Close(context.Background()) })
		wasm, err := plugintest.BuildWASM("../../plugins/ipallow", filepath.Join(b.TempDir(), "ipallow.wasm"))
		if err != nil {
			b.Fatal(err)
		}
		m, desc, err := plugin.LoadWASM(b.Context(), host, "ipallow", wasm, wasmhost.ModuleOptions{MaxInstances: 1})
		if err != nil {
			b.Fatal(err)
		}
		run(b, benchInstance(b, "ipallow", desc, m))
	})
	b.Run("native", func(b *testing.B) {
		p, desc, err := native.Load(b.Context(), "ipallow", native.Options{Command: buildNative(b, "../../plugins/ipallow"), CallTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Close(context.Background()) })
		run(b, benchInstance(b, "ipallow", desc, p))
	})
}

// benchInstance registers the module's extensions and loads one
// authn.ipallow instance.
func benchInstance(b *testing.B, id string, desc abi.Description, t plugin.Transport) authn.Authenticator {
	b.Helper()
	mods, err := plugin.Modules(id, desc, t)
	if err != nil {
		b.Fatal(err)
	}
	r := extension.NewRegistry()
	for _, mod := range mods {
		r.Register(mod)
	}
	insts, err := r.Load(b.Context(), []extension.InstanceConfig{{Module: "authn.ipallow", Config: json.RawMessage(ipallowConfig)}}, extension.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = insts.Close(context.Background()) })
	a, ok := extension.As[authn.Authenticator](insts.All()[0])
	if !ok {
		b.Fatal("authn.ipallow is not an authenticator")
	}
	return a
}

package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/extension"
)

// pinBundle packs the pin guest as a signed bundle of version v.
func pinBundle(t *testing.T, wasm []byte, v string, priv []byte, caps ...bundle.Capability) []byte {
	t.Helper()
	m := bundle.Manifest{
		Name: "pin", Version: v, ABIVersion: abi.Version,
		Extensions: []bundle.Extension{
			{Kind: "authenticator", Name: "pin"}, {Kind: "throttler", Name: "always"}, {Kind: "claims", Name: "upper"},
		},
		Capabilities: caps,
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"pin":{"type":"string","pattern":"^[0-9]{4,8}$"}},"additionalProperties":false}`),
		Modules:      bundle.Modules{WASM: "modules/pin.wasm"},
	}
	a, err := bundle.Pack(m, map[string][]byte{"modules/pin.wasm": wasm})
	if err != nil {
		t.Fatal(err)
	}
	if priv == nil {
		return a
	}
	key, err := bundle.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = bundle.Sign(a, key); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBundles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and compiles a WASM guest")
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(pinGuest(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := pluginConfig(t, t.TempDir())
	cfg.Extensions.Instances = nil // the builtin defaults
	cfg.Bundles.TrustedKeys = []string{pub}
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), Options{Stdout: io.Discard})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer n.Close()
	mgr := n.bundles.Manager()
	pinAuth := func() (authn.Authenticator, bool) {
		for _, inst := range n.extensions.Enabled("default", extension.KindAuthenticator) {
			if inst.Name() == "pin.pin" {
				return extension.As[authn.Authenticator](inst)
			}
		}
		return nil, false
	}
	login := func(pin string) error {
		a, ok := pinAuth()
		if !ok {
			return errors.New("authn.pin is not enabled")
		}
		resp, err := authn.Check(a.Authenticate(ctx, abi.AuthenticateRequest{Params: map[string][]string{"pin": {pin}}}))
		if err != nil {
			return err
		}
		if resp.Outcome != abi.OutcomeAuthenticated {
			return errors.New("outcome " + resp.Outcome)
		}
		return nil
	}
	stored := func() int {
		vs, err := mgr.Versions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}
	cfgPin := json.RawMessage(`{"pin":"1234"}`)

	// Refusals: nothing is stored, nothing runs.
	tampered := pinBundle(t, wasm, "1.0.0", priv)
	tampered[len(tampered)/2] ^= 0xff
	other, _, _ := bundle.GenerateKey()
	for _, r := range []struct {
		name string
		req  bundle.Request
		want error
	}{
		{"tampered archive", bundle.Request{Archive: tampered, Config: cfgPin}, bundle.ErrInvalidArchive},
		{"wrong signature", bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", other), Config: cfgPin}, bundle.ErrBadSignature},
		{"unsigned", bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", nil), Config: cfgPin}, bundle.ErrUnsigned},
		{"schema-invalid config", bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", priv), Config: json.RawMessage(`{"pin":"12"}`)}, bundle.ErrInvalidConfig},
		{"missing grant", bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", priv, bundle.Capability{Name: "kv"}), Config: cfgPin}, bundle.ErrNotGranted},
		{"guest refuses the config", bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", priv), Config: json.RawMessage(`{"pin":"0000"}`)}, bundle.ErrRefused},
	} {
		if _, err := mgr.Install(ctx, r.req); !errors.Is(err, r.want) {
			t.Errorf("%s: Install err = %v, want %v", r.name, err, r.want)
		} else {
			t.Logf("%s: %v", r.name, err)
		}
		if stored() != 0 {
			t.Fatalf("%s: a refused install stored a version", r.name)
		}
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := pinAuth(); ok {
		t.Fatal("authn.pin runs after refusals")
	}

	// Install: the node loads it and a login uses it.
	if _, err := mgr.Install(ctx, bundle.Request{Archive: pinBundle(t, wasm, "1.0.0", priv), Config: cfgPin}); err != nil {
		t.Fatalf("Install: %v", err)
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := login("1234"); err != nil {
		t.Fatalf("login with the bundle: %v", err)
	}
	if got := n.bundles.Running()["pin"]; got != "1.0.0" {
		t.Fatalf("running %q", got)
	}

	// Upgrade under load: no call fails.
	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if err := login("1234"); err != nil {
					failed.Add(1)
					t.Errorf("login during upgrade: %v", err)
				}
			}
		}()
	}
	for _, v := range []string{"1.1.0", "1.2.0"} {
		if _, err := mgr.Upgrade(ctx, bundle.Request{Archive: pinBundle(t, wasm, v, priv)}); err != nil {
			t.Fatalf("Upgrade to %s: %v", v, err)
		}
		if err := n.bundles.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if got := n.bundles.Running()["pin"]; got != v {
			t.Fatalf("running %q after upgrading to %s", got, v)
		}
	}
	if _, err := mgr.Rollback(ctx, "pin"); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d logins during two upgrades and a roll back, %d failed", calls.Load(), failed.Load())
	if got := n.bundles.Running()["pin"]; got != "1.1.0" {
		t.Fatalf("running %q after roll back, want 1.1.0", got)
	}

	// An upgrade asking for more needs a new grant; refused, nothing changes.
	if _, err := mgr.Upgrade(ctx, bundle.Request{Archive: pinBundle(t, wasm, "2.0.0", priv, bundle.Capability{Name: "kv"})}); !errors.Is(err, bundle.ErrNotGranted) {
		t.Errorf("upgrade asking for kv: %v", err)
	}

	// Disable, enable, remove.
	if _, err := mgr.SetEnabled(ctx, "pin", false); err != nil {
		t.Fatal(err)
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := pinAuth(); ok {
		t.Error("authn.pin runs while disabled")
	}
	if _, err := mgr.SetEnabled(ctx, "pin", true); err != nil {
		t.Fatal(err)
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := login("1234"); err != nil {
		t.Errorf("login after enable: %v", err)
	}
	if err := mgr.Remove(ctx, "pin"); err != nil {
		t.Fatal(err)
	}
	if err := n.bundles.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := pinAuth(); ok {
		t.Error("authn.pin runs after remove")
	}
	if _, ok := n.extensions.registry.Module("authn.password"); !ok {
		t.Error("the builtin modules are gone")
	}
}

func TestBundleEnablement(t *testing.T) {
	mods := []extension.Module{{ID: "authn.pin"}}
	base := []extension.InstanceConfig{{Name: "authn.password", Module: "authn.password"}, {Name: "userstore.local", Module: "userstore.local"}}
	cs := []extension.InstanceConfig{{Name: "pin.pin", Module: "authn.pin"}}
	all := append(slices.Clone(base), cs...)
	type kinds = map[extension.Kind][]string
	tests := []struct {
		name    string
		in      extension.Enablement
		tenants []string
		want    extension.Enablement
	}{
		{"every tenant, nothing configured", extension.Enablement{}, nil,
			extension.Enablement{Default: kinds{}, Tenants: map[string]kinds{}}},
		{"every tenant, lists configured", extension.Enablement{Default: kinds{"authenticator": {"authn.password"}}, Tenants: map[string]kinds{"acme": {"authenticator": {}}}}, nil,
			extension.Enablement{Default: kinds{"authenticator": {"authn.password", "pin.pin"}}, Tenants: map[string]kinds{"acme": {"authenticator": {"pin.pin"}}}}},
		{"some tenants", extension.Enablement{}, []string{"acme"},
			extension.Enablement{Default: kinds{"authenticator": {"authn.password"}}, Tenants: map[string]kinds{"acme": {"authenticator": {"authn.password", "pin.pin"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := cloneEnablement(tt.in)
			enable(&e, map[string]bool{}, all, cs, mods, tt.tenants)
			if !reflect.DeepEqual(e, tt.want) {
				t.Errorf("enablement = %+v, want %+v", e, tt.want)
			}
		})
	}
}

package abi_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	abiconf "github.com/latchid/latch/conformance/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/plugin/native"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// nativeBuilds builds native plugin binaries once per test binary.
var nativeBuilds struct {
	mu   sync.Mutex
	dir  string
	done map[string]string
}

// buildNative builds the Go main package at pkgDir (relative to this
// folder) into a native binary and returns its path.
func buildNative(t testing.TB, pkgDir string) string {
	t.Helper()
	nativeBuilds.mu.Lock()
	defer nativeBuilds.mu.Unlock()
	if p, ok := nativeBuilds.done[pkgDir]; ok {
		return p
	}
	if nativeBuilds.dir == "" {
		dir, err := os.MkdirTemp("", "conformance-native-")
		if err != nil {
			t.Fatal(err)
		}
		nativeBuilds.dir, nativeBuilds.done = dir, map[string]string{}
	}
	out := filepath.Join(nativeBuilds.dir, filepath.Base(pkgDir))
	cmd := exec.Command("go", "build", "-o", out, "./"+filepath.ToSlash(pkgDir))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkgDir, err, b)
	}
	nativeBuilds.done[pkgDir] = out
	return out
}

// loadNative loads the binary as plugin id with opts and the host
// services of env, and returns the plugin and its extensions' registry.
func (e *kernelEnv) loadNative(t *testing.T, id string, opts native.Options) (*native.Plugin, *extension.Registry) {
	t.Helper()
	calls, err := plugin.NewHostCalls(plugin.HostOptions{Plugin: id, Grants: opts.Grants, KV: e.st, Tenants: e.st, Box: e.box,
		Directory: func() *router.Router { return e.dir }})
	if err != nil {
		t.Fatal(err)
	}
	opts.HostCaller = calls
	p, desc, err := native.Load(t.Context(), id, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	mods, err := plugin.Modules(id, desc, p)
	if err != nil {
		t.Fatal(err)
	}
	r := extension.NewRegistry()
	for _, mod := range mods {
		r.Register(mod)
		calls.Exclude(mod.ID)
	}
	return p, r
}

// ipallowCases are the authenticator cases of plugins/ipallow.
var ipallowCases = abiconf.AuthenticatorCases{
	Accept:  abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Step: 2, IP: "10.1.2.3", KnownSubject: "u-1"},
	Subject: "u-1",
	Reject:  abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Step: 2, IP: "192.0.2.7", KnownSubject: "u-1"},
}

// TestNativePlugin runs the authenticator suite against plugins/ipallow
// built as a native binary: the same code as its WASM build, over
// go-plugin.
func TestNativePlugin(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	_, r := env.loadNative(t, "ipallow", native.Options{Command: buildNative(t, "../../plugins/ipallow"), Processes: 2})
	abiconf.RunAuthenticator(t, func(t *testing.T) authn.Authenticator {
		return loadInstance[authn.Authenticator](t, r, "authn.ipallow", `{"allow":["10.0.0.0/8"]}`)
	}, ipallowCases)

	t.Run("configuration refused by the guest", func(t *testing.T) {
		_, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: "authn.ipallow", Config: []byte(`{"allow":["10.0.0.0/33"]}`)}}, extension.LoadOptions{})
		if !errors.Is(err, fault.InvalidRequest) {
			t.Fatalf("err = %v, want invalid_request from the guest", err)
		}
	})
}

// TestNativeRobustness runs RunRobustness against a native guest: a call
// that loops, panics, exits or answers garbage fails closed, and the other
// processes keep serving. A dead process takes a moment to restart (a new
// binary, a handshake), where a WASM instance is replaced at once, so the
// pool has room for the three misbehaviours that kill one (loop, panic,
// exit) beside the healthy calls.
func TestNativeRobustness(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	_, r := env.loadNative(t, "misbehave", native.Options{
		Command: buildNative(t, "testdata/guests/nativemisbehave"), Processes: 6, CallTimeout: time.Second,
		Grants: []string{abi.CapabilityConfig},
	})
	a := loadInstance[authn.Authenticator](t, r, "authn.misbehave", `{}`)
	abiconf.RunRobustness(t, a, abiconf.RobustnessCases{
		Healthy: doReq("ok"),
		Subject: "u-ok",
		Misbehaviours: []abiconf.Misbehaviour{
			{Name: "endless loop stopped at its deadline", Request: doReq("loop"), WantCode: fault.CodeTimeout},
			{Name: "panic", Request: doReq("panic"), WantCode: fault.CodeUnavailable},
			{Name: "exit", Request: doReq("exit"), WantCode: fault.CodeUnavailable},
			{Name: "garbage output", Request: doReq("garbage"), WantCode: fault.CodeInternal},
			{Name: "oversized output", Request: doReq("oversized"), WantCode: fault.CodeInternal},
			{Name: "ungranted host call refused", Request: doReq("ungranted"), Refusal: true, WantReason: abi.CodeForbidden},
		},
	})
}

func doReq(what string) abi.AuthenticateRequest {
	return abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Params: map[string][]string{"do": {what}}}
}

// TestNativeHostCalls checks that a native plugin's host calls reach the
// kernel's services in the context of the call they serve: a granted kv
// read returns the tenant's value.
func TestNativeHostCalls(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	tenant, err := env.st.GetTenantByName(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.st.KVPut(t.Context(), "kvguest", tenant.ID, store.KVEntry{Key: "k", Value: []byte("u-from-kv")}); err != nil {
		t.Fatal(err)
	}
	_, r := env.loadNative(t, "kvguest", native.Options{
		Command: buildNative(t, "testdata/guests/nativemisbehave"), Args: []string{"-kv"},
		Grants: []string{abi.CapabilityConfig, abi.CapabilityKV},
	})
	a := loadInstance[authn.Authenticator](t, r, "authn.misbehave", `{}`)
	resp, err := authn.Check(a.Authenticate(t.Context(), doReq("echo_kv")))
	if err != nil || resp.Subject != "u-from-kv" {
		t.Fatalf("resp %+v err %v, want subject u-from-kv read through kv", resp, err)
	}
}

// TestNativeLoadRefusals checks that a binary is refused as a WASM module
// is: a capability not granted, a binary that does not speak the
// handshake, a checksum that does not match.
func TestNativeLoadRefusals(t *testing.T) {
	t.Parallel()
	bin := buildNative(t, "testdata/guests/nativemisbehave")
	tests := []struct {
		name string
		opts native.Options
		want error
		text string
	}{
		{name: "capability not granted", opts: native.Options{Command: bin}, want: plugin.ErrNotGranted},
		{name: "not a plugin", opts: native.Options{Command: "/bin/true", StartTimeout: 2 * time.Second}, text: "starting /bin/true"},
		{name: "checksum mismatch", opts: native.Options{Command: bin, Grants: []string{abi.CapabilityConfig}, Checksum: make([]byte, 32)}, text: "checksums did not match"},
		{name: "no command", opts: native.Options{}, text: "no command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := native.Load(t.Context(), "p", tt.opts)
			if err == nil {
				_ = p.Close(context.Background())
				t.Fatal("loaded, want a refusal")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.text != "" && !containsText(err, tt.text) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.text)
			}
		})
	}
}

func containsText(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// TestNativeKill kills the plugin's process with SIGKILL under load:
// calls needing it fail closed with unavailable (never authenticate),
// calls that do not need it keep serving, and the plugin is back within
// seconds.
func TestNativeKill(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	p, r := env.loadNative(t, "ipallow", native.Options{Command: buildNative(t, "../../plugins/ipallow"), MinBackoff: 50 * time.Millisecond})
	a := loadInstance[authn.Authenticator](t, r, "authn.ipallow", `{"allow":["10.0.0.0/8"]}`)
	other := pinAuthenticator{pin: "1234"} // an extension that does not need the plugin

	var (
		stop                         atomic.Bool
		pluginOK, unavailable, wrong atomic.Int64
		otherOK, otherFailed         atomic.Int64
		wg                           sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := authn.Check(a.Authenticate(t.Context(), ipallowCases.Accept))
				switch {
				case err == nil && resp.Outcome == abi.OutcomeAuthenticated:
					pluginOK.Add(1)
				case errors.Is(err, fault.Unavailable):
					unavailable.Add(1)
					time.Sleep(time.Millisecond) // pace the failing loop: it fails at once
				default:
					wrong.Add(1) // a failure that is not unavailable, or an answer that is not the subject
				}
			}
		})
		wg.Go(func() {
			for !stop.Load() {
				resp, err := other.Authenticate(t.Context(), pinCases.Accept)
				if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
					otherFailed.Add(1)
					continue
				}
				otherOK.Add(1)
				time.Sleep(time.Millisecond) // leave the cores to the plugin's restart
			}
		})
	}
	waitFor(t, "calls before the kill", func() bool { return pluginOK.Load() > 50 })
	pids := p.Pids()
	if len(pids) != 1 {
		t.Fatalf("pids = %v, want one", pids)
	}
	restarts := p.Restarts()
	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "calls failing closed while the process is down", func() bool { return unavailable.Load() > 0 })
	waitFor(t, "the restart", func() bool { return p.Restarts() > restarts && p.Running() == 1 })
	t.Logf("back %v after the kill", time.Since(killed).Round(time.Millisecond))
	after := pluginOK.Load()
	waitFor(t, "calls after the restart", func() bool { return pluginOK.Load() > after+50 })
	otherBefore := otherOK.Load()
	waitFor(t, "the other extension serving", func() bool { return otherOK.Load() > otherBefore })
	stop.Store(true)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d calls failed with something other than unavailable while the plugin was down", n)
	}
	if n := otherFailed.Load(); n != 0 {
		t.Errorf("%d calls to an extension that does not need the plugin failed", n)
	}
	if p.Pids()[0] == pids[0] {
		t.Errorf("the process was not replaced")
	}
	t.Logf("plugin calls: %d ok, %d unavailable; other calls: %d ok", pluginOK.Load(), unavailable.Load(), otherOK.Load())
}

// waitFor polls cond until it holds, failing the test after 20 seconds
// (a bound for a loaded CI machine, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

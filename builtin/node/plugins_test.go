package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	kplugin "github.com/latchid/latch/kernel/plugin"
)

// pinGuest builds kernel/plugin's test guest (three extensions: authn.pin,
// throttle.always, claims.upper) into dir.
func pinGuest(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "pin.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../kernel/plugin/testdata/guests/pin")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the pin guest: %v\n%s", err, stderr.String())
	}
	return out
}

// pluginConfig is a node configuration in a fresh data folder, with the
// compilation cache shared by the test's nodes.
func pluginConfig(t testing.TB, cache string, plugins ...config.PluginConfig) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\nwasm:\n  cache_dir: "+cache+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Plugins = plugins
	cfg.Extensions.Instances = []config.ExtensionInstance{{Module: "authn.pin", Config: map[string]any{"pin": "1234"}}}
	return cfg
}

func TestPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and compiles a WASM guest")
	}
	cache := t.TempDir()
	wasm := pinGuest(t, t.TempDir())
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	plugin := func(id, path string) config.PluginConfig {
		return config.PluginConfig{ID: id, Path: path, MinInstances: 1, MaxInstances: 2, MemoryLimitPages: 1024, CallTimeout: time.Second}
	}

	t.Run("loaded and callable", func(t *testing.T) {
		n, err := Open(ctx, pluginConfig(t, cache, plugin("testpin", wasm)), log, Options{Stdout: io.Discard})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer n.Close()
		if _, ok := n.extensions.registry.Module("claims.upper"); !ok {
			t.Error("the plugin's claims.upper is not registered")
		}
		if _, ok := n.extensions.registry.Module("authn.password"); !ok {
			t.Error("the builtin modules are gone")
		}
		insts := n.extensions.Enabled("default", extension.KindAuthenticator)
		if len(insts) != 1 || insts[0].ID() != "authn.pin" {
			t.Fatalf("authenticators = %v", insts)
		}
		a, _ := extension.As[authn.Authenticator](insts[0])
		resp, err := authn.Check(a.Authenticate(ctx, abi.AuthenticateRequest{Params: map[string][]string{"pin": {"1234"}}}))
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
			t.Errorf("Authenticate = %+v, %v", resp, err)
		}
		// The host services the node gives a plugin reach its store.
		calls, err := n.pluginServices(config.PluginConfig{ID: "svc", Grants: []string{abi.CapabilityKV, abi.CapabilitySecrets},
			Secrets: map[string]config.Secret{"api_key": "s3cret"}})
		if err != nil {
			t.Fatalf("pluginServices: %v", err)
		}
		sctx := kplugin.WithScope(ctx, &kplugin.Scope{Extension: "authn.pin", Tenant: "default"})
		ask := func(op abi.HostOp, req, resp abi.Message) {
			t.Helper()
			in, _ := abi.AppendHostCall(nil, op, req)
			out, err := calls.HostCall(sctx, "svc", in)
			var rep abi.HostReply
			if err != nil || rep.UnmarshalWire(out) != nil || rep.Error != nil {
				t.Fatalf("%s: %v %+v", op, err, rep.Error)
			}
			if resp != nil {
				if err := resp.UnmarshalWire(rep.Payload); err != nil {
					t.Fatal(err)
				}
			}
		}
		ask(abi.HostOpKVSet, &abi.KVSetRequest{Tenant: "default", Key: "k", Value: []byte("v")}, nil)
		var got abi.KVGetResponse
		ask(abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "default", Key: "k"}, &got)
		var sec abi.SecretGetResponse
		ask(abi.HostOpSecretGet, &abi.SecretGetRequest{Tenant: "default", Name: "api_key"}, &sec)
		if !got.Found || string(got.Value) != "v" || string(sec.Value) != "s3cret" {
			t.Errorf("kv.get = %+v, secret = %q", got, sec.Value)
		}

		host := n.wasm
		n.Close()
		if n.wasm != nil || len(host.Modules()) != 0 {
			t.Error("Close left the wasm host open")
		}
	})

	tests := []struct {
		name    string
		plugins []config.PluginConfig
		want    []string
	}{
		{name: "missing file", plugins: []config.PluginConfig{plugin("gone", filepath.Join(t.TempDir(), "gone.wasm"))},
			want: []string{"plugins[0] (gone): reading the module: ", "no such file"}},
		{name: "extension id taken by another plugin", plugins: []config.PluginConfig{plugin("first", wasm), plugin("second", wasm)},
			want: []string{"plugins[1] (second): registering extension authn.pin: the id is already taken by plugin first"}},
		{name: "bad http_hosts", plugins: []config.PluginConfig{func() config.PluginConfig {
			p := plugin("web", wasm)
			p.Grants, p.HTTPHosts = []string{abi.CapabilityHTTP}, []string{"*.*.example.com"}
			return p
		}()}, want: []string{"plugins[0] (web): ", `"*.*.example.com"`}},
		{name: "not a module", plugins: []config.PluginConfig{plugin("text", writeFile(t, "text.wasm", "hello"))},
			want: []string{`plugins[0] (text): loading wasm module "text": `, "invalid WebAssembly module"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(ctx, pluginConfig(t, cache, tt.plugins...), log, Options{Stdout: io.Discard})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
)

// TestNativePlugins opens a node whose configuration names a native plugin
// binary (plugins/ipallow built with go build), calls its extension, and
// stops its process with the node.
func TestNativePlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a native plugin")
	}
	bin := filepath.Join(t.TempDir(), "ipallow")
	cmd := exec.Command("go", "build", "-o", bin, "../../plugins/ipallow")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building ipallow: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	ctx := context.Background()
	native := func(digest string) config.Config {
		cfg := pluginConfig(t, t.TempDir(), config.PluginConfig{
			ID: "ipallow", Command: bin, SHA256: digest, Processes: 1,
			MinInstances: 1, MaxInstances: 1, MemoryLimitPages: 1024, CallTimeout: 2 * time.Second,
		})
		cfg.Extensions.Instances = []config.ExtensionInstance{{Module: "authn.ipallow", Config: map[string]any{"allow": []any{"10.0.0.0/8"}}}}
		return cfg
	}

	t.Run("loaded and callable", func(t *testing.T) {
		n, err := Open(ctx, native(hex.EncodeToString(sum[:])), slog.New(slog.DiscardHandler), Options{Stdout: io.Discard})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		insts := n.extensions.Enabled("default", extension.KindAuthenticator)
		if len(insts) != 1 || insts[0].ID() != "authn.ipallow" {
			n.Close()
			t.Fatalf("authenticators = %v", insts)
		}
		a, _ := extension.As[authn.Authenticator](insts[0])
		resp, err := authn.Check(a.Authenticate(ctx, abi.AuthenticateRequest{IP: "10.1.2.3", KnownSubject: "u-1"}))
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated || resp.Subject != "u-1" {
			t.Errorf("Authenticate = %+v, %v", resp, err)
		}
		v, ok := nativePlugins.Load(n)
		if !ok {
			t.Fatal("the node keeps no native plugin")
		}
		np := v.(*nativeSet).plugins[0]
		n.Close()
		n.closeNativePlugins(ctx)
		if np.Running() != 0 {
			t.Error("the plugin process still runs after the node closed")
		}
	})
	t.Run("checksum mismatch refused", func(t *testing.T) {
		n, err := Open(ctx, native(strings.Repeat("00", 32)), slog.New(slog.DiscardHandler), Options{Stdout: io.Discard})
		if err == nil {
			n.Close()
			n.closeNativePlugins(ctx)
			t.Fatal("Open succeeded with a wrong sha256")
		}
		if !strings.Contains(err.Error(), "plugins[0] (ipallow)") || !strings.Contains(err.Error(), "checksums did not match") {
			t.Fatalf("err = %v, want it to name the plugin and the checksum", err)
		}
	})
}

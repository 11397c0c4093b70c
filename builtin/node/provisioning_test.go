package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	provscim "github.com/latchid/latch/builtin/provision/scim"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
)

// provisioningConfig is a SQLite node whose extensions are the local user
// store, the password authenticator and the given instances (YAML list
// items, indented by four spaces).
func provisioningConfig(t *testing.T, instances string) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	yaml := "listen: 127.0.0.1:0\ndata_dir: " + dir + "\nextensions:\n  instances:\n" +
		"    - module: userstore.local\n    - module: authn.password\n" + instances
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestProvisioningRulesOnTheInstance: rules set on a provision.scim
// instance (extensions.instances[].rules, the shape every provisioner
// takes) reach it as if set in its config, and a node refuses rules that
// are malformed, set twice, or set on an instance that is no provisioner.
func TestProvisioningRulesOnTheInstance(t *testing.T) {
	const scimInstance = "    - name: to-x\n      module: provision.scim\n      config: {url: \"http://127.0.0.1:1/scim2\", token: t, allow_private: true}\n"
	n := openNode(t, provisioningConfig(t, scimInstance+"      rules: {groups: [engineering], deprovision: disable}\n"))
	inst, ok := n.extensions.instances.Load().Get("to-x")
	if !ok {
		t.Fatal("no instance to-x")
	}
	in, ok := extension.As[*provscim.Instance](inst)
	if !ok {
		t.Fatalf("to-x is %T", inst)
	}
	if in.Rules == nil || !slices.Equal(in.Rules.Groups, []string{"engineering"}) || in.Rules.Deprovision != "disable" {
		t.Fatalf("to-x rules: %+v", in.Rules)
	}
	if got := n.extensions.provisioningRules("to-x"); got == nil || !slices.Equal(got.Groups, in.Rules.Groups) {
		t.Fatalf("the node's rules of to-x: %+v", got)
	}

	for _, c := range []struct {
		name, instances, want string
	}{
		{"unknown field", scimInstance + "      rules: {groups: [a], colour: blue}\n", `unknown field "colour"`},
		{"bad filter", scimInstance + "      rules: {filter: \"password eq 1\"}\n", "rules.filter"},
		{"bad deprovision", scimInstance + "      rules: {deprovision: archive}\n", "rules.deprovision"},
		{"empty group name", scimInstance + "      rules: {groups: [\"\"]}\n", "rules.groups[0]"},
		{"set twice", "    - name: to-x\n      module: provision.scim\n      config: {url: \"http://127.0.0.1:1/scim2\", token: t, rules: {groups: [a]}}\n      rules: {groups: [b]}\n", "both on the instance and in its config"},
		{"not a provisioner", "    - name: pw2\n      module: authn.password\n      rules: {groups: [a]}\n", "only provisioner instances take rules"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := Open(context.Background(), provisioningConfig(t, c.instances), slog.New(slog.DiscardHandler), Options{Stdout: io.Discard})
			if err == nil {
				n.Close()
				t.Fatal("the node opened")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/wasmhost"
)

// allCapabilities is every capability of the contract, granted for
// inspection only.
var allCapabilities = []string{
	abi.CapabilityLog, abi.CapabilityConfig, abi.CapabilityKV, abi.CapabilityClock, abi.CapabilityRandom,
	abi.CapabilitySecrets, abi.CapabilityUserLookup, abi.CapabilityAudit, abi.CapabilityHTTP,
}

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Inspect and test plugin modules (WASM)",
	}
	cmd.AddCommand(newPluginInspectCmd(), newPluginTestCmd())
	return cmd
}

// pluginHost loads the module at path into a throwaway host (its cache in
// a temporary folder) with grants, and returns it with its description and
// a function that closes everything.
func pluginHost(ctx context.Context, path string, grants []string) (*wasmhost.Module, abi.Description, []byte, func(), error) {
	wasm, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the module to read; reading it is the point
	if err != nil {
		return nil, abi.Description{}, nil, nil, fmt.Errorf("reading the module: %w", err)
	}
	dir, err := os.MkdirTemp("", "latch-plugin-")
	if err != nil {
		return nil, abi.Description{}, nil, nil, fmt.Errorf("creating the cache folder: %w", err)
	}
	host, err := wasmhost.New(ctx, wasmhost.Options{CacheDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, abi.Description{}, nil, nil, fmt.Errorf("starting the wasm host: %w", err)
	}
	closeAll := func() {
		_ = host.Close(context.Background())
		_ = os.RemoveAll(dir)
	}
	id := moduleID(path)
	m, desc, err := plugin.LoadWASM(ctx, host, id, wasm, wasmhost.ModuleOptions{Grants: grants, HostCaller: plugin.UnsupportedHostCalls})
	if err != nil {
		closeAll()
		return nil, abi.Description{}, nil, nil, fmt.Errorf("refusing module %s: %w", path, err)
	}
	return m, desc, wasm, closeAll, nil
}

// moduleID names the module after its file: "acme-otp.wasm" -> "acme-otp".
func moduleID(path string) string {
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	if id := strings.TrimSuffix(base, ".wasm"); id != "" {
		return id
	}
	return "module"
}

// inspection is what `plugin inspect --json` prints.
type inspection struct {
	File         string                  `json:"file"`
	Name         string                  `json:"name"`
	Version      string                  `json:"version"`
	ABIVersion   string                  `json:"abi_version"`
	Entries      []inspectedEntry        `json:"entries"`
	Capabilities []abi.CapabilityRequest `json:"capabilities"`
	ConfigSchema json.RawMessage         `json:"config_schema,omitempty"`
	Imports      []string                `json:"imports"`
}

type inspectedEntry struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	ID   string `json:"id"`
}

func newPluginInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect <module.wasm>",
		Short: "Print a plugin module's description: entries, capabilities, configuration schema, imports",
		Long:  "Loads the module into a throwaway WASM host, with every capability granted for inspection only, and prints what it declares.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, desc, wasm, closeAll, err := pluginHost(ctx, args[0], allCapabilities)
			if err != nil {
				return err
			}
			defer closeAll()
			imports, err := wasmImports(ctx, wasm)
			if err != nil {
				return err
			}
			in := inspection{
				File: args[0], Name: desc.Name, Version: desc.Version, ABIVersion: desc.ABIVersion,
				Capabilities: desc.Capabilities, ConfigSchema: desc.ConfigSchema, Imports: imports,
			}
			if in.Capabilities == nil {
				in.Capabilities = []abi.CapabilityRequest{}
			}
			for _, e := range desc.Extensions {
				in.Entries = append(in.Entries, inspectedEntry{Kind: e.Kind, Name: e.Name, ID: entryID(e)})
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			}
			printInspection(cmd.OutOrStdout(), in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the description as JSON")
	return cmd
}

// entryID is the extension id an entry registers as ("authn.pin").
func entryID(e abi.ExtensionEntry) string {
	return extension.Kind(e.Kind).Namespace() + "." + e.Name
}

func printInspection(w io.Writer, in inspection) {
	fmt.Fprintf(w, "module:       %s %s (%s)\n", in.Name, in.Version, in.File)
	fmt.Fprintf(w, "abi version:  %s\n", in.ABIVersion)
	fmt.Fprintln(w, "entries:")
	for _, e := range in.Entries {
		fmt.Fprintf(w, "  %-14s %-20s (%s)\n", e.Kind, e.Name, e.ID)
	}
	if len(in.Capabilities) == 0 {
		fmt.Fprintln(w, "capabilities: none")
	} else {
		fmt.Fprintln(w, "capabilities:")
		for _, c := range in.Capabilities {
			if len(c.Hosts) > 0 {
				fmt.Fprintf(w, "  %s (hosts %s)\n", c.Name, strings.Join(c.Hosts, ", "))
			} else {
				fmt.Fprintf(w, "  %s\n", c.Name)
			}
		}
	}
	if len(in.ConfigSchema) > 0 {
		fmt.Fprintf(w, "config schema: yes (%d bytes; --json prints it)\n", len(in.ConfigSchema))
	} else {
		fmt.Fprintln(w, "config schema: none")
	}
	fmt.Fprintln(w, "imports:")
	for _, imp := range in.Imports {
		fmt.Fprintf(w, "  %s\n", imp)
	}
}

// wasmImports lists the functions the module imports, as "module.name".
func wasmImports(ctx context.Context, wasm []byte) ([]string, error) {
	rt := wazero.NewRuntime(ctx)
	defer func() { _ = rt.Close(ctx) }()
	code, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("reading the module's imports: %w", err)
	}
	out := []string{}
	for _, f := range code.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	return out, nil
}

func newPluginTestCmd() *cobra.Command {
	var (
		grants  []string
		configs []string
	)
	cmd := &cobra.Command{
		Use:   "test <module.wasm>",
		Short: "Load a plugin module and run a basic check list on each of its extensions",
		Long: `Loads the module with the given grants (a module requesting anything else is
refused), then, for each extension it declares: configure (with --config or {}),
health, one call of the kind's operation with a basic request whose answer must
pass the kind's checks, and close. Prints PASS/FAIL lines and a summary; exits 1
on any failure.`,
		Example: `  latch plugin test acme-otp.wasm --grant http --config 'authn.otp={"digits":6}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := map[string]json.RawMessage{}
			for _, c := range configs {
				id, raw, ok := strings.Cut(c, "=")
				if !ok || !json.Valid([]byte(raw)) {
					return fmt.Errorf("--config %q: want <extension id>=<JSON>, for example authn.pin={\"pin\":\"1234\"}", c)
				}
				cfg[id] = json.RawMessage(raw)
			}
			ctx := cmd.Context()
			m, desc, _, closeAll, err := pluginHost(ctx, args[0], grants)
			if err != nil {
				return err
			}
			defer closeAll()
			mods, err := plugin.Modules(moduleID(args[0]), desc, m)
			if err != nil {
				return err
			}
			reg := extension.NewRegistry()
			for _, mod := range mods {
				reg.Register(mod)
			}
			for id := range cfg {
				if _, ok := reg.Module(extension.ID(id)); !ok {
					return fmt.Errorf("--config %s: the module declares no such extension", id)
				}
			}
			r := &report{w: cmd.OutOrStdout()}
			for _, mod := range mods {
				testEntry(ctx, r, reg, mod, cfg[string(mod.ID)])
			}
			fmt.Fprintf(r.w, "%d passed, %d failed", r.passed, r.failed)
			switch {
			case r.warned == 1:
				fmt.Fprint(r.w, " (1 warning)")
			case r.warned > 1:
				fmt.Fprintf(r.w, " (%d warnings)", r.warned)
			}
			fmt.Fprintln(r.w)
			if r.failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&grants, "grant", nil, "grant a capability to the module (repeatable or comma-separated: log,clock,random,config,kv,secrets,userlookup,audit,http)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "configure an extension: <extension id>=<JSON> (repeatable); default {}")
	return cmd
}

// report prints the check list and counts it.
type report struct {
	w                      io.Writer
	passed, failed, warned int
}

func (r *report) check(id extension.ID, step string, err error) bool {
	if err != nil {
		r.failed++
		fmt.Fprintf(r.w, "FAIL %s %s: %v\n", id, step, err)
		return false
	}
	r.passed++
	fmt.Fprintf(r.w, "PASS %s %s\n", id, step)
	return true
}

// testEntry runs the check list of one extension.
func testEntry(ctx context.Context, r *report, reg *extension.Registry, mod extension.Module, config json.RawMessage) {
	if config == nil {
		config = json.RawMessage(`{}`)
	}
	insts, err := reg.Load(ctx, []extension.InstanceConfig{{Module: mod.ID, Config: config}}, extension.LoadOptions{})
	if !r.check(mod.ID, "configure "+string(config), err) {
		return
	}
	inst := insts.All()[0]
	if _, err := insts.Health(ctx); err != nil {
		if fault.CodeOf(err) == fault.CodeUnavailable {
			r.warned++
			fmt.Fprintf(r.w, "WARN %s health: reports itself unavailable: %v\n", mod.ID, err)
		} else {
			r.check(mod.ID, "health", err)
		}
	} else {
		r.check(mod.ID, "health", nil)
	}
	step, err := callEntry(ctx, inst)
	if step != "" {
		r.check(mod.ID, step, err)
	} else {
		fmt.Fprintf(r.w, "SKIP %s call: no basic request for kind %s yet\n", mod.ID, mod.Kind)
	}
	r.check(mod.ID, "close", insts.Close(ctx))
}

// callEntry makes one call of the kind's operation with a basic request
// and checks the answer; it returns the step's name, or "" for a kind it
// cannot call yet.
func callEntry(ctx context.Context, inst *extension.Instance) (string, error) {
	switch v := inst.Value().(type) {
	case authn.Authenticator:
		const step = "authenticate (no credentials: a challenge or not_authenticated)"
		var resp abi.AuthenticateResponse
		err := extension.Call(ctx, inst, abi.OpAuthenticate, func(ctx context.Context) (err error) {
			resp, err = authn.Check(v.Authenticate(ctx, abi.AuthenticateRequest{Tenant: "plugin-test", FlowID: "plugin-test"}))
			return err
		})
		if err == nil && resp.Outcome != abi.OutcomeChallenge && resp.Outcome != abi.OutcomeNotAuthenticated {
			err = fmt.Errorf("outcome %q for a request without credentials", resp.Outcome)
		}
		return step, err
	case throttle.Throttler:
		return "allow (one unit under 10 a minute)", extension.Call(ctx, inst, abi.OpAllow, func(ctx context.Context) error {
			resp, err := throttle.Check(v.Allow(ctx, abi.AllowRequest{Tenant: "plugin-test", Key: "plugin-test", Cost: 1, Limit: abi.Limit{Rate: 10, PeriodMillis: 60_000}}))
			if err == nil && !resp.Allowed {
				err = errors.New("refused the first unit of a fresh key")
			}
			return err
		})
	case claims.Mapper:
		return "map_claims (one claim)", extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
			_, err := claims.Check(v.Map(ctx, abi.MapRequest{Tenant: "plugin-test", From: "oidc", To: "oidc", Subject: "plugin-test", Claims: map[string]any{"sub": "plugin-test"}}))
			return err
		})
	}
	return "", nil
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/userstore"
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
		Short: "Scaffold, build, inspect and test plugin modules (WASM)",
	}
	cmd.AddCommand(newPluginNewCmd(), newPluginBuildCmd(), newPluginInspectCmd(), newPluginTestCmd())
	cmd.AddCommand(newPluginPackCmd(), newBundleSignCmd()) // bundle.go
	return cmd
}

// pluginHost loads the module at path into a throwaway host (its cache in
// a temporary folder) with grants, and returns it with its description and
// a function that closes everything.
func pluginHost(ctx context.Context, path string, grants []string, services wasmhost.HostCaller) (*wasmhost.Module, abi.Description, []byte, func(), error) {
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
	m, desc, err := plugin.LoadWASM(ctx, host, id, wasm, wasmhost.ModuleOptions{Grants: grants, HostCaller: services})
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
			_, desc, wasm, closeAll, err := pluginHost(ctx, args[0], allCapabilities, plugin.UnsupportedHostCalls)
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
		grants    []string
		configs   []string
		httpHosts []string
		secrets   []string
	)
	cmd := &cobra.Command{
		Use:   "test <module.wasm>",
		Short: "Load a plugin module and run a basic check list on each of its extensions",
		Long: `Loads the module with the given grants (a module requesting anything else is
refused), then, for each extension it declares: configure (with --config or {}),
health, one call of the kind's operation with a basic request whose answer must
pass the kind's checks, and close. Prints PASS/FAIL lines and a summary; exits 1
on any failure.

Host calls are served as the server serves them: the configuration, a key-value
space in a throwaway store (tenant "plugin-test"), the --secret values, audit
events (printed as AUDIT lines) and outbound HTTP to the --http-host entries
only. User lookup answers unavailable (there are no user stores).`,
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
			r := &report{w: cmd.OutOrStdout()}
			env, err := newTestServices(ctx, moduleID(args[0]), grants, httpHosts, secrets, r)
			if err != nil {
				return err
			}
			defer env.close()
			m, desc, _, closeAll, err := pluginHost(ctx, args[0], grants, env.calls)
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
			for _, mod := range mods {
				env.calls.Exclude(mod.ID)
			}
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
	cmd.Flags().StringSliceVar(&httpHosts, "http-host", nil, "allow outbound HTTP to a host, as plugins[].http_hosts does (repeatable): api.example.com, *.example.com, http://127.0.0.1:8080")
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "give the module a secret, as plugins[].secrets does: <name>=<value> (repeatable)")
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
			resp, err = authn.Check(v.Authenticate(ctx, abi.AuthenticateRequest{Tenant: pluginTestTenant, FlowID: "plugin-test"}))
			return err
		})
		if err == nil && resp.Outcome != abi.OutcomeChallenge && resp.Outcome != abi.OutcomeNotAuthenticated {
			err = fmt.Errorf("outcome %q for a request without credentials", resp.Outcome)
		}
		return step, err
	case throttle.Throttler:
		return "allow (one unit under 10 a minute)", extension.Call(ctx, inst, abi.OpAllow, func(ctx context.Context) error {
			resp, err := throttle.Check(v.Allow(ctx, abi.AllowRequest{Tenant: pluginTestTenant, Key: "plugin-test", Cost: 1, Limit: abi.Limit{Rate: 10, PeriodMillis: 60_000}}))
			if err == nil && !resp.Allowed {
				err = errors.New("refused the first unit of a fresh key")
			}
			return err
		})
	case grant.Type:
		const step = "token (an unknown grant_type: declined or refused)"
		return step, extension.Call(ctx, inst, abi.OpToken, func(ctx context.Context) error {
			req := abi.TokenRequest{Tenant: pluginTestTenant, GrantType: "urn:latch:params:plugin-test", ClientID: "plugin-test", ClientAuthenticated: true}
			resp, err := v.Token(ctx, req)
			_, err = grant.Check(req, resp, err)
			if errors.Is(err, grant.ErrDeclined) || (err != nil && fault.CodeOf(err) != fault.CodeInternal) {
				return nil
			}
			return err
		})
	case userstore.Store:
		const step = "authenticate_user (an unknown user: unknown_user or invalid_credentials)"
		return step, extension.Call(ctx, inst, abi.OpAuthenticateUser, func(ctx context.Context) error {
			resp, err := userstore.CheckAuthenticate(v.AuthenticateUser(ctx, abi.AuthenticateUserRequest{Tenant: pluginTestTenant, Username: "plugin-test-nobody", Password: "plugin-test"}))
			if err == nil && resp.Outcome != abi.UserUnknown && resp.Outcome != abi.UserInvalidCredentials {
				err = fmt.Errorf("outcome %q for a user that does not exist", resp.Outcome)
			}
			return err
		})
	case provision.Provisioner:
		return "provision (a user created: done, skipped or retry)", extension.Call(ctx, inst, abi.OpProvision, func(ctx context.Context) error {
			_, err := provision.Check(v.Push(ctx, abi.ProvisionEvent{ID: "plugin-test-1", Tenant: pluginTestTenant, Op: abi.ProvisionCreate,
				Resource: abi.ResourceUser, ResourceID: "plugin-test", User: &abi.User{ID: "plugin-test", Username: "plugin-test", Enabled: true}}))
			if errors.Is(err, provision.ErrRetry) {
				return nil // a valid answer: the target asked for a later delivery
			}
			return err
		})
	case claims.Mapper:
		return "map_claims (one claim)", extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
			_, err := claims.Check(v.Map(ctx, abi.MapRequest{Tenant: pluginTestTenant, From: "oidc", To: "oidc", Subject: "plugin-test", Claims: map[string]any{"sub": "plugin-test"}}))
			return err
		})
	}
	return "", nil
}

// latchModule is the Go module path of Latch, whose sdk/ plugins import.
const latchModule = "github.com/latchid/latch"

func newPluginBuildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build [dir]",
		Short: "Build a plugin's main package to a WASM module (go build for wasip1)",
		Long: `Runs the Go toolchain on the main package in dir (default: the current
folder): go build -buildmode=c-shared with GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0,
the rest of the environment inherited. The module is written to -o, default
<dir's name>.wasm in the current folder. Needs go on PATH.`,
		Example: `  latch plugin build plugins/ipallow -o ipallow.wasm`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			absDir, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			if fi, err := os.Stat(absDir); err != nil || !fi.IsDir() {
				return fmt.Errorf("plugin build: %s is not a folder", dir)
			}
			if out == "" {
				out = filepath.Base(absDir) + ".wasm"
			}
			absOut, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			gobin, err := exec.LookPath("go")
			if err != nil {
				return errors.New("plugin build: the Go toolchain is needed and go is not on PATH (install Go from https://go.dev/dl/, or build by hand: GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -o out.wasm .)")
			}
			build := exec.CommandContext(cmd.Context(), gobin, "build", "-buildmode=c-shared", "-o", absOut, ".") //nolint:gosec // G204: runs the Go toolchain found on PATH on the folder the author names; that is the command's job
			build.Dir = absDir
			build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			build.Stdout, build.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			if err := build.Run(); err != nil {
				return fmt.Errorf("plugin build: go build in %s: %w", dir, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the module to write (default <dir's name>.wasm in the current folder)")
	return cmd
}

// pluginKinds are the kinds `plugin new` scaffolds, with their templates.
var pluginKinds = map[string]struct{ main, test string }{
	abi.KindAuthenticator: {mainAuthenticator, testAuthenticator},
	abi.KindThrottler:     {mainThrottler, testThrottler},
	abi.KindClaims:        {mainClaims, testClaims},
}

func newPluginNewCmd() *cobra.Command {
	var dir, module string
	cmd := &cobra.Command{
		Use:   "new <kind> <name>",
		Short: "Scaffold a plugin: main.go, main_test.go and README.md of a working extension",
		Long: `Writes a new plugin folder (--dir, default ./<name>) holding a minimal working
extension of the kind (authenticator, throttler or claims), its tests on
sdk/plugintest, and a README. name is lowercase letters, digits, '_' and '-',
starting with a letter; the extension's name is name with '-' turned into '_'
(its id: authn.<name>, throttle.<name> or claims.<name>).

Inside the Latch repository the code imports its sdk directly. Elsewhere a
go.mod is written too (module --module, default example.com/<name>) requiring
github.com/latchid/latch; while that module is not published, point it at a
checkout with: go mod edit -replace github.com/latchid/latch=/path/to/latch`,
		Example: `  latch plugin new authenticator acme-otp --dir plugins/acme-otp`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name := args[0], args[1]
			tmpl, ok := pluginKinds[kind]
			if !ok {
				return fmt.Errorf("plugin new: unknown kind %q (want authenticator, throttler or claims)", kind)
			}
			if !validPluginName(name) {
				return fmt.Errorf("plugin new: invalid name %q: lowercase letters, digits, '_' and '-', starting with a letter", name)
			}
			if dir == "" {
				dir = name
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
				return fmt.Errorf("plugin new: %s exists and is not empty", dir)
			}
			inRepo := insideLatchModule(abs)
			if module == "" {
				module = "example.com/" + name
			}
			data := scaffold{
				Name: name, Entry: strings.ReplaceAll(name, "-", "_"), Kind: kind,
				ID:     extension.Kind(kind).Namespace() + "." + strings.ReplaceAll(name, "-", "_"),
				Module: module, InRepo: inRepo,
			}
			files := []struct{ name, text string }{
				{"main.go", tmpl.main}, {"main_test.go", tmpl.test}, {"README.md", readmeTemplate},
			}
			if !inRepo {
				files = append(files, struct{ name, text string }{"go.mod", goModTemplate})
			}
			if err := os.MkdirAll(abs, 0o750); err != nil {
				return fmt.Errorf("plugin new: %w", err)
			}
			for _, f := range files {
				var b strings.Builder
				if err := template.Must(template.New(f.name).Delims("[[", "]]").Parse(f.text)).Execute(&b, data); err != nil {
					return fmt.Errorf("plugin new: %s: %w", f.name, err)
				}
				if err := os.WriteFile(filepath.Join(abs, f.name), []byte(b.String()), 0o600); err != nil {
					return fmt.Errorf("plugin new: %w", err)
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "created %s (%s %s)\n", dir, kind, data.ID)
			if !inRepo {
				fmt.Fprintf(w, "outside the Latch repository: while %s is unpublished, run in %s:\n  go mod edit -replace %s=/path/to/latch && go mod tidy\n", latchModule, dir, latchModule)
			}
			fmt.Fprintf(w, "next:\n  (cd %s && go test ./...)\n  latch plugin build %s -o %s.wasm\n  latch plugin test %s.wasm\n", dir, dir, name, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the folder to create (default ./<name>); must not exist or be empty")
	cmd.Flags().StringVar(&module, "module", "", "the Go module path of go.mod, outside the Latch repository (default example.com/<name>)")
	return cmd
}

// scaffold is the data of the `plugin new` templates.
type scaffold struct {
	Name, Entry, Kind, ID, Module string
	InRepo                        bool
}

// validPluginName reports whether name is [a-z][a-z0-9_-]*, at most 64
// bytes.
func validPluginName(name string) bool {
	if name == "" || len(name) > 64 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// insideLatchModule reports whether dir (which may not exist yet) lies in
// the Go module github.com/latchid/latch: the nearest go.mod above it
// declares that module.
func insideLatchModule(dir string) bool {
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil { //nolint:gosec // G304: reading go.mod files above the folder being created
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
					return strings.Trim(f[1], `"`) == latchModule
				}
			}
			return false
		}
		parent := filepath.Dir(d)
		if parent == d {
			return false
		}
		d = parent
	}
}

const goModTemplate = `module [[.Module]]

go 1.26

require ` + latchModule + ` v0.0.0

// While github.com/latchid/latch is not published, point it at a checkout:
//   go mod edit -replace github.com/latchid/latch=/path/to/latch && go mod tidy
`

const mainAuthenticator = `// Command [[.Name]] is a Latch authenticator plugin ([[.ID]]), built to
// WASM: latch plugin build . -o [[.Name]].wasm
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/plugin"
)

// authenticator asks for a code and accepts the configured one. Replace
// Authenticate with your check.
type authenticator struct{}

// Authenticate answers a form challenge until the code is posted, then
// authenticated when it matches the configuration's code.
func (authenticator) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	code := req.Params["code"]
	if len(code) == 0 {
		return authn.Form(abi.Field{Name: "code", Type: abi.FieldOTP, Label: "Code", Required: true}), nil
	}
	want, err := codeOf(req.Config)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if want == "" || code[0] != want {
		return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
	}
	subject := req.KnownSubject
	if subject == "" {
		subject = "[[.Name]]-user"
	}
	return authn.Authenticated(subject, nil), nil
}

// Configure refuses a configuration that does not decode.
func (authenticator) Configure(config []byte) error {
	_, err := codeOf(config)
	return err
}

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{
		Name:         "[[.Name]]",
		Version:      "0.1.0",
		ConfigSchema: []byte(` + "`" + `{"type":"object","properties":{"code":{"type":"string"}},"additionalProperties":false}` + "`" + `),
	})
	authn.Register("[[.Entry]]", authenticator{})
}

// main never runs in a reactor guest.
func main() {}
` + configHelper

const configHelper = `
// codeOf reads the "code" of a configuration ({"code":"1234"}) by hand:
// the parser is tiny and needs no reflection. Use encoding/json instead if
// you prefer; it works in a Go WASM guest.
func codeOf(config []byte) (string, error) {
	s := string(config)
	i := indexOf(s, ` + "`" + `"code"` + "`" + `)
	if i < 0 {
		return "", nil
	}
	s = s[i+len(` + "`" + `"code"` + "`" + `):]
	for len(s) > 0 && (s[0] == ' ' || s[0] == ':') {
		s = s[1:]
	}
	if len(s) == 0 || s[0] != '"' {
		return "", plugin.ErrInvalidRequest.WithMessage("code: want a string")
	}
	end := indexOf(s[1:], ` + "`" + `"` + "`" + `)
	if end < 0 {
		return "", plugin.ErrInvalidRequest.WithMessage("code: unterminated string")
	}
	return s[1 : 1+end], nil
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
`

const testAuthenticator = `package main

import (
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugintest"
)

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string][]string
		want   string
	}{
		{name: "no code: a form", want: abi.OutcomeChallenge},
		{name: "right code", params: map[string][]string{"code": {"1234"}}, want: abi.OutcomeAuthenticated},
		{name: "wrong code", params: map[string][]string{"code": {"9999"}}, want: abi.OutcomeNotAuthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			if err := h.Configure("[[.Entry]]", []byte(` + "`" + `{"code":"1234"}` + "`" + `)); err != nil {
				t.Fatal(err)
			}
			resp, err := h.Authenticate("[[.Entry]]", abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Step: 1, Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.want {
				t.Errorf("outcome %q, want %q", resp.Outcome, tt.want)
			}
		})
	}
}

func TestConfigureRefusesBadConfig(t *testing.T) {
	if err := plugintest.New(t).Configure("[[.Entry]]", []byte(` + "`" + `{"code":1234}` + "`" + `)); err == nil {
		t.Error("a numeric code was accepted")
	}
}
`

const mainThrottler = `// Command [[.Name]] is a Latch throttler plugin ([[.ID]]), built to WASM:
// latch plugin build . -o [[.Name]].wasm
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/throttle"
)

// throttler allows every request of cost up to the limit's rate. Replace
// Allow with your policy (a counter in the host's KV store, for example,
// with the "kv" capability).
type throttler struct{}

// Allow grants req.Cost units when they fit in one period's rate.
func (throttler) Allow(req abi.AllowRequest) (abi.AllowResponse, error) {
	if req.Cost > req.Limit.Rate {
		return throttle.Denied(0), nil
	}
	return throttle.Allowed(req.Limit.Rate - req.Cost), nil
}

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "[[.Name]]", Version: "0.1.0"})
	throttle.Register("[[.Entry]]", throttler{})
}

// main never runs in a reactor guest.
func main() {}
`

const testThrottler = `package main

import (
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugintest"
)

func TestAllow(t *testing.T) {
	h := plugintest.New(t)
	limit := abi.Limit{Rate: 10, PeriodMillis: 60_000}
	resp, err := h.Allow("[[.Entry]]", abi.AllowRequest{Tenant: "acme", Key: "k", Cost: 1, Limit: limit})
	if err != nil || !resp.Allowed {
		t.Fatalf("Allow = %+v, %v; want allowed", resp, err)
	}
	resp, err = h.Allow("[[.Entry]]", abi.AllowRequest{Tenant: "acme", Key: "k", Cost: 11, Limit: limit})
	if err != nil || resp.Allowed {
		t.Fatalf("Allow = %+v, %v; want denied", resp, err)
	}
}
`

const mainClaims = `// Command [[.Name]] is a Latch claims mapper plugin ([[.ID]]), built to
// WASM: latch plugin build . -o [[.Name]].wasm
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/claims"
	"github.com/latchid/latch/sdk/plugin"
)

// mapper copies the claims and adds "source": "[[.Name]]". Replace Map
// with your translation.
type mapper struct{}

// Map returns the claims with one more.
func (mapper) Map(req abi.MapRequest) (abi.MapResponse, error) {
	out := make(map[string]any, len(req.Claims)+1)
	for k, v := range req.Claims {
		out[k] = v
	}
	out["source"] = "[[.Name]]"
	return abi.MapResponse{Claims: out}, nil
}

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "[[.Name]]", Version: "0.1.0"})
	claims.Register("[[.Entry]]", mapper{})
}

// main never runs in a reactor guest.
func main() {}
`

const testClaims = `package main

import (
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugintest"
)

func TestMap(t *testing.T) {
	resp, err := plugintest.New(t).MapClaims("[[.Entry]]", abi.MapRequest{Tenant: "acme", From: "oidc", To: "oidc", Subject: "u-1", Claims: map[string]any{"sub": "u-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Claims["sub"] != "u-1" || resp.Claims["source"] != "[[.Name]]" {
		t.Errorf("claims %v", resp.Claims)
	}
}
`

const readmeTemplate = `# [[.Name]]

A Latch [[.Kind]] plugin: extension ` + "`[[.ID]]`" + `. Describe here what it does.

## Configuration

[[if eq .Kind "authenticator"]]` + "```json\n{\"code\": \"1234\"}\n```" + `

- ` + "`code`" + `: the code the form must receive.[[else]]None.[[end]]

## Build and test

` + "```sh" + `
go test ./...
latch plugin build . -o [[.Name]].wasm
latch plugin inspect [[.Name]].wasm
latch plugin test [[.Name]].wasm
` + "```" + `
[[if not .InRepo]]
While github.com/latchid/latch is not published, point go.mod at a checkout:
` + "`go mod edit -replace github.com/latchid/latch=/path/to/latch && go mod tidy`" + `.
[[end]]
## Load it

In latch.yaml:

` + "```yaml" + `
plugins:
  - id: [[.Name]]
    path: /etc/latch/plugins/[[.Name]].wasm
    grants: []
extensions:
  instances:
    - name: [[.Entry]]
      module: [[.ID]]
` + "```" + `

## Metrics

Its calls show up as latch_extension_* (by extension) and latch_wasm_* (by
plugin id, here [[.Name]]).
`

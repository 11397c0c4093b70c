package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/kernel/bundle"
)

// newBundleCmd is `latch bundle`: make plugin bundles (keygen, pack, sign,
// inspect) and run their lifecycle on a server through the admin API.
func newBundleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Make, sign, install, upgrade and roll back plugin bundles",
		Long: `Plugin bundles (docs/bundles.md) are signed archives of a plugin's modules and
manifest. keygen, pack, sign and inspect work on files; the other commands talk
to a running server's admin API with the credentials of ` + "`latch admin`" + `
(--url, --client-id, --client-secret or LATCH_URL, LATCH_ADMIN_CLIENT_ID,
LATCH_ADMIN_CLIENT_SECRET).`,
	}
	a := &adminClient{http: &http.Client{Timeout: 2 * time.Minute}, tenant: "default"}
	remote := []*cobra.Command{
		newBundleInstallCmd(a, false), newBundleInstallCmd(a, true), newBundleListCmd(a),
		newBundleActionCmd(a, "rollback", "Roll a bundle back to its previous version"),
		newBundleSwitchCmd(a, true), newBundleSwitchCmd(a, false),
		newBundleConfigureCmd(a), newBundleRemoveCmd(a),
	}
	for _, c := range remote {
		connectionFlags(c, a)
	}
	cmd.AddCommand(newBundleKeygenCmd(), newBundlePackCmd(), newBundleSignCmd(), newBundleInspectCmd())
	cmd.AddCommand(remote...)
	return cmd
}

func newBundleKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate an ed25519 bundle signer key pair (PREFIX.key, PREFIX.pub)",
		Long: `Generate an ed25519 key pair for signing bundles: PREFIX.key holds the private
key (PEM, mode 0600; keep it secret), PREFIX.pub the public key in the form
bundles.trusted_keys takes, which is also printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, err := bundle.GenerateKey()
			if err != nil {
				return err
			}
			if err := writeNew(out+".key", priv, 0o600); err != nil {
				return err
			}
			if err := writeNew(out+".pub", []byte(pub+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "bundle-signer", "path prefix of the key files")
	return cmd
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) //nolint:gosec // G304: the operator names the file to create
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func newBundlePackCmd() *cobra.Command {
	var manifest, out, keyFile string
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Pack a manifest and the modules it names into a bundle archive",
		Long: `Pack latch-bundle.yaml and the module files it names (paths relative to the
manifest's folder) into NAME-VERSION.bundle.tar.gz, with SHA256SUMS; with --key
it is signed too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(manifest) //nolint:gosec // G304: the operator names the manifest
			if err != nil {
				return fmt.Errorf("reading the manifest: %w", err)
			}
			m, err := bundle.ParseManifest(raw)
			if err != nil {
				return err
			}
			files := map[string][]byte{}
			dir := filepath.Dir(manifest)
			for _, f := range m.Files() {
				data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f))) //nolint:gosec // G304: paths checked by ParseManifest, under the manifest's folder
				if err != nil {
					return fmt.Errorf("reading %s (named by the manifest): %w", f, err)
				}
				files[f] = data
			}
			return writeBundle(cmd.OutOrStdout(), m, files, keyFile, out)
		},
	}
	cmd.Flags().StringVarP(&manifest, "manifest", "m", bundle.ManifestFile, "the manifest")
	cmd.Flags().StringVarP(&out, "out", "o", "", "the archive to write (default NAME-VERSION.bundle.tar.gz)")
	cmd.Flags().StringVar(&keyFile, "key", "", "sign with this private key (from keygen)")
	return cmd
}

// writeBundle packs m and files into an archive, signs it with keyFile
// when set, writes it to out (default NAME-VERSION.bundle.tar.gz) and
// prints the file's name to w.
func writeBundle(w io.Writer, m bundle.Manifest, files map[string][]byte, keyFile, out string) error {
	archive, err := bundle.Pack(m, files)
	if err != nil {
		return err
	}
	if keyFile != "" {
		if archive, err = signWith(archive, keyFile); err != nil {
			return err
		}
	}
	if out == "" {
		out = m.Name + "-" + m.Version + ".bundle.tar.gz"
	}
	if err := os.WriteFile(out, archive, 0o644); err != nil { //nolint:gosec // G306: a bundle is not secret
		return fmt.Errorf("writing %s: %w", out, err)
	}
	fmt.Fprintln(w, out)
	return nil
}

// newPluginPackCmd is `latch plugin pack`: a bundle of a plugin's
// WebAssembly module and its native binary for one platform (by default
// this one), from a manifest whose modules it fills in.
func newPluginPackCmd() *cobra.Command {
	var manifest, out, keyFile, wasm, bin, goos, goarch string
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Pack a plugin's WASM module and/or native binary into a bundle",
		Long: `Pack a plugin into a bundle (docs/bundles.md): the manifest (its modules may be
left out), the WebAssembly module given with --wasm (stored as
modules/NAME.wasm) and the native binary given with --native, for --os/--arch
(default this machine's; stored as bin/NAME-OS-ARCH, its SHA-256 written into
the manifest). Modules the manifest names itself are read beside it. With --key
the bundle is signed.

  go build -o ipallow ./plugins/ipallow
  latch plugin build plugins/ipallow -o ipallow.wasm
  latch plugin pack -m plugins/ipallow/latch-bundle.yaml --native ipallow --wasm ipallow.wasm --key signer.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(manifest) //nolint:gosec // G304: the operator names the manifest
			if err != nil {
				return fmt.Errorf("reading the manifest: %w", err)
			}
			m, err := bundle.DecodeManifest(raw)
			if err != nil {
				return err
			}
			files := map[string][]byte{}
			given := map[string]string{} // archive path -> file
			if wasm != "" {
				m.Modules.WASM = "modules/" + m.Name + ".wasm"
				given[m.Modules.WASM] = wasm
			}
			if bin != "" {
				n := bundle.Native{OS: goos, Arch: goarch, Path: "bin/" + m.Name + "-" + goos + "-" + goarch}
				m.Modules.Native = slices.DeleteFunc(m.Modules.Native, func(o bundle.Native) bool { return o.Platform() == n.Platform() })
				m.Modules.Native = append(m.Modules.Native, n)
				given[n.Path] = bin
			}
			dir := filepath.Dir(manifest)
			for _, f := range m.Files() {
				src, ok := given[f]
				if !ok {
					src = filepath.Join(dir, filepath.FromSlash(f))
				}
				data, err := os.ReadFile(src) //nolint:gosec // G304: the operator names the modules
				if err != nil {
					return fmt.Errorf("reading %s: %w", f, err)
				}
				files[f] = data
			}
			return writeBundle(cmd.OutOrStdout(), m, files, keyFile, out)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&manifest, "manifest", "m", bundle.ManifestFile, "the manifest")
	f.StringVar(&wasm, "wasm", "", "the WebAssembly module to pack")
	f.StringVar(&bin, "native", "", "the native binary to pack, built for --os/--arch")
	f.StringVar(&goos, "os", runtime.GOOS, "the native binary's GOOS")
	f.StringVar(&goarch, "arch", runtime.GOARCH, "the native binary's GOARCH")
	f.StringVarP(&out, "out", "o", "", "the archive to write (default NAME-VERSION.bundle.tar.gz)")
	f.StringVar(&keyFile, "key", "", "sign with this private key (from latch bundle keygen)")
	return cmd
}

func signWith(archive []byte, keyFile string) ([]byte, error) {
	pemKey, err := os.ReadFile(keyFile) //nolint:gosec // G304: the operator names the key
	if err != nil {
		return nil, fmt.Errorf("reading the key: %w", err)
	}
	priv, err := bundle.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, err
	}
	return bundle.Sign(archive, priv)
}

func newBundleSignCmd() *cobra.Command {
	var keyFile, out string
	cmd := &cobra.Command{
		Use:   "sign BUNDLE",
		Short: "Sign a bundle archive (in place, or into --out)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			archive, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading the bundle: %w", err)
			}
			signed, err := signWith(archive, keyFile)
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0]
			}
			if err := os.WriteFile(out, signed, 0o644); err != nil { //nolint:gosec // G306: a bundle is not secret
				return fmt.Errorf("writing %s: %w", out, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "bundle-signer.key", "the private key (from keygen)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the signed archive here instead")
	return cmd
}

// bundleInspection is what inspect prints.
type bundleInspection struct {
	Manifest bundle.Manifest `json:"manifest"`
	Digest   string          `json:"digest"`
	Signed   bool            `json:"signed"`
	KeyID    string          `json:"key_id,omitempty"`
	// Verified is set when --trusted-key was given.
	Verified *bool  `json:"verified,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

func newBundleInspectCmd() *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "inspect BUNDLE",
		Short: "Show a bundle's manifest, the capabilities it asks for and its signer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			archive, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading the bundle: %w", err)
			}
			b, err := bundle.Read(archive)
			if err != nil {
				return err
			}
			in := bundleInspection{Manifest: b.Manifest, Digest: b.Digest(), Signed: b.Signature != nil}
			if b.Signature != nil {
				in.KeyID = b.Signature.KeyID
			}
			if len(keys) > 0 {
				trust, err := bundle.NewTrust(keys, false)
				if err != nil {
					return err
				}
				_, verr := trust.Verify(b)
				ok := verr == nil
				in.Verified = &ok
				if verr != nil {
					in.Problem = verr.Error()
				}
			}
			return printJSON(cmd.OutOrStdout(), in)
		},
	}
	cmd.Flags().StringSliceVar(&keys, "trusted-key", nil, "verify against this public key (repeatable)")
	return cmd
}

// sendArchive sends a bundle archive to the admin API.
func (a *adminClient) sendArchive(ctx context.Context, method, path string, q url.Values, archive []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.url(path, q), bytes.NewReader(archive))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/gzip")
	req.SetBasicAuth(a.clientID, a.secret)
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "http_error", strings.TrimSpace(string(data))
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the admin API's answer: %w", err)
	}
	return nil
}

func newBundleInstallCmd(a *adminClient, upgrade bool) *cobra.Command {
	var grants, tenants []string
	var config string
	cmd := &cobra.Command{
		Use:   "install BUNDLE",
		Short: "Install a bundle, granting the capabilities it asks for",
		Long: `Install a bundle archive. The server refuses it unless it is signed by a trusted
key, its configuration matches its schema and every capability it asks for is
granted with --grant (see them with ` + "`latch bundle inspect`" + `).`,
		Args: cobra.ExactArgs(1),
	}
	if upgrade {
		cmd.Use, cmd.Short = "upgrade BUNDLE", "Upgrade an installed bundle live; the old version stays for roll back"
		cmd.Long = `Replace the installed version of a bundle with the archive's, on every node,
without dropping a request. Grants, configuration and tenants are kept unless
given; an upgrade that asks for more capabilities needs them in --grant.`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		archive, err := os.ReadFile(args[0])
		if err != nil {
			return fmt.Errorf("reading the bundle: %w", err)
		}
		q := url.Values{}
		if cmd.Flags().Changed("grant") {
			q.Set("grants", strings.Join(grants, ","))
		}
		if cmd.Flags().Changed("tenant") {
			q.Set("tenants", strings.Join(tenants, ","))
		}
		if config != "" {
			q.Set("config", config)
		}
		method, path := http.MethodPost, "/bundles"
		if upgrade {
			b, err := bundle.Read(archive)
			if err != nil {
				return err
			}
			method, path = http.MethodPut, "/bundles/"+url.PathEscape(b.Manifest.Name)
		}
		var out map[string]any
		if err := a.sendArchive(cmd.Context(), method, path, q, archive, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	cmd.Flags().StringSliceVar(&grants, "grant", nil, "grant a capability the bundle asks for (repeatable, or comma-separated)")
	cmd.Flags().StringSliceVar(&tenants, "tenant", nil, "use the bundle only in these tenants (default every tenant)")
	cmd.Flags().StringVar(&config, "config", "", "the bundle's configuration (JSON)")
	return cmd
}

func newBundleListCmd(a *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List installed bundles: every version, its state and what it was granted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := a.do(cmd.Context(), http.MethodGet, "/bundles", nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}

func newBundleActionCmd(a *adminClient, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := a.do(cmd.Context(), http.MethodPost, "/bundles/"+url.PathEscape(args[0])+"/"+action, nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}

// newBundleSwitchCmd is `bundle enable` or `bundle disable`: the whole
// bundle, or with --tenant one tenant's use of it.
func newBundleSwitchCmd(a *adminClient, on bool) *cobra.Command {
	action, short := "disable", "Disable a bundle on every node, or with --tenant for one tenant"
	if on {
		action, short = "enable", "Enable a bundle on every node, or with --tenant for one more tenant"
	}
	var tenant string
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Long: short + `.
With --tenant the bundle's extensions are added to, or taken from, the tenants
that use them (a bundle installed without --tenant is used by every tenant:
give it a list with configure --tenant first to leave one out). Every node
applies the change within a second, without a restart.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, path := http.MethodPost, "/bundles/"+url.PathEscape(args[0])+"/"+action
			if tenant != "" {
				method, path = http.MethodDelete, "/bundles/"+url.PathEscape(args[0])+"/tenants/"+url.PathEscape(tenant)
				if on {
					method = http.MethodPut
				}
			}
			var out map[string]any
			if err := a.do(cmd.Context(), method, path, nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's use of the bundle")
	return cmd
}

func newBundleConfigureCmd(a *adminClient) *cobra.Command {
	var config string
	var tenants []string
	cmd := &cobra.Command{
		Use:   "configure NAME",
		Short: "Change an installed bundle's configuration or tenants",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if config != "" {
				if !json.Valid([]byte(config)) {
					return errors.New("--config: not JSON")
				}
				body["config"] = json.RawMessage(config)
			}
			if cmd.Flags().Changed("tenant") {
				body["tenants"] = tenants
			}
			var out map[string]any
			if err := a.do(cmd.Context(), http.MethodPatch, "/bundles/"+url.PathEscape(args[0]), nil, body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the new configuration (JSON)")
	cmd.Flags().StringSliceVar(&tenants, "tenant", nil, "use the bundle only in these tenants")
	return cmd
}

func newBundleRemoveCmd(a *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove every version of a bundle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(cmd.Context(), http.MethodDelete, "/bundles/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "removed", args[0])
			return nil
		},
	}
}

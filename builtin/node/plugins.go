package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/plugin/native"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/userstore/router"
	"github.com/latchid/latch/kernel/wasmhost"
)

// loadPlugins starts the WASM host when plugins are configured, loads each
// plugin's module (or starts its native binary, for a plugin with a
// command), checks its description against its grants and registers
// its extensions into r, after the builtin modules. Errors name the plugin
// by its configuration path ("plugins[1] (acme-otp): ..."); an extension
// id that is already registered is one of them, not a panic. With no
// plugins it does nothing.
func (n *Node) loadPlugins(ctx context.Context, r *extension.Registry) error {
	if len(n.cfg.Plugins) == 0 {
		return nil
	}
	host, err := wasmhost.New(ctx, wasmhost.Options{
		CacheDir:   n.cfg.WASM.CacheDir,
		Logger:     n.log,
		Registerer: n.registry,
	})
	if err != nil {
		return fmt.Errorf("starting the wasm host (config key wasm): %w", err)
	}
	n.wasm = host
	owner := make(map[extension.ID]string) // extension id -> plugin id
	for i, p := range n.cfg.Plugins {
		services, err := n.pluginServices(p)
		if err != nil {
			return fmt.Errorf("plugins[%d] (%s): %w", i, p.ID, err)
		}
		var mods []extension.Module
		if p.Command != "" {
			mods, err = n.loadNativePlugin(ctx, p, services)
		} else {
			mods, err = loadPlugin(ctx, host, p, services)
		}
		if err != nil {
			return fmt.Errorf("plugins[%d] (%s): %w", i, p.ID, err)
		}
		for _, m := range mods {
			if _, taken := r.Module(m.ID); taken {
				by := "a builtin module"
				if other, ok := owner[m.ID]; ok {
					by = "plugin " + other
				}
				return fmt.Errorf("plugins[%d] (%s): registering extension %s: the id is already taken by %s", i, p.ID, m.ID, by)
			}
		}
		for _, m := range mods {
			r.Register(m)
			owner[m.ID] = p.ID
		}
		n.log.InfoContext(ctx, "loaded plugin", "plugin", p.ID, "path", p.Path, "command", p.Command, "extensions", len(mods))
	}
	return nil
}

// loadPlugin reads, loads and checks one plugin's module and returns its
// extension modules.
func loadPlugin(ctx context.Context, host *wasmhost.Host, p config.PluginConfig, services *plugin.HostCalls) ([]extension.Module, error) {
	wasm, err := os.ReadFile(p.Path)
	if err != nil {
		return nil, fmt.Errorf("reading the module: %w", err)
	}
	m, desc, err := plugin.LoadWASM(ctx, host, p.ID, wasm, wasmhost.ModuleOptions{
		MinInstances:     p.MinInstances,
		MaxInstances:     p.MaxInstances,
		MemoryLimitPages: p.MemoryLimitPages,
		CallTimeout:      p.CallTimeout,
		Grants:           p.Grants,
		HostCaller:       services,
	})
	if err != nil {
		return nil, err
	}
	mods, err := plugin.Modules(p.ID, desc, m)
	if err != nil {
		return nil, fmt.Errorf("building its extensions: %w", err)
	}
	for _, mod := range mods {
		services.Exclude(mod.ID)
	}
	return mods, nil
}

// loadNativePlugin starts one native plugin's processes under supervision,
// checks its description and returns its extension modules. The node
// stops the processes in closeNativePlugins.
func (n *Node) loadNativePlugin(ctx context.Context, p config.PluginConfig, services *plugin.HostCalls) ([]extension.Module, error) {
	var sum []byte
	if p.SHA256 != "" {
		var err error
		if sum, err = hex.DecodeString(p.SHA256); err != nil {
			return nil, fmt.Errorf("decoding sha256: %w", err)
		}
	}
	np, desc, err := native.Load(ctx, p.ID, native.Options{
		Command:     p.Command,
		Args:        p.Args,
		Checksum:    sum,
		Grants:      p.Grants,
		HostCaller:  services,
		Logger:      n.log,
		Processes:   p.Processes,
		CallTimeout: p.CallTimeout,
	})
	if err != nil {
		return nil, err
	}
	mods, err := plugin.Modules(p.ID, desc, np)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("building its extensions: %w", err), np.Close(ctx))
	}
	for _, mod := range mods {
		services.Exclude(mod.ID)
	}
	v, _ := nativePlugins.LoadOrStore(n, &nativeSet{})
	set, _ := v.(*nativeSet)
	set.mu.Lock()
	set.plugins = append(set.plugins, np)
	set.mu.Unlock()
	return mods, nil
}

// nativePlugins holds each node's native plugins (*Node -> *nativeSet), so
// that plugins.go keeps them without a field of Node.
var nativePlugins sync.Map

type nativeSet struct {
	mu      sync.Mutex
	plugins []*native.Plugin
}

// closeNativePlugins stops the node's native plugin processes. Call it
// after the extension instances are closed (they still call their plugins
// as they close).
func (n *Node) closeNativePlugins(ctx context.Context) {
	v, ok := nativePlugins.LoadAndDelete(n)
	if !ok {
		return
	}
	set, _ := v.(*nativeSet)
	set.mu.Lock()
	defer set.mu.Unlock()
	for _, np := range set.plugins {
		if err := np.Close(ctx); err != nil {
			n.log.WarnContext(ctx, "closing native plugin", "err", err)
		}
	}
	set.plugins = nil
}

// pluginServices returns the host services of plugin p: its configuration,
// its key-value space in the store, its secrets (sealed with the master
// key), read-only lookup in the tenant's user stores, the audit bus and
// outbound HTTP to its http_hosts, each answered only when granted.
func (n *Node) pluginServices(p config.PluginConfig) (*plugin.HostCalls, error) {
	opts := plugin.HostOptions{
		Plugin:  p.ID,
		Grants:  p.Grants,
		Logger:  n.log,
		KV:      n.store,
		Tenants: n.store,
		Audit:   n.bus,
		// The user stores and their domains are loaded after the
		// plugins, so they are resolved when a guest asks, not now.
		Directory: func() *router.Router {
			if n.extensions == nil {
				return nil
			}
			return n.extensions.directory
		},
		HTTP: plugin.HTTPOptions{Hosts: p.HTTPHosts},
	}
	if len(p.Secrets) > 0 && slices.Contains(p.Grants, abi.CapabilitySecrets) {
		mk, err := secret.LoadOrCreateMasterKey(n.cfg.DataDir, n.cfg.MasterKey.Value(), n.log)
		if err != nil {
			return nil, fmt.Errorf("loading the master key to seal the secrets: %w", err)
		}
		box, err := secret.NewBox(mk)
		if err != nil {
			return nil, fmt.Errorf("sealing the secrets: %w", err)
		}
		opts.Box = box
		opts.Secrets = make(map[string][]byte, len(p.Secrets))
		for name, v := range p.Secrets {
			opts.Secrets[name] = []byte(v.Value())
		}
	}
	services, err := plugin.NewHostCalls(opts)
	if err != nil {
		return nil, fmt.Errorf("host services (http_hosts, secrets): %w", err)
	}
	return services, nil
}

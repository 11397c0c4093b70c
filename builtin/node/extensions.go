package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/latchid/latch/builtin"
	authnemailotp "github.com/latchid/latch/builtin/authn/emailotp"
	authnpassword "github.com/latchid/latch/builtin/authn/password"
	provscim "github.com/latchid/latch/builtin/provision/scim"
	throttleredis "github.com/latchid/latch/builtin/throttle/redis"
	userstoreldap "github.com/latchid/latch/builtin/userstore/ldap"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
)

// extensions is the node's loaded extensions: the registry of modules and
// the instances built from the configuration.
type extensions struct {
	registry   *extension.Registry
	instances  atomic.Pointer[extension.Instances]
	bundleMods atomic.Pointer[[]extension.Module] // the plugin bundles' (bundles.go)
}

// Modules lists the modules the node can instantiate.
func (e *extensions) Modules() []extension.Module {
	mods := e.registry.Modules()
	if b := e.bundleMods.Load(); b != nil {
		mods = append(mods, *b...)
	}
	return mods
}

// Health reports every instance's health.
func (e *extensions) Health(ctx context.Context) ([]extension.Status, error) {
	return e.instances.Load().Health(ctx)
}

// Enabled lists the instances a tenant uses for a kind, in order.
func (e *extensions) Enabled(tenant string, kind extension.Kind) []*extension.Instance {
	if s := e.instances.Load(); s != nil {
		return s.Enabled(tenant, kind)
	}
	return nil
}

// Close cleans every instance up.
func (e *extensions) Close(ctx context.Context) error {
	if s := e.instances.Load(); s != nil {
		return s.Close(ctx)
	}
	return nil
}

// loadExtensions registers the builtin modules and the configured plugins'
// extensions, and loads the configured instances (by default one of every
// builtin module) through the kernel's lifecycle. Configuration errors name
// the instance and the field.
func (n *Node) loadExtensions(ctx context.Context, hasher *boundedHasher) error {
	e := &extensions{registry: extension.NewRegistry()}
	builtin.Register(e.registry)
	// Modules that need configuration to run, so builtin.Modules (which
	// makes a default instance of each) does not list them.
	e.registry.Register(provscim.Module())
	e.registry.Register(throttleredis.Module())
	e.registry.Register(userstoreldap.Module())
	e.registry.Register(authnemailotp.Module())
	if err := n.loadPlugins(ctx, e.registry); err != nil {
		return err
	}
	metrics, err := extension.NewMetrics(n.registry)
	if err != nil {
		return fmt.Errorf("registering extension metrics: %w", err)
	}
	configs, err := instanceConfigs(n.cfg.Extensions, builtin.Modules())
	if err != nil {
		return err
	}
	deps := builtin.Deps{
		Store:          n.store,
		PasswordHasher: hasher,
		SecretBox:      n.box,
		// The password authenticator reads the user stores loaded beside
		// it, so it resolves them when called, not when provisioned.
		UserStores: authnpassword.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
			return e.Enabled(tenant, extension.KindUserStore)
		}),
	}
	opts := extension.LoadOptions{
		Logger:     n.log,
		Metrics:    metrics,
		Registerer: n.registry,
		Deps:       n.withCache(deps.Map()),
		Enablement: enablement(n.cfg.Extensions),
	}
	set, err := e.registry.Load(ctx, configs, opts)
	if err != nil {
		return fmt.Errorf("loading extensions (config key extensions): %w", err)
	}
	e.instances.Store(set)
	n.extensions = e
	if n.bundles, err = n.newBundleSet(e, configs, opts); err != nil {
		return err
	}
	n.bundles.start(ctx)
	return nil
}

// instanceConfigs turns the configuration's instances into the kernel's
// form; with none configured, one instance of every default module (the
// builtin ones: a plugin's extensions are instantiated only when listed).
func instanceConfigs(c config.ExtensionsConfig, defaults []extension.Module) ([]extension.InstanceConfig, error) {
	if len(c.Instances) == 0 {
		var out []extension.InstanceConfig
		for _, m := range defaults {
			out = append(out, extension.InstanceConfig{Module: m.ID})
		}
		return out, nil
	}
	out := make([]extension.InstanceConfig, len(c.Instances))
	for i, in := range c.Instances {
		id, err := extension.ParseID(in.Module)
		if err != nil {
			return nil, fmt.Errorf("extensions.instances[%d].module: %w", i, err)
		}
		var raw json.RawMessage
		if in.Config != nil {
			if raw, err = json.Marshal(in.Config); err != nil {
				return nil, fmt.Errorf("extensions.instances[%d].config: %w", i, err)
			}
		}
		out[i] = extension.InstanceConfig{Name: in.Name, Module: id, Config: raw}
	}
	return out, nil
}

// enablement converts the configured per-kind lists.
func enablement(c config.ExtensionsConfig) extension.Enablement {
	kinds := func(m map[string][]string) map[extension.Kind][]string {
		if m == nil {
			return nil
		}
		out := make(map[extension.Kind][]string, len(m))
		for k, v := range m {
			out[extension.Kind(k)] = v
		}
		return out
	}
	e := extension.Enablement{Default: kinds(c.Default)}
	if len(c.Tenants) > 0 {
		e.Tenants = make(map[string]map[extension.Kind][]string, len(c.Tenants))
		for t, m := range c.Tenants {
			e.Tenants[t] = kinds(m)
		}
	}
	return e
}

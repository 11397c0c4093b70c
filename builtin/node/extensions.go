package node

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/latchid/latch/builtin"
	authnemailotp "github.com/latchid/latch/builtin/authn/emailotp"
	authnidentifier "github.com/latchid/latch/builtin/authn/identifier"
	authnoidcfed "github.com/latchid/latch/builtin/authn/oidcfed"
	authnpassword "github.com/latchid/latch/builtin/authn/password"
	authnsamlfed "github.com/latchid/latch/builtin/authn/samlfed"
	authnwebauthn "github.com/latchid/latch/builtin/authn/webauthn"
	authnx509 "github.com/latchid/latch/builtin/authn/x509"
	"github.com/latchid/latch/builtin/provision/outbox"
	provscim "github.com/latchid/latch/builtin/provision/scim"
	throttleredis "github.com/latchid/latch/builtin/throttle/redis"
	userstoreldap "github.com/latchid/latch/builtin/userstore/ldap"
	userstorelocal "github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/userstore/router"
)

// extensions is the node's loaded extensions: the registry of modules and
// the instances built from the configuration.
type extensions struct {
	registry   *extension.Registry
	instances  atomic.Pointer[extension.Instances]
	bundleMods atomic.Pointer[[]extension.Module] // the plugin bundles' (bundles.go)
	// directory is every tenant's user stores with their domains
	// (docs/userstores.md).
	directory *router.Router
	// rules are the provisioning rules configured on provisioner
	// instances, by instance name.
	rules map[string]*outbox.Rules
}

// provisioningRules returns the rules configured on the instance of that
// name, or nil.
func (e *extensions) provisioningRules(name string) *outbox.Rules {
	return e.rules[name]
}

// provisioningRules decodes and checks the rules of every configured
// instance, by instance name.
func provisioningRules(c config.ExtensionsConfig) (map[string]*outbox.Rules, error) {
	out := map[string]*outbox.Rules{}
	for i, in := range c.Instances {
		if in.Rules == nil {
			continue
		}
		raw, err := json.Marshal(in.Rules)
		if err != nil {
			return nil, fmt.Errorf("config key extensions.instances[%d].rules: %w", i, err)
		}
		r, err := outbox.ParseRules(raw)
		if err != nil {
			return nil, fmt.Errorf("config key extensions.instances[%d].rules: %w", i, err)
		}
		out[cmp.Or(in.Name, in.Module)] = r
	}
	return out, nil
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

// outsideDatabase is the part of the user store directory the admin API
// and SCIM add beside the database's own users: every store that is not a
// userstore.local instance (those serve the database's users).
func (e *extensions) outsideDatabase() *router.View {
	return e.directory.View(func(m router.Member) bool { return m.Instance.ID() != userstorelocal.ID })
}

// claimMappers gives a tenant's claim mappers in chain order.
func (e *extensions) claimMappers(tenant string) []*extension.Instance {
	return e.Enabled(tenant, extension.KindClaims)
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
	e.registry.Register(authnwebauthn.Module())
	e.registry.Register(authnidentifier.Module())
	e.registry.Register(authnx509.Module())
	e.registry.Register(authnoidcfed.Module())
	e.registry.Register(authnsamlfed.Module())
	for _, m := range n.opts.Modules {
		if _, ok := e.registry.Module(m.ID); ok {
			return fmt.Errorf("options: module %q is already registered", m.ID)
		}
		e.registry.Register(m)
	}
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
	dir, err := router.New(func(tenant string) []*extension.Instance {
		return e.Enabled(tenant, extension.KindUserStore)
	}, router.Config{
		Domains:       n.cfg.Extensions.UserStores.Domains,
		Primary:       n.cfg.Extensions.UserStores.Primary,
		TenantPrimary: n.cfg.Extensions.UserStores.TenantPrimary,
	})
	if err != nil {
		return fmt.Errorf("config key extensions.userstores: %w", err)
	}
	// Users of the other stores get a shadow row in the database on
	// login, for the sessions, consents and roles that refer to it.
	dir.KeepShadows(n.store)
	e.directory = dir
	deps := builtin.Deps{
		PublicURL:      n.cfg.PublicURL,
		Directory:      dir,
		Store:          n.store,
		PasswordHasher: hasher,
		SecretBox:      n.box,
		// The password authenticator reads the user stores loaded beside
		// it, so it resolves them when called, not when provisioned.
		UserStores: authnpassword.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
			return e.Enabled(tenant, extension.KindUserStore)
		}),
	}
	rules, err := provisioningRules(n.cfg.Extensions)
	if err != nil {
		return err
	}
	e.rules = rules
	depMap := n.withCache(deps.Map())
	depMap[outbox.DepRules] = outbox.RulesFunc(e.provisioningRules)
	opts := extension.LoadOptions{
		Logger:     n.log,
		Metrics:    metrics,
		Registerer: n.registry,
		Deps:       depMap,
		Enablement: enablement(n.cfg.Extensions),
	}
	set, err := e.registry.Load(ctx, configs, opts)
	if err != nil {
		return fmt.Errorf("loading extensions (config key extensions): %w", err)
	}
	for i, in := range n.cfg.Extensions.Instances {
		if inst, ok := set.Get(cmp.Or(in.Name, in.Module)); ok && in.Rules != nil && inst.Kind() != extension.KindProvisioner {
			_ = set.Close(ctx)
			return fmt.Errorf("config key extensions.instances[%d].rules: only provisioner instances take rules; %q is a %s", i, inst.Name(), inst.Kind())
		}
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

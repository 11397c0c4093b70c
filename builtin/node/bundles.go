package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/plugin/native"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Bundle loading tunables.
const (
	// bundlePollEvery is how often a node reads the bundle table, so that
	// a change made through any node reaches every node.
	bundlePollEvery = time.Second
	// bundleDrain is how long a replaced set of extension instances stays
	// open for the requests that took instances from it before the swap.
	bundleDrain = 30 * time.Second
	// Pool and limits of a bundle's module (bundles carry no tuning).
	bundleMaxInstances = 8
	bundleMemoryPages  = 1024
	bundleCallTimeout  = 5 * time.Second
	// bundleProcesses is how many processes of a native bundle run.
	bundleProcesses = 2
	// bundleBinDir is the folder of the data dir where native binaries
	// are extracted (0700, each binary 0500); it is emptied at start.
	bundleBinDir = "bundles"
)

// bundleSet runs the plugin bundles stored in the database: it loads the
// active version of every enabled bundle, registers its extensions and
// instantiates them (one instance per extension, named
// "<bundle>.<entry>"), and follows the table: an upgrade swaps the module
// under the running instances (calls in flight finish on the old version,
// new calls take the new one), any other change rebuilds the instance set
// and swaps it in.
type bundleSet struct {
	n       *Node
	ext     *extensions
	manager *bundle.Manager

	// What the instance set is rebuilt from: the modules registered before
	// the bundles, the configured instances and the load options.
	base    []extension.Module
	configs []extension.InstanceConfig
	opts    extension.LoadOptions

	hostMu sync.Mutex // guards n.wasm, which check may start
	mu     sync.Mutex // serializes sync
	live   map[string]*liveBundle
	seen   string // fingerprint of the table at the last sync
	stop   context.CancelFunc
	done   chan struct{}
	trial  atomic.Int64 // numbers trial loads, for unique module ids

	// retiring are the replaced instance sets waiting to be closed.
	retireMu sync.Mutex
	retiring map[*extension.Instances]*time.Timer
}

// liveBundle is a loaded bundle.
type liveBundle struct {
	version string
	digest  string
	raw     string        // the stored row's fingerprint, to notice a change
	rec     bundle.Record // with the full configuration, secrets included
	shape   string        // what needs a rebuild when it changes
	t       *swapTransport
	mods    []extension.Module
}

// newBundleSet prepares the bundle set; start loads it.
func (n *Node) newBundleSet(e *extensions, configs []extension.InstanceConfig, opts extension.LoadOptions) (*bundleSet, error) {
	trust, err := bundle.NewTrust(n.cfg.Bundles.TrustedKeys, n.cfg.Bundles.AllowUnsigned)
	if err != nil {
		return nil, fmt.Errorf("bundles.trusted_keys: %w", err)
	}
	mk, err := secret.LoadOrCreateMasterKey(n.cfg.DataDir, n.cfg.MasterKey.Value(), n.log)
	if err != nil {
		return nil, fmt.Errorf("loading the master key to seal bundle secrets: %w", err)
	}
	box, err := bundle.NewSecretBox(mk)
	if err != nil {
		return nil, fmt.Errorf("bundle secrets: %w", err)
	}
	// Binaries left by an earlier run are stale: each load extracts its own.
	if err := os.RemoveAll(binDir(n.cfg)); err != nil {
		return nil, fmt.Errorf("clearing the native bundle folder: %w", err)
	}
	b := &bundleSet{n: n, ext: e, base: e.registry.Modules(), configs: configs, opts: opts, live: map[string]*liveBundle{}, seen: fingerprint(nil),
		retiring: map[*extension.Instances]*time.Timer{}}
	b.manager = &bundle.Manager{Store: n.store, Trust: trust, Check: b.check, Box: box, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	return b, nil
}

// start loads the stored bundles (a bundle that fails to load is logged
// and skipped: the server starts without it) and follows the table until
// close.
func (b *bundleSet) start(ctx context.Context) {
	if err := b.Sync(ctx); err != nil {
		b.n.log.ErrorContext(ctx, "loading plugin bundles", "err", err)
	}
	ctx, b.stop = context.WithCancel(context.WithoutCancel(ctx))
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		t := time.NewTicker(bundlePollEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
					b.n.log.WarnContext(ctx, "following plugin bundles", "err", err)
				}
			}
		}
	}()
}

// closeReplaced closes a replaced instance set, once.
func (b *bundleSet) closeReplaced(old *extension.Instances) {
	b.retireMu.Lock()
	_, ok := b.retiring[old]
	delete(b.retiring, old)
	b.retireMu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Close(ctx); err != nil {
		b.n.log.WarnContext(ctx, "closing the replaced extension instances", "err", err)
	}
}

// halt stops following the table.
func (b *bundleSet) halt() {
	if b.stop != nil {
		b.stop()
		<-b.done
		b.stop = nil
	}
}

// close closes the bundles' modules, after halt and after the instances,
// which call their modules as they close.
func (b *bundleSet) close(ctx context.Context) {
	b.halt()
	b.retireMu.Lock()
	var sets []*extension.Instances
	for old, timer := range b.retiring {
		timer.Stop()
		sets = append(sets, old)
	}
	b.retireMu.Unlock()
	for _, old := range sets {
		b.closeReplaced(old)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, lb := range b.live {
		lb.t.retire(ctx, nil)
		delete(b.live, name)
	}
}

// Manager is the lifecycle the admin API drives.
func (b *bundleSet) Manager() *bundle.Manager { return b.manager }

// Sync brings the node to the table: it is called every bundlePollEvery,
// and by the admin API after a change so that the node that took it
// answers with it in force.
//
// A bundle that fails to load is reported once and tried again when the
// table changes, not every second.
func (b *bundleSet) Sync(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	rows, err := b.n.store.ListBundles(ctx)
	if err != nil {
		return fmt.Errorf("listing bundles: %w", err)
	}
	// A caller that goes away must not leave the node half way.
	ctx = context.WithoutCancel(ctx)
	fp := fingerprint(rows)
	if fp == b.seen {
		return nil
	}
	want := activeBundles(rows)
	rebuild := false
	var errs []error
	for name, lb := range b.live {
		if _, ok := want[name]; !ok {
			defer lb.t.retire(context.WithoutCancel(ctx), nil) // after the instance set no longer uses it
			delete(b.live, name)
			rebuild = true
			b.n.log.InfoContext(ctx, "plugin bundle unloaded", "bundle", name, "version", lb.version)
		}
	}
	for name, row := range want {
		lb, ok := b.live[name]
		if ok && lb.digest == row.Digest && lb.raw == fingerprint([]store.Bundle{row}) {
			continue
		}
		next, gen, err := b.load(ctx, name, row.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("bundle %s %s: %w", name, row.Version, err))
			continue
		}
		next.t = &swapTransport{name: name}
		if ok {
			next.t = lb.t
		}
		mods, err := plugin.Modules(name, gen.desc, next.t)
		if err != nil {
			errs = append(errs, errors.Join(fmt.Errorf("bundle %s %s: %w", name, row.Version, err), gen.m.Close(ctx)))
			continue
		}
		next.mods = mods
		if ok {
			lb.t.retire(ctx, gen) // in-flight calls finish on the old module
			rebuild = rebuild || next.shape != lb.shape
			b.n.log.InfoContext(ctx, "plugin bundle swapped", "bundle", name, "from", lb.version, "to", next.version)
		} else {
			next.t.cur.Store(gen)
			rebuild = true
			b.n.log.InfoContext(ctx, "plugin bundle loaded", "bundle", name, "version", next.version)
		}
		b.live[name] = next
	}
	if rebuild {
		if err := b.rebuild(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	b.seen = fp
	return errors.Join(errs...)
}

// load reads, verifies and loads one stored bundle version.
func (b *bundleSet) load(ctx context.Context, name, version string) (*liveBundle, *generation, error) {
	row, err := b.n.store.GetBundle(ctx, name, version)
	if err != nil {
		return nil, nil, fmt.Errorf("reading it: %w", err)
	}
	// Verified again: the table may have been written by anything that
	// reaches the database.
	bd, _, err := b.manager.Trust.Open(row.Archive)
	if err != nil {
		return nil, nil, err
	}
	rec, err := bundle.RecordOf(row)
	if err != nil {
		return nil, nil, err
	}
	if rec.Config, _, err = b.manager.FullConfig(rec); err != nil {
		return nil, nil, err
	}
	id := fmt.Sprintf("bundle/%s@%s", name, version)
	gen, err := b.loadModule(ctx, id, bd, rec)
	if err != nil {
		return nil, nil, err
	}
	return &liveBundle{version: version, digest: row.Digest, raw: fingerprint([]store.Bundle{row}), rec: rec, shape: shape(rec)}, gen, nil
}

// loadModule loads a bundle's module with the capabilities both asked for
// in its manifest and granted, and checks that its description declares
// what the manifest does: the native binary for this node's platform when
// the bundle has one (run out of process, under supervision), else the
// WebAssembly module. rec carries the full configuration; its secret
// fields are also answered by the secrets host call.
func (b *bundleSet) loadModule(ctx context.Context, id string, bd *bundle.Bundle, rec bundle.Record) (*generation, error) {
	var grants []string
	for _, c := range bd.Manifest.CapabilityNames() {
		if slices.Contains(rec.Grants, c) {
			grants = append(grants, c)
		}
	}
	services, err := plugin.NewHostCalls(plugin.HostOptions{
		Plugin:    bd.Manifest.Name, // the key-value space outlives versions
		Grants:    grants,
		Logger:    b.n.log,
		KV:        b.n.store,
		Tenants:   b.n.store,
		Audit:     b.n.bus,
		Directory: func() *router.Router { return b.ext.directory },
		HTTP:      plugin.HTTPOptions{Hosts: bd.Manifest.Hosts()},
		Secrets:   secretValues(rec, grants),
		Box:       b.manager.Box,
	})
	if err != nil {
		return nil, fmt.Errorf("host services: %w", err)
	}
	var (
		m    transport
		desc abi.Description
	)
	if data, sum, ok := bd.Binary(b.manager.Platform); ok {
		m, desc, err = b.startNative(ctx, id, data, sum, grants, services)
	} else if wasm := bd.Module(); wasm != nil {
		var host *wasmhost.Host
		if host, err = b.host(ctx); err != nil {
			return nil, err
		}
		m, desc, err = plugin.LoadWASM(ctx, host, id, wasm, wasmhost.ModuleOptions{
			MaxInstances:     bundleMaxInstances,
			MemoryLimitPages: bundleMemoryPages,
			CallTimeout:      bundleCallTimeout,
			Grants:           grants,
			HostCaller:       services,
		})
	} else {
		return nil, fmt.Errorf("%w: %s (it ships %s)", bundle.ErrNoModule, b.manager.Platform, strings.Join(bd.Manifest.Platforms(), ", "))
	}
	if err != nil {
		return nil, err
	}
	if err := sameEntries(bd.Manifest, desc); err != nil {
		return nil, errors.Join(err, m.Close(ctx))
	}
	for _, e := range bd.Manifest.Extensions {
		if id, err := e.ID(); err == nil {
			services.Exclude(id)
		}
	}
	return &generation{m: m, desc: desc, version: bd.Manifest.Version}, nil
}

// secretValues are the configuration's secret fields for the secrets host
// call, when granted: a string field as its text, any other as its JSON.
func secretValues(rec bundle.Record, grants []string) map[string][]byte {
	if !slices.Contains(grants, abi.CapabilitySecrets) || len(rec.SecretNames) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(rec.Config, &obj) != nil {
		return nil
	}
	out := map[string][]byte{}
	for _, name := range rec.SecretNames {
		v, ok := obj[name]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[name] = []byte(s)
		} else {
			out[name] = bytes.Clone(v)
		}
	}
	return out
}

// binDir is the folder native bundle binaries are extracted to.
func binDir(cfg config.Config) string {
	dir := cfg.DataDir
	if dir == "" {
		dir = config.DefaultDataDir
	}
	return filepath.Join(dir, bundleBinDir)
}

// transport is a loaded module: a WASM module or a native plugin.
type transport interface {
	Call(ctx context.Context, payload []byte) ([]byte, error)
	Close(ctx context.Context) error
}

// nativeBundle is a native bundle's supervised processes and the folder
// its binary was extracted to, removed when it closes.
type nativeBundle struct {
	*native.Plugin
	dir string
}

func (p nativeBundle) Close(ctx context.Context) error {
	return errors.Join(p.Plugin.Close(ctx), os.RemoveAll(p.dir))
}

// startNative extracts a native binary into its own folder of the data
// dir (0700, the binary 0500) and starts it under supervision; the binary
// is checked against sum, the digest of the signed manifest, before every
// start of a process.
func (b *bundleSet) startNative(ctx context.Context, id string, data, sum []byte, grants []string, services *plugin.HostCalls) (transport, abi.Description, error) {
	root := binDir(b.n.cfg)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, abi.Description{}, fmt.Errorf("creating %s: %w", root, err)
	}
	dir, err := os.MkdirTemp(root, strings.NewReplacer("/", "_", "@", "_", "#", "_").Replace(id)+"-")
	if err != nil {
		return nil, abi.Description{}, fmt.Errorf("creating the binary's folder: %w", err)
	}
	path := filepath.Join(dir, "plugin")
	if err := os.WriteFile(path, data, 0o500); err != nil { //nolint:gosec // G306: the binary must be executable by the server
		return nil, abi.Description{}, errors.Join(fmt.Errorf("extracting the binary: %w", err), os.RemoveAll(dir))
	}
	np, desc, err := native.Load(ctx, id, native.Options{
		Command:     path,
		Checksum:    sum,
		Grants:      grants,
		HostCaller:  services,
		Logger:      b.n.log,
		Processes:   bundleProcesses,
		CallTimeout: bundleCallTimeout,
	})
	if err != nil {
		return nil, abi.Description{}, errors.Join(err, os.RemoveAll(dir))
	}
	return nativeBundle{Plugin: np, dir: dir}, desc, nil
}

// host returns the node's WASM host, starting it when no plugin did.
func (b *bundleSet) host(ctx context.Context) (*wasmhost.Host, error) {
	b.hostMu.Lock()
	defer b.hostMu.Unlock()
	if b.n.wasm != nil {
		return b.n.wasm, nil
	}
	host, err := wasmhost.New(ctx, wasmhost.Options{CacheDir: b.n.cfg.WASM.CacheDir, Logger: b.n.log, Registerer: b.n.registry})
	if err != nil {
		return nil, fmt.Errorf("starting the wasm host (config key wasm): %w", err)
	}
	b.n.wasm = host
	return host, nil
}

// sameEntries checks that a module declares the extensions and at most the
// capabilities its manifest does.
func sameEntries(m bundle.Manifest, desc abi.Description) error {
	var want, got []string
	for _, e := range m.Extensions {
		want = append(want, e.Kind+" "+e.Name)
	}
	for _, e := range desc.Extensions {
		got = append(got, e.Kind+" "+e.Name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Errorf("the module declares extensions %v, the manifest %v", got, want)
	}
	if desc.ABIVersion != m.ABIVersion {
		return fmt.Errorf("the module speaks ABI version %q, the manifest says %q", desc.ABIVersion, m.ABIVersion)
	}
	for _, c := range desc.Capabilities {
		if !slices.Contains(m.CapabilityNames(), c.Name) {
			return fmt.Errorf("the module requests capability %q, which its manifest does not declare", c.Name)
		}
	}
	return nil
}

// check is the admin API's trial load: the module loads with the grants,
// declares what the manifest does, and its instances accept the
// configuration. Everything it builds is closed before it returns.
func (b *bundleSet) check(ctx context.Context, bd *bundle.Bundle, rec bundle.Record) error {
	id := fmt.Sprintf("bundle-trial/%s@%s#%d", bd.Manifest.Name, bd.Manifest.Version, b.trial.Add(1))
	gen, err := b.loadModule(ctx, id, bd, rec)
	if err != nil {
		return err
	}
	defer func() { _ = gen.m.Close(context.WithoutCancel(ctx)) }()
	mods, err := plugin.Modules(id, gen.desc, gen.m)
	if err != nil {
		return err
	}
	r := extension.NewRegistry()
	for _, m := range mods {
		if _, taken := registryOf(b.base).Module(m.ID); taken {
			return fmt.Errorf("extension %s is already provided by the server", m.ID)
		}
		r.Register(m)
	}
	set, err := r.Load(ctx, bundleConfigs(bd.Manifest.Name, mods, rec), extension.LoadOptions{Logger: b.n.log})
	if err != nil {
		return err
	}
	return set.Close(context.WithoutCancel(ctx))
}

// registryOf is a registry holding mods.
func registryOf(mods []extension.Module) *extension.Registry {
	r := extension.NewRegistry()
	for _, m := range mods {
		r.Register(m)
	}
	return r
}

// rebuild builds the instance set from the base and the live bundles and
// swaps it in; the old set is closed once bundleDrain has passed. A bundle
// whose extensions collide with the server's is left out (and logged).
func (b *bundleSet) rebuild(ctx context.Context) error {
	r := registryOf(b.base)
	configs := slices.Clone(b.configs)
	en := cloneEnablement(b.opts.Enablement)
	limited := map[string]bool{} // instances limited to some tenants
	var mods []extension.Module
	var errs []error
	names := make([]string, 0, len(b.live))
	for name := range b.live {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lb := b.live[name]
		if id, taken := collides(r, lb.mods); taken {
			errs = append(errs, fmt.Errorf("bundle %s: extension %s is already registered; the bundle is not used", name, id))
			continue
		}
		for _, m := range lb.mods {
			r.Register(m)
		}
		mods = append(mods, lb.mods...)
		cs := bundleConfigs(name, lb.mods, lb.rec)
		configs = append(configs, cs...)
		enable(&en, limited, configs, cs, lb.mods, lb.rec.Tenants)
	}
	opts := b.opts
	opts.Enablement = en
	set, err := r.Load(ctx, configs, opts)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("loading the extensions with the bundles: %w", err))...)
	}
	old := b.ext.instances.Swap(set)
	b.ext.bundleMods.Store(&mods)
	if old != nil {
		b.retireMu.Lock()
		b.retiring[old] = time.AfterFunc(bundleDrain, func() { b.closeReplaced(old) })
		b.retireMu.Unlock()
	}
	return errors.Join(errs...)
}

func collides(r *extension.Registry, mods []extension.Module) (extension.ID, bool) {
	for _, m := range mods {
		if _, taken := r.Module(m.ID); taken {
			return m.ID, true
		}
	}
	return "", false
}

// bundleConfigs is one instance per extension of a bundle, named
// "<bundle>.<entry>", with the bundle's configuration.
func bundleConfigs(name string, mods []extension.Module, rec bundle.Record) []extension.InstanceConfig {
	out := make([]extension.InstanceConfig, len(mods))
	for i, m := range mods {
		_, entry, _ := strings.Cut(string(m.ID), ".")
		out[i] = extension.InstanceConfig{Name: name + "." + entry, Module: m.ID, Config: rec.Config}
	}
	return out
}

// enable adds a bundle's instances to the enablement. Without tenants the
// instances join every list the operator set for their kind (and, where
// none is set, the default of every instance applies). With tenants, the
// default and every other tenant's lists are pinned to what they were, and
// the listed tenants' lists gain the instances.
func enable(e *extension.Enablement, limited map[string]bool, all, cs []extension.InstanceConfig, mods []extension.Module, tenants []string) {
	for i, c := range cs {
		kind := mods[i].ID.Kind()
		if len(tenants) == 0 {
			if l, ok := e.Default[kind]; ok {
				e.Default[kind] = append(l, c.Name)
			}
			for t := range e.Tenants {
				if l, ok := e.Tenants[t][kind]; ok {
					e.Tenants[t][kind] = append(l, c.Name)
				}
			}
			continue
		}
		if _, ok := e.Default[kind]; !ok {
			// Pin the default to the instances of the kind before this one.
			var l []string
			for _, o := range all {
				if o.Name == c.Name {
					break
				}
				if o.Module.Kind() == kind && !limited[instanceName(o)] {
					l = append(l, instanceName(o))
				}
			}
			e.Default[kind] = l
		}
		for _, t := range tenants {
			if e.Tenants[t] == nil {
				e.Tenants[t] = map[extension.Kind][]string{}
			}
			l, ok := e.Tenants[t][kind]
			if !ok {
				l = slices.Clone(e.Default[kind])
			}
			e.Tenants[t][kind] = append(l, c.Name)
		}
		limited[c.Name] = true
	}
}

func instanceName(c extension.InstanceConfig) string {
	if c.Name == "" {
		return string(c.Module)
	}
	return c.Name
}

func cloneEnablement(e extension.Enablement) extension.Enablement {
	out := extension.Enablement{Default: map[extension.Kind][]string{}, Tenants: map[string]map[extension.Kind][]string{}}
	for k, v := range e.Default {
		out.Default[k] = slices.Clone(v)
	}
	for t, m := range e.Tenants {
		out.Tenants[t] = map[extension.Kind][]string{}
		for k, v := range m {
			out.Tenants[t][k] = slices.Clone(v)
		}
	}
	return out
}

// activeBundles picks, per name, the enabled version (the latest installed
// when an upgrade is half written).
func activeBundles(rows []store.Bundle) map[string]store.Bundle {
	out := map[string]store.Bundle{}
	for _, r := range rows { // ordered by name, then install time
		if r.State == bundle.StateEnabled {
			out[r.Name] = r
		}
	}
	return out
}

// fingerprint names the table's content (archives aside).
func fingerprint(rows []store.Bundle) string {
	h := sha256.New()
	for _, r := range rows {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%x\x00", r.Name, r.Version, r.State, r.Digest, sha256.Sum256(r.Manifest))
		if in := r.Install; in != nil {
			fmt.Fprintf(h, "%q\x00%q\x00%x\x00%x\x00%s\x00%s\x00", in.Grants, in.Tenants, sha256.Sum256(in.Config),
				sha256.Sum256(in.Secrets), in.Signer, in.PreviousVersion)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shape is what the instances are built from: a change needs a rebuild,
// anything else is a module swap.
func shape(rec bundle.Record) string {
	var ext []string
	for _, e := range rec.Manifest.Extensions {
		ext = append(ext, e.Kind+" "+e.Name)
	}
	slices.Sort(ext)
	return fmt.Sprintf("%v|%s|%v", ext, rec.Config, rec.Tenants)
}

// generation is one loaded version of a bundle's module.
type generation struct {
	m       transport
	desc    abi.Description
	version string

	// Calls hold mu for reading; retiring takes it for writing, which
	// waits for the calls in flight.
	mu      sync.RWMutex
	retired bool
}

// swapTransport is the plugin.Transport of a bundle's extensions: it calls
// the current generation, which an upgrade replaces without dropping a
// call.
type swapTransport struct {
	name string
	cur  atomic.Pointer[generation]
}

// Call runs on the current generation; a call that raced with a swap runs
// on the new one.
func (s *swapTransport) Call(ctx context.Context, payload []byte) ([]byte, error) {
	for {
		g := s.cur.Load()
		if g == nil {
			return nil, fault.New(fault.CodeUnavailable, "plugin bundle "+s.name+" is not loaded")
		}
		g.mu.RLock()
		if g.retired {
			g.mu.RUnlock()
			if s.cur.Load() == g {
				return nil, fault.New(fault.CodeUnavailable, "plugin bundle "+s.name+" is not loaded")
			}
			continue
		}
		out, err := g.m.Call(ctx, payload)
		g.mu.RUnlock()
		return out, err
	}
}

// retire makes next the current generation (nil: none), waits for the
// calls in flight on the old one and closes it.
func (s *swapTransport) retire(ctx context.Context, next *generation) {
	old := s.cur.Swap(next)
	if old == nil {
		return
	}
	old.mu.Lock()
	old.retired = true
	old.mu.Unlock()
	_ = old.m.Close(ctx)
}

// version is the version the transport runs.
func (s *swapTransport) version() string {
	if g := s.cur.Load(); g != nil {
		return g.version
	}
	return ""
}

// Running maps each bundle this node runs to the version it runs.
func (b *bundleSet) Running() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.live))
	for name, lb := range b.live {
		out[name] = lb.t.version()
	}
	return out
}

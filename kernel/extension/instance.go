package extension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
)

// Provisioner is implemented by instance values that need setting up after
// their configuration is decoded (step 3 of the lifecycle). Provision may
// keep env and its dependencies for the instance's lifetime. It is called
// through Call with the op abi.OpConfigure, the wire name of this step.
type Provisioner interface {
	Provision(ctx context.Context, env Env) error
}

// Validator is implemented by instance values that check themselves once
// provisioned (step 4). Validate must not have side effects.
type Validator interface {
	Validate() error
}

// Cleaner is implemented by instance values that hold resources (step 6).
// Close must cope with a value whose Provision failed or never finished. A
// value that is not a Cleaner but is an io.Closer is closed with Close().
type Cleaner interface {
	Close(ctx context.Context) error
}

// HealthChecker is implemented by instance values that can tell whether they
// can serve (their directory is reachable, their guest is alive).
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Env is what the kernel hands an instance at provision time.
type Env struct {
	// Name is the instance name.
	Name string
	// ID is the module id.
	ID ID
	// Logger is the kernel's logger with the attributes extension=<id> and
	// instance=<name>.
	Logger *slog.Logger
	// Metrics registers the instance's own metrics; every metric gets the
	// constant labels extension=<id> and instance=<name>.
	Metrics prometheus.Registerer

	deps map[string]any
}

// Dep returns the dependency the kernel provides under name (see
// LoadOptions.Deps). An instance asserts it to the narrow interface it
// needs, for example env.Dep("store.users") to a store.Users.
func (e Env) Dep(name string) (any, bool) {
	v, ok := e.deps[name]
	return v, ok
}

// InstanceConfig is the operator's configuration of one instance.
type InstanceConfig struct {
	// Name is the instance name: 1 to 128 bytes of a-z, 0-9, '_', '-' and
	// '.', starting with a letter or digit. Empty means the module id.
	Name string `json:"name,omitempty"`
	// Module is the id of the module to instantiate.
	Module ID `json:"module"`
	// Config is the instance's configuration, checked against the module's
	// schema and decoded strictly.
	Config json.RawMessage `json:"config,omitempty"`
}

// LoadOptions are the kernel-side inputs of Registry.Load.
type LoadOptions struct {
	// Logger is the parent of every instance's logger; nil discards.
	Logger *slog.Logger
	// Metrics records calls into the instances; nil records nothing.
	Metrics *Metrics
	// Registerer receives the instances' own metrics (Env.Metrics); nil
	// discards them.
	Registerer prometheus.Registerer
	// Deps holds the dependencies instances may ask for with Env.Dep, by
	// name. The map is copied.
	Deps map[string]any
	// Enablement says which instances each tenant uses; see
	// Instances.SetEnablement.
	Enablement Enablement
}

// Instance is one loaded extension instance.
type Instance struct {
	name   string
	id     ID
	kind   Kind
	value  any
	config json.RawMessage
	logger *slog.Logger

	metrics   *Metrics
	observers sync.Map // op name -> *opObservers
}

// Name returns the instance name.
func (i *Instance) Name() string { return i.name }

// ID returns the module id.
func (i *Instance) ID() ID { return i.id }

// Kind returns the module's kind.
func (i *Instance) Kind() Kind { return i.kind }

// Value returns the instance value, which implements the kind's Go
// interface. Call its methods through Call.
func (i *Instance) Value() any { return i.value }

// Config returns the instance's configuration as the operator wrote it (an
// empty object when none), for hosts that pass it on every call. The caller
// must not modify it.
func (i *Instance) Config() json.RawMessage { return i.config }

// As returns the instance value as T (the kind's interface, or an optional
// ability such as userstore.Writer).
func As[T any](i *Instance) (T, bool) {
	v, ok := i.value.(T)
	return v, ok
}

// Instances is a loaded set of instances and the tenants' choice among them.
// It is safe for concurrent use.
type Instances struct {
	list   []*Instance // load order
	byName map[string]*Instance
	plan   atomic.Pointer[plan]

	closeOnce sync.Once
	closeErr  error
}

// Load builds every configured instance through the lifecycle described in
// the package documentation and returns the set. On any error, what was
// built is cleaned up and the error names the instance (and, for
// configuration problems, wraps a *ConfigError).
func (r *Registry) Load(ctx context.Context, configs []InstanceConfig, opts LoadOptions) (*Instances, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	deps := make(map[string]any, len(opts.Deps))
	for k, v := range opts.Deps {
		deps[k] = v
	}
	s := &Instances{byName: make(map[string]*Instance, len(configs))}
	for _, c := range configs {
		if err := ctx.Err(); err != nil {
			return nil, errors.Join(fmt.Errorf("loading extensions: %w", err),
				s.cleanup(context.WithoutCancel(ctx), len(s.list)))
		}
		inst, provisioned, err := r.loadOne(ctx, c, s.byName, logger, opts.Metrics, reg, deps)
		if err != nil {
			if provisioned {
				// Step 6 also runs after a failed provision or validate.
				err = errors.Join(err, closeInstance(context.WithoutCancel(ctx), inst))
			}
			err = errors.Join(err, s.cleanup(context.WithoutCancel(ctx), len(s.list)))
			return nil, err
		}
		s.list = append(s.list, inst)
		s.byName[inst.name] = inst
	}
	if err := s.SetEnablement(opts.Enablement); err != nil {
		return nil, errors.Join(err, s.cleanup(context.WithoutCancel(ctx), len(s.list)))
	}
	return s, nil
}

// loadOne runs steps 1 to 4 for one instance. provisioned reports whether
// Provision was called, so that the caller cleans the instance up.
func (r *Registry) loadOne(ctx context.Context, c InstanceConfig, taken map[string]*Instance,
	logger *slog.Logger, m *Metrics, reg prometheus.Registerer, deps map[string]any,
) (inst *Instance, provisioned bool, err error) {
	name := c.Name
	if name == "" {
		name = string(c.Module)
	}
	mod, ok := r.lookup(c.Module)
	if !ok {
		return nil, false, fmt.Errorf("loading extension %q: unknown module %q", name, c.Module)
	}
	if !validInstanceName(name) {
		return nil, false, fmt.Errorf("loading extension %q (%s): invalid instance name: want 1 to %d of a-z 0-9 _ - . starting with a letter or digit", name, c.Module, MaxInstanceNameLength)
	}
	if _, dup := taken[name]; dup {
		return nil, false, fmt.Errorf("loading extension %q (%s): instance name already used", name, c.Module)
	}

	// 1. Construct.
	v := mod.New()
	cfg := c.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage("{}")
	}
	inst = &Instance{
		name:    name,
		id:      mod.ID,
		kind:    mod.Kind,
		value:   v,
		config:  cfg,
		logger:  logger.With(slog.String("extension", string(mod.ID)), slog.String("instance", name)),
		metrics: m,
	}

	// 2. Strict configuration decode.
	if err := decodeConfig(mod.schema, cfg, v); err != nil {
		return nil, false, fmt.Errorf("loading extension %q (%s): decoding config: %w", name, mod.ID, err)
	}

	// 3. Provision.
	if p, ok := v.(Provisioner); ok {
		env := Env{
			Name:    name,
			ID:      mod.ID,
			Logger:  inst.logger,
			Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"extension": string(mod.ID), "instance": name}, reg),
			deps:    deps,
		}
		err := Call(ctx, inst, abi.OpConfigure, func(ctx context.Context) error { return p.Provision(ctx, env) })
		if err != nil {
			return inst, true, fmt.Errorf("loading extension %q (%s): provisioning: %w", name, mod.ID, err)
		}
		provisioned = true
	}

	// 4. Validate.
	if val, ok := v.(Validator); ok {
		err := Call(ctx, inst, "validate", func(context.Context) error { return val.Validate() })
		if err != nil {
			return inst, true, fmt.Errorf("loading extension %q (%s): validating: %w", name, mod.ID, err)
		}
	}
	return inst, provisioned, nil
}

// Get returns the instance with the name.
func (s *Instances) Get(name string) (*Instance, bool) {
	i, ok := s.byName[name]
	return i, ok
}

// All returns every instance in load order. The caller must not modify the
// slice.
func (s *Instances) All() []*Instance {
	return s.list
}

// OfKind returns the instances of a kind in load order.
func (s *Instances) OfKind(kind Kind) []*Instance {
	var out []*Instance
	for _, i := range s.list {
		if i.kind == kind {
			out = append(out, i)
		}
	}
	return out
}

// Status is one instance's answer to a health check.
type Status struct {
	// Name is the instance name.
	Name string
	// ID is the module id.
	ID ID
	// Kind is the module's kind.
	Kind Kind
	// Err is nil when the instance is healthy (or does not check itself).
	Err error
}

// Health asks every HealthChecker instance, concurrently, whether it can
// serve. It returns one Status per instance in load order, and the failures
// joined (nil when all are healthy).
func (s *Instances) Health(ctx context.Context) ([]Status, error) {
	out := make([]Status, len(s.list))
	var wg sync.WaitGroup
	for n, inst := range s.list {
		out[n] = Status{Name: inst.name, ID: inst.id, Kind: inst.kind}
		h, ok := inst.value.(HealthChecker)
		if !ok {
			continue
		}
		wg.Go(func() {
			out[n].Err = Call(ctx, inst, abi.OpHealth, h.Health)
		})
	}
	wg.Wait()
	var errs []error
	for _, st := range out {
		if st.Err != nil {
			errs = append(errs, st.Err)
		}
	}
	return out, errors.Join(errs...)
}

// Close cleans up every instance in reverse load order (step 6) and returns
// the failures joined. Later calls return the first call's result.
func (s *Instances) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.cleanup(ctx, len(s.list))
	})
	return s.closeErr
}

// cleanup closes the first n instances in reverse order.
func (s *Instances) cleanup(ctx context.Context, n int) error {
	var errs []error
	for i := n - 1; i >= 0; i-- {
		if err := closeInstance(ctx, s.list[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func closeInstance(ctx context.Context, inst *Instance) error {
	var fn func(context.Context) error
	switch c := inst.value.(type) {
	case Cleaner:
		fn = c.Close
	case io.Closer:
		fn = func(context.Context) error { return c.Close() }
	default:
		return nil
	}
	if err := Call(ctx, inst, abi.OpClose, fn); err != nil {
		return fmt.Errorf("cleaning up extension %q (%s): %w", inst.name, inst.id, err)
	}
	return nil
}

// Enablement says which instances each tenant uses, per kind and in order
// (the order is the search order for user stores and the chain order for
// claim mappers). It is plain data, decoded from configuration or tenant
// settings.
//
// For a tenant and a kind, the list is the first that is set of:
// Tenants[tenant][kind], Default[kind], and every instance of the kind in
// load order. A list that is set but empty enables nothing.
type Enablement struct {
	// Default applies to tenants that set nothing for a kind.
	Default map[Kind][]string `json:"default,omitempty"`
	// Tenants maps a tenant's name to its own lists.
	Tenants map[string]map[Kind][]string `json:"tenants,omitempty"`
}

type plan struct {
	fallback map[Kind][]*Instance
	tenants  map[string]map[Kind][]*Instance
}

// SetEnablement checks e against the loaded instances and, when it is
// valid, makes it the one Enabled answers from (atomically; requests in
// flight keep the lists they got). Every named instance must exist and be of
// the kind it is listed under, and appear once per list.
func (s *Instances) SetEnablement(e Enablement) error {
	p := &plan{fallback: make(map[Kind][]*Instance), tenants: make(map[string]map[Kind][]*Instance)}
	for _, k := range Kinds() {
		p.fallback[k] = s.OfKind(k)
	}
	var errs []error
	for _, k := range sortedKinds(e.Default) {
		list, err := s.resolve("enablement.default."+string(k), k, e.Default[k])
		errs = append(errs, err)
		p.fallback[k] = list
	}
	tenants := make([]string, 0, len(e.Tenants))
	for t := range e.Tenants {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		m := make(map[Kind][]*Instance)
		for _, k := range sortedKinds(e.Tenants[t]) {
			list, err := s.resolve("enablement.tenants."+t+"."+string(k), k, e.Tenants[t][k])
			errs = append(errs, err)
			m[k] = list
		}
		p.tenants[t] = m
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("setting extension enablement: %w", err)
	}
	s.plan.Store(p)
	return nil
}

func sortedKinds(m map[Kind][]string) []Kind {
	out := make([]Kind, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (s *Instances) resolve(path string, k Kind, names []string) ([]*Instance, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%s: unknown kind %q", path, k)
	}
	list := make([]*Instance, 0, len(names))
	seen := make(map[string]bool, len(names))
	var errs []error
	for n, name := range names {
		at := fmt.Sprintf("%s[%d]", path, n)
		inst, ok := s.byName[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: unknown instance %q", at, name))
		case inst.kind != k:
			errs = append(errs, fmt.Errorf("%s: instance %q is a %s, not a %s", at, name, inst.kind, k))
		case seen[name]:
			errs = append(errs, fmt.Errorf("%s: instance %q listed twice", at, name))
		default:
			seen[name] = true
			list = append(list, inst)
		}
	}
	return list, errors.Join(errs...)
}

// Enabled returns the instances of kind the tenant uses, in its order (see
// Enablement). The caller must not modify the slice.
func (s *Instances) Enabled(tenant string, kind Kind) []*Instance {
	p := s.plan.Load()
	if p == nil {
		return nil
	}
	if m, ok := p.tenants[tenant]; ok {
		if list, ok := m[kind]; ok {
			return list
		}
	}
	return p.fallback[kind]
}

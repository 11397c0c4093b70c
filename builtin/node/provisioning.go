package node

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/provision/outbox"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// provisioningNamespace prefixes the key-value namespace of the outbox the
// node runs for a provisioner instance without a queue of its own.
const provisioningNamespace = "latch.provision/"

// provisioningReconcile is how often the node looks for provisioner
// instances that appeared or went away (a bundle installed or removed).
const provisioningReconcile = 2 * time.Second

// provisioning makes provisioning durable for every provisioner instance
// that does not queue by itself (plugins, such as the webhook): the node
// runs an outbox for it (package builtin/provision/outbox), fed from the
// audit log, named after the instance, applying the rules configured on
// the instance (extensions.instances[].rules). Instances that implement
// provision.Queue (provision.scim) run their own and take the same rules
// through the dependency outbox.DepRules. It also lists every queue for
// the admin API.
type provisioning struct {
	st  store.Store
	ext *extensions
	log *slog.Logger

	mu      sync.Mutex
	runners map[string]*queued // by instance name
	stop    context.CancelFunc
	done    chan struct{}
}

type queued struct {
	module string
	o      *outbox.Outbox
	r      *outbox.Runner
}

// startProvisioning starts the node's provisioning queues.
func (n *Node) startProvisioning(ctx context.Context) {
	p := &provisioning{st: n.store, ext: n.extensions, log: n.log, runners: map[string]*queued{}}
	p.reconcile(ctx)
	loop, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(provisioningReconcile)
		defer t.Stop()
		for {
			select {
			case <-loop.Done():
				return
			case <-t.C:
				p.reconcile(loop)
			}
		}
	}()
	n.queues = p
}

// stopProvisioning stops every queue the node runs; queued changes stay
// in the store.
func (n *Node) stopProvisioning() {
	p := n.queues
	if p == nil {
		return
	}
	n.queues = nil
	p.stop()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, q := range p.runners {
		if err := q.r.Stop(ctx); err != nil {
			p.log.WarnContext(ctx, "stopping a provisioning queue", "provisioner", name, "err", err)
		}
	}
	p.runners = nil
}

// current returns the node's provisioner instances.
func (p *provisioning) current() []*extension.Instance {
	if s := p.ext.instances.Load(); s != nil {
		return s.OfKind(extension.KindProvisioner)
	}
	return nil
}

// reconcile starts a queue for every provisioner instance without one and
// stops the queues of instances that are gone.
func (p *provisioning) reconcile(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runners == nil {
		return
	}
	want := map[string]*extension.Instance{}
	for _, inst := range p.current() {
		if _, own := extension.As[provision.Queue](inst); own {
			continue
		}
		want[inst.Name()] = inst
	}
	for name, q := range p.runners {
		if _, ok := want[name]; !ok {
			if err := q.r.Stop(ctx); err != nil {
				p.log.WarnContext(ctx, "stopping a provisioning queue", "provisioner", name, "err", err)
			}
			delete(p.runners, name)
		}
	}
	for name, inst := range want {
		if _, ok := p.runners[name]; ok {
			continue
		}
		o := outbox.New(p.st, instancePusher{p: p, name: name}, outbox.Options{
			Namespace: provisioningNamespace + name, Name: name,
			Rules: p.ext.provisioningRules(name),
			Log:   p.log.With(slog.String("provisioner", name)),
		})
		r, err := outbox.Start(ctx, outbox.NewCapture(p.st, o, false))
		if err != nil {
			p.log.WarnContext(ctx, "starting a provisioning queue", "provisioner", name, "err", err)
			continue
		}
		p.runners[name] = &queued{module: inst.ID().String(), o: o, r: r}
	}
}

// instancePusher delivers to the instance of that name in the node's
// current instance set, through the kernel's call helper, so that a
// replaced instance (a reloaded bundle) takes over the queue. A tenant
// the instance is not enabled for skips the change.
type instancePusher struct {
	p    *provisioning
	name string
}

// Push implements provision.Provisioner.
func (ip instancePusher) Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	var inst *extension.Instance
	for _, i := range ip.p.current() {
		if i.Name() == ip.name {
			inst = i
		}
	}
	if inst == nil {
		return abi.ProvisionResponse{}, &provision.RetryError{After: provisioningReconcile}
	}
	if !slices.ContainsFunc(ip.p.ext.Enabled(ev.Tenant, extension.KindProvisioner), func(i *extension.Instance) bool { return i.Name() == ip.name }) {
		return abi.ProvisionResponse{Outcome: abi.ProvisionSkipped}, nil
	}
	pv, ok := extension.As[provision.Provisioner](inst)
	if !ok {
		return abi.ProvisionResponse{Outcome: abi.ProvisionSkipped}, nil
	}
	ev.Config = inst.Config()
	var resp abi.ProvisionResponse
	err := extension.Call(ctx, inst, abi.OpProvision, func(ctx context.Context) error {
		var err error
		resp, err = pv.Push(ctx, ev)
		return err
	})
	return resp, err
}

// ProvisioningQueues implements admin.Provisioners: the queues of the
// instances that keep their own, and those the node runs.
func (p *provisioning) ProvisioningQueues() []admin.ProvisioningQueue {
	var out []admin.ProvisioningQueue
	for _, inst := range p.current() {
		if q, own := extension.As[provision.Queue](inst); own {
			out = append(out, admin.ProvisioningQueue{Name: inst.Name(), Module: inst.ID().String(), Queue: q})
		}
	}
	p.mu.Lock()
	for name, q := range p.runners {
		out = append(out, admin.ProvisioningQueue{Name: name, Module: q.module, Queue: q.o})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b admin.ProvisioningQueue) int { return strings.Compare(a.Name, b.Name) })
	return out
}

var (
	_ admin.Provisioners    = (*provisioning)(nil)
	_ provision.Provisioner = instancePusher{}
)

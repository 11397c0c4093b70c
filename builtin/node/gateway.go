package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/gateway"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// openGateway starts the gateway role when gateway.routes_file is set: it
// loads the routes file, opens the gateway's listener (so that a taken port
// fails Open) and ties the gateway's serving to the HTTP server's lifecycle:
// it starts serving when the server starts listening and drains when the
// server shuts down, before Serve closes the store. It returns the gateway
// as the admin API sees it, nil when the role is off.
func (n *Node) openGateway(ctx context.Context) (admin.Gateway, error) {
	if n.cfg.Gateway.RoutesFile == "" {
		return nil, nil
	}
	t, err := n.store.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: finding the default tenant: %w", err)
	}
	gw, err := gateway.New(ctx, gateway.Deps{
		KV:         n.store,
		TenantID:   t.ID,
		TenantName: t.Name,
		Keys:       n.keys,
		PublicURL:  n.cfg.PublicURL,
		Throttler: func(name string) (*extension.Instance, bool) {
			if s := n.extensions.instances.Load(); s != nil {
				return s.Get(name)
			}
			return nil, false
		},
		ClaimMappers: func() []*extension.Instance {
			return n.extensions.Enabled(store.DefaultTenantName, extension.KindClaims)
		},
		Log:        n.log.With("role", "gateway"),
		Registerer: n.registry,
	}, n.cfg.Gateway.RoutesFile)
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	ln, err := net.Listen("tcp", n.cfg.Gateway.Listen)
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: listening on %s (gateway.listen): %w", n.cfg.Gateway.Listen, err)
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	drain := n.cfg.HTTP.ShutdownTimeout
	hooks := n.server.App().Hooks()
	hooks.OnListen(func(fiber.ListenData) error {
		n.log.InfoContext(gctx, "the gateway is serving", "listen", ln.Addr().String(), "routes_file", n.cfg.Gateway.RoutesFile)
		go func() {
			defer close(done)
			if err := gw.Serve(gctx, ln, drain); err != nil && !errors.Is(err, net.ErrClosed) {
				n.log.ErrorContext(gctx, "the gateway stopped", "err", err)
			}
		}()
		return nil
	})
	hooks.OnShutdown(func() error {
		cancel()
		select {
		case <-done:
		case <-time.After(drain + time.Second):
		}
		return nil
	})
	return gatewayView{gw}, nil
}

// gatewayView adapts the gateway to the admin API.
type gatewayView struct{ gw *gateway.Gateway }

func (v gatewayView) Routes() []admin.GatewayRoute {
	rs := v.gw.Routes()
	out := make([]admin.GatewayRoute, len(rs))
	for i, r := range rs {
		out[i] = admin.GatewayRoute{
			API: r.API, Route: r.Route, Hosts: r.Hosts, Path: r.Path, Methods: r.Methods,
			Upstream: r.Upstream, Issuers: r.Issuers, Scopes: r.Scopes, Open: r.Open, Breaker: r.Breaker,
			Endpoints: r.Endpoints, HealthyEndpoints: r.Healthy,
		}
	}
	return out
}

func (v gatewayView) ReloadDeny(ctx context.Context) error { return v.gw.ReloadDeny(ctx) }

// CheckStored checks a stored gateway API or upstream against this node's
// routes file before the admin API writes it.
func (v gatewayView) CheckStored(ctx context.Context, kind, name string, doc []byte) error {
	return v.gw.CheckStored(ctx, kind, name, doc)
}

var _ admin.Gateway = gatewayView{}

// OpenGateway builds a node that runs the gateway role alone (`latch
// gateway`): the store (deny policies, subscriptions, signing keys for
// backend JWTs), the extensions (throttlers, claim mappers) and an HTTP
// server with only the probes and /metrics; the identity server's
// endpoints are not mounted. cfg.Gateway.RoutesFile must be set. Serve
// runs it.
func OpenGateway(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (_ *Node, err error) {
	if cfg.Gateway.RoutesFile == "" {
		return nil, errors.New("gateway.routes_file is required to run the gateway")
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	n := &Node{cfg: cfg, opts: opts, log: log, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	// The same core as an identity node: the default tenant and its
	// signing keys must exist, since backend JWTs are signed with them (on
	// a store shared with identity nodes the bootstrap finds them).
	if _, err := n.openCore(ctx); err != nil {
		return nil, err
	}
	gw, err := n.openGateway(ctx)
	if err != nil {
		return nil, err
	}
	n.followChanges(nil, gw)
	return n, nil
}

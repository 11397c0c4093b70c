// Package node assembles one Latch node from its configuration: the store
// (SQLite or PostgreSQL, migrated), the master key, signing keys, the event
// bus and its sinks, the first-start bootstrap, and the HTTP server with
// every front door mounted. The CLI's `latch serve` is Open then Serve.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/cache"
	claimsdialect "github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/builtin/selfservice"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/instrumented"
	"github.com/latchid/latch/kernel/store/postgres"
	"github.com/latchid/latch/kernel/store/sqlite"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Node is one running Latch process.
type Node struct {
	cfg        config.Config
	opts       Options
	log        *slog.Logger
	registry   *prometheus.Registry
	store      store.Store
	keys       *keys.Manager
	bus        *event.Bus
	extensions *extensions
	bundles    *bundleSet     // the plugin bundles in the store (bundles.go)
	box        *secret.Box    // seals extensions' secrets under the master key
	hasher     *boundedHasher // user passwords (argon2id, bounded concurrency)
	wasm       *wasmhost.Host // nil when no plugins are configured
	server     *server.Server
	changes    changeBus            // change notifications among the nodes (cluster.go)
	chMetrics  *changeMetrics       // counts the change notifications
	unfollow   func()               // stops following changes
	cache      *cache.Redis         // the cluster's shared cache; nil without one
	dialects   *claimsdialect.Cache // the tenants' claim dialect tables (cluster.go)
	directory  *oauth.Directory     // the oauth provider's tenants and clients (cluster.go)
	// queues are the durable queues of plugin provisioners (provisioning.go).
	queues *provisioning
}

// Options tune Open beyond the configuration.
type Options struct {
	// Stdout receives the one-time bootstrap credentials; nil means
	// os.Stdout. They never go to the log.
	Stdout io.Writer
	// Version is the build's version, recorded in the server.start event.
	Version string
	// Modules are extension modules compiled into the program that embeds
	// the node, registered beside the builtin ones: a Go program that
	// imports Latch adds its own authenticator, claim mapper or user store
	// this way and names it in extensions.instances like a builtin. An id
	// that is already registered makes Open fail.
	Modules []extension.Module
}

// OpenStore opens and migrates the configured store.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	var (
		st  store.Store
		err error
	)
	switch cfg.Store.Driver {
	case "sqlite", "":
		path := cfg.Store.DSN.Value()
		if path == "" {
			path = filepath.Join(cfg.DataDir, config.DefaultSQLiteFile)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating data folder: %w", err)
		}
		var opts []sqlite.Option
		if cfg.Store.MaxOpenConns > 0 {
			opts = append(opts, sqlite.WithReadConns(cfg.Store.MaxOpenConns))
		}
		st, err = sqlite.Open(ctx, path, opts...)
	case "postgres":
		st, err = postgres.Open(ctx, cfg.Store.DSN.Value(),
			postgres.WithMaxConns(cfg.Store.MaxOpenConns),
			postgres.WithMaxConnLifetime(cfg.Store.ConnMaxLifetime))
	default:
		return nil, fmt.Errorf("store.driver: unknown driver %q (want sqlite or postgres)", cfg.Store.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s store: %w", cfg.Store.Driver, err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("migrating store: %w", err)
	}
	return st, nil
}

// OpenKeys returns the signing-key manager over st, with the master key
// loaded (or, on a first development start, generated) from cfg.
func OpenKeys(cfg config.Config, st store.Store, log *slog.Logger) (*keys.Manager, error) {
	mk, err := secret.LoadOrCreateMasterKey(cfg.DataDir, cfg.MasterKey.Value(), log)
	if err != nil {
		return nil, fmt.Errorf("loading master key: %w", err)
	}
	box, err := secret.NewBox(mk)
	if err != nil {
		return nil, fmt.Errorf("loading master key: %w", err)
	}
	return keys.NewManager(st, box, keys.Options{
		DefaultAlgorithm: cfg.Keys.Algorithm,
		Overlap:          cfg.Keys.Overlap,
		Logger:           log,
	}), nil
}

// Open builds a node from cfg: it opens and migrates the store, bootstraps
// the default tenant on first start and prepares the HTTP server. It does
// not serve yet.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (_ *Node, err error) {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	n := &Node{cfg: cfg, opts: opts, log: log, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	mk, err := n.openCore(ctx)
	if err != nil {
		return nil, err
	}
	hmacKey, err := secret.DeriveKey(mk, "oauth-hmac")
	if err != nil {
		return nil, err
	}
	cookieKey, err := secret.DeriveKey(mk, "adaptive-cookie")
	if err != nil {
		return nil, err
	}
	engine, err := adaptive.New(adaptive.Options{
		Logger:    log.With(slog.String("component", "adaptive")),
		Host:      &adaptive.StoreHost{Store: n.store},
		CookieKey: cookieKey,
		HTTPAllow: cfg.Adaptive.HTTPAllow,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the adaptive script engine: %w", err)
	}
	lg, err := login.New(login.Deps{
		Store:          n.store,
		Authenticators: n.extensions,
		PublicURL:      cfg.PublicURL,
		Log:            log,
		Audit:          n.bus,
		Engine:         engine,
		ThemeDir:       cfg.UI.ThemeDir,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the login pages: %w", err)
	}
	lg.Mount(n.server.App())
	passwords, err := n.openSelfService(lg) // selfservice.go
	if err != nil {
		return nil, err
	}
	n.mountFederation(lg) // federation.go: endpoints of federated authenticators
	clientSecretKey, err := secret.DeriveKey(mk, "oauth-client-secret")
	if err != nil {
		return nil, err
	}
	provider, err := oauth.New(oauth.Deps{
		Store: n.store, Keys: n.keys, PublicURL: cfg.PublicURL, Log: log, Audit: n.bus,
		Login: lg, HMACKey: hmacKey, Extensions: n.extensions, ClientSecretKey: clientSecretKey, Directory: n.directory,
		MutualTLS:           cfg.TLS.ClientCAFile != "" && cfg.TLS.CertFile != "",
		SelfSignedMutualTLS: cfg.TLS.SelfSignedClientCerts && cfg.TLS.CertFile != "",
		DPoPNonceRequired:   cfg.OAuth.DPoPNonceRequired,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the oauth provider: %w", err)
	}
	provider.Mount(n.server.App())
	passwords.UseTokens(provider) // a password reset revokes the user's tokens too
	samlKey, err := secret.DeriveKey(mk, "saml-pseudonym")
	if err != nil {
		return nil, err
	}
	idp, err := saml.New(saml.Deps{Store: n.store, Keys: n.keys, Login: lg, PublicURL: cfg.PublicURL, PseudonymKey: samlKey, Log: log, Audit: n.bus,
		ClaimMappers: n.extensions.claimMappers, SessionEnded: provider.LogoutSession})
	if err != nil {
		return nil, fmt.Errorf("starting the saml idp: %w", err)
	}
	provider.OnSessionEnd(idp.EndSessionFrames) // cross-protocol logout
	idp.Mount(n.server.App())
	gw, err := n.openGateway(ctx) // the gateway role (gateway.routes_file); nil when off
	if err != nil {
		return nil, err
	}
	n.followChanges(idp.Forget, gw)
	n.startProvisioning(ctx)
	admin.New(admin.Deps{
		Bearer:        adminBearer{provider},
		Store:         n.store,
		Hasher:        n.hasher,
		Keys:          n.keys,
		Audit:         n.bus,
		Extensions:    n.extensions,
		Bundles:       n.bundles,
		Gateway:       gw,
		Adaptive:      engine,
		InitialTokens: provider,
		Provisioners:  n.queues,
		Directory:     n.extensions.outsideDatabase(),
		ClientSecrets: provider,
		Log:           log,
		Passwords:     passwords,
		CheckSettings: selfservice.CheckSettings,
	}).Mount(n.server.App())
	n.mountSCIM(provider, n.hasher, passwords)
	n.mountMe(provider, lg, passwords)
	return n, nil
}

// openCore opens what every role of a node needs, in order: metrics, the
// store (migrated and instrumented), signing keys, the event bus, the
// master key and the box that seals extensions' secrets, the extensions,
// the first-start bootstrap (the default tenant, its keys, the admin user
// and client) and the HTTP server with its probes. It returns the master
// key, from which the roles derive their own keys.
func (n *Node) openCore(ctx context.Context) (mk []byte, err error) {
	cfg, log, opts := n.cfg, n.log, n.opts
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	raw, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n.store = raw
	if n.store, err = instrumented.Wrap(raw, n.registry); err != nil {
		return nil, fmt.Errorf("instrumenting store: %w", err)
	}
	if err := n.openCluster(ctx, raw); err != nil {
		return nil, err
	}
	if n.keys, err = OpenKeys(cfg, n.store, log); err != nil {
		return nil, err
	}
	em, err := event.NewMetrics(n.registry)
	if err != nil {
		return nil, fmt.Errorf("registering event metrics: %w", err)
	}
	n.bus = event.NewBus(event.Options{Logger: log, Metrics: em},
		event.NewLogSink(log),
		event.NewStoreSink(n.store))
	mk, err = secret.LoadOrCreateMasterKey(cfg.DataDir, cfg.MasterKey.Value(), log)
	if err != nil {
		return nil, fmt.Errorf("loading master key: %w", err)
	}
	if n.box, err = secret.NewBox(mk); err != nil {
		return nil, fmt.Errorf("loading master key: %w", err)
	}
	hasher := newBoundedHasher(password.NewHasher(cfg.Password.Params()))
	n.hasher = hasher
	if err := n.loadExtensions(ctx, hasher); err != nil {
		return nil, err
	}
	if err := bootstrap(ctx, bootstrapDeps{
		store: n.store, keys: n.keys, hasher: hasher, log: log, out: opts.Stdout,
		adminPassword: cfg.Bootstrap.AdminPassword.Value(),
		clientSecret:  cfg.Bootstrap.ClientSecret.Value(),
		publicURL:     cfg.PublicURL,
	}); err != nil {
		return nil, fmt.Errorf("bootstrapping: %w", err)
	}

	n.server, err = server.New(server.Config{
		Listen:                cfg.Listen,
		CertFile:              cfg.TLS.CertFile,
		KeyFile:               cfg.TLS.KeyFile,
		ClientCAFile:          cfg.TLS.ClientCAFile,
		SelfSignedClientCerts: cfg.TLS.SelfSignedClientCerts,
		BodyLimit:             int(cfg.HTTP.BodyLimit),
		ReadTimeout:           cfg.HTTP.ReadTimeout,
		WriteTimeout:          cfg.HTTP.WriteTimeout,
		IdleTimeout:           cfg.HTTP.IdleTimeout,
		ShutdownTimeout:       cfg.HTTP.ShutdownTimeout,
		TrustedProxies:        cfg.HTTP.TrustedProxies,
	}, log, n.registry, n.ready)
	if err != nil {
		return nil, err
	}
	return mk, nil
}

// Serve serves HTTP until ctx is done (SIGTERM, SIGINT), then drains
// in-flight requests, flushes the event bus and closes the store.
func (n *Node) Serve(ctx context.Context) error {
	ln, err := n.server.Listen()
	if err != nil {
		n.closeAll()
		return err
	}
	n.log.InfoContext(ctx, "latch is serving", "listen", ln.Addr().String(), "public_url", n.cfg.PublicURL, "store", n.cfg.Store.Driver)
	n.bus.Publish(event.Event{Action: event.ServerStart, Actor: event.ActorSystem, Outcome: event.OutcomeSuccess, Detail: map[string]any{"version": n.opts.Version}})
	hk := n.startHousekeeping(ctx)
	serr := n.server.Serve(ctx, ln)
	<-hk
	n.closeAll()
	return serr
}

// Server returns the node's HTTP server, for in-process tests.
func (n *Node) Server() *server.Server { return n.server }

// Store returns the node's store.
func (n *Node) Store() store.Store { return n.store }

// Close releases everything Open acquired; use it when Serve is not called.
func (n *Node) Close() { n.closeAll() }

func (n *Node) closeAll() {
	n.stopFollowing() // no cache reloads while the node winds down
	n.stopProvisioning()
	if n.bundles != nil {
		n.bundles.halt()
	}
	if n.extensions != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.extensions.Close(ctx); err != nil {
			n.log.WarnContext(ctx, "closing extensions", "err", err)
		}
		cancel()
		n.extensions = nil
	}
	{
		// Native plugin processes, after the instances that call them.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.closeNativePlugins(ctx)
		cancel()
	}
	if n.bundles != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.bundles.close(ctx)
		cancel()
		n.bundles = nil
	}
	if n.wasm != nil {
		// After the extension instances, which still call their modules
		// as they close.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.wasm.Close(ctx); err != nil {
			n.log.WarnContext(ctx, "closing the wasm host", "err", err)
		}
		cancel()
		n.wasm = nil
	}
	n.closeCluster()
	if n.bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.bus.Close(ctx); err != nil {
			n.log.Warn("flushing events", "err", err)
		}
		cancel()
		n.bus = nil
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Warn("closing store", "err", err)
		}
		n.store = nil
	}
}

package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
)

// Options configures a Host. The zero value is usable: no on-disk cache, a
// logger that discards, metrics that are not registered.
type Options struct {
	// CacheDir is the folder of the on-disk compilation cache, so that a
	// restarted server does not compile the same module again. It is
	// created when missing and must be private to this server (a module's
	// machine code is loaded from it). Empty keeps the cache in memory only.
	CacheDir string
	// Logger receives the guests' log calls and standard output and error,
	// and the host's own warnings. Nil discards.
	Logger *slog.Logger
	// Registerer gets the host's metrics (see doc.go). Nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
}

// Host runs Latch ABI v1 WASM modules. It holds the process-wide compilation
// cache; create one Host per process and load every module through it. A
// Host is safe for concurrent use.
type Host struct {
	cache   wazero.CompilationCache
	logger  *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	modules map[string]*Module // nil entry: a Load in progress
	closed  bool
}

// New returns a Host with one compilation cache, on disk in opts.CacheDir
// when it is set.
func New(ctx context.Context, opts Options) (*Host, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			m.unregister(opts.Registerer)
			return nil, fmt.Errorf("opening the compilation cache in %s: %w", opts.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	return &Host{
		cache:   cache,
		logger:  logger,
		metrics: m,
		modules: map[string]*Module{},
	}, nil
}

// Modules returns the ids of the loaded modules, sorted.
func (h *Host) Modules() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.modules))
	for id, m := range h.modules {
		if m != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Module returns the loaded module with the id, or nil.
func (h *Host) Module(id string) *Module {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.modules[id]
}

// reserve claims id for a Load in progress.
func (h *Host) reserve(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("module %s: loading into a closed host: %w", id, ErrClosed)
	}
	if _, ok := h.modules[id]; ok {
		return fmt.Errorf("module %s: %w", id, ErrDuplicate)
	}
	h.modules[id] = nil
	return nil
}

// settle ends the Load of id: m is nil when it failed. It reports false
// when the host was closed meanwhile, and the caller must close m.
func (h *Host) settle(id string, m *Module) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m == nil || h.closed {
		delete(h.modules, id)
		return false
	}
	h.modules[id] = m
	return true
}

// forget removes a closed module.
func (h *Host) forget(id string, m *Module) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.modules[id] == m {
		delete(h.modules, id)
	}
}

// Close closes every loaded module (calls in flight fail with ErrClosed) and
// the compilation cache. The on-disk cache stays for the next start.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	mods := make([]*Module, 0, len(h.modules))
	for _, m := range h.modules {
		if m != nil {
			mods = append(mods, m)
		}
	}
	h.mu.Unlock()
	var errs []error
	for _, m := range mods {
		errs = append(errs, m.Close(ctx))
	}
	if err := h.cache.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("closing the compilation cache: %w", err))
	}
	return errors.Join(errs...)
}

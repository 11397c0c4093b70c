package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// pluginTestTenant is the tenant of every request `plugin test` makes.
const pluginTestTenant = "plugin-test"

// testServices are the host services `plugin test` gives a module: the
// server's own, over a throwaway SQLite store.
type testServices struct {
	calls *plugin.HostCalls
	st    store.Store
	dir   string
}

func (e *testServices) close() {
	_ = e.st.Close()
	_ = os.RemoveAll(e.dir)
}

// auditPrinter prints the module's audit events as AUDIT lines.
type auditPrinter struct{ r *report }

func (a auditPrinter) Publish(e event.Event) bool {
	fmt.Fprintf(a.r.w, "AUDIT %s %s by %s (%s) %v\n", e.Action, e.Target, e.Actor, e.Outcome, e.Detail)
	return true
}

// newTestServices opens the store, creates the test tenant and builds the
// module's host services from the flags.
func newTestServices(ctx context.Context, id string, grants, httpHosts, secrets []string, r *report) (*testServices, error) {
	dir, err := os.MkdirTemp("", "latch-plugin-test-")
	if err != nil {
		return nil, fmt.Errorf("creating the test store's folder: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("opening the test store: %w", err)
	}
	e := &testServices{st: st, dir: dir}
	if err := st.Migrate(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("migrating the test store: %w", err)
	}
	if _, err := st.CreateTenant(ctx, store.Tenant{ID: store.NewID(), Name: pluginTestTenant, Enabled: true}); err != nil {
		e.close()
		return nil, fmt.Errorf("creating the test tenant: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := secret.NewBox(key)
	if err != nil {
		e.close()
		return nil, err
	}
	sec := make(map[string][]byte, len(secrets))
	for _, s := range secrets {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			e.close()
			return nil, fmt.Errorf("--secret %q: want <name>=<value>", s)
		}
		sec[name] = []byte(value)
	}
	e.calls, err = plugin.NewHostCalls(plugin.HostOptions{
		Plugin: id, Grants: grants, KV: st, Tenants: st, Audit: auditPrinter{r},
		Box: box, Secrets: sec, HTTP: plugin.HTTPOptions{Hosts: httpHosts},
	})
	if err != nil {
		e.close()
		return nil, fmt.Errorf("--http-host: %w", err)
	}
	return e, nil
}

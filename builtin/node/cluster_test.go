package node

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/gateway"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/notify"
	"github.com/latchid/latch/kernel/store"
)

// clusterConfig is a SQLite node in a fresh folder, with the builtin
// extensions.
func clusterConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openNode(t *testing.T, cfg config.Config) *Node {
	t.Helper()
	n, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{Stdout: io.Discard})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

func readyz(t *testing.T, n *Node) int {
	t.Helper()
	resp, err := n.Server().App().Test(httptest.NewRequest(http.MethodGet, "/readyz", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzReportsCache: with cache.driver redis, /readyz answers 503
// while Redis does not answer and 200 when it does; without a cache it
// depends on the store alone.
func TestReadyzReportsCache(t *testing.T) {
	if st := readyz(t, openNode(t, clusterConfig(t))); st != http.StatusOK {
		t.Errorf("without a cache: /readyz %d, want 200", st)
	}

	cfg := clusterConfig(t)
	cfg.Cache.Driver, cfg.Cache.Addr, cfg.Cache.Timeout = "redis", "127.0.0.1:1", 200*time.Millisecond
	if st := readyz(t, openNode(t, cfg)); st != http.StatusServiceUnavailable {
		t.Errorf("with an unreachable redis: /readyz %d, want 503", st)
	}

	addr := os.Getenv("LATCH_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("LATCH_TEST_REDIS_ADDR is not set: the reachable-Redis half needs Redis (e.g. 127.0.0.1:6379)")
	}
	cfg = clusterConfig(t)
	cfg.Cache.Driver, cfg.Cache.Addr = "redis", addr
	if st := readyz(t, openNode(t, cfg)); st != http.StatusOK {
		t.Errorf("with a reachable redis: /readyz %d, want 200", st)
	}
}

// TestWritesAreAnnounced: committed writes of what nodes cache (clients,
// tenants, signing keys, gateway deny policies, bundles) are announced on
// the node's change bus, with the tenant as the key; other writes are not.
func TestWritesAreAnnounced(t *testing.T) {
	n := openNode(t, clusterConfig(t))
	ctx := context.Background()
	heard := make(chan notify.Change, 64)
	for _, topic := range []string{notify.TopicClients, notify.TopicTenants, notify.TopicKeys, notify.TopicDenyPolicies, notify.TopicBundles} {
		n.changes.Subscribe(topic, func(_ context.Context, c notify.Change) { heard <- c })
	}
	expect := func(what string, want notify.Change) {
		t.Helper()
		select {
		case got := <-heard:
			if got != want {
				t.Errorf("%s: heard %+v, want %+v", what, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing announced", what)
		}
	}
	tenant, err := n.store.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	expect("creating a tenant", notify.Change{Topic: notify.TopicTenants, Key: tenant.ID})
	cl, err := n.store.CreateClient(ctx, store.Client{TenantID: tenant.ID, ClientID: "app", Name: "App", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	expect("creating a client", notify.Change{Topic: notify.TopicClients, Key: tenant.ID})
	cl.RedirectURIs = []string{"https://app.example/cb"}
	if _, err := n.store.UpdateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	expect("updating a client", notify.Change{Topic: notify.TopicClients, Key: tenant.ID})
	if _, err := n.keys.Rotate(ctx, tenant.ID, ""); err != nil {
		t.Fatal(err)
	}
	expect("rotating: the new key", notify.Change{Topic: notify.TopicKeys, Key: tenant.ID})
	expect("rotating: the activation", notify.Change{Topic: notify.TopicKeys, Key: tenant.ID})
	if err := n.store.KVPut(ctx, gateway.DenyNamespace, tenant.ID, store.KVEntry{Key: gateway.DenyKeyPrefix + "x", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	expect("adding a deny policy", notify.Change{Topic: notify.TopicDenyPolicies})
	// A write nothing caches is not announced.
	if err := n.store.KVPut(ctx, "some.plugin", tenant.ID, store.KVEntry{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := n.store.DeleteClient(ctx, tenant.ID, cl.ID); err != nil {
		t.Fatal(err)
	}
	expect("deleting a client (and nothing for the plugin's write)", notify.Change{Topic: notify.TopicClients, Key: tenant.ID})

	// The node counts what it published and what its caches handled (its
	// own subscriptions run on their own goroutines: wait for them).
	counts := func() map[string]float64 {
		mfs, err := n.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := ""
				for _, l := range m.GetLabel() {
					labels += l.GetName() + "=" + l.GetValue() + " "
				}
				out[mf.GetName()+" "+labels] += m.GetCounter().GetValue()
			}
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := counts()
		published := c["latch_cluster_changes_published_total result=ok topic=clients "]
		received := c["latch_cluster_changes_received_total kind=change topic=keys "]
		if published >= 3 && received >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counted %v published client changes (want 3 or more) and %v received key changes (want 2 or more)", published, received)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

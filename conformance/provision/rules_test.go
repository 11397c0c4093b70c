package provision_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestWebhookPluginFollowsRules gives the webhook plugin provisioning
// rules on its instance (extensions.instances[].rules, the shape every
// provisioner takes): only members of the engineering group reach it; a
// member removed from the group, and the former members of the deleted
// group, are deleted at the target at once.
func TestWebhookPluginFollowsRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin and runs a server; skipped in -short mode")
	}
	wasm := buildWebhook(t)
	rcv := &receiver{t: t, got: map[string]map[string]any{}}
	rcv.status.Store(http.StatusOK)
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)

	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	yaml := fmt.Sprintf(`plugins:
  - id: webhook
    path: %s
    grants: [http, secrets, clock]
    http_hosts: ["%s"]
    secrets:
      hook_key: %q
extensions:
  instances:
    - module: userstore.local
    - module: authn.password
    - name: eng-sync
      module: provision.webhook
      config: {"url": "%s/hook", "secret": "hook_key", "resources": ["user"]}
      rules: {groups: [engineering]}
`, wasm, hook.URL, hookKey, hook.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := live.Start(t, "LATCH_CONFIG="+cfg)
	t.Cleanup(func() {
		if t.Failed() {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			t.Logf("the webhook received %v; %d bad signatures", rcv.got, rcv.bad)
			var q struct {
				Items []map[string]any `json:"items"`
			}
			s.Admin("GET", "/provisioning", nil, &q)
			t.Logf("queues: %v", q.Items)
		}
	})

	var eng map[string]any
	if code := s.Admin("POST", "/groups", map[string]any{"name": "engineering"}, &eng); code != 201 {
		t.Fatalf("creating engineering: %d", code)
	}
	ids := map[string]string{}
	for _, name := range []string{"kim", "lee", "max"} {
		var u map[string]any
		if code := s.Admin("POST", "/users", map[string]any{"username": name, "enabled": true}, &u); code != 201 {
			t.Fatalf("creating %s: %d", name, code)
		}
		ids[name], _ = u["id"].(string)
	}
	for _, name := range []string{"kim", "lee"} {
		if code := s.Admin("PUT", fmt.Sprintf("/groups/%s/members/%s", eng["id"], ids[name]), nil, nil); code != 204 {
			t.Fatalf("adding %s to engineering: %d", name, code)
		}
	}
	op := func(name string) string {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		o, _ := rcv.got[name]["op"].(string)
		return o
	}
	// A user queued twice (created, then joined) arrives as a create and
	// then an update: the last payload is either.
	reached := func(name string) bool { o := op(name); return o == "create" || o == "update" }
	live.Eventually(t, 60*time.Second, "kim and lee reach the webhook", func() bool { return reached("kim") && reached("lee") })

	// lee leaves the group: deleted at the target.
	if code := s.Admin("DELETE", fmt.Sprintf("/groups/%s/members/%s", eng["id"], ids["lee"]), nil, nil); code != 204 {
		t.Fatalf("removing lee: %d", code)
	}
	live.Eventually(t, 60*time.Second, "lee is deleted at the webhook", func() bool { return op("lee") == "delete" })
	// The group goes: its former member kim is deleted too.
	if code := s.Admin("DELETE", fmt.Sprintf("/groups/%s", eng["id"]), nil, nil); code != 204 {
		t.Fatalf("deleting engineering: %d", code)
	}
	live.Eventually(t, 60*time.Second, "kim is deleted at the webhook", func() bool { return op("kim") == "delete" })
	if rcv.has("max") {
		t.Fatal("max, never in the group, reached the webhook")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries with a bad signature", rcv.bad)
	}
}

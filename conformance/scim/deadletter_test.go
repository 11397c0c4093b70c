package scim

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestProvisioningDeadLettersRetry points Latch A's provision.scim at a
// Latch B that is not running, with few attempts allowed: the changes
// become dead letters, visible in A's admin API. Once B runs, one dead
// letter is retried through the admin API, the rest with the CLI
// (`latch admin provisioning retry --all`), and B converges; a discarded
// dead letter is gone for good.
func TestProvisioningDeadLettersRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two servers; skipped in -short mode")
	}
	b := newNode(t) // not started yet
	cfg := provisionConfig(t, b, "to-b", "timeout_millis: 1000", "max_attempts: 2")
	a := newNode(t, "LATCH_CONFIG="+cfg)
	a.start()

	ids := map[string]string{}
	for _, name := range []string{"erin", "frank", "grace"} {
		st, u := a.admin("POST", "/users", map[string]any{"username": name, "email": name + "@example.com"})
		if st != 201 {
			t.Fatalf("creating %s: %d %v", name, st, u)
		}
		ids[name], _ = u["id"].(string)
	}
	// The provisioner is listed, and the changes go dead.
	var dead []any
	live.Eventually(t, 90*time.Second, "three dead letters", func() bool {
		st, l := a.admin("GET", "/provisioning/to-b/dead-letters?limit=2", nil)
		if st != 200 {
			t.Fatalf("dead letters: %d %v", st, l)
		}
		dead, _ = l["items"].([]any)
		return len(dead) == 2 && l["next_cursor"] != nil
	})
	st, l := a.admin("GET", "/provisioning", nil)
	if st != 200 || !strings.Contains(fmt.Sprint(l["items"]), "dead_letters:3") || !strings.Contains(fmt.Sprint(l["items"]), "name:to-b") {
		t.Fatalf("provisioners: %d %v", st, l)
	}
	st, l = a.admin("GET", "/provisioning/to-b/pending", nil)
	if items, _ := l["items"].([]any); st != 200 || len(items) != 0 {
		t.Fatalf("pending after the changes went dead: %d %v", st, l)
	}
	if st, _ := a.admin("GET", "/provisioning/nope/dead-letters", nil); st != 404 {
		t.Fatalf("unknown provisioner: %d", st)
	}
	if st, _ := a.admin("POST", "/provisioning/to-b/dead-letters/not-an-id/retry", nil); st != 404 {
		t.Fatalf("unknown dead letter: %d", st)
	}

	// Discard grace's change; B comes back; retry erin's by the API and
	// the rest by the CLI.
	_, all := a.admin("GET", "/provisioning/to-b/dead-letters", nil)
	items, _ := all["items"].([]any)
	byUser := map[string]string{}
	for _, it := range items {
		m, _ := it.(map[string]any)
		byUser[m["resource_id"].(string)] = m["id"].(string)
		if m["last_error"] == "" || m["attempts"].(float64) < 2 {
			t.Fatalf("dead letter without its history: %v", m)
		}
	}
	if st, _ := a.admin("DELETE", "/provisioning/to-b/dead-letters/"+byUser[ids["grace"]], nil); st != 204 {
		t.Fatalf("discarding: %d", st)
	}
	b.start()
	if st, _ := a.admin("POST", "/provisioning/to-b/dead-letters/"+byUser[ids["erin"]]+"/retry", nil); st != 204 {
		t.Fatalf("retrying one: %d", st)
	}
	live.Eventually(t, 90*time.Second, "erin reaches B", func() bool { return b.scimUsers()["erin"] != nil })
	cli := exec.Command(a.bin, "admin", "provisioning", "retry", "to-b", "--all", "--url", a.url())
	cli.Env = append(os.Environ(), "LATCH_ADMIN_CLIENT_SECRET="+provSecret)
	out, err := cli.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "requeued 1 dead letters") {
		t.Fatalf("latch admin provisioning retry --all: %v\n%s", err, out)
	}
	live.Eventually(t, 90*time.Second, "B converges", func() bool {
		us := b.scimUsers()
		return us["erin"] != nil && us["frank"] != nil
	})
	time.Sleep(time.Second)
	if b.scimUsers()["grace"] != nil {
		t.Fatal("a discarded change was delivered")
	}
	_, l = a.admin("GET", "/provisioning/to-b/dead-letters", nil)
	if items, _ := l["items"].([]any); len(items) != 0 {
		t.Fatalf("dead letters left: %v", l)
	}
	// The operations were audited (the audit trail is written
	// asynchronously).
	live.Eventually(t, 10*time.Second, "both retries audited", func() bool {
		_, au := a.admin("GET", "/audit?action=provision.retry", nil)
		items, _ := au["items"].([]any)
		return len(items) >= 2
	})
}

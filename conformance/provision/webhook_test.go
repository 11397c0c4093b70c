// Package provision_test proves that provisioners from plugins get the
// same durable delivery as the builtin SCIM connector: the webhook WASM
// plugin (plugins/webhook), loaded by a live latch serve, receives every
// user change, signed; a change its receiver refuses becomes a dead
// letter in the admin API, and retrying it after the receiver is fixed
// delivers it.
package provision_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

const hookKey = "webhook-signing-key-0123456789abcdef"

// receiver is the webhook endpoint: it checks every signature and answers
// with the status it is told to.
type receiver struct {
	t      *testing.T
	status atomic.Int32
	mu     sync.Mutex
	got    map[string]map[string]any // username -> last payload
	bad    int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts, sig, _ := strings.Cut(req.Header.Get("X-Latch-Signature"), ",v1=")
	mac := hmac.New(sha256.New, []byte(hookKey))
	fmt.Fprintf(mac, "%s.%s", strings.TrimPrefix(ts, "t="), body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	status := int(r.status.Load())
	if status == http.StatusOK {
		var p map[string]any
		_ = json.Unmarshal(body, &p)
		if u, ok := p["user"].(map[string]any); ok {
			name, _ := u["username"].(string)
			r.got[name] = p
		}
		_, _ = io.WriteString(w, `{"id":"ext-`+fmt.Sprint(len(r.got))+`"}`)
		return
	}
	w.WriteHeader(status)
}

func (r *receiver) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[name] != nil
}

func buildWebhook(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "webhook.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./plugins/webhook")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the webhook plugin: %v\n%s", err, b)
	}
	return out
}

func TestWebhookPluginIsProvisionedDurably(t *testing.T) {
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
    - name: hr-sync
      module: provision.webhook
      config: {"url": "%s/hook", "secret": "hook_key", "resources": ["user"]}
`, wasm, hook.URL, hookKey, hook.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := live.Start(t, "LATCH_CONFIG="+cfg)

	if code := s.Admin("POST", "/users", map[string]any{"username": "ivy", "email": "ivy@example.com", "enabled": true}, nil); code != 201 {
		t.Fatalf("creating ivy: %d", code)
	}
	live.Eventually(t, 60*time.Second, "ivy reaches the webhook", func() bool { return rcv.has("ivy") })
	rcv.mu.Lock()
	p := rcv.got["ivy"]
	rcv.mu.Unlock()
	if p["op"] != "create" || p["resource"] != "user" || p["tenant"] != "default" {
		t.Fatalf("payload: %v", p)
	}

	// The receiver refuses for good: the change is a dead letter.
	rcv.status.Store(http.StatusBadRequest)
	if code := s.Admin("POST", "/users", map[string]any{"username": "jack", "enabled": true}, nil); code != 201 {
		t.Fatalf("creating jack: %d", code)
	}
	var dead struct {
		Items []map[string]any `json:"items"`
	}
	live.Eventually(t, 60*time.Second, "a dead letter", func() bool {
		s.Admin("GET", "/provisioning/hr-sync/dead-letters", nil, &dead)
		return len(dead.Items) == 1
	})
	var provs struct {
		Items []map[string]any `json:"items"`
	}
	s.Admin("GET", "/provisioning", nil, &provs)
	if len(provs.Items) != 1 || provs.Items[0]["name"] != "hr-sync" || provs.Items[0]["module"] != "provision.webhook" || provs.Items[0]["dead_letters"] != float64(1) {
		t.Fatalf("provisioners: %v", provs.Items)
	}
	// Fixed: retrying delivers it.
	rcv.status.Store(http.StatusOK)
	var retried map[string]any
	if code := s.Admin("POST", "/provisioning/hr-sync/dead-letters/retry", nil, &retried); code != 200 || retried["retried"] != float64(1) {
		t.Fatalf("retry all: %d %v", code, retried)
	}
	live.Eventually(t, 60*time.Second, "jack reaches the webhook", func() bool { return rcv.has("jack") })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries with a bad signature", rcv.bad)
	}
}

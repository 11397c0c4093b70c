package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const clientSecret = "e2e-admin-secret-0123456789abcdefghijklmnop"

// buildLatch compiles the latch binary once per test run.
var buildLatch = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "latch-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "latch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building latch: %w\n%s", err, out)
	}
	return bin, nil
})

// syncBuffer is a bytes.Buffer that the process's output goroutine and the
// test can use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a latch serve process.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	done   chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// startLatch runs `latch serve` on dataDir and waits until it is ready.
func startLatch(t testing.TB, dataDir string, extraEnv ...string) *proc {
	t.Helper()
	bin, err := buildLatch()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--data", dataDir, "--listen", addr)
	cmd.Env = append(os.Environ(), "LATCH_BOOTSTRAP_CLIENT_SECRET="+clientSecret, "LATCH_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &proc{t: t, cmd: cmd, url: "http://" + addr, stdout: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.stdout
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("latch exited before it was ready: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch not ready after 30s\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	if err := <-p.done; err == nil {
		p.t.Fatal("latch exited cleanly after SIGKILL")
	}
}

// createUser posts one user; it reports whether the server acknowledged it.
func createUser(client *http.Client, url, username string) (bool, error) {
	body := fmt.Sprintf(`{"username":%q,"password":"a long enough password","email":"%s@example.com"}`, username, username)
	req, _ := http.NewRequest("POST", url+"/api/admin/v1/users", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("latch-admin", clientSecret)
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 201 {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return true, nil
}

// createConcurrently creates n users at once; onAck runs after each
// acknowledged create. It returns the acknowledged usernames.
func createConcurrently(url, prefix string, n int, onAck func(int)) []string {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}}
	var (
		mu    sync.Mutex
		acked []string
		count atomic.Int64
		wg    sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("%s-%03d", prefix, i)
			if ok, _ := createUser(client, url, name); ok {
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
				if onAck != nil {
					onAck(int(count.Add(1)))
				}
			}
		}(i)
	}
	wg.Wait()
	return acked
}

func getJSON(t testing.TB, url string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("latch-admin", clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// allUsernames pages through the user listing.
func allUsernames(t *testing.T, url string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Items []struct {
				Username string `json:"username"`
				Email    string `json:"email"`
			} `json:"items"`
			Next string `json:"next_cursor"`
		}
		if st := getJSON(t, url+"/api/admin/v1/users?limit=1000&cursor="+cursor, &page); st != 200 {
			t.Fatalf("listing users: %d", st)
		}
		for _, u := range page.Items {
			if u.Username != "admin" && u.Email != u.Username+"@example.com" {
				t.Errorf("user %q is half-written: email %q", u.Username, u.Email)
			}
			names[u.Username] = true
		}
		if page.Next == "" {
			return names
		}
		cursor = page.Next
	}
}

// TestAcknowledgedCreatesSurviveKill9 is the durability promise: a create
// the API acknowledged is on disk, even if the process is killed outright
// right after (or while others are still in flight).
func TestAcknowledgedCreatesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	data := t.TempDir()
	p := startLatch(t, data)

	// The probes of a fresh start.
	for _, path := range []string{"/healthz", "/readyz"} {
		if st := getJSON(t, p.url+path, nil); st != 200 {
			t.Fatalf("%s: %d", path, st)
		}
	}

	// Wave 1: 200 concurrent creates, all acknowledged, then kill -9.
	acked := createConcurrently(p.url, "wave1", 200, nil)
	if len(acked) != 200 {
		t.Fatalf("only %d of 200 concurrent creates were acknowledged", len(acked))
	}
	p.kill9()

	// Wave 2: kill -9 while creates are in flight.
	p = startLatch(t, data)
	var killed sync.Once
	acked2 := createConcurrently(p.url, "wave2", 200, func(n int) {
		if n == 60 {
			killed.Do(func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
		}
	})
	killed.Do(func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
	if err := <-p.done; err == nil {
		t.Fatal("latch exited cleanly after SIGKILL")
	}
	if len(acked2) < 60 {
		t.Fatalf("wave 2 acknowledged %d creates before the kill, want at least 60", len(acked2))
	}

	p = startLatch(t, data)
	names := allUsernames(t, p.url)
	for _, n := range append(acked, acked2...) {
		if !names[n] {
			t.Errorf("acknowledged user %s is missing after kill -9", n)
		}
	}
	if strings.Contains(p.stdout.String(), "shown once") {
		t.Error("bootstrap credentials printed again on restart")
	}
	t.Logf("wave 1: 200 acknowledged; wave 2: %d acknowledged before kill; %d users on disk", len(acked2), len(names)-1)
}

func TestFirstStartPrintsCredentialsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	data := t.TempDir()
	p := startLatch(t, data, "LATCH_BOOTSTRAP_CLIENT_SECRET=")
	var secret string
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 5 && f[0] == "admin" && f[1] == "client:" {
			secret = f[4]
		}
	}
	if secret == "" {
		t.Fatalf("no generated admin client secret printed:\n%s", p.stdout.String())
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", p.url+"/api/admin/v1/users?username=admin", nil)
	req.SetBasicAuth("latch-admin", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"username":"admin"`)) {
		t.Fatalf("printed secret does not work or admin user missing: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"latch_http_requests_total", "latch_http_request_duration_seconds_bucket", "latch_store_call_duration_seconds_bucket", "go_goroutines"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics content type %q", resp.Header.Get("Content-Type"))
	}
	// SIGTERM: a clean, prompt exit.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	// Restart: nothing printed.
	p = startLatch(t, data, "LATCH_BOOTSTRAP_CLIENT_SECRET=")
	if strings.Contains(p.stdout.String(), "admin client:") {
		t.Fatalf("credentials printed again:\n%s", p.stdout.String())
	}
}

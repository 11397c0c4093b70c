// Package live starts a real `latch serve` for the protocol conformance
// suites: the binary is built once per test binary from this module, run
// on a free loopback port with a fresh data folder, and killed when the
// test ends. The suites then talk to it over HTTP only.
package live

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// AdminSecret is the bootstrap admin client's secret (client latch-admin)
// of every server Start runs; AdminPassword the admin user's password.
const (
	AdminSecret   = "conformance-admin-secret-0123456789abcdef" //nolint:gosec // G101: a test fixture, not a credential.
	AdminPassword = "conformance-admin-password"                //nolint:gosec // G101: a test fixture, not a credential.
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// build compiles cmd/latch into a temporary folder, once.
func build() (string, error) {
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		dir, err := os.MkdirTemp("", "latch-conformance")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "latch")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/latch") //nolint:gosec // G204: the path is our own temporary folder.
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building latch: %w\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Binary returns the path of the latch binary the servers run, built once
// per test process, for tests that run other commands (latch migrate).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Server is a running latch serve.
type Server struct {
	// URL is the server's base URL (its public URL).
	URL string
	t   testing.TB
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
	// exited is closed when the process has ended.
	exited chan struct{}
	// client makes the readiness probe and Admin calls.
	client *http.Client
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Options configure StartWith. The zero value is what Start uses.
type Options struct {
	// Env holds extra environment variables ("KEY=value"), applied after
	// the bootstrap credentials and log level, so they can override them.
	Env []string
	// Listen is the host:port to serve on. Empty: a free loopback port.
	Listen string
	// DataDir is the --data folder. Empty: a fresh t.TempDir(). Start a
	// later server with the same folder to restart on its SQLite database.
	DataDir string
	// HTTPS makes URL https:// for a server configured with a TLS
	// certificate; Client, which must trust it, then makes the readiness
	// probe and the Admin calls. Without them: plain HTTP and
	// http.DefaultClient.
	HTTPS  bool
	Client *http.Client
}

// Start runs a server with the extra environment variables and waits until
// it is ready.
func Start(t testing.TB, env ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Env: env})
}

// StartWith runs a server configured by o and waits until it is ready. The
// server is killed when the test ends.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	addr := o.Listen
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		_ = ln.Close()
	}
	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := &Server{URL: "http://" + addr, t: t, out: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{}), client: http.DefaultClient}
	if o.HTTPS {
		s.URL = "https://" + addr
	}
	if o.Client != nil {
		s.client = o.Client
	}
	s.cmd = exec.Command(bin, "serve", "--data", dataDir, "--listen", addr) //nolint:gosec // G204: the binary this package built.
	s.cmd.Env = append(os.Environ(),
		"LATCH_BOOTSTRAP_CLIENT_SECRET="+AdminSecret,
		"LATCH_BOOTSTRAP_ADMIN_PASSWORD="+AdminPassword,
		"LATCH_LOG_LEVEL=warn")
	s.cmd.Env = append(s.cmd.Env, o.Env...)
	s.cmd.Stdout = lockedWriter{s.mu, s.out}
	s.cmd.Stderr = lockedWriter{s.mu, s.out}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := s.cmd.Wait()
		close(s.exited)
		done <- err
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		var exit *exec.ExitError
		if err := <-done; err != nil && !errors.As(err, &exit) {
			t.Logf("waiting for latch: %v", err)
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.Output())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := s.client.Get(s.URL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("latch exited before it was ready: %v\n%s", err, s.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch not ready after 60s\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL (kill -9: no drain, no flush) and
// returns once the process is gone.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("killing latch: %v", err)
	}
	<-s.exited
}

// Output returns what the server printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Admin calls the admin API as the bootstrap admin client and decodes the
// JSON answer into out (when not nil). It returns the status code.
func (s *Server) Admin(method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/api/admin/v1"+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth("latch-admin", AdminSecret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode >= 300 && out == nil {
		s.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const clientSecret = "gateway-conformance-secret-0123456789abcdef"

// buildLatch compiles the latch binary once per test run.
var buildLatch = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "latch-gw-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "latch")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/latch").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building latch: %w\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// syncBuffer collects a process's output.
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

// node is a running latch process.
type node struct {
	url, gw string
	stderr  *syncBuffer
}

// startNode runs `latch <args...>` with a gateway on gwAddr and waits until
// both listeners answer.
func startNode(t testing.TB, addr, gwAddr string, env []string, args ...string) *node {
	t.Helper()
	bin, err := buildLatch()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--listen", addr)...)
	cmd.Env = append(os.Environ(), "LATCH_BOOTSTRAP_CLIENT_SECRET="+clientSecret, "LATCH_LOG_LEVEL=warn", "LATCH_GATEWAY_LISTEN="+gwAddr)
	cmd.Env = append(cmd.Env, env...)
	n := &node{url: "http://" + addr, gw: "http://" + gwAddr, stderr: &syncBuffer{}}
	cmd.Stdout = io.Discard
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err := <-done; err == nil {
			t.Log("latch exited cleanly")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(n.url+"/readyz") && reachable(n.gw) {
			return n
		}
		select {
		case err := <-done:
			t.Fatalf("latch exited before it was ready: %v\n%s", err, n.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch not ready after 60s\n%s", n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(url string) bool {
	resp, err := http.Get(url) //nolint:gosec,noctx // test URL
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func reachable(url string) bool {
	resp, err := http.Get(url + "/") //nolint:noctx // test URL
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

// jwksServer is a second issuer with its own keys, which the test can
// rotate and take down.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []*rsa.PrivateKey
	kids []string
	down atomic.Bool
	hits atomic.Int64
}

func newJWKSServer(t testing.TB) *jwksServer {
	s := &jwksServer{}
	s.addKey(t, "partner-1")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		set := jose.JSONWebKeySet{}
		for i, k := range s.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: s.kids[i], Algorithm: "RS256", Use: "sig"})
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) addKey(t testing.TB, kid string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.kids = append(s.kids, kid)
	s.mu.Unlock()
}

func (s *jwksServer) key(kid string) *rsa.PrivateKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.kids {
		if k == kid {
			return s.keys[i]
		}
	}
	return nil
}

const partnerIssuer = "https://partner.example"

// sign makes an RS256 JWT with key kid of s.
func (s *jwksServer) sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.RS256, s.key(kid), kid, claims)
}

func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// partnerClaims are valid claims of the second issuer.
func partnerClaims(mod func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": partnerIssuer, "sub": "bob", "aud": "orders-api", "client_id": "partner-app",
		"scope": "orders:read", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": "bob@partner.example",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// upstream is the real backend: it echoes what it received and counts the
// requests per path; /fail/ answers with the status set in failStatus.
type upstream struct {
	*httptest.Server
	mu         sync.Mutex
	hits       map[string]int
	failStatus atomic.Int64
}

type echo struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Assertion string `json:"assertion"`
	Auth      string `json:"auth"`
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{hits: map[string]int{}}
	u.failStatus.Store(http.StatusServiceUnavailable)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.hits[r.Method+" "+r.URL.Path]++
		u.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			if st := int(u.failStatus.Load()); st != http.StatusOK {
				w.WriteHeader(st)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, Assertion: r.Header.Get("X-JWT-Assertion"), Auth: r.Header.Get("Authorization")})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[key]
}

// call makes one request and returns status, body and headers.
func call(t testing.TB, method, url, token string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminJSON calls the admin API with the bootstrap client's credentials.
func adminJSON(t testing.TB, base, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, base+"/api/admin/v1"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("latch-admin", clientSecret)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

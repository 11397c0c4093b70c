package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/conformance/internal/live"
)

// postgresDSN returns the test PostgreSQL's DSN, skipping the test when
// it is not set.
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set: the cluster tests need PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// freshDatabase creates a database of its own for this test on the
// server of base and drops it when the test ends. It returns the DSN of
// the new database.
func freshDatabase(t testing.TB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", redact(base), err)
	}
	defer func() { _ = conn.Close(ctx) }()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "latch_cluster_" + hex.EncodeToString(suffix)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		// FORCE ends the sessions of nodes still being killed.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return withDatabase(t, base, name)
}

// withDatabase returns base with its database replaced by name. base is a
// postgres:// URL or a key=value string.
func withDatabase(t testing.TB, base, name string) string {
	t.Helper()
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parsing LATCH_TEST_POSTGRES_DSN: %v", err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return base + " dbname=" + name // a later key wins in key=value DSNs
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return "the test database"
}

// newMasterKey returns a random master key in LATCH_MASTER_KEY's form.
func newMasterKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// proxy is the load balancer in front of the nodes: round robin over the
// backends it believes alive. A backend whose connection fails is taken
// out (a passive health check, as load balancers do), and the request
// that met the failure is answered 502 (it is not retried: it may have
// been a write the dead node had already committed).
type proxy struct {
	URL string

	mu       sync.Mutex
	backends []*url.URL
	down     []bool
	next     atomic.Uint64
	failures atomic.Int64
	srv      *http.Server
}

type backendKey struct{}

func newProxy(t testing.TB, ln net.Listener) *proxy {
	t.Helper()
	p := &proxy{URL: "http://" + ln.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i, ok := r.In.Context().Value(backendKey{}).(int)
			if !ok {
				return
			}
			r.SetURL(p.backend(i))
			r.SetXForwarded()
			r.Out.Host = r.In.Host // the nodes see the public host, as behind a real balancer
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.failures.Add(1)
			if i, ok := r.Context().Value(backendKey{}).(int); ok && !errors.Is(err, context.Canceled) {
				p.markDown(i)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			i, ok := p.pick()
			if !ok {
				http.Error(w, "no backend alive", http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, i)))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// add puts a backend into the rotation.
func (p *proxy) add(base string) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // live builds the URL itself
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = append(p.backends, u)
	p.down = append(p.down, false)
}

func (p *proxy) backend(i int) *url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backends[i]
}

func (p *proxy) markUp(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[i] = false
}

func (p *proxy) markDown(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[i] = true
}

// pick returns the next backend that is not down.
func (p *proxy) pick() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.backends)
	for range n {
		i := int(p.next.Add(1) % uint64(n)) //nolint:gosec // G115: n is a small positive slice length.
		if !p.down[i] {
			return i, true
		}
	}
	return 0, false
}

// cluster is nodes of one database and master key behind one proxy.
type cluster struct {
	proxy *proxy
	nodes []*live.Server
	env   []string
	// perNode returns node i's own environment variables (its gateway
	// listener); nil when the nodes share everything.
	perNode func(i int) []string
}

// nodeEnv is node i's environment.
func (c *cluster) nodeEnv(i int) []string {
	if c.perNode == nil {
		return c.env
	}
	return append(slices.Clone(c.env), c.perNode(i)...)
}

// startCluster starts n nodes on a fresh PostgreSQL database behind a
// round-robin proxy whose URL is every node's public URL.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	dsn := freshDatabase(t, postgresDSN(t))
	return startNodes(t, n, "LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN="+dsn)
}

// startNodes starts n nodes with env behind a new proxy.
func startNodes(t testing.TB, n int, env ...string) *cluster {
	t.Helper()
	return startNodesWith(t, n, nil, env...)
}

// startNodesWith starts n nodes with env, and node i also with
// perNode(i) when perNode is not nil, behind a new proxy.
func startNodesWith(t testing.TB, n int, perNode func(i int) []string, env ...string) *cluster {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{proxy: newProxy(t, ln), perNode: perNode}
	c.env = append([]string{
		"LATCH_MASTER_KEY=" + newMasterKey(),
		"LATCH_PUBLIC_URL=" + c.proxy.URL,
	}, env...)
	c.nodes = make([]*live.Server, n)
	// The first node bootstraps the empty database alone: nodes that
	// bootstrap at the same moment can both create the tenant's first
	// signing key, and the loser of that race exits (keys.EnsureAlgorithm
	// does not yet treat the store's conflict as "another node made it").
	// The others start together and migrate under the advisory lock.
	c.nodes[0] = live.StartWith(t, live.Options{Env: c.nodeEnv(0)})
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { c.nodes[i] = live.StartWith(t, live.Options{Env: c.nodeEnv(i)}) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range c.nodes {
		c.proxy.add(s.URL)
	}
	return c
}

// apiError is a non-2xx answer.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// httpClient is shared by the load so connections are reused.
var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// admin calls the admin API at base as the bootstrap admin client and
// decodes a JSON answer into out (when not nil). A non-2xx answer is an
// *apiError.
func admin(base, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+"/api/admin/v1"+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth("latch-admin", live.AdminSecret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &apiError{status: resp.StatusCode, body: string(raw)}
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// tokenResponse is the token endpoint's answer (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

// token posts a token request to base with client credentials in the
// Basic header (RFC 6749 section 2.3.1). A non-200 answer is an
// *apiError.
func token(base, clientID, secret string, form url.Values) (tokenResponse, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := httpClient.Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, &apiError{status: resp.StatusCode, body: string(raw)}
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return tokenResponse{}, fmt.Errorf("decoding token response %q: %w", raw, err)
	}
	if tr.AccessToken == "" {
		return tokenResponse{}, fmt.Errorf("token response without access_token: %s", raw)
	}
	return tr, nil
}

// introspect reports whether base says tok is active (RFC 7662).
func introspect(base, clientID, secret, tok string) (bool, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := httpClient.Do(req)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return false, &apiError{status: resp.StatusCode, body: string(raw)}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return false, err
	}
	return r.Active, nil
}

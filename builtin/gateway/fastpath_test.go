package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bigBody is larger than fastBufferedBody, so it streams.
var bigBody = bytes.Repeat([]byte("0123456789abcdef"), 3*fastBufferedBody/16)

// fastUpstream is the upstream of the fast path's tests; idle, when set,
// closes its idle connections that soon.
func fastUpstream(t *testing.T, idle time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(bigBody)))
			_, _ = w.Write(bigBody)
		case "/chunked":
			f := w.(http.Flusher)
			for i := 0; i < len(bigBody); i += 4096 {
				_, _ = w.Write(bigBody[i:min(i+4096, len(bigBody))])
				f.Flush()
			}
		case "/bighdr":
			w.Header().Set("X-Big", strings.Repeat("b", fastReadBuffer))
		case "/hop":
			w.Header().Set("Connection", "X-Up-Drop")
			w.Header().Set("X-Up-Drop", "1")
			w.Header().Set("X-Keep", "1")
			w.Header().Set("X-Seen-Drop", r.Header.Get("X-Drop"))
			w.Header().Set("X-Seen-Host", r.Host)
			w.Header().Set("X-Seen-XFH", r.Header.Get("X-Forwarded-Host"))
			w.Header().Set("X-Seen-XFP", r.Header.Get("X-Forwarded-Proto"))
			w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
			_, _ = w.Write([]byte("hop"))
		case "/upgrade":
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "no upgrade", http.StatusBadRequest)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer func() { _ = conn.Close() }()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			_ = brw.Flush()
			line, _ := brw.ReadString('\n')
			_, _ = brw.WriteString("echo " + line)
			_ = brw.Flush()
		default:
			_, _ = w.Write([]byte("small:" + r.URL.RawQuery)) //nolint:gosec // G705: a test upstream echoing plain text
		}
	}))
	up.Config.IdleTimeout = idle
	up.Start()
	t.Cleanup(up.Close)
	return up, &hits
}

const fastRoutes = `
apis:
  - {name: f, base_path: /f, strip_base_path: true, upstream: up, security: {none: true}}
upstreams:
  - name: up
    endpoints: [{url: "{{UP}}"}]
`

func TestFastPathBodies(t *testing.T) {
	up, _ := fastUpstream(t, 0)
	_, gw := newTestGateway(t, strings.ReplaceAll(fastRoutes, "{{UP}}", up.URL))
	for _, path := range []string{"/f/big", "/f/chunked"} {
		resp, body := do(t, "GET", gw.URL+path, nil, nil)
		if resp.StatusCode != 200 || body != string(bigBody) {
			t.Fatalf("%s: status %d, %d bytes of %d", path, resp.StatusCode, len(body), len(bigBody))
		}
	}
	if resp, body := do(t, "GET", gw.URL+"/f/x?a=1", nil, nil); resp.StatusCode != 200 || body != "small:a=1" {
		t.Fatalf("small: %d %q", resp.StatusCode, body)
	}
	resp, body := do(t, "HEAD", gw.URL+"/f/big", nil, nil)
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	// Response headers beyond the fast path's read buffer.
	if resp, body := do(t, "GET", gw.URL+"/f/bighdr", nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("oversized response headers: %d %q", resp.StatusCode, body)
	}
}

// A client that stops reading a streamed body must not leave the rest of
// it on a pooled connection, where it would be read as the next response.
func TestFastPathAbandonedBody(t *testing.T) {
	up, _ := fastUpstream(t, 0)
	_, gw := newTestGateway(t, strings.ReplaceAll(fastRoutes, "{{UP}}", up.URL))
	for range 5 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/f/big", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		http.DefaultClient.CloseIdleConnections()
	}
	for i := range 20 {
		q := strconv.Itoa(i)
		if resp, body := do(t, "GET", gw.URL+"/f/x?"+q, nil, nil); resp.StatusCode != 200 || body != "small:"+q {
			t.Fatalf("request %d after abandoned bodies: %d %q", i, resp.StatusCode, body)
		}
	}
}

// Hop-by-hop headers (RFC 9110 section 7.6.1), those the Connection header
// names included, go no further in either direction; X-Forwarded-* are set.
func TestFastPathHeaders(t *testing.T) {
	up, _ := fastUpstream(t, 0)
	_, gw := newTestGateway(t, strings.ReplaceAll(fastRoutes, "{{UP}}", up.URL))
	resp, body := do(t, "GET", gw.URL+"/f/hop", nil, map[string]string{"Connection": "X-Drop", "X-Drop": "1"})
	if resp.StatusCode != 200 || body != "hop" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	u, _ := url.Parse(up.URL)
	g, _ := url.Parse(gw.URL)
	switch {
	case h.Get("X-Seen-Drop") != "":
		t.Fatal("the upstream saw a header the client's Connection header named")
	case h.Get("X-Up-Drop") != "":
		t.Fatal("the client saw a header the upstream's Connection header named")
	case h.Get("X-Keep") != "1":
		t.Fatalf("an end-to-end header was lost: %v", h)
	case h.Get("X-Seen-Host") != u.Host:
		t.Fatalf("upstream Host %q, want %q", h.Get("X-Seen-Host"), u.Host)
	case h.Get("X-Seen-XFH") != g.Host || h.Get("X-Seen-XFP") != "http" || h.Get("X-Seen-XFF") != "127.0.0.1":
		t.Fatalf("X-Forwarded-*: %q %q %q", h.Get("X-Seen-XFH"), h.Get("X-Seen-XFP"), h.Get("X-Seen-XFF"))
	}
}

// A pooled connection the upstream closed is replaced, and the request is
// sent once.
func TestFastPathStaleConnection(t *testing.T) {
	// Idle upstream connections are closed quickly: the gateway's pooled
	// ones go stale between requests a few tens of ms apart.
	up, hits := fastUpstream(t, 30*time.Millisecond)
	_, gw := newTestGateway(t, strings.ReplaceAll(fastRoutes, "{{UP}}", up.URL))
	for i := range 4 {
		if resp, body := do(t, "GET", gw.URL+"/f/x", nil, nil); resp.StatusCode != 200 || body != "small:" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := hits.Load(); n != 4 {
		t.Fatalf("the upstream served %d requests, want 4", n)
	}
}

// Upgrade requests take the net/http Transport, which relays the switched
// protocol both ways.
func TestUpgradeFallback(t *testing.T) {
	up, _ := fastUpstream(t, 0)
	_, gw := newTestGateway(t, strings.ReplaceAll(fastRoutes, "{{UP}}", up.URL))
	g, _ := url.Parse(gw.URL)
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", g.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET /f/upgrade HTTP/1.1\r\nHost: "+g.Host+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // a 101 has no body: the connection is the protocol's now
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.WriteString(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo ping\n" {
		t.Fatalf("after the upgrade: %q %v", line, err)
	}
}

func TestFastEligible(t *testing.T) {
	held := []byte("x")
	withHeld := func(r *http.Request) *http.Request {
		r.Body = io.NopCloser(bytes.NewReader(held))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(held)), nil }
		return r
	}
	req := func(method string, body io.Reader, hdr ...string) *http.Request {
		r := httptest.NewRequestWithContext(context.Background(), method, "http://up/x", body)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"GET", req("GET", nil), true},
		{"HEAD", req("HEAD", nil), true},
		{"PUT with a held body", withHeld(req("PUT", nil)), true},
		{"PUT with a streamed body", req("PUT", strings.NewReader("x")), false},
		{"POST", req("POST", nil), false},
		{"PATCH", req("PATCH", nil), false},
		{"upgrade", req("GET", nil, "Upgrade", "websocket"), false},
		{"expect", req("GET", nil, "Expect", "100-continue"), false},
		{"te trailers", req("GET", nil, "Te", "trailers"), false},
	}
	for _, tt := range tests {
		if got := fastEligible(tt.r); got != tt.want {
			t.Errorf("%s: fastEligible %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A refused connection is a connect failure on the fast path too: retried
// on another endpoint for every method.
func TestFastPathConnectFailureRetried(t *testing.T) {
	up, _ := fastUpstream(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	_, gw := newTestGateway(t, `
apis:
  - {name: f, base_path: /f, strip_base_path: true, upstream: up, security: {none: true}}
upstreams:
  - name: up
    endpoints: [{url: "`+dead+`"}, {url: "`+up.URL+`"}]
    retries: {attempts: 2, on: [connect_failure], backoff_base: 1ms, backoff_max: 2ms}
`)
	for i := range 12 {
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		if resp, body := do(t, method, gw.URL+"/f/x", nil, nil); resp.StatusCode != 200 || body != "small:" {
			t.Fatalf("%s %d: %d %q", method, i, resp.StatusCode, body)
		}
	}
}

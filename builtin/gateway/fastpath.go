package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/valyala/fasthttp"
)

// The upstream leg of most proxied requests goes through fasthttp's
// HostClient (one per endpoint): it writes the request and reads the
// response in the calling goroutine, where net/http's Transport hands each
// exchange to two goroutines per connection. httputil.ReverseProxy still
// shapes the request and the response (hop-by-hop headers, X-Forwarded-*,
// header edits), so only the wire exchange changes; response bodies
// stream. The HostClient carries idempotent requests without a body or
// with one already held in memory (for a retry). The Transport carries the
// rest, whose semantics the HostClient cannot keep:
//   - requests that stream a body, and non-idempotent ones: the Transport
//     watches its idle connections and drops those the upstream closes, so
//     such a request seldom meets a dead connection, which the HostClient
//     finds only by writing on it (and it may not resend them);
//   - protocol upgrades, Expect: 100-continue (1xx responses are relayed),
//     TE: trailers and request trailers;
//   - every request of an upstream with a per_try timeout: the Transport
//     can bound the wait for the response headers alone, where a
//     HostClient deadline would also cut a streamed response body.

const (
	// fastBufferedBody is the largest response body read whole before
	// it is relayed; larger ones, and those of unknown length, stream.
	fastBufferedBody = 64 << 10
	// fastReadBuffer bounds an upstream's response headers, as the
	// gateway's listener bounds the clients' request headers.
	fastReadBuffer = 64 << 10
	// fastMaxConns is the HostClient's connection cap per endpoint: in
	// effect none, as with the Transport.
	fastMaxConns = 1 << 16
)

// errBodyAbandoned closes an upstream connection whose response body was
// not read to its end (its rest would otherwise precede the next
// response).
var errBodyAbandoned = errors.New("response body abandoned before its end")

// newHostClient builds the HostClient of one endpoint.
func newHostClient(ep *url.URL, tlsCfg *tls.Config, d *net.Dialer, cfg UpstreamConfig) *fasthttp.HostClient {
	addr := ep.Host
	if ep.Port() == "" {
		port := "80"
		if ep.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(ep.Hostname(), port)
	}
	return &fasthttp.HostClient{
		Addr:      addr,
		IsTLS:     ep.Scheme == "https",
		TLSConfig: tlsCfg,
		Dial:      func(a string) (net.Conn, error) { return d.Dial("tcp", a) },
		MaxConns:  fastMaxConns,
		// Wait for a connection rather than fail at the cap.
		MaxConnWaitTimeout:  cfg.Timeouts.Connect,
		MaxIdleConnDuration: cfg.Timeouts.Idle,
		// The upstream's retry loop decides retries; the HostClient
		// resends only what the Transport would too (staleConnRetry).
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                staleConnRetry,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		StreamResponseBody:        true,
		MaxResponseBodySize:       fastBufferedBody,
		ReadBufferSize:            fastReadBuffer,
	}
}

// staleConnRetry resends a request (the HostClient carries idempotent ones
// alone) once when the connection was closed before any byte of the
// response: a pooled connection the upstream had closed. net/http's
// Transport resends idempotent requests in that case too.
func staleConnRetry(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts >= 2 {
		return false, false
	}
	if !errors.Is(err, fasthttp.ErrConnectionClosed) && !errors.Is(err, io.EOF) {
		return false, false
	}
	m := req.Header.Method()
	return false, isIdempotent(string(m))
}

// fastEligible reports whether out can go through the HostClient.
func fastEligible(out *http.Request) bool {
	if !isIdempotent(out.Method) || (out.Body != nil && out.Body != http.NoBody && out.GetBody == nil) {
		return false
	}
	h := out.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(h["Te"]) == 0 && len(out.Trailer) == 0
}

// fastTry makes one attempt through ep's HostClient. The request's
// deadline (the upstream's request timeout) bounds the whole exchange,
// a streamed response body included.
func fastTry(out *http.Request, ep *endpoint) (*http.Response, error) {
	ctx := out.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethod(out.Method)
	req.SetRequestURI(out.URL.RequestURI())
	host := out.Host
	if host == "" {
		host = out.URL.Host
	}
	req.Header.SetHost(host)
	if ep.hc.IsTLS {
		req.URI().SetScheme("https")
	}
	for k, vs := range out.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			// Set from the request itself: the request line, the
			// framing of the body and the connection are the client's.
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if out.Body != nil && out.Body != http.NoBody {
		// A body held for retries (fastEligible): copied, not streamed,
		// so that the HostClient may resend it.
		if _, err := io.Copy(req.BodyWriter(), out.Body); err != nil {
			fasthttp.ReleaseRequest(req)
			return nil, fmt.Errorf("reading the held request body: %w", err)
		}
	}
	resp := fasthttp.AcquireResponse()
	var err error
	if dl, ok := ctx.Deadline(); ok {
		err = ep.hc.DoDeadline(req, resp, dl)
	} else {
		err = ep.hc.Do(req, resp)
	}
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, fastError(err)
	}
	code := resp.StatusCode()
	hr := &http.Response{
		Status:     strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode: code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        make(http.Header, resp.Header.Len()),
		ContentLength: -1,
		Request:       out,
	}
	// Relay the upstream's headers as sent: no default Content-Type.
	resp.Header.SetNoDefaultContentType(true)
	for k, v := range resp.Header.All() {
		key := headerKey(k)
		hr.Header[key] = append(hr.Header[key], string(v))
	}
	if n := resp.Header.ContentLength(); n >= 0 {
		hr.ContentLength = int64(n)
	}
	if s := resp.BodyStream(); s != nil {
		hr.Body = &fastBody{resp: resp, r: s}
	} else {
		// No body: HEAD, 1xx, 204 and 304.
		fasthttp.ReleaseResponse(resp)
		hr.Body = http.NoBody
	}
	return hr, nil
}

// commonKeys interns the names of frequent response headers.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Date", "Server", "Cache-Control", "Etag",
		"Last-Modified", "Vary", "Content-Encoding", "Set-Cookie", "Connection", "Location", "Expires"} {
		m[k] = k
	}
	return m
}()

func headerKey(k []byte) string {
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return string(k)
}

// fastError classifies a HostClient error as the retry loop and the
// proxy's error handler expect.
func fastError(err error) error {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return fmt.Errorf("upstream exchange: %w", errDeadline)
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return fmt.Errorf("upstream exchange: %w: %w", io.ErrUnexpectedEOF, err)
	}
	return err
}

// errDeadline is the request timeout reached on the fast path; it is a
// context.DeadlineExceeded for the error handler.
var errDeadline = deadlineError{}

type deadlineError struct{}

func (deadlineError) Error() string   { return "upstream request timed out" }
func (deadlineError) Timeout() bool   { return true }
func (deadlineError) Temporary() bool { return true }

// Is makes errors.Is(err, context.DeadlineExceeded) hold.
func (deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// fastBody is a response body read from the HostClient. Read to its end,
// it returns the connection to the pool; closed before, it closes the
// connection.
type fastBody struct {
	resp   *fasthttp.Response
	r      io.Reader
	eof    bool
	closed bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *fastBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	stream, streamed := b.r.(fasthttp.ReadCloserWithError)
	if b.eof || !streamed {
		fasthttp.ReleaseResponse(b.resp)
		return nil
	}
	// The response is not returned to its pool: releasing it would
	// close the stream a second time, and return the closed connection.
	_ = stream.CloseWithError(errBodyAbandoned)
	return nil
}

// fastIdleClose drops the idle connections of ep's HostClient.
func fastIdleClose(ep *endpoint) {
	if ep.hc != nil {
		ep.hc.CloseIdleConnections()
	}
}

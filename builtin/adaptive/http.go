package adaptive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dop251/goja"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// httpRequest is an httpGet or httpPost call.
type httpRequest struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
}

// httpDoer performs a call and reports it as a History entry. The engine's
// own one goes over the network; the try-it runner answers from the
// request's script.
type httpDoer func(ctx context.Context, req *httpRequest) Entry

// errPrivateAddress is returned when the SSRF guard refuses an address.
var errPrivateAddress = errors.New("the address is not public; private networks are not allowed")

// hostAllowed reports whether host matches the allow-list: an exact name,
// or "*.suffix" for names under suffix.
func hostAllowed(allow []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allow {
		a = strings.ToLower(a)
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(host, "."+rest) {
				return true
			}
		} else if host == a {
			return true
		}
	}
	return false
}

// newGuardedHTTP returns the engine's HTTP doer: allow-listed host names,
// addresses checked after DNS resolution at connect time (so a name that
// resolves to a private address, or is rebound to one, is refused), no
// proxy from the environment, redirects re-checked, bodies bounded.
func newGuardedHTTP(opt Options) httpDoer {
	tr := safehttp.Transport(opt.AllowPrivateNetworks, opt.HTTPTimeout)
	tr.MaxIdleConnsPerHost = 4
	client := &http.Client{
		Timeout:   opt.HTTPTimeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if !hostAllowed(opt.HTTPAllow, req.URL.Hostname()) {
				return fmt.Errorf("redirect to %s: the host is not in the allow-list", req.URL.Hostname())
			}
			return nil
		},
	}
	return func(ctx context.Context, hr *httpRequest) Entry {
		en := Entry{Kind: EntryHTTP, URL: hr.URL}
		ctx, cancel := context.WithTimeout(ctx, opt.HTTPTimeout)
		defer cancel()
		var body io.Reader
		if hr.Body != nil {
			body = bytes.NewReader(hr.Body)
		}
		req, err := http.NewRequestWithContext(ctx, hr.Method, hr.URL, body)
		if err != nil {
			en.Error = err.Error()
			return en
		}
		for k, v := range hr.Headers {
			req.Header.Set(k, v)
		}
		if hr.Body != nil && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			en.Error = fmt.Sprintf("%v (%v)", errPrivateAddress, err)
			return en
		}
		if err != nil {
			en.Error = err.Error()
			return en
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxHTTPBody+1))
		en.Status = resp.StatusCode
		switch {
		case err != nil:
			en.Error = "reading the response: " + err.Error()
		case len(b) > DefaultMaxHTTPBody:
			en.Error = fmt.Sprintf("the response is larger than %d bytes", DefaultMaxHTTPBody)
		default:
			en.Body = strings.ToValidUTF8(string(b), "\uFFFD")
			en.Success = resp.StatusCode >= 200 && resp.StatusCode < 300
		}
		return en
	}
}

// performHTTP makes the call a reached httpGet/httpPost asks for and
// appends its entry to the History and to Decision.Record.
func (r *run) performHTTP(a *action) {
	var en Entry
	if r.httpCalls >= r.e.opt.MaxHTTPCalls {
		en = Entry{Kind: EntryHTTP, URL: a.req.URL, Error: fmt.Sprintf("more than %d HTTP calls in one evaluation", r.e.opt.MaxHTTPCalls)}
	} else {
		r.httpCalls++
		en = r.do(r.ctx, a.req)
		en.Kind, en.URL = EntryHTTP, a.req.URL
	}
	r.hist = append(r.hist, en)
	r.dec.Record = append(r.dec.Record, en)
}

// httpData is the second argument of an HTTP callback: the parsed JSON
// body (or the text) on success; {status, error, body} on failure.
func (r *run) httpData(en *Entry) goja.Value {
	rt := r.v.rt
	if en.Success {
		var v any
		if err := json.Unmarshal([]byte(en.Body), &v); err == nil {
			return rt.ToValue(v)
		}
		return rt.ToValue(en.Body)
	}
	o := rt.NewObject()
	_ = o.Set("status", en.Status)
	_ = o.Set("error", en.Error)
	_ = o.Set("body", en.Body)
	return o
}

func (r *run) checkURL(fname, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		throw(r, "%s: %q is not an http(s) URL", fname, raw)
	}
	if !hostAllowed(r.e.opt.HTTPAllow, u.Hostname()) {
		throw(r, "%s: %s is not in the allow-list of domains", fname, u.Hostname())
	}
	return u.String()
}

func (r *run) headersArg(fname string, v goja.Value) map[string]string {
	h := r.stringMap(fname+" headers", v)
	for k, val := range h {
		if !validHeader(k, val) || slices.Contains([]string{"host", "content-length", "transfer-encoding", "connection"}, strings.ToLower(k)) {
			throw(r, "%s: header %q cannot be set", fname, k)
		}
	}
	return h
}

// httpGet(url[, headers], callbacks).
func fnHTTPGet(r *run, c goja.FunctionCall) goja.Value {
	req := &httpRequest{Method: http.MethodGet, URL: r.checkURL("httpGet", c.Argument(0).String())}
	cbs := c.Argument(1)
	if len(c.Arguments) >= 3 {
		req.Headers, cbs = r.headersArg("httpGet", c.Argument(1)), c.Argument(2)
	}
	a := &action{kind: EntryHTTP, req: req}
	a.onSuccess, a.onFail = callbacks(r, cbs)
	r.schedule(a)
	return goja.Undefined()
}

// httpPost(url, body[, headers], callbacks). An object body is sent as
// JSON, a string as is.
func fnHTTPPost(r *run, c goja.FunctionCall) goja.Value {
	req := &httpRequest{Method: http.MethodPost, URL: r.checkURL("httpPost", c.Argument(0).String())}
	if s, ok := c.Argument(1).Export().(string); ok {
		if len(s) > MaxValueBytes {
			throw(r, "httpPost body is larger than %d bytes", MaxValueBytes)
		}
		req.Body = []byte(s)
	} else {
		b, err := json.Marshal(r.exportJSON("httpPost body", c.Argument(1)))
		if err != nil {
			throw(r, "httpPost body: %v", err)
		}
		req.Body = b
	}
	cbs := c.Argument(2)
	if len(c.Arguments) >= 4 {
		req.Headers, cbs = r.headersArg("httpPost", c.Argument(2)), c.Argument(3)
	}
	a := &action{kind: EntryHTTP, req: req}
	a.onSuccess, a.onFail = callbacks(r, cbs)
	r.schedule(a)
	return goja.Undefined()
}

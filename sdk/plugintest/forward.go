//go:build !wasip1

package plugintest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// MaxForwardedBody caps the response body Forward returns, as the real
// host caps it.
const MaxForwardedBody = 1<<20 - 64<<10

// Forward returns an HTTP handler for HandleHTTP that makes the request for
// real with client (http.DefaultClient when nil), without following
// redirects: a test then talks to a real server, typically an
// httptest.Server whose address it grants with SetHTTPHosts.
func Forward(client *http.Client) func(abi.HTTPRequest) (abi.HTTPResponse, error) {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func(r abi.HTTPRequest) (abi.HTTPResponse, error) {
		timeout := 5 * time.Second
		if r.TimeoutMillis > 0 {
			timeout = time.Duration(r.TimeoutMillis) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		req, err := http.NewRequestWithContext(ctx, method, r.URL, bytes.NewReader(r.Body))
		if err != nil {
			return abi.HTTPResponse{}, plugin.ErrInvalidRequest.WithMessage(err.Error())
		}
		for k, vs := range r.Headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			return abi.HTTPResponse{}, plugin.ErrUnavailable.WithMessage(fmt.Sprintf("request failed: %v", err))
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxForwardedBody))
		if err != nil {
			return abi.HTTPResponse{}, plugin.ErrUnavailable.WithMessage(fmt.Sprintf("reading the response: %v", err))
		}
		return abi.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body}, nil
	}
}

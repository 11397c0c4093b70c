package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/latchid/latch/conformance/internal/live"
)

// browser is a cookie-keeping HTTP client that follows redirects by hand,
// so a test sees where the server sends it. Unlike the OIDC suite's
// browser it returns errors instead of failing the test, because the load
// goroutines run it while nodes die.
type browser struct {
	client *http.Client
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil) // cookiejar.New never fails without options
	return &browser{client: &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// page is a response the browser stopped at.
type page struct {
	status   int
	location string // the redirect target when status is 3xx
	body     string
	url      string
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.location) }

func (b *browser) do(req *http.Request) (page, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return page{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	loc := resp.Header.Get("Location")
	if loc != "" {
		if u, err := req.URL.Parse(loc); err == nil {
			loc = u.String()
		}
	}
	return page{status: resp.StatusCode, location: loc, body: string(body), url: req.URL.String()}, nil
}

// get follows redirects from u until a page that is not a redirect, or a
// redirect to a URL starting with stopAt (the client's redirect URI).
func (b *browser) get(u, stopAt string) (page, error) {
	for range 20 {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return page{}, err
		}
		p, err := b.do(req)
		if err != nil {
			return page{}, err
		}
		if p.status < 300 || p.status > 399 || p.location == "" {
			return p, nil
		}
		if stopAt != "" && strings.HasPrefix(p.location, stopAt) {
			return p, nil
		}
		u = p.location
	}
	return page{}, fmt.Errorf("too many redirects from %s", u)
}

// submit fills in the page's first form with values, posts it, and
// follows redirects as get does.
func (b *browser) submit(p page, values map[string]string, stopAt string) (page, error) {
	action, fields, err := live.ParseForm(p.body)
	if err != nil {
		return page{}, err
	}
	for k, v := range values {
		fields.Set(k, v)
	}
	base, err := url.Parse(p.url)
	if err != nil {
		return page{}, err
	}
	target, err := base.Parse(action)
	if err != nil {
		return page{}, err
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := b.do(req)
	if err != nil {
		return page{}, err
	}
	atClient := stopAt != "" && strings.HasPrefix(res.location, stopAt)
	if res.status >= 300 && res.status <= 399 && res.location != "" && !atClient {
		return b.get(res.location, stopAt)
	}
	return res, nil
}

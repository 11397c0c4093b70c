package oidc_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/latchid/latch/conformance/internal/live"
)

// browser is a cookie-keeping HTTP client that follows redirects by hand,
// so a test sees where the server sends it.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{
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

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "" {
		if u, err := req.URL.Parse(loc); err == nil {
			loc = u.String()
		}
	}
	return page{status: resp.StatusCode, location: loc, body: string(body), url: req.URL.String()}
}

// get follows redirects from u until a page that is not a redirect, or a
// redirect to a URL starting with stopAt (the client's redirect URI).
func (b *browser) get(u, stopAt string) page {
	b.t.Helper()
	for range 20 {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			b.t.Fatal(err)
		}
		p := b.do(req)
		if p.status < 300 || p.status > 399 || p.location == "" {
			return p
		}
		if stopAt != "" && strings.HasPrefix(p.location, stopAt) {
			return p
		}
		u = p.location
	}
	b.t.Fatalf("too many redirects from %s", u)
	return page{}
}

// submit fills in the page's first form whose submit button or fields
// match values, posts it, and follows redirects as get does.
func (b *browser) submit(p page, values map[string]string, stopAt string) page {
	b.t.Helper()
	action, fields := parseForm(b.t, p.body)
	for k, v := range values {
		fields.Set(k, v)
	}
	base, err := url.Parse(p.url)
	if err != nil {
		b.t.Fatal(err)
	}
	target, err := base.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := b.do(req)
	atClient := stopAt != "" && strings.HasPrefix(res.location, stopAt)
	if res.status >= 300 && res.status <= 399 && res.location != "" && !atClient {
		return b.get(res.location, stopAt)
	}
	return res
}

// parseForm is live.ParseForm, failing the test when the page has no
// form.
func parseForm(t testing.TB, body string) (string, url.Values) {
	t.Helper()
	action, fields, err := live.ParseForm(body)
	if err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	return action, fields
}

// query returns the query of a redirect target, failing when it is not a
// redirect to prefix.
func (p page) query(t testing.TB, prefix string) url.Values {
	t.Helper()
	if !strings.HasPrefix(p.location, prefix) {
		t.Fatalf("want a redirect to %s, got %d %q\n%s", prefix, p.status, p.location, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.location) }

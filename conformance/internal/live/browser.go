package live

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Browser is a cookie-keeping HTTP client that follows redirects by hand,
// so a suite sees where the servers send it. It fails its test on
// transport errors. Client may be given another Transport (a client
// certificate, say) before use.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser returns a Browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Page is a response the browser stopped at.
type Page struct {
	Status   int
	Location string // the redirect target, made absolute, when Status is 3xx
	Body     string
	URL      string // the URL that answered
	Header   http.Header
}

func (p Page) String() string { return fmt.Sprintf("%d %s %s", p.Status, p.URL, p.Location) }

// Query returns the query of a redirect target, failing when p is not a
// redirect to prefix.
func (p Page) Query(t testing.TB, prefix string) url.Values {
	t.Helper()
	if !strings.HasPrefix(p.Location, prefix) {
		t.Fatalf("want a redirect to %s, got %d %q\n%s", prefix, p.Status, p.Location, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// Do sends req as it is and returns the answer, following nothing.
func (b *Browser) Do(req *http.Request) Page {
	b.t.Helper()
	resp, err := b.Client.Do(req)
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
	return Page{Status: resp.StatusCode, Location: loc, Body: string(body), URL: req.URL.String(), Header: resp.Header}
}

// Get follows redirects from u until a page that is not a redirect, or a
// redirect to a URL starting with stopAt (a client's redirect URI, say).
func (b *Browser) Get(u, stopAt string) Page {
	b.t.Helper()
	for range 30 {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			b.t.Fatal(err)
		}
		p := b.Do(req)
		if p.Status < 300 || p.Status > 399 || p.Location == "" {
			return p
		}
		if stopAt != "" && strings.HasPrefix(p.Location, stopAt) {
			return p
		}
		u = p.Location
	}
	b.t.Fatalf("too many redirects from %s", u)
	return Page{}
}

// Post posts form to target and follows redirects as Get does.
func (b *Browser) Post(target string, form url.Values, stopAt string) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := b.Do(req)
	if res.Status >= 300 && res.Status <= 399 && res.Location != "" && (stopAt == "" || !strings.HasPrefix(res.Location, stopAt)) {
		return b.Get(res.Location, stopAt)
	}
	return res
}

// Submit fills in the page's first form (see ParseForm) with values,
// posts it to the form's action, and follows redirects as Get does.
func (b *Browser) Submit(p Page, values map[string]string, stopAt string) Page {
	b.t.Helper()
	action, fields, err := ParseForm(p.Body)
	if err != nil {
		b.t.Fatalf("%v: %s\n%s", err, p, p.Body)
	}
	for k, v := range values {
		fields.Set(k, v)
	}
	base, err := url.Parse(p.URL)
	if err != nil {
		b.t.Fatal(err)
	}
	target, err := base.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.Post(target.String(), fields, stopAt)
}

// Eventually polls cond until it holds, failing the test with what when it
// does not within limit.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

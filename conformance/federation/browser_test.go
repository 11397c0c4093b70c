package federation_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/latchid/latch/conformance/internal/live"
)

// browser and page are the suites' shared live.Browser and live.Page.
type (
	browser = live.Browser
	page    = live.Page
)

func newBrowser(t testing.TB) *browser { return live.NewBrowser(t) }

// signIn fills in the upstream's password form.
func signIn(t testing.TB, b *browser, p page, username, password, stopAt string) page {
	t.Helper()
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("want a password form, got %s\n%s", p, p.Body)
	}
	return b.Submit(p, map[string]string{"username": username, "password": password}, stopAt)
}

// wantRefusal checks that p is an error page with status and the
// sentence, and not a server error.
func wantRefusal(t testing.TB, p page, status int, sentence string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("want status %d, got %s\n%s", status, p, p.Body)
	}
	if !strings.Contains(html.UnescapeString(p.Body), sentence) {
		t.Fatalf("want the sentence %q on the page, got:\n%s", sentence, p.Body)
	}
}

package oidc_test

import (
	"net/url"
	"testing"

	"github.com/latchid/latch/conformance/internal/live"
)

// browser and page are the suites' shared live.Browser and live.Page.
type (
	browser = live.Browser
	page    = live.Page
)

func newBrowser(t testing.TB) *browser { return live.NewBrowser(t) }

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

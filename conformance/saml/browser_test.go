package saml_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH; .ci/run installs the chromium package")
	}
	t.Skip("no chromium on PATH: install the chromium package (Debian) to run the browser tests")
	return ""
}

// newChrome starts a headless Chromium for the test.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestBrowserSSOAndSLO runs SP-initiated SSO and single logout in a real
// headless Chromium against a sample SP: the IdP's HTTP-POST binding forms
// submit themselves by script (under the IdP's Content-Security-Policy),
// and the SP's session follows the IdP's.
func TestBrowserSSOAndSLO(t *testing.T) {
	ctx := newChrome(t)
	i := setup(t)
	s := i.newSP(t, spOptions{name: "chrome"})

	err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/app"),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
	)
	if err != nil {
		t.Fatalf("signing in with Chromium: %v", err)
	}
	text := waitText(ctx, t, "hello ")
	if !strings.HasSuffix(text, "alice@example.com") {
		t.Fatalf("application page: %q", text)
	}

	// Single logout from the SP: the IdP ends the session and answers
	// the SP, whose page says so.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/logout")); err != nil {
		t.Fatalf("logging out: %v", err)
	}
	if text := waitText(ctx, t, "logged out"); text != "logged out after-logout" {
		t.Fatalf("logout page: %q", text)
	}
	// Signed out at the IdP too: the SP's next request meets the login form.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/app"), chromedp.WaitVisible(`#f-password`)); err != nil {
		t.Fatalf("after logout, the login form: %v", err)
	}
}

// waitText waits until the page's body text starts with prefix and
// returns it.
func waitText(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	var last string
	for range 100 {
		text, err := chromedp.Run(ctx, chromedp.Text(`body`))
		if err == nil {
			last = strings.TrimSpace(text)
			if strings.HasPrefix(last, prefix) {
				return last
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %q: %v (last page text %q)", prefix, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("the page never showed %q (last page text %q)", prefix, last)
	return ""
}

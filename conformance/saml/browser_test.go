package saml_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
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

// TestBrowserCrossProtocolLogout: in Chromium, one session signed in to
// two SAML SPs (one with an HTTP-Redirect logout endpoint only, one with
// HTTP-POST) and an OpenID Connect RP; the RP-initiated logout's
// signed-out page loads the RP's front-channel URI and the IdP's SAML
// notification iframes, under the page's Content-Security-Policy, and
// each SP receives a LogoutRequest it accepts.
func TestBrowserCrossProtocolLogout(t *testing.T) {
	ctx := newChrome(t)
	i := setup(t)
	c := i.newSP(t, spOptions{name: "bx-c", sloRedirect: true})
	d := i.newSP(t, spOptions{name: "bx-d"})
	r := i.newRP(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/app"),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	waitText(ctx, t, "hello ")
	if err := chromedp.Do(ctx, chromedp.Navigate(d.URL+"/app")); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, "hello ")
	if err := chromedp.Do(ctx, chromedp.Navigate(r.cfg.AuthCodeURL("bx-state-1234", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("nonce", "bx-nonce-1234")))); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, "rp callback bx-state-1234")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(i.URL+"/oauth2/logout?client_id=xp-rp"),
		chromedp.WaitVisible(`button[type=submit]`),
		chromedp.Click(`button[type=submit]`),
	); err != nil {
		t.Fatalf("logging out: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	fc := false
	for time.Now().Before(deadline) && (!fc || c.logoutRequests.Load() == 0 || d.logoutRequests.Load() == 0) {
		select {
		case <-r.fc:
			fc = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !fc || c.logoutRequests.Load() != 1 || d.logoutRequests.Load() != 1 {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
		t.Fatalf("front-channel %v, Redirect SP %d, POST SP %d LogoutRequests; page:\n%s", fc, c.logoutRequests.Load(), d.logoutRequests.Load(), body)
	}

	// The other way: an SP logs out by HTTP-POST; the page that answers
	// it loads the RP's front-channel URI first. (A new SP: the others'
	// own cookies could not be cleared from a third-party iframe.)
	e := i.newSP(t, spOptions{name: "bx-e"})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/app"),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
	); err != nil {
		t.Fatalf("signing in again: %v", err)
	}
	waitText(ctx, t, "hello ")
	if err := chromedp.Do(ctx, chromedp.Navigate(r.cfg.AuthCodeURL("bx-state-5678", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("nonce", "bx-nonce-5678")))); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, "rp callback bx-state-5678")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/logout")); err != nil {
		t.Fatal(err)
	}
	if text := waitText(ctx, t, "logged out"); text != "logged out after-logout" {
		t.Fatalf("logout page: %q", text)
	}
	select {
	case <-r.fc:
	case <-time.After(10 * time.Second):
		t.Fatal("the SAML logout did not load the RP's front-channel URI")
	}
}

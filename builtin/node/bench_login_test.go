package node

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// goPin is the Go twin of kernel/plugin's pin guest authenticator,
// compiled into the node through Options.Modules: the baseline of
// BenchmarkPinLogin.
type goPin struct {
	Pin string `json:"pin"`
}

func (p *goPin) Authenticate(_ context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	got := req.Params["pin"]
	switch {
	case len(got) == 0:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm,
			Fields: []abi.Field{{Name: "pin", Type: abi.FieldOTP}}}}, nil
	case p.Pin != "" && got[0] == p.Pin:
		return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "pin-user", AMR: []string{"otp"}}, nil
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}, nil
}

const pinRedirect = "http://127.0.0.1:9/pin/callback"

// pinNode serves a node whose only login step is authn.pin: the WASM pin
// guest when wasm is set, else the Go twin. It returns the node's URL.
func pinNode(b *testing.B, wasm string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := pluginConfig(b, b.TempDir())
	cfg.Listen, cfg.PublicURL = addr, "http://"+addr
	cfg.Extensions.Instances = []config.ExtensionInstance{{Module: "authn.pin", Config: map[string]any{"pin": "1234"}}}
	for _, m := range builtin.Modules() {
		cfg.Extensions.Instances = append(cfg.Extensions.Instances, config.ExtensionInstance{Module: string(m.ID)})
	}
	var opts Options
	if wasm != "" {
		cfg.Plugins = []config.PluginConfig{{ID: "testpin", Path: wasm, MinInstances: 2, MaxInstances: 4, MemoryLimitPages: 1024, CallTimeout: time.Second}}
	} else {
		opts.Modules = []extension.Module{{ID: "authn.pin", New: func() any { return new(goPin) }}}
	}
	opts.Stdout = io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		cancel()
		b.Fatalf("Open: %v", err)
	}
	st := n.Store()
	tenant, err := st.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, store.User{ID: "pin-user", TenantID: tenant.ID, Username: "pin-user", Enabled: true}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateClient(ctx, store.Client{ClientID: "pin-app", TenantID: tenant.ID, Name: "PIN App", Public: true, FirstParty: true,
		TokenEndpointAuthMethod: "none", RedirectURIs: []string{pinRedirect}, GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid"}, Enabled: true,
		Settings: map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []any{"authn.pin"}}}}}}); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	for range 100 {
		if resp, err := http.Get(cfg.PublicURL + "/healthz"); err == nil {
			_ = resp.Body.Close()
			return cfg.PublicURL
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("the node did not start serving")
	return ""
}

var (
	formAction  = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*>`)
	inputAttr   = regexp.MustCompile(`(name|value)="([^"]*)"`)
)

// pinLogin runs one authorization code request through the PIN form, as
// a new browser, and returns nil when it ends at the client with a code.
func pinLogin(base string, tr http.RoundTripper) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {"pin-app"}, "redirect_uri": {pinRedirect}, "scope": {"openid"},
		"state": {"state-pin-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	next, _ := http.NewRequest(http.MethodGet, base+"/oauth2/authorize?"+q.Encode(), nil)
	posted := false
	for range 10 {
		resp, err := c.Do(next)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != "" {
			if strings.HasPrefix(loc, pinRedirect) {
				u, err := url.Parse(loc)
				if err != nil || u.Query().Get("code") == "" || !posted {
					return fmt.Errorf("the login ended at %q", loc)
				}
				return nil
			}
			u, err := next.URL.Parse(loc)
			if err != nil {
				return err
			}
			next, _ = http.NewRequest(http.MethodGet, u.String(), nil)
			continue
		}
		page := string(body)
		m := formAction.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(page, `name="pin"`) || posted {
			return fmt.Errorf("want the PIN form, got %d: %.300s", resp.StatusCode, page)
		}
		fields := url.Values{"pin": {"1234"}}
		for _, in := range hiddenInput.FindAllString(page, -1) {
			var name, value string
			for _, a := range inputAttr.FindAllStringSubmatch(in, -1) {
				if a[1] == "name" {
					name = html.UnescapeString(a[2])
				} else {
					value = html.UnescapeString(a[2])
				}
			}
			fields.Set(name, value)
		}
		target, err := next.URL.Parse(html.UnescapeString(m[1]))
		if err != nil {
			return err
		}
		next, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
		next.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		posted = true
	}
	return fmt.Errorf("too many redirects")
}

// BenchmarkPinLogin is issue 3's benchmark (b), a standard-Go WASM
// authenticator end to end against the builtin one: complete logins
// against a serving node (authorization request, the PIN form, its post,
// the redirect to the client with a code), one node using the pin guest
// as a WASM plugin and one the same check compiled in. The difference
// between the two is what running the authenticator as a sandboxed
// module costs a login.
func BenchmarkPinLogin(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and compiles a WASM guest")
	}
	wasm := pinGuest(b, b.TempDir())
	for _, bc := range []struct{ name, wasm string }{{"builtin", ""}, {"wasm", wasm}} {
		b.Run(bc.name, func(b *testing.B) {
			base := pinNode(b, bc.wasm)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			for range 20 {
				if err := pinLogin(base, tr); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pinLogin(base, tr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}

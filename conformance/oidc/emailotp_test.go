package oidc_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"golang.org/x/oauth2"
)

// mailbox is a real SMTP server (go-smtp) catching the server's email.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return mailSession{m}, nil }

type mailSession struct{ m *mailbox }

func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, string(b))
	s.m.mu.Unlock()
	return err
}
func (s mailSession) Reset()        {}
func (s mailSession) Logout() error { return nil }

func (m *mailbox) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		return ""
	}
	return m.msgs[len(m.msgs)-1]
}

var mailedCode = regexp.MustCompile(`code for Latch is (\d{6})`)

// TestEmailOTP signs in with a password and a code emailed through a real
// SMTP server, configured in latch.yaml as an application's second step.
func TestEmailOTP(t *testing.T) {
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	yaml := `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - name: authn.email_otp
      module: authn.email_otp
      config: {smtp_addr: "` + ln.Addr().String() + `", from: "Latch <no-reply@example.com>", tls: none}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	o := setupWith(t, "LATCH_CONFIG="+cfg)
	const redirect = "http://127.0.0.1:9/mail/callback"
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "mail-app", "client_secret": webSecret, "first_party": true, "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "token_endpoint_auth_method": "client_secret_basic",
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"email-otp-authenticator"}},
		}}}, "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	c := &oauth2.Config{ClientID: "mail-app", ClientSecret: webSecret, RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	b := newBrowser(t)
	p := b.Get(c.AuthCodeURL("state-mail-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
	p = loginAt(t, b, p, alicePass, redirect)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "a***@example.com") {
		t.Fatalf("want the code page, got %s\n%s", p, p.Body)
	}
	m := mailedCode.FindStringSubmatch(box.last())
	if m == nil {
		t.Fatalf("no code in the email:\n%s", box.last())
	}
	wrong := b.Submit(p, map[string]string{"code": "000000"}, redirect)
	if !strings.Contains(wrong.Body, `role="alert"`) {
		t.Fatalf("wrong code: %s", wrong)
	}
	p = b.Submit(wrong, map[string]string{"code": m[1]}, redirect)
	if p.Query(t, redirect).Get("code") == "" {
		t.Fatalf("after the emailed code: %s", p)
	}
}

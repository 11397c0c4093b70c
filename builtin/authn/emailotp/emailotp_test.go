package emailotp

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// catcher is a real SMTP server (go-smtp) that keeps what it receives.
type catcher struct {
	mu   sync.Mutex
	msgs []string
	rcpt []string
}

func (c *catcher) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{c: c}, nil }

type session struct{ c *catcher }

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.c.mu.Lock()
	s.c.rcpt = append(s.c.rcpt, to)
	s.c.mu.Unlock()
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.c.mu.Lock()
	s.c.msgs = append(s.c.msgs, string(b))
	s.c.mu.Unlock()
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func (c *catcher) last(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) == 0 {
		t.Fatal("no email arrived")
	}
	return c.msgs[len(c.msgs)-1]
}

func (c *catcher) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func startCatcher(t *testing.T) (*catcher, string) {
	t.Helper()
	c := &catcher{}
	srv := smtp.NewServer(c)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c, ln.Addr().String()
}

var codeInMail = regexp.MustCompile(`code for Latch is (\d{6})`)

func setup(t *testing.T, addr string) (*Authenticator, store.Store, string) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "e.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(t.Context(), store.Tenant{Name: "mail", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "dora", Email: "dora@example.com", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	r := extension.NewRegistry()
	r.Register(Module())
	cfg := `{"smtp_addr": "` + addr + `", "from": "Latch <no-reply@example.com>", "tls": "none", "resend_seconds": 10}`
	set, err := r.Load(t.Context(), []extension.InstanceConfig{{Name: "mail", Module: ID, Config: []byte(cfg)}},
		extension.LoadOptions{Deps: map[string]any{DepStore: st}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get("mail")
	return inst.Value().(*Authenticator), st, u.ID
}

func call(t *testing.T, a *Authenticator, subject string, state []byte, params map[string][]string, lang string) abi.AuthenticateResponse {
	t.Helper()
	resp, err := a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "mail", FlowID: "flow-1", KnownSubject: subject,
		State: state, Params: params, Headers: map[string][]string{"accept-language": {lang}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestCodeByEmail(t *testing.T) {
	c, addr := startCatcher(t)
	a, _, user := setup(t, addr)
	now := time.Now()
	a.now = func() time.Time { return now }

	r := call(t, a, user, nil, nil, "en-GB,en;q=0.8")
	if r.Outcome != abi.OutcomeChallenge || !strings.Contains(r.Challenge.Message, "d***@example.com") {
		t.Fatalf("first request: %+v", r)
	}
	mail := c.last(t)
	m := codeInMail.FindStringSubmatch(mail)
	if m == nil || !strings.Contains(mail, "text/html") || !strings.Contains(mail, "text/plain") {
		t.Fatalf("email: %s", mail)
	}
	if strings.Contains(string(r.State), m[1]) {
		t.Fatal("the code is in the state in clear")
	}
	// A wrong code, then the right one.
	r = call(t, a, user, r.State, map[string][]string{"code": {"000000"}}, "en")
	if r.Outcome != abi.OutcomeChallenge || r.Challenge.Error == "" {
		t.Fatalf("wrong code: %+v", r)
	}
	ok := call(t, a, user, r.State, map[string][]string{"code": {m[1]}}, "en")
	if ok.Outcome != abi.OutcomeAuthenticated || ok.Subject != user {
		t.Fatalf("right code: %+v", ok)
	}
	// Expired: refused, and the next submission sends a new code.
	now = now.Add(301 * time.Second)
	r = call(t, a, user, r.State, map[string][]string{"code": {m[1]}}, "en")
	if r.Outcome != abi.OutcomeChallenge || !strings.Contains(r.Challenge.Error, "expired") {
		t.Fatalf("expired code: %+v", r)
	}
	before := c.count()
	r = call(t, a, user, r.State, nil, "de")
	if c.count() != before+1 || !strings.Contains(c.last(t), "Anmeldecode") {
		t.Fatalf("new code in German: %d mails\n%s", c.count(), c.last(t))
	}
	// Resending at once is refused.
	r = call(t, a, user, r.State, map[string][]string{"resend": {"1"}}, "en")
	if c.count() != before+1 || r.Challenge.Error == "" {
		t.Fatalf("immediate resend: %+v", r)
	}
}

func TestAttemptsBounded(t *testing.T) {
	_, addr := startCatcher(t)
	a, _, user := setup(t, addr)
	r := call(t, a, user, nil, nil, "en")
	for i := range a.MaxAttempts {
		r = call(t, a, user, r.State, map[string][]string{"code": {"999999"}}, "en")
		if i == a.MaxAttempts-1 && r.Outcome != abi.OutcomeNotAuthenticated {
			t.Fatalf("after %d wrong codes: %+v", a.MaxAttempts, r)
		}
	}
}

func TestMailServerDown(t *testing.T) {
	a, _, user := setup(t, "127.0.0.1:1")
	_, err := a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "mail", FlowID: "f", KnownSubject: user})
	if err == nil {
		t.Fatal("a code was sent through a closed port")
	}
	var ce *extension.ConfigError
	if errors.As(err, &ce) {
		t.Fatalf("unexpected config error: %v", err)
	}
}

func TestConfigRules(t *testing.T) {
	for _, cfg := range []string{
		`{"smtp_addr": "mail.example.com:587"}`,
		`{"smtp_addr": "mail.example.com:587", "from": "a@example.com", "tls": "none", "password_file": "/dev/null"}`,
	} {
		r := extension.NewRegistry()
		r.Register(Module())
		if _, err := r.Load(t.Context(), []extension.InstanceConfig{{Name: "m", Module: ID, Config: []byte(cfg)}},
			extension.LoadOptions{Deps: map[string]any{DepStore: struct{ Users }{}}}); err == nil {
			t.Errorf("%s accepted", cfg)
		}
	}
}

package selfservice

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

var cheap = password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})

func newService(t *testing.T, settings map[string]any) (*Service, store.Store, store.Tenant) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(t.Context(), store.Tenant{Name: "acme", Enabled: true, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := login.New(login.Deps{Store: st, Authenticators: noAuthenticators{}, PublicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{Store: st, Hasher: cheap, Login: lg, PublicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, tn
}

type noAuthenticators struct{}

func (noAuthenticators) Enabled(string, extension.Kind) []*extension.Instance { return nil }

func TestSetPasswordPolicyAndHistory(t *testing.T) {
	s, st, tn := newService(t, map[string]any{"password_policy": map[string]any{"min_length": 10, "require_digit": true, "history": 2}})
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "ann", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetPassword(t.Context(), tn.ID, u.ID, "short", false)
	var pe *password.PolicyError
	if fault.CodeOf(err) != fault.CodeInvalidRequest || !errors.As(err, &pe) || len(pe.Violations) != 2 {
		t.Fatalf("a weak password: %v", err)
	}
	for _, pw := range []string{"first-pass-1", "second-pass-2"} {
		if err := s.SetPassword(t.Context(), tn.ID, u.ID, pw, false); err != nil {
			t.Fatalf("setting %q: %v", pw, err)
		}
	}
	for _, pw := range []string{"first-pass-1", "second-pass-2"} {
		if err := s.SetPassword(t.Context(), tn.ID, u.ID, pw, false); !errors.As(err, &pe) || pe.Violations[0].Rule != "history" {
			t.Fatalf("reusing %q: %v", pw, err)
		}
	}
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "third-pass-3", false); err != nil {
		t.Fatal(err)
	}
	// history 2: the current and one before; the first is free again.
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "first-pass-1", false); err != nil {
		t.Fatalf("a password beyond the history: %v", err)
	}
	if h, err := s.history(t.Context(), tn.ID, u.ID); err != nil || len(h) != 1 {
		t.Fatalf("history kept %d hashes, want 1 (%v)", len(h), err)
	}
	got, _ := st.GetUser(t.Context(), tn.ID, u.ID)
	if b, _ := json.Marshal(got.Attributes); strings.Contains(string(b), "$argon2id") {
		t.Fatalf("a hash in the user's attributes: %s", b)
	}
}

func TestMustChangeAndIdle(t *testing.T) {
	s, st, tn := newService(t, map[string]any{
		"password_policy": map[string]any{"max_age_days": 30},
		"self_service":    map[string]any{"idle_lock_days": 10},
	})
	now := time.Now()
	s.now = func() time.Time { return now }
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "bo", Enabled: true, PasswordHash: "x",
		Attributes: map[string]any{AttrChangedAt: now.Add(-31 * 24 * time.Hour).Format(time.RFC3339), AttrLastLogin: now.Add(-time.Hour).Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	if why, err := s.MustChangePassword(t.Context(), tn.ID, u.ID); why != "expired" || err != nil {
		t.Fatalf("expired password: %q %v", why, err)
	}
	if locked, err := s.CheckIdle(t.Context(), tn.ID, u.ID); locked || err != nil {
		t.Fatalf("a recent login: %v %v", locked, err)
	}
	s.now = func() time.Time { return now.Add(11 * 24 * time.Hour) }
	if locked, err := s.CheckIdle(t.Context(), tn.ID, u.ID); !locked || err != nil {
		t.Fatalf("an idle account: %v %v", locked, err)
	}
	got, _ := st.GetUser(t.Context(), tn.ID, u.ID)
	if !got.LockedUntil.After(now.Add(365 * 24 * time.Hour)) {
		t.Fatalf("the idle account is not locked: %v", got.LockedUntil)
	}
	if why, _ := s.MustChangePassword(t.Context(), tn.ID, "no-such-user"); why != "" {
		t.Fatal("an unknown user must change a password")
	}
}

func TestNormaliseAndPick(t *testing.T) {
	if a, b := normaliseAnswer("  Mr. Dodgson! "), normaliseAnswer("mr dodgson"); a != b {
		t.Errorf("%q != %q", a, b)
	}
	p1, p2 := pick([]int{0, 1, 2, 3, 4}, 2, "Alice"), pick([]int{0, 1, 2, 3, 4}, 2, "alice")
	if len(p1) != 2 || p1[0] != p2[0] || p1[1] != p2[1] || p1[0] == p1[1] {
		t.Errorf("pick is not stable or repeats: %v %v", p1, p2)
	}
}

func TestSiteVerify(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("secret") == "s3" && r.PostForm.Get("response") == "good" {
			_, _ = w.Write([]byte(`{"success":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
	}))
	defer srv.Close()
	v, err := NewSiteVerify(srv.URL, "s3", true)
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]bool{"good": true, "bad": false, "": false} {
		if ok, err := v.Verify(t.Context(), tok, "203.0.113.9"); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v", tok, ok, err)
		}
	}
	// Without insecure, loopback is refused after resolution, and http
	// URLs are refused up front.
	if _, err := NewSiteVerify(srv.URL, "s3", false); err == nil {
		t.Error("an http verify URL was accepted")
	}
	guarded := &SiteVerify{URL: srv.URL, Secret: "s3", client: guardedClient(false, time.Second)}
	if _, err := guarded.Verify(t.Context(), "good", ""); err == nil || !strings.Contains(err.Error(), "not public") {
		t.Errorf("a loopback verify server was reached: %v", err)
	}
}

// TestMessagesComplete: every key has an English text and a German one.
func TestMessagesComplete(t *testing.T) {
	for k := range messages["en"] {
		if messages["de"][k] == "" {
			t.Errorf("no German text for %s", k)
		}
	}
	for _, k := range []string{"captcha.failed", "recover.wrong", "signup.sent", "token.invalid"} {
		if messages["en"][k] == "" {
			t.Errorf("no text for %s", k)
		}
	}
}

func TestValidUsername(t *testing.T) {
	for u, want := range map[string]bool{"dora": true, "dora.m@example.com": true, "": false, "a b": false, "LDAP/alice": false, "x\x00": false, strings.Repeat("a", 129): false, "\xff": false} {
		if got := validUsername(u); got != want {
			t.Errorf("validUsername(%q) = %v", u, got)
		}
	}
}

// FuzzNormaliseAnswer: normalising is idempotent and never lets case or
// surrounding punctuation change an answer.
func FuzzNormaliseAnswer(f *testing.F) {
	for _, s := range []string{"", "Mr. Dodgson", "  ÄRGER!! ", "\xff\x00a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		n := normaliseAnswer(a)
		if normaliseAnswer(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", a, n, normaliseAnswer(n))
		}
		if normaliseAnswer(" ."+a+"! ") != n {
			t.Fatalf("surrounding punctuation changed %q", a)
		}
	})
}

package totp

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// newAuthenticator provisions an instance over a real SQLite store.
func newAuthenticator(t *testing.T) (*Authenticator, *time.Time) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := extension.NewRegistry()
	r.Register(Module())
	set, err := r.Load(t.Context(), []extension.InstanceConfig{{Name: "authn.totp", Module: ID}},
		extension.LoadOptions{Deps: map[string]any{DepStore: st, DepBox: box}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get("authn.totp")
	a := inst.Value().(*Authenticator)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	return a, &now
}

var _ store.PluginKV = (*sqlite.Store)(nil)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := otptotp.GenerateCodeCustom(secret, at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, a *Authenticator, subject string, state []byte, params map[string][]string) abi.AuthenticateResponse {
	t.Helper()
	resp, err := a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "t1", FlowID: "f", Step: 2, KnownSubject: subject, State: state, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestEnrolThenLogin(t *testing.T) {
	a, now := newAuthenticator(t)
	// Enrolment: a QR code, a key and recovery codes.
	r := run(t, a, "alice", nil, nil)
	if r.Outcome != abi.OutcomeChallenge || r.Challenge == nil || len(r.State) == 0 {
		t.Fatalf("enrolment: %+v", r)
	}
	var data map[string]string
	if err := json.Unmarshal(r.Challenge.Data, &data); err != nil || !strings.HasPrefix(data["image"], "data:image/png;base64,") || data["secret"] == "" {
		t.Fatalf("enrolment data: %v %v", data, err)
	}
	if strings.Contains(string(r.State), data["secret"]) {
		t.Fatal("the pending secret is in the state in clear")
	}
	recovery := strings.Fields(r.Challenge.Message[strings.LastIndex(r.Challenge.Message, ":")+1:])
	if len(recovery) != 10 {
		t.Fatalf("recovery codes: %q", r.Challenge.Message)
	}
	sec := data["secret"]
	// A wrong code keeps the enrolment going.
	r = run(t, a, "alice", r.State, map[string][]string{"code": {"000000"}})
	if r.Outcome != abi.OutcomeChallenge || r.Challenge.Error == "" {
		t.Fatalf("wrong enrolment code: %+v", r)
	}
	r = run(t, a, "alice", r.State, map[string][]string{"code": {code(t, sec, *now)}})
	if r.Outcome != abi.OutcomeAuthenticated || r.Subject != "alice" {
		t.Fatalf("confirming enrolment: %+v", r)
	}

	// Enrolled: the same code again is a replay.
	r = run(t, a, "alice", nil, nil)
	if r.Outcome != abi.OutcomeChallenge || len(r.Challenge.Data) != 0 {
		t.Fatalf("enrolled challenge: %+v", r)
	}
	r = run(t, a, "alice", r.State, map[string][]string{"code": {code(t, sec, *now)}})
	if r.Outcome != abi.OutcomeChallenge {
		t.Fatalf("replayed code accepted: %+v", r)
	}
	*now = now.Add(30 * time.Second)
	r = run(t, a, "alice", r.State, map[string][]string{"code": {code(t, sec, *now)}})
	if r.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("next code: %+v", r)
	}
	// A recovery code works once.
	r = run(t, a, "alice", nil, map[string][]string{"code": {recovery[0]}})
	if r.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("recovery code: %+v", r)
	}
	r = run(t, a, "alice", nil, map[string][]string{"code": {recovery[0]}})
	if r.Outcome != abi.OutcomeChallenge {
		t.Fatalf("recovery code reused: %+v", r)
	}
	// Another user's state is not carried over; bob must enrol.
	r = run(t, a, "bob", r.State, map[string][]string{"code": {code(t, sec, *now)}})
	if r.Outcome != abi.OutcomeChallenge || len(r.Challenge.Data) == 0 {
		t.Fatalf("bob with alice's state: %+v", r)
	}
}

func TestAttemptsAreBounded(t *testing.T) {
	a, now := newAuthenticator(t)
	r := run(t, a, "carol", nil, nil)
	var data map[string]string
	_ = json.Unmarshal(r.Challenge.Data, &data)
	r = run(t, a, "carol", r.State, map[string][]string{"code": {code(t, data["secret"], *now)}})
	if r.Outcome != abi.OutcomeAuthenticated {
		t.Fatal(r)
	}
	var state []byte
	for i := range a.MaxAttempts {
		r = run(t, a, "carol", state, map[string][]string{"code": {"123456"}})
		if i < a.MaxAttempts-1 && r.Outcome != abi.OutcomeChallenge {
			t.Fatalf("attempt %d: %+v", i, r)
		}
		state = r.State
	}
	if r.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("after %d wrong codes: %+v", a.MaxAttempts, r)
	}
}

func TestNeedsAKnownSubject(t *testing.T) {
	a, _ := newAuthenticator(t)
	if _, err := a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "t1"}); err == nil {
		t.Fatal("a first-step TOTP request was accepted")
	}
	if !a.RequiresKnownSubject() {
		t.Fatal("TOTP must declare itself a second factor")
	}
}

// FuzzCode feeds arbitrary codes and states: never a panic, never a
// success without a valid code.
func FuzzCode(f *testing.F) {
	f.Add("123456", []byte(nil))
	f.Add("aaaaa-bbbbb", []byte{1, 2, 3})
	f.Add(strings.Repeat("9", 100), []byte("{}"))
	f.Fuzz(func(t *testing.T, c string, state []byte) {
		a, _ := newAuthenticator(t)
		resp, err := a.Authenticate(context.Background(), abi.AuthenticateRequest{Tenant: "t1", KnownSubject: "u", State: state, Params: map[string][]string{"code": {c}}})
		if err == nil && resp.Outcome == abi.OutcomeAuthenticated {
			t.Fatalf("code %q authenticated without enrolment", c)
		}
	})
}

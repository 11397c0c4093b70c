//go:build !wasip1

package plugintest_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/userstore"
)

// echo is an authenticator whose request parameters say what to do, so
// that each test drives one behaviour of the harness.
type echo struct{}

func (echo) Configure(config []byte) error {
	if bytes.Contains(config, []byte(`"bad"`)) {
		return plugin.ErrInvalidRequest.WithMessage("bad config")
	}
	return nil
}

func (echo) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	claims := map[string]any{"config": string(req.Config)}
	for _, msg := range req.Params["log"] {
		guest.Log(guest.LevelWarn, msg)
	}
	if len(req.Params["random"]) > 0 {
		b := make([]byte, 4)
		guest.Random(b)
		claims["random"] = hex.EncodeToString(b)
	}
	if len(req.Params["audit"]) > 0 {
		if err := host.Audit(abi.AuditEvent{Tenant: req.Tenant, Action: "x"}); err != nil {
			return abi.AuthenticateResponse{}, err
		}
	}
	if len(req.Params["kv"]) > 0 {
		v, _, err := host.KVGet(req.Tenant, "k")
		if err != nil {
			return abi.AuthenticateResponse{}, err
		}
		claims["kv"] = string(v)
	}
	return authn.Authenticated("u-1", claims), nil
}

// noStore is a user store sharing the authenticator's name.
type noStore struct{}

func (noStore) GetUser(abi.GetUserRequest) (abi.User, error) { return abi.User{ID: "u-1"}, nil }
func (noStore) FindUsers(abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (noStore) AuthenticateUser(abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{
		Name:    "harness-test",
		Version: "0.0.1",
		// Neither random nor audit: the tests check that using them fails.
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityKV}, {Name: abi.CapabilityLog}, {Name: abi.CapabilityClock}},
	})
	authn.Register("echo", echo{})
	userstore.Register("echo", noStore{})
}

// recTB records the failures the harness reports instead of failing the
// test; Fatalf panics with errFatal, which catch recovers.
type recTB struct {
	testing.TB
	errors []string
	fatal  string
}

var errFatal = errors.New("fatal")

func (r *recTB) Helper() {}
func (r *recTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(errFatal)
}

// catch runs fn and returns the fatal message it stopped with, if any.
func (r *recTB) catch(fn func()) (fatal string) {
	defer func() {
		if p := recover(); p != nil && p != errFatal { //nolint:errorlint // comparing the recovered sentinel itself
			panic(p)
		}
		fatal = r.fatal
	}()
	fn()
	return ""
}

func TestDescribe(t *testing.T) {
	d := plugintest.New(t).Describe()
	if d.ABIVersion != abi.Version || d.Name != "harness-test" || d.Version != "0.0.1" || len(d.Extensions) != 2 ||
		d.Extensions[0] != (abi.ExtensionEntry{Kind: abi.KindAuthenticator, Name: "echo"}) ||
		d.Extensions[1] != (abi.ExtensionEntry{Kind: abi.KindUserStore, Name: "echo"}) || len(d.Capabilities) != 3 {
		t.Errorf("description %+v", d)
	}
}

func TestConfigure(t *testing.T) {
	h := plugintest.New(t)
	if err := h.Configure("authn.echo", []byte(`{"bad":true}`)); !errors.Is(err, plugin.ErrInvalidRequest) {
		t.Errorf("a refused configuration: %v", err)
	}
	if err := h.Configure("authn.echo", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := h.Authenticate("echo", abi.AuthenticateRequest{})
	if err != nil || resp.Claims["config"] != `{"a":1}` {
		t.Errorf("a request without Config did not carry the configured one: %+v, %v", resp, err)
	}
	resp, _ = h.Authenticate("echo", abi.AuthenticateRequest{Config: []byte(`{"own":1}`)})
	if resp.Claims["config"] != `{"own":1}` {
		t.Errorf("a request's own Config was replaced: %v", resp.Claims)
	}
	if err := h.Health("userstore.echo"); err != nil {
		t.Error(err)
	}
	if err := h.Close("authn.echo"); err != nil {
		t.Error(err)
	}
	// Another harness has its own configurations.
	resp, _ = plugintest.New(t).Authenticate("echo", abi.AuthenticateRequest{})
	if resp.Claims["config"] != "" {
		t.Errorf("a new harness carried another's configuration: %v", resp.Claims)
	}
}

func TestEntryNames(t *testing.T) {
	tests := []struct {
		name      string
		call      func(h *plugintest.Harness)
		wantFatal string
	}{
		{"kind resolves a shared name", func(h *plugintest.Harness) { _, _ = h.GetUser("echo", abi.GetUserRequest{}) }, ""},
		{"id", func(h *plugintest.Harness) { _ = h.Health("userstore.echo") }, ""},
		{"ambiguous name", func(h *plugintest.Harness) { _ = h.Health("echo") }, `extension name "echo" is ambiguous: use its id (one of authn.echo, userstore.echo)`},
		{"unknown name", func(h *plugintest.Harness) { _, _ = h.Token("echo", abi.TokenRequest{}) }, `no grant "echo" registered (the module has: authn.echo, userstore.echo)`},
		{"entry index", func(h *plugintest.Harness) {
			if h.Entry("userstore.echo") != 1 {
				panic("wrong index")
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recTB{TB: t}
			fatal := rec.catch(func() { tt.call(plugintest.New(rec)) })
			if !strings.Contains(fatal, tt.wantFatal) || (tt.wantFatal == "") != (fatal == "") {
				t.Errorf("fatal %q, want %q", fatal, tt.wantFatal)
			}
		})
	}
	t.Run("without a test, misuse panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "no grant") {
				t.Errorf("recovered %v", r)
			}
		}()
		_, _ = plugintest.New(nil).Token("echo", abi.TokenRequest{})
	})
}

func TestLogs(t *testing.T) {
	h := plugintest.New(t)
	long := strings.Repeat("x", plugintest.MaxLogBytes+10)
	if _, err := h.Authenticate("echo", abi.AuthenticateRequest{Params: map[string][]string{"log": {"one", long}}}); err != nil {
		t.Fatal(err)
	}
	logs := h.Logs()
	if len(logs) != 2 || logs[0] != (plugintest.Log{Level: guest.LevelWarn, Message: "one"}) || len(logs[1].Message) != plugintest.MaxLogBytes {
		t.Errorf("logs %+v", logs)
	}
}

func TestUndeclaredCapabilities(t *testing.T) {
	rec := &recTB{TB: t}
	h := plugintest.New(rec)
	h.SetRandom(bytes.NewReader([]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	for range 2 {
		resp, err := h.Authenticate("echo", abi.AuthenticateRequest{Params: map[string][]string{"random": {"1"}}})
		if s, _ := resp.Claims["random"].(string); err != nil || len(s) != 8 {
			t.Errorf("random: %+v, %v", resp, err)
		}
	}
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], `guest.Random without declaring the "random" capability`) {
		t.Errorf("reported %q, want one report of the random capability", rec.errors)
	}

	resp, err := h.Authenticate("echo", abi.AuthenticateRequest{Params: map[string][]string{"audit": {"1"}}})
	if !errors.Is(err, plugin.ErrForbidden) || resp.Outcome != abi.OutcomeFailure || resp.Error.Message != "capability audit not granted" {
		t.Errorf("audit without the capability: %+v, %v", resp, err)
	}
	if len(h.Audits()) != 0 {
		t.Error("a forbidden audit event was recorded")
	}
}

func TestClockAndRandom(t *testing.T) {
	rec := &recTB{TB: t}
	h := plugintest.New(rec)
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	h.SetNow(at)
	h.SetRandom(bytes.NewReader([]byte{9, 8, 7}))
	h.Do(func() {
		if got := guest.Now(); !got.Equal(at) {
			t.Errorf("Now = %v", got)
		}
		b := make([]byte, 3)
		guest.Random(b)
		if !bytes.Equal(b, []byte{9, 8, 7}) {
			t.Errorf("Random = %v", b)
		}
	})
	h.SetNow(time.Time{})
	h.Do(func() {
		if d := time.Since(guest.Now()); d < 0 || d > time.Minute {
			t.Errorf("the real clock is %v away", d)
		}
	})
	// Outside a harness call nothing stands in for the host.
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, guest.ErrNotInGuest) {
			t.Errorf("guest.Now outside the harness: %v", err)
		}
	}()
	guest.Now()
}

func TestRawCalls(t *testing.T) {
	h := plugintest.New(t)
	tests := []struct {
		name     string
		call     []byte
		wantCode string
	}{
		{"garbage", []byte{0xff, 0xff}, abi.CodeInvalidRequest},
		{"unknown op", []byte{0x08, 0x7f}, abi.CodeUnsupported},
		{"unknown entry", []byte{0x08, 0x02, 0x18, 0x05}, abi.CodeNotFound},
		{"health", []byte{0x08, 0x02}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r abi.Reply
			if err := r.UnmarshalWire(h.Call(tt.call)); err != nil {
				t.Fatal(err)
			}
			if got := codeOf(r.Error); got != tt.wantCode {
				t.Errorf("reply %+v, want code %q", r, tt.wantCode)
			}
		})
	}
}

func codeOf(e *abi.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// TestParallelHarnesses checks that each harness's calls reach its own
// fake host while tests run in parallel (run with -race).
func TestParallelHarnesses(t *testing.T) {
	for i := range 8 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			h := plugintest.New(t)
			want := "value-" + strconv.Itoa(i)
			h.SetKV("acme", "k", []byte(want))
			for range 20 {
				resp, err := h.Authenticate("echo", abi.AuthenticateRequest{Tenant: "acme", Params: map[string][]string{"kv": {"1"}}})
				if err != nil || resp.Claims["kv"] != want {
					t.Fatalf("got %v, %v; want %s", resp.Claims["kv"], err, want)
				}
			}
		})
	}
}

package webauthn

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

const (
	testRP     = "id.example.com"
	testOrigin = "https://id.example.com"
)

type fixture struct {
	st    *sqlite.Store
	alice string
	tid   string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(t.Context(), store.Tenant{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "alice", DisplayName: "Alice", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, alice: u.ID, tid: tn.ID}
}

func (f *fixture) load(t testing.TB, config string) (*Authenticator, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{{Name: "authn.webauthn", Module: ID, Config: json.RawMessage(config)}},
		extension.LoadOptions{Deps: map[string]any{DepStore: f.st, DepPublicURL: testOrigin}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get("authn.webauthn")
	return inst.Value().(*Authenticator), nil
}

func (f *fixture) instance(t testing.TB, config string) *Authenticator {
	t.Helper()
	a, err := f.load(t, config)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// step runs one request of a step: with the state of the previous
// response and, when set, a credential.
func step(t testing.TB, a *Authenticator, subject string, prev abi.AuthenticateResponse, credential string) abi.AuthenticateResponse {
	t.Helper()
	req := abi.AuthenticateRequest{Tenant: "acme", Step: 1, KnownSubject: subject, State: prev.State, Params: map[string][]string{}}
	if credential != "" {
		req.Params[ParamCredential] = []string{credential}
	}
	resp, err := a.Authenticate(context.Background(), req)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return resp
}

// enrol registers key for alice through the step.
func (f *fixture) enrol(t testing.TB, a *Authenticator, key *softKey) {
	t.Helper()
	ch := step(t, a, f.alice, abi.AuthenticateResponse{}, "")
	if ch.Outcome != abi.OutcomeChallenge || ch.Challenge.Kind != abi.ChallengeWebAuthn {
		t.Fatalf("first request: %+v", ch)
	}
	c := readCeremony(t, ch.Challenge.Data)
	if c.Mode != ModeCreate {
		t.Fatalf("a user without credentials got mode %q", c.Mode)
	}
	done := step(t, a, f.alice, ch, key.create(t, c))
	if done.Outcome != abi.OutcomeAuthenticated || done.Subject != f.alice || !slices.Equal(done.AMR, []string{AMR, AMRMFA}) {
		t.Fatalf("registration: %+v", done)
	}
}

func TestRegistrationAndLogins(t *testing.T) {
	f := newFixture(t)
	a := f.instance(t, `{"user_verification": "required", "resident_key": "required"}`)
	key := newSoftKey(t, testRP, testOrigin)
	f.enrol(t, a, key)

	cs, err := f.st.ListWebAuthnCredentials(t.Context(), f.tid, f.alice)
	if err != nil || len(cs) != 1 {
		t.Fatalf("stored credentials: %v %v", cs, err)
	}
	c := cs[0]
	if c.ID != b64.EncodeToString(key.id) || !c.Discoverable || !c.UserVerified || !slices.Equal(c.Transports, []string{"internal"}) ||
		c.Attachment != "platform" || c.AttestationFormat != "none" || !strings.HasPrefix(c.Nickname, "Passkey ") || c.Authenticator != "authn.webauthn" {
		t.Errorf("stored credential: %+v", c)
	}
	if ok, err := a.Enrolled(t.Context(), "acme", f.alice); !ok || err != nil {
		t.Errorf("Enrolled = %v, %v", ok, err)
	}

	t.Run("second factor", func(t *testing.T) {
		ch := step(t, a, f.alice, abi.AuthenticateResponse{}, "")
		cer := readCeremony(t, ch.Challenge.Data)
		if cer.Mode != ModeGet || len(cer.Options.PublicKey.AllowCredentials) != 1 || cer.Options.PublicKey.AllowCredentials[0].ID != c.ID {
			t.Fatalf("assertion options: %s", ch.Challenge.Data)
		}
		done := step(t, a, f.alice, ch, key.get(t, cer))
		if done.Outcome != abi.OutcomeAuthenticated || done.Subject != f.alice {
			t.Fatalf("second factor: %+v", done)
		}
	})

	t.Run("passwordless", func(t *testing.T) {
		ch := step(t, a, "", abi.AuthenticateResponse{}, "")
		cer := readCeremony(t, ch.Challenge.Data)
		if cer.Mode != ModeGet || len(cer.Options.PublicKey.AllowCredentials) != 0 || cer.Options.PublicKey.UserVerification != string(protocol.VerificationRequired) {
			t.Fatalf("discoverable options: %s", ch.Challenge.Data)
		}
		done := step(t, a, "", ch, key.get(t, cer))
		if done.Outcome != abi.OutcomeAuthenticated || done.Subject != f.alice || !slices.Contains(done.AMR, AMRMFA) {
			t.Fatalf("passwordless: %+v", done)
		}
		got, _ := f.st.GetWebAuthnCredential(t.Context(), f.tid, c.ID)
		if got.SignCount != key.count || got.LastUsedAt.IsZero() {
			t.Errorf("after use: count %d (authenticator %d), last used %v", got.SignCount, key.count, got.LastUsedAt)
		}
	})

	t.Run("another origin is refused", func(t *testing.T) {
		evil := *key
		evil.origin = "https://evil.example"
		ch := step(t, a, "", abi.AuthenticateResponse{}, "")
		for i := range a.MaxAttempts {
			resp := step(t, a, "", ch, evil.get(t, readCeremony(t, ch.Challenge.Data)))
			if i < a.MaxAttempts-1 {
				if resp.Outcome != abi.OutcomeChallenge || resp.Challenge.Error == "" {
					t.Fatalf("attempt %d: %+v", i+1, resp)
				}
				ch = resp
				continue
			}
			if resp.Outcome != abi.OutcomeNotAuthenticated {
				t.Fatalf("after %d attempts: %+v", a.MaxAttempts, resp)
			}
		}
	})

	t.Run("a second factor must be the known user's", func(t *testing.T) {
		bob, err := f.st.CreateUser(t.Context(), store.User{TenantID: f.tid, Username: "bob", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		bobKey := newSoftKey(t, testRP, testOrigin)
		ch := step(t, a, bob.ID, abi.AuthenticateResponse{}, "")
		if done := step(t, a, bob.ID, ch, bobKey.create(t, readCeremony(t, ch.Challenge.Data))); done.Outcome != abi.OutcomeAuthenticated {
			t.Fatalf("bob's registration: %+v", done)
		}
		// Alice's key answering bob's second factor.
		ch = step(t, a, bob.ID, abi.AuthenticateResponse{}, "")
		if resp := step(t, a, bob.ID, ch, key.get(t, readCeremony(t, ch.Challenge.Data))); resp.Outcome == abi.OutcomeAuthenticated {
			t.Fatalf("alice's key signed bob in: %+v", resp)
		}
	})

	t.Run("a counter that goes back is refused and flagged", func(t *testing.T) {
		clone := *key
		clone.count = 0
		ch := step(t, a, "", abi.AuthenticateResponse{}, "")
		if resp := step(t, a, "", ch, clone.get(t, readCeremony(t, ch.Challenge.Data))); resp.Outcome != abi.OutcomeNotAuthenticated {
			t.Fatalf("cloned key: %+v", resp)
		}
		got, _ := f.st.GetWebAuthnCredential(t.Context(), f.tid, c.ID)
		if !got.CloneWarning {
			t.Error("no clone warning recorded")
		}
	})

	t.Run("administrators list and revoke", func(t *testing.T) {
		list, err := a.ListCredentials(t.Context(), "acme", f.alice)
		if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].Details["clone_warning"] != true {
			t.Fatalf("ListCredentials: %+v %v", list, err)
		}
		if err := a.DeleteCredential(t.Context(), "acme", "someone-else", c.ID); err == nil {
			t.Error("deleted a credential through another user")
		}
		if err := a.DeleteCredential(t.Context(), "acme", f.alice, c.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := a.Enrolled(t.Context(), "acme", f.alice); ok {
			t.Error("still enrolled after revocation")
		}
	})
}

func TestAllowedAAGUIDs(t *testing.T) {
	f := newFixture(t)
	a := f.instance(t, `{"allowed_aaguids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"], "max_attempts": 1}`)
	ch := step(t, a, f.alice, abi.AuthenticateResponse{}, "")
	resp := step(t, a, f.alice, ch, newSoftKey(t, testRP, testOrigin).create(t, readCeremony(t, ch.Challenge.Data)))
	if resp.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("a model outside the allow-list registered: %+v", resp)
	}
	if cs, _ := f.st.ListWebAuthnCredentials(t.Context(), f.tid, f.alice); len(cs) != 0 {
		t.Fatalf("stored %v", cs)
	}
}

func TestNoEnrolment(t *testing.T) {
	f := newFixture(t)
	a := f.instance(t, `{"enrol": false}`)
	if resp := step(t, a, f.alice, abi.AuthenticateResponse{}, ""); resp.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("a user without credentials and enrol off: %+v", resp)
	}
}

func TestMalformedInput(t *testing.T) {
	f := newFixture(t)
	a := f.instance(t, `{}`)
	ch := step(t, a, "", abi.AuthenticateResponse{}, "")
	for _, bad := range []string{"{}", "not json", `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`, strings.Repeat("x", maxCredential+1)} {
		resp := step(t, a, "", ch, bad)
		if resp.Outcome != abi.OutcomeChallenge || resp.Challenge.Error == "" {
			t.Errorf("credential %.40q: %+v", bad, resp)
		}
	}
	// A state from another user's step starts over.
	if resp := step(t, a, f.alice, ch, "{}"); resp.Outcome != abi.OutcomeChallenge || resp.Challenge.Error != "" {
		t.Errorf("foreign state: %+v", resp)
	}
}

func TestProvisionErrors(t *testing.T) {
	f := newFixture(t)
	for name, cfg := range map[string]string{
		"bad attestation": `{"attestation": "enterprise"}`,
		"bad aaguid":      `{"allowed_aaguids": ["not-a-uuid"]}`,
		"bad origin":      `{"origins": ["ftp://x"]}`,
		"unknown field":   `{"passkeys": true}`,
	} {
		if _, err := f.load(t, cfg); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	r := extension.NewRegistry()
	r.Register(Module())
	_, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: ID}},
		extension.LoadOptions{Deps: map[string]any{DepStore: f.st, DepPublicURL: "http://127.0.0.1:8080"}})
	if err == nil || !strings.Contains(err.Error(), "IP address") {
		t.Errorf("an IP public URL: %v", err)
	}
}

var jsonFence = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestREADMEExamples loads every JSON example of the README.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	examples := jsonFence.FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for _, ex := range examples {
		if _, err := f.load(t, string(ex[1])); err != nil {
			t.Errorf("README example %s: %v", ex[1], err)
		}
	}
}

// BenchmarkVerifyAssertion measures verifying one assertion (parsing the
// posted credential, checking client data, authenticator data and the
// ES256 signature), without the store.
func BenchmarkVerifyAssertion(b *testing.B) {
	f := newFixture(b)
	a := f.instance(b, `{}`)
	key := newSoftKey(b, testRP, testOrigin)
	f.enrol(b, a, key)
	u, _, err := a.loadUser(context.Background(), f.tid, f.alice)
	if err != nil {
		b.Fatal(err)
	}
	assertion, session, err := a.wa.BeginLogin(u)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(struct {
		Mode    string `json:"mode"`
		Options any    `json:"options"`
	}{ModeGet, assertion})
	cred := []byte(key.get(b, readCeremony(b, raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		parsed, err := protocol.ParseCredentialRequestResponseBytes(cred)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.wa.ValidateLogin(u, *session, parsed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordlessStep measures a whole passwordless step on SQLite:
// the challenge request and the answer (user and credential lookups, the
// verification, the counter update).
func BenchmarkPasswordlessStep(b *testing.B) {
	f := newFixture(b)
	a := f.instance(b, `{}`)
	key := newSoftKey(b, testRP, testOrigin)
	f.enrol(b, a, key)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ch := step(b, a, "", abi.AuthenticateResponse{}, "")
		if resp := step(b, a, "", ch, key.get(b, readCeremony(b, ch.Challenge.Data))); resp.Outcome != abi.OutcomeAuthenticated {
			b.Fatalf("%+v", resp)
		}
	}
}

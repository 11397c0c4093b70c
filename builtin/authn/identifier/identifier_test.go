package identifier

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/internal/lookuptest"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/store"
)

func TestAuthenticate(t *testing.T) {
	f := lookuptest.NewFixture(t)
	alice := f.AddUser(t, store.User{Username: "alice", Email: "alice@partner.example", Enabled: true})
	f.AddUser(t, store.User{Username: "dora", Enabled: false})
	v, err := f.Load(t, Module(), `{"domains": {"Partner.Example": "corp-oidc"}}`)
	if err != nil {
		t.Fatal(err)
	}
	a := v.(*Authenticator)
	if !a.IdentifiesOnly() {
		t.Fatal("identifier-first must only identify")
	}
	tests := []struct {
		name, typed     string
		outcome, reason string
		subject, prefer string
	}{
		{name: "asks", typed: "", outcome: abi.OutcomeChallenge},
		{name: "username", typed: " alice ", outcome: abi.OutcomeAuthenticated, subject: alice},
		{name: "email with a mapped domain", typed: "Alice@partner.example", outcome: abi.OutcomeAuthenticated, subject: alice, prefer: "corp-oidc"},
		{name: "unknown", typed: "nobody", outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "unknown email", typed: "nobody@partner.example", outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonInvalidCredentials},
		{name: "disabled", typed: "dora", outcome: abi.OutcomeNotAuthenticated, reason: abi.ReasonDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := authn.Check(a.Authenticate(context.Background(), abi.AuthenticateRequest{
				Tenant: "acme", Params: map[string][]string{Param: {tt.typed}},
			}))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.outcome || resp.Reason != tt.reason || resp.Subject != tt.subject || len(resp.AMR) != 0 {
				t.Fatalf("got %+v", resp)
			}
			if p, _ := resp.Claims[authn.Preference].(string); p != tt.prefer {
				t.Errorf("preference %q, want %q", p, tt.prefer)
			}
			if tt.outcome == abi.OutcomeAuthenticated && resp.Claims["username"] != "alice" {
				t.Errorf("claims %v", resp.Claims)
			}
		})
	}
}

var jsonFence = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestREADMEExamples loads every JSON example of the README, and refuses
// unknown fields.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	f := lookuptest.NewFixture(t)
	for _, ex := range jsonFence.FindAllSubmatch(b, -1) {
		if _, err := f.Load(t, Module(), string(ex[1])); err != nil {
			t.Errorf("README example %s: %v", ex[1], err)
		}
	}
	if _, err := f.Load(t, Module(), `{"domain": {}}`); err == nil {
		t.Error("an unknown field loaded")
	}
}

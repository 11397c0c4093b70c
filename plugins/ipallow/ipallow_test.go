package main

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

const exampleConfig = `{"allow":["10.0.0.0/8","2001:db8::/32"],"subject_from":"known"}`

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name        string
		ip, subject string
		wantOutcome string
		wantReason  string
	}{
		{name: "v4 in range", ip: "10.1.2.3", subject: "u-1", wantOutcome: abi.OutcomeAuthenticated},
		{name: "v6 in range", ip: "2001:db8::42", subject: "u-1", wantOutcome: abi.OutcomeAuthenticated},
		{name: "v4-mapped v6 in range", ip: "::ffff:10.9.9.9", subject: "u-1", wantOutcome: abi.OutcomeAuthenticated},
		{name: "v4 out of range", ip: "192.0.2.1", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNetworkNotAllowed},
		{name: "v6 out of range", ip: "2001:db9::1", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNetworkNotAllowed},
		{name: "no IP", ip: "", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNoClientIP},
		{name: "IP that does not parse", ip: "10.0.0.300", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNoClientIP},
		{name: "no known subject", ip: "10.1.2.3", subject: "", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNoKnownSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			if err := h.Configure("ipallow", []byte(exampleConfig)); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			resp, err := h.Authenticate("ipallow", abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Step: 2, IP: tt.ip, KnownSubject: tt.subject})
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if resp.Outcome != tt.wantOutcome || resp.Reason != tt.wantReason {
				t.Fatalf("outcome %q reason %q, want %q %q", resp.Outcome, resp.Reason, tt.wantOutcome, tt.wantReason)
			}
			if tt.wantOutcome == abi.OutcomeAuthenticated && resp.Subject != tt.subject {
				t.Errorf("subject %q, want the known subject %q", resp.Subject, tt.subject)
			}
		})
	}
}

func TestConfigureRefuses(t *testing.T) {
	tests := []struct {
		name, config, wantInMessage string
	}{
		{name: "unknown field", config: `{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}`, wantInMessage: `"deny"`},
		{name: "bad CIDR", config: `{"allow":["10.0.0.0/8","10.0.0.0/33"]}`, wantInMessage: "allow[1]"},
		{name: "address without prefix length", config: `{"allow":["10.0.0.1"]}`, wantInMessage: "allow[0]"},
		{name: "empty allow", config: `{"allow":[]}`, wantInMessage: "allow"},
		{name: "missing allow", config: `{}`, wantInMessage: "allow"},
		{name: "unsupported subject_from", config: `{"allow":["10.0.0.0/8"],"subject_from":"param"}`, wantInMessage: "subject_from"},
		{name: "wrong type", config: `{"allow":"10.0.0.0/8"}`, wantInMessage: "allow"},
		{name: "not JSON", config: `allow`, wantInMessage: "configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			err := h.Configure("ipallow", []byte(tt.config))
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != abi.CodeInvalidRequest {
				t.Fatalf("Configure(%s) = %v, want invalid_request", tt.config, err)
			}
			if !strings.Contains(pe.Message, tt.wantInMessage) {
				t.Errorf("message %q does not name %s", pe.Message, tt.wantInMessage)
			}
		})
	}
}

func TestRequestConfigWins(t *testing.T) {
	// Any warm instance may serve a request: the request's configuration
	// is the one that counts, not the instance's last Configure.
	h := plugintest.New(t)
	if err := h.Configure("ipallow", []byte(exampleConfig)); err != nil {
		t.Fatal(err)
	}
	resp, err := h.Authenticate("ipallow", abi.AuthenticateRequest{IP: "10.1.2.3", KnownSubject: "u-1", Config: []byte(`{"allow":["192.0.2.0/24"]}`)})
	if err != nil || resp.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("got %+v, %v; want not_authenticated under the request's configuration", resp, err)
	}
}

func TestDescribe(t *testing.T) {
	d := plugintest.New(t).Describe()
	if d.Name != "ipallow" || len(d.Extensions) != 1 || d.Extensions[0].Kind != abi.KindAuthenticator || d.Extensions[0].Name != "ipallow" {
		t.Errorf("description %+v", d)
	}
	if len(d.Capabilities) != 0 {
		t.Errorf("capabilities %v, want none", d.Capabilities)
	}
}

// TestReadmeExamples loads every JSON configuration example of README.md
// through Configure, so that the README cannot drift from the code
// (STYLE.md rule 25).
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```json example")
	}
	for _, m := range blocks {
		h := plugintest.New(t)
		if err := h.Configure("ipallow", m[1]); err != nil {
			t.Errorf("README example %s: %v", m[1], err)
		}
	}
	// The --config examples of `latch plugin test` and the latch.yaml
	// instance's config too.
	for _, m := range regexp.MustCompile(`(?:authn\.ipallow=|config: )(\{[^'\n]*\})`).FindAllSubmatch(b, -1) {
		if err := plugintest.New(t).Configure("ipallow", m[1]); err != nil {
			t.Errorf("README example %s: %v", m[1], err)
		}
	}
}

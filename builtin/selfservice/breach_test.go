package selfservice

import (
	"context"
	"errors"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// rangeCheck answers like the breachedpw plugin: password_breached for a
// password in its list, authenticated otherwise, and an error for a
// password that makes its range service fail.
type rangeCheck struct{}

func (rangeCheck) Authenticate(_ context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	switch req.Params["password"][0] {
	case "Password123!":
		return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: "password_breached"}, nil
	case "service-down-1":
		return abi.AuthenticateResponse{}, fault.Unavailable.WithMessage("range service down")
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: req.KnownSubject}, nil
}

func TestBreachCheck(t *testing.T) {
	r := extension.NewRegistry()
	r.Register(extension.Module{ID: "authn.rangecheck", Kind: extension.KindAuthenticator, New: func() any { return rangeCheck{} }})
	set, err := r.Load(t.Context(), []extension.InstanceConfig{{Name: "breach-check", Module: "authn.rangecheck"}}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, st, tn := newService(t, map[string]any{"password_policy": map[string]any{"min_length": 8, "breach_check": "breach-check"}})
	s.d.Authenticators = set
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "cy", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var pe *password.PolicyError
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "Password123!", false); !errors.As(err, &pe) || pe.Violations[0].Rule != "breached" {
		t.Fatalf("a breached password: %v", err)
	}
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "service-down-1", false); fault.CodeOf(err) != fault.CodeUnavailable {
		t.Fatalf("a failing check must refuse (unavailable): %v", err)
	}
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "a-clean-passphrase", false); err != nil {
		t.Fatalf("a clean password: %v", err)
	}
	// A policy naming an instance the tenant does not enable refuses.
	s.d.Authenticators = noAuthenticators{}
	if err := s.CheckPassword(t.Context(), tn.ID, store.User{}, "another-clean-one"); fault.CodeOf(err) != fault.CodeUnavailable {
		t.Fatalf("a missing breach check: %v", err)
	}
}

package abi

import (
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
)

// AuthenticatorCases are what an authenticator under test must satisfy.
type AuthenticatorCases struct {
	// Accept is a request the authenticator must authenticate.
	Accept latchabi.AuthenticateRequest
	// Subject, when set, is the subject Accept must authenticate as.
	Subject string
	// Reject is a request with wrong credentials: the answer must not be
	// authenticated (not_authenticated, or a challenge to try again).
	Reject latchabi.AuthenticateRequest
	// Empty is a request without credentials: the answer must be a valid
	// challenge or not_authenticated, never authenticated. Its zero value
	// is such a request (for Accept's tenant and flow).
	Empty latchabi.AuthenticateRequest
}

// RunAuthenticator runs the authenticator suite: every answer passes
// authn.Check, Accept authenticates, Reject and Empty do not, the request
// is not modified, concurrent calls agree, and a cancelled context is
// honoured within CancelWithin. newInstance is called once per subtest.
func RunAuthenticator(t *testing.T, newInstance func(t *testing.T) authn.Authenticator, cases AuthenticatorCases) {
	t.Helper()
	empty := cases.Empty
	if empty.Tenant == "" && empty.FlowID == "" && len(empty.Params) == 0 {
		empty.Tenant, empty.FlowID = cases.Accept.Tenant, cases.Accept.FlowID
	}

	authenticate := func(t *testing.T, a authn.Authenticator, req latchabi.AuthenticateRequest) latchabi.AuthenticateResponse {
		t.Helper()
		before := cloneAuthenticateRequest(req)
		resp, err := authn.Check(a.Authenticate(t.Context(), req))
		sameRequest(t, "request", before, req)
		if err != nil {
			t.Fatalf("Authenticate: %v (every answer must pass authn.Check)", err)
		}
		return resp
	}
	accepted := func(t *testing.T, resp latchabi.AuthenticateResponse) {
		t.Helper()
		if resp.Outcome != latchabi.OutcomeAuthenticated {
			t.Fatalf("Accept: outcome %q, want %q", resp.Outcome, latchabi.OutcomeAuthenticated)
		}
		if cases.Subject != "" && resp.Subject != cases.Subject {
			t.Fatalf("Accept: subject %q, want %q", resp.Subject, cases.Subject)
		}
	}

	t.Run("accepts", func(t *testing.T) {
		accepted(t, authenticate(t, newInstance(t), cases.Accept))
	})
	t.Run("rejects", func(t *testing.T) {
		if resp := authenticate(t, newInstance(t), cases.Reject); resp.Outcome == latchabi.OutcomeAuthenticated {
			t.Fatalf("Reject: authenticated as %q", resp.Subject)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		resp := authenticate(t, newInstance(t), empty)
		switch resp.Outcome {
		case latchabi.OutcomeChallenge, latchabi.OutcomeNotAuthenticated:
		default:
			t.Fatalf("a request without credentials: outcome %q, want %q or %q", resp.Outcome, latchabi.OutcomeChallenge, latchabi.OutcomeNotAuthenticated)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		a := newInstance(t)
		parallel(concurrency, func(i int) {
			if i%2 == 0 {
				resp, err := authn.Check(a.Authenticate(t.Context(), cloneAuthenticateRequest(cases.Accept)))
				if err != nil || resp.Outcome != latchabi.OutcomeAuthenticated {
					t.Errorf("concurrent Accept %d: outcome %q, error %v", i, resp.Outcome, err)
				}
				return
			}
			resp, err := authn.Check(a.Authenticate(t.Context(), cloneAuthenticateRequest(cases.Reject)))
			if err != nil || resp.Outcome == latchabi.OutcomeAuthenticated {
				t.Errorf("concurrent Reject %d: outcome %q, error %v", i, resp.Outcome, err)
			}
		})
	})
	t.Run("cancelled context", func(t *testing.T) {
		a := newInstance(t)
		ctx := cancelled(t)
		var (
			resp latchabi.AuthenticateResponse
			err  error
		)
		callWithin(t, CancelWithin, func() { resp, err = authn.Check(a.Authenticate(ctx, cloneAuthenticateRequest(cases.Accept))) })
		if err == nil && resp.Outcome != latchabi.OutcomeAuthenticated {
			t.Fatalf("with a cancelled context: no error and outcome %q; either fail or answer as usual", resp.Outcome)
		}
		// Cancelling one call must not break the next.
		accepted(t, authenticate(t, a, cases.Accept))
	})
}

package abi

import (
	"errors"
	"slices"
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
)

// GrantTypeCases are what a grant type under test must satisfy.
type GrantTypeCases struct {
	// Accept is a request the grant must issue tokens for.
	Accept latchabi.TokenRequest
	// Subject, when set, is the subject Accept must issue for.
	Subject string
	// Reject is a request of the grant's own grant_type that it must
	// refuse (bad credentials): an error with a code other than internal.
	Reject latchabi.TokenRequest
	// Other is a request of a grant_type the grant does not serve: it must
	// decline. Its zero value is Accept with another grant_type.
	Other latchabi.TokenRequest
}

// RunGrantType runs the grant type suite: every answer passes grant.Check,
// Accept issues (for Subject), Reject is refused with a client error, Other
// is declined, the request is not modified, concurrent calls agree, and a
// cancelled context is honoured within CancelWithin. newInstance is called
// once per subtest.
func RunGrantType(t *testing.T, newInstance func(t *testing.T) grant.Type, cases GrantTypeCases) {
	t.Helper()
	other := cases.Other
	if other.GrantType == "" {
		other = cloneTokenRequest(cases.Accept)
		other.GrantType = "urn:latch:params:conformance:another-grant"
	}
	token := func(t *testing.T, g grant.Type, req latchabi.TokenRequest) (latchabi.TokenResponse, error) {
		t.Helper()
		before := cloneTokenRequest(req)
		resp, err := g.Token(t.Context(), req)
		sameRequest(t, "request", before, req)
		return grant.Check(req, resp, err)
	}
	issued := func(t *testing.T, resp latchabi.TokenResponse, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if cases.Subject != "" && resp.Subject != cases.Subject {
			t.Fatalf("Accept: subject %q, want %q", resp.Subject, cases.Subject)
		}
	}
	refused := func(t *testing.T, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Fatal("Reject: tokens issued")
		case errors.Is(err, grant.ErrDeclined):
			t.Fatal("Reject: declined; a request of the grant's own type must be refused, not declined")
		case fault.CodeOf(err) == fault.CodeInternal:
			t.Fatalf("Reject: refused as internal (%v); bad credentials are a client error", err)
		}
	}

	t.Run("accepts", func(t *testing.T) {
		resp, err := token(t, newInstance(t), cases.Accept)
		issued(t, resp, err)
	})
	t.Run("rejects", func(t *testing.T) {
		_, err := token(t, newInstance(t), cases.Reject)
		refused(t, err)
	})
	t.Run("declines another grant type", func(t *testing.T) {
		if _, err := token(t, newInstance(t), other); !errors.Is(err, grant.ErrDeclined) {
			t.Fatalf("grant_type %q: %v, want declined", other.GrantType, err)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		g := newInstance(t)
		parallel(concurrency, func(i int) {
			if i%2 == 0 {
				req := cloneTokenRequest(cases.Accept)
				resp, err := g.Token(t.Context(), req)
				if resp, err = grant.Check(req, resp, err); err != nil || (cases.Subject != "" && resp.Subject != cases.Subject) {
					t.Errorf("concurrent Accept %d: subject %q, error %v", i, resp.Subject, err)
				}
				return
			}
			req := cloneTokenRequest(cases.Reject)
			resp, err := g.Token(t.Context(), req)
			if _, err = grant.Check(req, resp, err); err == nil {
				t.Errorf("concurrent Reject %d: tokens issued", i)
			}
		})
	})
	t.Run("cancelled context", func(t *testing.T) {
		g := newInstance(t)
		ctx := cancelled(t)
		callWithin(t, CancelWithin, func() {
			req := cloneTokenRequest(cases.Accept)
			resp, err := g.Token(ctx, req)
			_, _ = grant.Check(req, resp, err)
		})
		resp, err := token(t, g, cases.Accept)
		issued(t, resp, err)
	})
}

func cloneTokenRequest(r latchabi.TokenRequest) latchabi.TokenRequest {
	c := r
	c.Scopes = slices.Clone(r.Scopes)
	c.Audience = slices.Clone(r.Audience)
	c.Params = cloneParams(r.Params)
	c.Headers = cloneParams(r.Headers)
	c.Config = slices.Clone(r.Config)
	return c
}

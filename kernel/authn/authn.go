// Package authn defines the authenticator extension kind: the answer to "who
// is this, for this step of the login?". Password, TOTP, WebAuthn, email OTP,
// X.509 and upstream OIDC or SAML identity providers are authenticators; a
// login flow (steered by an adaptive script) runs one or more of them as
// steps.
//
// An authenticator gives one of three verdicts, never two: authenticated, not
// authenticated (the credentials were checked and refused), or a technical
// failure (nothing was decided). Besides a verdict it may ask the browser for
// more: a form, a redirect, a WebAuthn ceremony. The data exchanged is the
// wire form in package abi, so a builtin Go authenticator, a WASM module and
// a go-plugin binary are interchangeable.
//
// The instance lifecycle (configuration, provision, validate, close) is the
// one of package extension; this package holds only what is particular to
// authenticators.
package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// MaxStateSize is the largest AuthenticateResponse.State the kernel keeps
// between the requests of a step.
const MaxStateSize = 64 << 10

// Sentinel errors. Check them with errors.Is.
var (
	// ErrInvalidResponse means an authenticator's answer broke the contract
	// (an unknown outcome, authenticated without a subject, a challenge
	// without a challenge). It is always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid authenticator response")
	// ErrNotAuthenticated is the fault a front door reports when a step
	// ends not authenticated. Its message does not say why, so that a
	// wrong password and an unknown user look the same.
	ErrNotAuthenticated = fault.Unauthenticated.WithMessage("authentication failed")
)

// Authenticator runs one step of a login for one browser request.
//
// Authenticate returns a response whose Outcome is abi.OutcomeAuthenticated,
// abi.OutcomeNotAuthenticated or abi.OutcomeChallenge, or an error for a
// technical failure (a Go implementation returns the error; the wire form
// abi.OutcomeFailure with an abi.Error is read the same way). A wrong
// password is not an error.
//
// Implementations must be safe for concurrent use and must return promptly
// when ctx is done.
type Authenticator interface {
	Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error)
}

// SubjectRequirer is implemented by authenticators that only confirm the
// user an earlier step established (second factors such as one-time
// passwords): they need AuthenticateRequest.KnownSubject, so a login flow
// never runs them in a step before the user is known, and leaves them out
// of the default one-step flow.
type SubjectRequirer interface {
	RequiresKnownSubject() bool
}

// Recognizer is implemented by authenticators that can tell whether a
// request is meant for them (it carries their form fields or their callback
// parameters). When a step offers several authenticators, the kernel gives
// the request to the first one that recognizes it. An authenticator that is
// not a Recognizer is offered every request of its step.
type Recognizer interface {
	CanHandle(ctx context.Context, req abi.AuthenticateRequest) bool
}

// Check turns what Authenticate returned into a checked verdict: a nil error
// and a response whose outcome is authenticated, not authenticated or
// challenge, each with the fields it requires; or an error that carries a
// *fault.Error for a technical failure, including a response that breaks the
// contract. Callers use the response only when the error is nil.
func Check(resp abi.AuthenticateResponse, err error) (abi.AuthenticateResponse, error) {
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	switch resp.Outcome {
	case abi.OutcomeAuthenticated:
		if resp.Subject == "" {
			return invalid("outcome %q without a subject", resp.Outcome)
		}
	case abi.OutcomeNotAuthenticated:
	case abi.OutcomeChallenge:
		if resp.Challenge == nil {
			return invalid("outcome %q without a challenge", resp.Outcome)
		}
		switch resp.Challenge.Kind {
		case abi.ChallengeForm:
			if len(resp.Challenge.Fields) == 0 {
				return invalid("form challenge without fields")
			}
		case abi.ChallengeRedirect:
			if resp.Challenge.URL == "" {
				return invalid("redirect challenge without a url")
			}
		case abi.ChallengeWebAuthn:
			if len(resp.Challenge.Data) == 0 {
				return invalid("webauthn challenge without data")
			}
		default:
			return invalid("unknown challenge kind %q", resp.Challenge.Kind)
		}
	case abi.OutcomeFailure:
		if resp.Error == nil {
			return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("authenticator reported a failure without an error: %w", ErrInvalidResponse))
		}
		return abi.AuthenticateResponse{}, fault.FromWire(*resp.Error)
	default:
		return invalid("unknown outcome %q", resp.Outcome)
	}
	if len(resp.State) > MaxStateSize {
		return invalid("state of %d bytes exceeds %d", len(resp.State), MaxStateSize)
	}
	return resp, nil
}

func invalid(format string, args ...any) (abi.AuthenticateResponse, error) {
	return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("checking authenticator response: %w: %s", ErrInvalidResponse, fmt.Sprintf(format, args...)))
}

// Package authn is the authenticator kind for Latch WASM guests: the
// interface an author implements to answer "who is this, for this step of
// the login?", its Register function, and builders for the four answers.
//
// Writing an authenticator:
//
//  1. Implement Authenticator on a type of yours.
//  2. Answer Authenticated(subject, claims) when the credentials check out,
//     NotAuthenticated(reason) when they were checked and refused, Form or
//     Redirect to ask the browser for more (carry what you need to remember
//     in the response's State), and return an error for a technical failure.
//  3. From an init function, call plugin.Define once and Register(name, impl).
//  4. Test it with sdk/plugintest: h.Authenticate(name, req).
//  5. Build with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
//
// Three verdicts, never two: a wrong password is NotAuthenticated, not an
// error; an error (a directory that is down) is a failure, answered as
// abi.OutcomeFailure with the error's code (a *plugin.Error keeps its code,
// anything else is internal), and the user is not told the credentials
// were wrong.
package authn

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Authenticator runs one step of a login for one browser request. It
// returns a response whose Outcome is abi.OutcomeAuthenticated,
// abi.OutcomeNotAuthenticated or abi.OutcomeChallenge (see the builders),
// or an error for a technical failure. It may also implement the optional
// interfaces of sdk/plugin: Configure, Health and Close.
type Authenticator interface {
	Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error)
}

// Register adds a as the authenticator named name (its extension id is
// "authn.<name>"). Call it from an init function; it panics for an invalid
// or repeated name or a nil a (see plugin.Register).
func Register(name string, a Authenticator) {
	if a == nil {
		panic("authn: Register: nil Authenticator " + name)
	}
	plugin.Register(abi.KindAuthenticator, name, a, handler(a))
}

// handler answers abi.OpCodeAuthenticate with a.
func handler(a Authenticator) plugin.Handler {
	// The request and response are reused from call to call (the
	// dispatcher runs one call at a time), which saves two allocations a
	// call; the request is cleared after use so it keeps nothing alive.
	var (
		req  abi.AuthenticateRequest
		resp abi.AuthenticateResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := plugin.Decode(payload, &req); err != nil {
			req = abi.AuthenticateRequest{}
			return nil, err
		}
		r, err := a.Authenticate(req)
		req = abi.AuthenticateRequest{}
		if err != nil {
			r = abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: plugin.WireError(err)}
		}
		resp = r
		return &resp, nil
	}
}

// Authenticated answers that the step succeeded for subject, the user's
// stable identifier, with what was learnt about the user (may be nil). Set
// AMR, Issuer or SetCookies on the result as needed.
func Authenticated(subject string, claims map[string]any) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: subject, Claims: claims}
}

// NotAuthenticated answers that the credentials were checked and refused,
// for reason (one of the abi.Reason… constants). The user sees a generic
// message whatever the reason.
func NotAuthenticated(reason string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason}
}

// Form asks the browser to show a form with fields, in order, and to post
// it back to the step. Set Challenge.Message or Challenge.Error, and State,
// on the result as needed.
func Form(fields ...abi.Field) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{
		Outcome:   abi.OutcomeChallenge,
		Challenge: &abi.Challenge{Kind: abi.ChallengeForm, Fields: fields},
	}
}

// Redirect asks the browser to go to url (an upstream identity provider),
// from which it comes back to the request's CallbackURL.
func Redirect(url string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{
		Outcome:   abi.OutcomeChallenge,
		Challenge: &abi.Challenge{Kind: abi.ChallengeRedirect, URL: url},
	}
}

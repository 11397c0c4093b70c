package plugin

import (
	"errors"

	"github.com/latchid/latch/abi"
)

// Error is a failure with an abi error code (abi.CodeNotFound, …) and a
// message safe to show the client that made the request: no secrets, stack
// traces or internal addresses. Return one, or an error wrapping one, from
// an extension's methods to answer with that code; any other error is
// answered as abi.CodeInternal with a generic message, so that internal
// detail never leaves the module (see Meta.OnInternalError to see it).
//
// Errors from the host functions of sdk/host are *Error values too, so a
// host's refusal passes through with its code when an extension returns it.
type Error struct {
	// Code is one of the abi.Code… constants. An unknown code is answered
	// as abi.CodeInternal.
	Code string
	// Message is a short sentence for the client.
	Message string
}

// Error returns "code: message", or the code alone.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, plugin.ErrNotFound) holds for any not_found error,
// whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// WithMessage returns a copy of e with msg as its message:
// plugin.ErrNotFound.WithMessage("no such device").
func (e *Error) WithMessage(msg string) *Error {
	return &Error{Code: e.Code, Message: msg}
}

// Sentinel errors, one per abi error code. Compare with errors.Is (which
// matches on the code alone) and answer with a message of your own through
// WithMessage. Do not modify them.
var (
	// ErrInvalidRequest: the request is malformed or breaks a rule.
	ErrInvalidRequest = &Error{Code: abi.CodeInvalidRequest, Message: "invalid request"}
	// ErrUnauthenticated: the caller is not authenticated.
	ErrUnauthenticated = &Error{Code: abi.CodeUnauthenticated, Message: "not authenticated"}
	// ErrForbidden: the caller may not do this (for a host function: the
	// capability, or the HTTP host, was not granted).
	ErrForbidden = &Error{Code: abi.CodeForbidden, Message: "forbidden"}
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = &Error{Code: abi.CodeNotFound, Message: "not found"}
	// ErrConflict: the thing already exists or the change conflicts.
	ErrConflict = &Error{Code: abi.CodeConflict, Message: "conflict"}
	// ErrPreconditionFailed: the change named a stale version.
	ErrPreconditionFailed = &Error{Code: abi.CodePreconditionFailed, Message: "precondition failed"}
	// ErrRateLimited: the caller spent its allowance.
	ErrRateLimited = &Error{Code: abi.CodeRateLimited, Message: "rate limited"}
	// ErrCanceled: the caller went away.
	ErrCanceled = &Error{Code: abi.CodeCanceled, Message: "canceled"}
	// ErrInternal: a bug or an unexpected failure.
	ErrInternal = &Error{Code: abi.CodeInternal, Message: "internal error"}
	// ErrUnsupported: the operation is not implemented by this extension
	// (a read-only user store asked to create a user).
	ErrUnsupported = &Error{Code: abi.CodeUnsupported, Message: "operation not supported"}
	// ErrUnavailable: a dependency is down; retry later.
	ErrUnavailable = &Error{Code: abi.CodeUnavailable, Message: "unavailable"}
	// ErrTimeout: the answer was not ready in time.
	ErrTimeout = &Error{Code: abi.CodeTimeout, Message: "timeout"}
)

// internalMessage is the message of every error that is not an *Error: it
// says nothing about the cause.
const internalMessage = "internal error"

// KnownCode reports whether code is one of the abi.Code… constants.
func KnownCode(code string) bool {
	switch code {
	case abi.CodeInvalidRequest, abi.CodeUnauthenticated, abi.CodeForbidden, abi.CodeNotFound,
		abi.CodeConflict, abi.CodePreconditionFailed, abi.CodeRateLimited, abi.CodeCanceled,
		abi.CodeInternal, abi.CodeUnsupported, abi.CodeUnavailable, abi.CodeTimeout:
		return true
	}
	return false
}

// FromWire returns the *Error of a wire error, mapping a code it does not
// know to abi.CodeInternal (abi/SPEC.md section 5); nil for nil.
func FromWire(e *abi.Error) *Error {
	if e == nil {
		return nil
	}
	code := e.Code
	if !KnownCode(code) {
		code = abi.CodeInternal
	}
	return &Error{Code: code, Message: e.Message}
}

// WireError returns the wire form of err for a response's Error field or a
// Reply's: the code and message of the *Error that err is or wraps, or
// abi.CodeInternal with a generic message for any other error, which is
// then passed to Meta.OnInternalError. It returns nil for a nil err. The
// kind packages (sdk/authn, …) call it; authors rarely need to.
func WireError(err error) *abi.Error {
	return std.wireError(err)
}

// wireError is WireError for module m.
func (m *module) wireError(err error) *abi.Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) && pe != nil {
		if KnownCode(pe.Code) {
			return &abi.Error{Code: pe.Code, Message: pe.Message}
		}
		m.reportInternal(err)
		return &abi.Error{Code: abi.CodeInternal, Message: pe.Message}
	}
	m.reportInternal(err)
	return &abi.Error{Code: abi.CodeInternal, Message: internalMessage}
}

// reportInternal passes err, hidden from the wire, to the module's
// OnInternalError, labelled with the call it happened in.
func (m *module) reportInternal(err error) {
	if m.meta.OnInternalError == nil {
		return
	}
	m.meta.OnInternalError(&CallError{ID: m.cur.id, Op: m.cur.op, Err: err})
}

// CallError is what Meta.OnInternalError receives: an error that was
// answered as abi.CodeInternal, with the extension and operation it
// happened in. Its message is "plugin <id> <op>: <err>".
type CallError struct {
	// ID is the extension id ("authn.sms_otp"); empty when the call did
	// not reach an extension.
	ID string
	// Op is the operation.
	Op abi.OpCode
	// Err is the error the extension returned.
	Err error
}

// Error returns "plugin <id> <op>: <err>".
func (e *CallError) Error() string {
	id := e.ID
	if id == "" {
		id = "-"
	}
	return "plugin " + id + " " + e.Op.String() + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *CallError) Unwrap() error { return e.Err }

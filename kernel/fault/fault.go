// Package fault is the kernel's protocol-neutral error: a code that says what
// kind of failure happened, a message that is safe to show to clients, and an
// optional cause that is kept for logs and never shown. Each front door (OIDC,
// SAML, SCIM, the gateway, the admin API) turns a fault into its own
// protocol's error form, starting from HTTPStatus.
//
// Faults are values: the predefined ones in the var block below are
// templates, and the With… helpers return modified copies, so a template is
// never changed by use. errors.Is matches faults by code:
//
//	err := fault.NotFound.WithMessage("user not found").WithCause(dbErr)
//	errors.Is(err, fault.NotFound) // true
//	errors.Is(err, dbErr)          // true
//
// The codes are the wire codes of the extension contract (package abi), so an
// error crossing into or out of a WASM or go-plugin extension keeps its
// meaning.
package fault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/store"
)

// Code says what kind of failure happened. The values are the abi.Code…
// strings.
type Code string

// Codes. See the abi.Code… constants for their meaning.
const (
	CodeInvalidRequest     Code = abi.CodeInvalidRequest
	CodeUnauthenticated    Code = abi.CodeUnauthenticated
	CodeForbidden          Code = abi.CodeForbidden
	CodeNotFound           Code = abi.CodeNotFound
	CodeConflict           Code = abi.CodeConflict
	CodePreconditionFailed Code = abi.CodePreconditionFailed
	CodeRateLimited        Code = abi.CodeRateLimited
	CodeCanceled           Code = abi.CodeCanceled
	CodeInternal           Code = abi.CodeInternal
	CodeUnsupported        Code = abi.CodeUnsupported
	CodeUnavailable        Code = abi.CodeUnavailable
	CodeTimeout            Code = abi.CodeTimeout
)

// Known reports whether c is one of the codes above.
func (c Code) Known() bool {
	return HTTPStatus(c) != 0
}

// HTTPStatus returns the HTTP status code that corresponds to c, or 0 for a
// code that is not one of the constants above. Front doors that speak HTTP
// start from it; a protocol with its own error vocabulary (OAuth2 RFC 6749
// section 5.2, SCIM RFC 7644 section 3.12) maps the code itself.
func HTTPStatus(c Code) int {
	switch c {
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeCanceled:
		return 499 // client closed request (nginx); no constant in net/http
	case CodeInternal:
		return http.StatusInternalServerError
	case CodeUnsupported:
		return http.StatusNotImplemented
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return 0
}

// Templates, one per code, with a generic client-safe message. Use them with
// errors.Is, and derive specific faults with the With… helpers.
var (
	InvalidRequest     = New(CodeInvalidRequest, "the request is not valid")
	Unauthenticated    = New(CodeUnauthenticated, "authentication is required")
	Forbidden          = New(CodeForbidden, "the request is not allowed")
	NotFound           = New(CodeNotFound, "not found")
	Conflict           = New(CodeConflict, "the request conflicts with the current state")
	PreconditionFailed = New(CodePreconditionFailed, "the resource has changed")
	RateLimited        = New(CodeRateLimited, "too many requests")
	Canceled           = New(CodeCanceled, "the request was canceled")
	Internal           = New(CodeInternal, "internal error")
	Unsupported        = New(CodeUnsupported, "not supported")
	Unavailable        = New(CodeUnavailable, "the service is unavailable")
	Timeout            = New(CodeTimeout, "the request timed out")
)

// Error is a protocol-neutral failure. Its zero value is not useful; build
// one with New or from a template.
type Error struct {
	// Code says what kind of failure happened.
	Code Code
	// Message is safe to show to the client.
	Message string
	// Field, when set, is the path of the request field at fault
	// ("config.max_attempts", "user.email").
	Field string
	// RetryAfter, when positive, tells the client when to try again (with
	// CodeRateLimited and CodeUnavailable).
	RetryAfter time.Duration

	cause error
	// outer marks a fault that From lifted out of a chain of wrapped
	// errors: cause is that whole chain (which already names the code and
	// message), so Error prints the chain alone.
	outer bool
}

// New returns a fault with the code and client-safe message.
func New(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Error returns the code, the message and the cause, for logs. Never send it
// to a client: use Message.
func (e *Error) Error() string {
	if e.outer {
		return e.cause.Error()
	}
	s := string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	return e.cause
}

// Is reports whether target is a fault with the same code, so that
// errors.Is(err, fault.NotFound) holds for every not-found fault.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Cause returns the wrapped cause, or nil.
func (e *Error) Cause() error {
	return e.cause
}

// WithMessage returns a copy with the client-safe message replaced.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// WithMessagef returns a copy with the client-safe message replaced by a
// formatted one. Do not format secrets or internal detail into it.
func (e *Error) WithMessagef(format string, args ...any) *Error {
	return e.WithMessage(fmt.Sprintf(format, args...))
}

// WithCause returns a copy that wraps cause, for logs and errors.Is; the
// cause is never shown to clients.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	c.outer = false
	return &c
}

// WithField returns a copy that names the request field at fault.
func (e *Error) WithField(path string) *Error {
	c := *e
	c.Field = path
	return &c
}

// WithRetryAfter returns a copy that tells the client when to retry.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// From returns the fault that err carries, or makes one:
//
//   - nil gives nil;
//   - an error whose chain holds a *Error gives that fault (with err as its
//     cause when err adds context around it, so logs keep the whole story);
//   - context.DeadlineExceeded gives Timeout, context.Canceled gives
//     Canceled;
//   - the store sentinels give NotFound, Conflict, PreconditionFailed and
//     InvalidRequest;
//   - anything else gives Internal, with err as the cause.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var f *Error
	if errors.As(err, &f) {
		// Identity, not matching: only when err is the fault itself is it
		// returned as is. errors.Is would not do, since (*Error).Is matches
		// any fault with the same code.
		if f == err { //nolint:errorlint // identity check on purpose; see the comment above
			return f
		}
		c := *f
		c.cause, c.outer = err, true
		return &c
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout.WithCause(err)
	case errors.Is(err, context.Canceled):
		return Canceled.WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return NotFound.WithCause(err)
	case errors.Is(err, store.ErrConflict):
		return Conflict.WithCause(err)
	case errors.Is(err, store.ErrVersionMismatch):
		return PreconditionFailed.WithCause(err)
	case errors.Is(err, store.ErrInvalid):
		return InvalidRequest.WithCause(err)
	}
	return Internal.WithCause(err)
}

// CodeOf returns the code of the fault err carries (see From); "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}

// ToWire returns the wire form of err (see From) for an extension or a
// client. Only the code and the client-safe message cross; the cause stays.
func ToWire(err error) *abi.Error {
	f := From(err)
	if f == nil {
		return nil
	}
	return &abi.Error{Code: string(f.Code), Message: f.Message}
}

// FromWire returns the fault an extension reported. An unknown or empty code
// is read as CodeInternal, keeping the message.
func FromWire(w abi.Error) *Error {
	c := Code(w.Code)
	if !c.Known() {
		c = CodeInternal
	}
	return New(c, w.Message)
}

var _ error = (*Error)(nil)

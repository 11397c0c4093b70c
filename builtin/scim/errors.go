package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// SCIM error types (RFC 7644 section 3.12, table 9).
const (
	ErrTypeInvalidFilter = "invalidFilter"
	ErrTypeTooMany       = "tooMany"
	ErrTypeUniqueness    = "uniqueness"
	ErrTypeMutability    = "mutability"
	ErrTypeInvalidSyntax = "invalidSyntax"
	ErrTypeInvalidPath   = "invalidPath"
	ErrTypeNoTarget      = "noTarget"
	ErrTypeInvalidValue  = "invalidValue"
	ErrTypeInvalidVers   = "invalidVers"
)

// Error is a SCIM error: an HTTP status, an optional scimType and a detail
// safe to show the caller. A cause, when set, is logged and never sent.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	cause    error
}

func (e *Error) Error() string {
	s := strconv.Itoa(e.Status)
	if e.ScimType != "" {
		s += " " + e.ScimType
	}
	s += ": " + e.Detail
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.cause }

// errorJSON is the body of an error response (RFC 7644 section 3.12). The
// status is a string there.
type errorJSON struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

func (e *Error) body() errorJSON {
	return errorJSON{Schemas: []string{MsgError}, Status: strconv.Itoa(e.Status), ScimType: e.ScimType, Detail: e.Detail}
}

func newErr(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func badRequest(scimType, format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, scimType, format, args...)
}

func notFound(what string) *Error {
	return newErr(http.StatusNotFound, "", "%s not found", what)
}

func internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error", cause: cause}
}

// storeErr maps a store error to a SCIM error.
func storeErr(what string, err error) *Error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(what)
	case errors.Is(err, store.ErrConflict):
		return newErr(http.StatusConflict, ErrTypeUniqueness, "a %s with that name already exists", what)
	case errors.Is(err, store.ErrVersionMismatch):
		return newErr(http.StatusPreconditionFailed, "", "the %s was changed by another request; fetch it again", what)
	case errors.Is(err, store.ErrInvalid):
		return badRequest(ErrTypeInvalidValue, "the %s is not valid", what)
	}
	return internal(fmt.Errorf("storing %s: %w", what, err))
}

// asError turns any error into a SCIM error. Kernel faults keep their
// status and safe message; anything else is an internal error.
func asError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return newErr(fe.Code, "", "%s", fe.Message)
	}
	var ff *fault.Error
	if errors.As(err, &ff) {
		st := fault.HTTPStatus(ff.Code)
		typ := ""
		if st == http.StatusBadRequest {
			typ = ErrTypeInvalidValue
		}
		return &Error{Status: st, ScimType: typ, Detail: ff.Message, cause: ff.Cause()}
	}
	return internal(err)
}

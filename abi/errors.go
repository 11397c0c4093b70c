package abi

// Error is the wire form of a failure: a code from the list below and a
// message that is safe to show to the client that made the request (it must
// not carry secrets, stack traces or internal addresses).
//
// Every response type carries an optional Error. When it is set the
// operation failed and the response's other fields are ignored.
//
// Encoding example:
//
//	{"code":"not_found","message":"user not found"}
type Error struct {
	// Code is one of the Code... constants. An unknown code is read as
	// CodeInternal.
	Code string `json:"code" wire:"1"`
	// Message is a short, human-readable sentence safe for clients.
	Message string `json:"message,omitempty" wire:"2"`
}

// Error codes. They are protocol-neutral: each front door maps them to its
// own error form (an HTTP status, an OAuth2 error, a SAML status, a SCIM
// error). The kernel's error type (kernel/fault) uses exactly these strings.
const (
	// CodeInvalidRequest: the request is malformed or breaks a rule
	// (a missing parameter, a value out of range). HTTP 400.
	CodeInvalidRequest = "invalid_request"
	// CodeUnauthenticated: the caller is not authenticated, or its
	// credentials are wrong. HTTP 401.
	CodeUnauthenticated = "unauthenticated"
	// CodeForbidden: the caller is known but may not do this. HTTP 403.
	CodeForbidden = "forbidden"
	// CodeNotFound: the thing asked for does not exist. HTTP 404.
	CodeNotFound = "not_found"
	// CodeConflict: the thing already exists, or the change conflicts with
	// its current state. HTTP 409.
	CodeConflict = "conflict"
	// CodePreconditionFailed: the change named a version that is no longer
	// current (an ETag mismatch). HTTP 412.
	CodePreconditionFailed = "precondition_failed"
	// CodeRateLimited: the caller spent its allowance; retry later.
	// HTTP 429.
	CodeRateLimited = "rate_limited"
	// CodeCanceled: the caller went away before the answer was ready.
	// HTTP 499 (client closed request).
	CodeCanceled = "canceled"
	// CodeInternal: a bug or an unexpected failure on the server side.
	// HTTP 500.
	CodeInternal = "internal"
	// CodeUnsupported: the operation is not implemented by this server or
	// extension (a read-only user store asked to create a user). HTTP 501.
	CodeUnsupported = "unsupported"
	// CodeUnavailable: a dependency is down or overloaded; retry later.
	// HTTP 503.
	CodeUnavailable = "unavailable"
	// CodeTimeout: the answer was not ready before the deadline. HTTP 504.
	CodeTimeout = "timeout"
)

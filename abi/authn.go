package abi

import "encoding/json"

// Authentication outcomes. An authenticator answers one of four: three
// verdicts, never two (authenticated, not authenticated, technical failure),
// and a request for more input from the browser.
const (
	// OutcomeAuthenticated: the step succeeded; Subject names who.
	OutcomeAuthenticated = "authenticated"
	// OutcomeNotAuthenticated: the credentials were checked and refused
	// (wrong password, wrong code, locked account); Reason says why.
	OutcomeNotAuthenticated = "not_authenticated"
	// OutcomeChallenge: the authenticator needs the browser to do more
	// (show a form, follow a redirect, run a WebAuthn ceremony); Challenge
	// says what.
	OutcomeChallenge = "challenge"
	// OutcomeFailure: the authenticator could not decide (its directory is
	// down, its configuration is broken); Error says what happened. A
	// failure is not a refusal: the user is not told the credentials were
	// wrong.
	OutcomeFailure = "failure"
)

// Reasons for OutcomeNotAuthenticated. They are recorded in the audit log and
// may steer an adaptive script; the user is shown a generic message.
const (
	// ReasonInvalidCredentials: the credentials do not match (or the user
	// is unknown: the two are not told apart).
	ReasonInvalidCredentials = "invalid_credentials"
	// ReasonLocked: the account is locked (too many failed attempts).
	ReasonLocked = "locked"
	// ReasonDisabled: the account is disabled.
	ReasonDisabled = "disabled"
	// ReasonExpired: the credential or the challenge expired.
	ReasonExpired = "expired"
	// ReasonCanceled: the user canceled (at an upstream identity provider,
	// in a WebAuthn prompt).
	ReasonCanceled = "canceled"
)

// Challenge kinds: what the browser is asked to do.
const (
	// ChallengeForm: render a form with Fields and post it back.
	ChallengeForm = "form"
	// ChallengeRedirect: send the browser to URL (an upstream identity
	// provider); it comes back to the request's CallbackURL.
	ChallengeRedirect = "redirect"
	// ChallengeWebAuthn: run navigator.credentials.get or .create with the
	// options in Data and post the result back.
	ChallengeWebAuthn = "webauthn"
)

// Form field types of a ChallengeForm.
const (
	FieldText     = "text"
	FieldPassword = "password"
	// FieldOTP is a one-time code (numeric keypad, autocomplete
	// one-time-code).
	FieldOTP    = "otp"
	FieldEmail  = "email"
	FieldHidden = "hidden"
)

// HeaderClientCertificate is the AuthenticateRequest.Headers name under
// which the kernel passes the client certificate chain its TLS handshake
// verified (config tls.client_ca_file): the certificates as PEM blocks,
// leaf first, query-escaped. The kernel drops a header of this name that
// the client sent, so its presence means Latch itself verified the chain.
//
//	"x-latch-client-certificate": ["-----BEGIN+CERTIFICATE-----%0AMIIB..."]
const HeaderClientCertificate = "x-latch-client-certificate"

// AuthenticateRequest asks an authenticator to run one step of a login flow
// for one browser request. A step may take several requests: a form is shown
// (OutcomeChallenge), then posted back, with State carrying what the
// authenticator needs to remember between them.
//
// Encoding example:
//
//	{"tenant":"acme","flow_id":"f-81c2","step":1,
//	 "params":{"username":["alice"],"password":["s3cret"]},
//	 "ip":"203.0.113.7"}
type AuthenticateRequest struct {
	// Tenant is the name of the tenant the login belongs to.
	Tenant string `json:"tenant" wire:"1"`
	// FlowID identifies the login flow across its steps and requests.
	FlowID string `json:"flow_id" wire:"2"`
	// Step is the 1-based number of the step being run.
	Step int `json:"step" wire:"3"`
	// Params holds the form and query parameters of this request.
	Params map[string][]string `json:"params,omitempty" wire:"4"`
	// Headers holds the request headers, with lowercase names. The
	// kernel leaves out Cookie and Authorization headers.
	Headers map[string][]string `json:"headers,omitempty" wire:"5"`
	// Cookies holds the request cookies that belong to this authenticator
	// (names it set through earlier responses).
	Cookies map[string]string `json:"cookies,omitempty" wire:"6"`
	// IP is the client's address as the kernel determined it.
	IP string `json:"ip,omitempty" wire:"7"`
	// CallbackURL is where the browser must come back to continue this
	// step (for ChallengeRedirect and form actions).
	CallbackURL string `json:"callback_url,omitempty" wire:"8"`
	// KnownSubject is the subject established by earlier steps, empty in
	// the first step. A second factor checks this subject.
	KnownSubject string `json:"known_subject,omitempty" wire:"9"`
	// State is what this authenticator returned in AuthenticateResponse.State
	// on the previous request of the same step, unchanged; empty on the
	// first request.
	State []byte `json:"state,omitempty" wire:"10"`
	// ScriptParams holds the parameters an adaptive script passed to this
	// authenticator (authenticatorParams).
	ScriptParams map[string]string `json:"script_params,omitempty" wire:"11"`
	// Config is the configuration of this extension instance for the
	// tenant, as the operator wrote it. Hosts of stateless guests send it
	// on every call.
	Config json.RawMessage `json:"config,omitempty" wire:"12"`
}

// AuthenticateResponse is an authenticator's answer to one request.
//
// Encoding examples:
//
//	{"outcome":"authenticated","subject":"u-42","amr":["pwd"]}
//	{"outcome":"not_authenticated","reason":"invalid_credentials"}
//	{"outcome":"challenge","challenge":{"kind":"form","fields":[{"name":"otp","type":"otp","label":"Code","required":true}]}}
//	{"outcome":"failure","error":{"code":"unavailable","message":"directory unreachable"}}
type AuthenticateResponse struct {
	// Outcome is one of the Outcome... constants.
	Outcome string `json:"outcome" wire:"1"`
	// Subject is the stable identifier of the authenticated user; required
	// with OutcomeAuthenticated.
	Subject string `json:"subject,omitempty" wire:"2"`
	// Issuer names the upstream identity provider that vouched for the
	// subject; empty for local accounts.
	Issuer string `json:"issuer,omitempty" wire:"3"`
	// Claims holds what the authenticator learnt about the user (in the
	// local dialect, or the upstream dialect when Issuer is set).
	Claims map[string]any `json:"claims,omitempty" wire:"4"`
	// AMR lists the authentication methods used (RFC 8176: "pwd", "otp",
	// "hwk", "mfa", ...).
	AMR []string `json:"amr,omitempty" wire:"5"`
	// Reason says why with OutcomeNotAuthenticated; one of the Reason...
	// constants.
	Reason string `json:"reason,omitempty" wire:"6"`
	// Challenge says what the browser must do; required with
	// OutcomeChallenge.
	Challenge *Challenge `json:"challenge,omitempty" wire:"7"`
	// State is returned unchanged in the next request of this step. The
	// kernel keeps it server-side; it is never sent to the browser. At most
	// 64 KiB.
	State []byte `json:"state,omitempty" wire:"8"`
	// SetCookies lists cookies to set on the browser.
	SetCookies []Cookie `json:"set_cookies,omitempty" wire:"9"`
	// Error says what went wrong; required with OutcomeFailure.
	Error *Error `json:"error,omitempty" wire:"10"`
}

// Challenge asks the browser for more input.
type Challenge struct {
	// Kind is one of the Challenge... constants.
	Kind string `json:"kind" wire:"1"`
	// Fields lists the form fields of a ChallengeForm, in display order.
	Fields []Field `json:"fields,omitempty" wire:"2"`
	// URL is where a ChallengeRedirect sends the browser.
	URL string `json:"url,omitempty" wire:"3"`
	// Data holds kind-specific data: for ChallengeWebAuthn, the
	// PublicKeyCredentialRequestOptions or CreationOptions as JSON
	// (creation options are the ones with a "user"), or
	// {"mode": "create"|"get", "options": {"publicKey": {...}}}; the
	// browser's answer comes back in the form field "credential" (the
	// PublicKeyCredential as JSON, binary values base64url) or
	// "webauthn_error" (the error's name).
	Data json.RawMessage `json:"data,omitempty" wire:"4"`
	// Message is a sentence shown above the form ("We sent a code to
	// a***@example.com").
	Message string `json:"message,omitempty" wire:"5"`
	// Error is a sentence shown when the previous attempt was refused
	// ("That code is not valid").
	Error string `json:"error,omitempty" wire:"6"`
}

// Field is one input of a ChallengeForm.
type Field struct {
	// Name is the form parameter name the value comes back under.
	Name string `json:"name" wire:"1"`
	// Type is one of the Field... constants.
	Type string `json:"type" wire:"2"`
	// Label is the text shown beside the input.
	Label string `json:"label,omitempty" wire:"3"`
	// Value pre-fills the input (always for FieldHidden).
	Value string `json:"value,omitempty" wire:"4"`
	// Required marks an input that must not be empty.
	Required bool `json:"required,omitempty" wire:"5"`
}

// Cookie is a cookie an authenticator asks the kernel to set. The kernel
// always sets Secure and HttpOnly, and scopes the cookie to the tenant.
type Cookie struct {
	// Name is the cookie name.
	Name string `json:"name" wire:"1"`
	// Value is the cookie value.
	Value string `json:"value" wire:"2"`
	// MaxAgeSeconds is the lifetime; 0 is a session cookie, negative
	// deletes the cookie.
	MaxAgeSeconds int64 `json:"max_age_seconds,omitempty" wire:"3"`
}

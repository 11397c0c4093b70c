package adaptive

import (
	"context"
	"time"
)

// Input is everything one evaluation sees: the flow's configuration, the
// current request and the History of what already happened in this login.
// The engine keeps no state between evaluations; the caller stores the
// History with the flow and passes it back each time (see the package doc).
type Input struct {
	// FlowID identifies the login; it seeds Math.random so that replay is
	// deterministic.
	FlowID string `json:"flow_id,omitempty"`
	// Time is when the login started; Date.now() and new Date() answer it
	// during every evaluation of the flow, so replay is deterministic. Set
	// it: the zero value makes them answer the current time, which a
	// script that branches on the clock cannot replay.
	Time time.Time `json:"time,omitzero"`
	// TenantDomain is the tenant the login happens in.
	TenantDomain string `json:"tenant_domain,omitempty"`
	// ServiceProvider is the name of the application being logged in to.
	ServiceProvider string `json:"service_provider,omitempty"`
	// Steps are the flow's configured steps; executeStep(n) refers to the
	// step whose Number is n.
	Steps []StepConfig `json:"steps,omitempty"`
	// Request is the HTTP request that started the login. Pass the same
	// one on every evaluation of the login, so that callbacks replayed from
	// earlier requests see what they saw then.
	Request Request `json:"request"`
	// RequestedACRs are the acr values the client asked for, in its order.
	RequestedACRs []string `json:"requested_acr,omitempty"`
	// EndpointParams are extra parameters the front door passes
	// (context.endpointParams); values are strings.
	EndpointParams map[string]string `json:"endpoint_params,omitempty"`
	// History lists what already happened, oldest first.
	History []Entry `json:"history,omitempty"`
}

// StepConfig is one configured step of a flow.
type StepConfig struct {
	// Number is the 1-based step number scripts use.
	Number int `json:"number"`
	// Options are the authenticators and identity providers the step offers.
	Options []AuthOption `json:"options"`
	// SubjectStep marks the step whose user becomes the login's subject.
	SubjectStep bool `json:"subject_step,omitempty"`
	// AttributeStep marks the step whose user's attributes are released.
	AttributeStep bool `json:"attribute_step,omitempty"`
}

// AuthOption is one way to complete a step: a local authenticator (by Latch
// id, such as "password" or "totp") or a federated identity provider (by
// name). Exactly one of the two is set.
type AuthOption struct {
	Authenticator string `json:"authenticator,omitempty"`
	IDP           string `json:"idp,omitempty"`
}

// Request is the part of the HTTP request a script may read.
type Request struct {
	// IP is the client address, after the trusted-proxy rules were applied.
	IP string `json:"ip,omitempty"`
	// Headers by lower-case name.
	Headers map[string]string `json:"headers,omitempty"`
	// Params are the query and form parameters.
	Params map[string][]string `json:"params,omitempty"`
	// Cookies by name, as sent by the browser.
	Cookies map[string]string `json:"cookies,omitempty"`
}

// EntryKind names what a History entry records.
type EntryKind string

// History entry kinds.
const (
	// EntryStep records the outcome of an executed step.
	EntryStep EntryKind = "step"
	// EntryPrompt records the answer to a prompt.
	EntryPrompt EntryKind = "prompt"
	// EntryHTTP records the result of an httpGet or httpPost call; the
	// engine makes the call itself and returns the entry in
	// Decision.Record.
	EntryHTTP EntryKind = "http"
)

// Entry is one thing that happened in a login. Which fields are set depends
// on Kind.
type Entry struct {
	Kind EntryKind `json:"kind"`
	// Step is the step number (EntryStep).
	Step int `json:"step,omitempty"`
	// Success says whether the step succeeded, the prompt was answered or
	// the HTTP call returned a 2xx answer.
	Success bool `json:"success"`
	// Subject is the user the step authenticated (EntryStep, on success),
	// or the user whose attempt failed when known (on failure).
	Subject *Subject `json:"subject,omitempty"`
	// Authenticator is the Latch id of the authenticator that ran the step.
	Authenticator string `json:"authenticator,omitempty"`
	// IDP is the federated identity provider that ran the step, if any.
	IDP string `json:"idp,omitempty"`
	// Values are the prompt's answers by input id (EntryPrompt).
	Values map[string][]string `json:"values,omitempty"`
	// URL, Status and Body describe an HTTP call (EntryHTTP); Error holds a
	// transport error or a refusal by the allow-list.
	URL    string `json:"url,omitempty"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Subject is a user as a step or a look-up produced it.
type Subject struct {
	// ID is the user's unique id (user.uniqueId).
	ID string `json:"id"`
	// Username is the login name.
	Username string `json:"username,omitempty"`
	// UserStoreDomain names the user store that holds the user.
	UserStoreDomain string `json:"user_store_domain,omitempty"`
	// TenantDomain is the user's tenant; empty means the login's tenant.
	TenantDomain string `json:"tenant_domain,omitempty"`
	// Federated marks a user asserted by an external identity provider.
	Federated bool `json:"federated,omitempty"`
	// Claims are this login's claims (user.claims).
	Claims map[string]string `json:"claims,omitempty"`
	// RemoteClaims are the claims a federated identity provider sent
	// (user.remoteClaims).
	RemoteClaims map[string]string `json:"remote_claims,omitempty"`
}

// DecisionKind says what the caller must do next.
type DecisionKind string

// Decision kinds.
const (
	// DecisionExecuteStep asks the caller to run Decision.Step and evaluate
	// again with its outcome appended to the History.
	DecisionExecuteStep DecisionKind = "execute_step"
	// DecisionPrompt asks the caller to show Decision.Prompt and evaluate
	// again with the answer appended to the History.
	DecisionPrompt DecisionKind = "prompt"
	// DecisionComplete ends the login successfully with Decision.Subject.
	DecisionComplete DecisionKind = "complete"
	// DecisionFail ends the login with an error to the client's redirect
	// URI (Decision.Error).
	DecisionFail DecisionKind = "fail"
	// DecisionSendError ends the login on an error page (Decision.Error).
	DecisionSendError DecisionKind = "send_error"
)

// Decision is what one evaluation concluded.
type Decision struct {
	Kind   DecisionKind    `json:"kind"`
	Step   *StepDecision   `json:"step,omitempty"`
	Prompt *PromptDecision `json:"prompt,omitempty"`
	Error  *ErrorDecision  `json:"error,omitempty"`
	// Subject is the login's subject (DecisionComplete): the user of the
	// last successful step marked as subject step, else of the last
	// successful step.
	Subject *Subject `json:"subject,omitempty"`
	// AttributeSubject is the user whose attributes are released
	// (DecisionComplete): the last successful step marked as attribute
	// step, else Subject.
	AttributeSubject *Subject `json:"attribute_subject,omitempty"`
	// SelectedACR is the value of context.selectedAcr at the end of the
	// evaluation.
	SelectedACR string `json:"selected_acr,omitempty"`
	// Effects are the side effects the script asked for during this
	// evaluation and not in an earlier one: apply each once, whatever the
	// Kind (a script may record something and then fail the login). An
	// evaluation that ends in an error returns no effects.
	Effects []Effect `json:"effects,omitempty"`
	// Record holds History entries the engine produced itself (HTTP calls);
	// append them to the flow's History, before the outcome of this
	// Decision, so that later evaluations replay them instead of calling
	// again.
	Record []Entry `json:"record,omitempty"`
	// Logs are the Log.* lines the script wrote during this evaluation (new
	// ones only, like Effects). They are also sent to the engine's logger.
	Logs []LogLine `json:"logs,omitempty"`
}

// StepDecision is a step to run, as the script narrowed it.
type StepDecision struct {
	Number int `json:"number"`
	// Options are the authenticators and identity providers to offer: the
	// step's configured options, narrowed by authenticationOptions.
	Options []AuthOption `json:"options"`
	// AuthenticatorParams are the authenticatorParams the script passed:
	// "common", "local" (by Latch authenticator id) and "federated" (by
	// identity provider).
	AuthenticatorParams map[string]any `json:"authenticator_params,omitempty"`
	// StepOptions are the stepOptions the script passed (forceAuth,
	// markAsSubjectIdentifierStep, markAsSubjectAttributeStep), as strings.
	StepOptions map[string]string `json:"step_options,omitempty"`
}

// PromptDecision is an interactive form to show.
type PromptDecision struct {
	Template string `json:"template"`
	Data     any    `json:"data,omitempty"`
}

// ErrorDecision is how a failed login ends.
type ErrorDecision struct {
	// Code, Message and URI come from fail({errorCode, errorMessage,
	// errorURI}); Code defaults to "access_denied".
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	URI     string `json:"uri,omitempty"`
	// URL and Params come from sendError(url, params); an empty URL means
	// the built-in error page.
	URL    string            `json:"url,omitempty"`
	Params map[string]string `json:"params,omitempty"`
}

// EffectKind names a side effect.
type EffectKind string

// Effect kinds.
const (
	EffectSetCookie        EffectKind = "set_cookie"
	EffectResponseHeader   EffectKind = "response_header"
	EffectAssignRoles      EffectKind = "assign_roles"
	EffectRemoveRoles      EffectKind = "remove_roles"
	EffectSetLocalClaim    EffectKind = "set_local_claim"
	EffectTerminateSession EffectKind = "terminate_session"
	EffectSendEmail        EffectKind = "send_email"
)

// Effect is a side effect the script asked for. The engine never applies
// one; the caller does, once.
type Effect struct {
	Kind EffectKind `json:"kind"`
	// UserID is the user concerned (roles, claims, sessions, email).
	UserID string `json:"user_id,omitempty"`
	// Roles for assign_roles and remove_roles.
	Roles []string `json:"roles,omitempty"`
	// Claim and Value for set_local_claim; Name and Value for
	// response_header.
	Claim string `json:"claim,omitempty"`
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
	// SessionID for terminate_session.
	SessionID string `json:"session_id,omitempty"`
	// Template and Placeholders for send_email.
	Template     string            `json:"template,omitempty"`
	Placeholders map[string]string `json:"placeholders,omitempty"`
	// Cookie for set_cookie; its Value is already signed or encrypted when
	// the script asked for it.
	Cookie *Cookie `json:"cookie,omitempty"`
}

// Cookie is a cookie to set on the response.
type Cookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	MaxAge   int    `json:"max_age,omitempty"`
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	HTTPOnly bool   `json:"http_only,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
	SameSite string `json:"same_site,omitempty"`
}

// LogLine is one Log.* call.
type LogLine struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// User is a user record as the Host returns it.
type User struct {
	ID              string `json:"id"`
	Username        string `json:"username"`
	UserStoreDomain string `json:"user_store_domain,omitempty"`
	TenantDomain    string `json:"tenant_domain,omitempty"`
	// Roles and Groups by name.
	Roles  []string `json:"roles,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Claims are the stored (local) claims by claim URI.
	Claims map[string]string `json:"claims,omitempty"`
}

// Session is a user's SSO session as the Host returns it.
type Session struct {
	ID             string       `json:"id"`
	IP             string       `json:"ip,omitempty"`
	LoginTime      time.Time    `json:"login_time"`
	LastAccessTime time.Time    `json:"last_access_time"`
	UserAgent      string       `json:"user_agent,omitempty"`
	Applications   []SessionApp `json:"applications,omitempty"`
}

// SessionApp is an application a session is logged in to.
type SessionApp struct {
	Subject string `json:"subject,omitempty"`
	AppName string `json:"app_name,omitempty"`
	AppID   string `json:"app_id,omitempty"`
}

// Host answers the look-ups scripts make. The node implements it over the
// kernel store; every method must be safe for concurrent use and must not
// change anything (changes come back as Effects). A method returns an error
// wrapping store.ErrNotFound, or (nil, nil) for "no such user", as noted.
type Host interface {
	// User returns the user with the unique id in the tenant, with roles,
	// groups and local claims; nil and no error when there is none.
	User(ctx context.Context, tenant, id string) (*User, error)
	// FindUsers returns at most limit users whose local claims hold all the
	// given values (claim URI to value).
	FindUsers(ctx context.Context, tenant string, claims map[string]string, limit int) ([]User, error)
	// Sessions returns the user's active SSO sessions.
	Sessions(ctx context.Context, tenant, userID string) ([]Session, error)
	// Secret returns the value of the tenant's secret with the alias.
	Secret(ctx context.Context, tenant, alias string) (string, error)
	// Library returns the source of the tenant's shared script library.
	Library(ctx context.Context, tenant, name string) (string, error)
}

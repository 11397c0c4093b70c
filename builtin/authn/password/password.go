// Package password is the authn.password extension: a login step that asks
// for a username and a password and checks them against the tenant's user
// stores, in the tenant's order, until one knows the user.
//
// Without credentials in the request it answers a form challenge. With
// credentials it answers authenticated (the subject is the user's id), not
// authenticated (a wrong password and an unknown user give the same reason,
// invalid_credentials, so they look alike; a locked or disabled account
// gives locked or disabled, which the kernel audits but does not show), or
// an error when a store could not decide. A store that fails stops the
// search rather than falling through to the next store, which could hold a
// different account under the same username.
//
// The instance asks the kernel for one dependency by name when it is
// provisioned: DepUserStores. When the node also passes DepDirectory (the
// tenant's user store domains, kernel/userstore/router), logins go through
// it instead: "LDAP/alice" is checked against the LDAP domain's store only,
// a plain "alice" against the stores in search order, and the subject is the
// directory's routable id.
package password

import (
	"cmp"
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// ID is the module id.
const ID extension.ID = "authn.password"

// DepUserStores names the dependency the instance takes from
// extension.Env.Dep when it is provisioned (the node passes it in
// extension.LoadOptions.Deps): the tenant's user stores, as a UserStores, a
// func(context.Context, string) []*extension.Instance, or a value with
// *extension.Instances' Enabled method (the loaded user store instances).
const DepUserStores = "userstores"

// DepDirectory optionally names the tenant's user store directory: a
// Directory (*router.Router implements it). Without it the stores of
// DepUserStores are asked in order and user ids pass unchanged.
const DepDirectory = "userstore.directory"

// Directory authenticates a username against a tenant's user store
// domains; *router.Router implements it.
type Directory interface {
	Authenticate(ctx context.Context, tenant, username, password string) (router.Authentication, error)
}

// ErrDependency means DepUserStores is missing or of the wrong type: a
// wiring mistake of the node, reported when the instance is provisioned.
var ErrDependency = errors.New("missing or mistyped dependency")

// Defaults of the configuration fields.
const (
	DefaultUsernameParam = "username"
	DefaultPasswordParam = "password"
	DefaultUsernameLabel = "Username"
	DefaultPasswordLabel = "Password"
)

// AMR is the authentication method reference of a password (RFC 8176
// section 2).
const AMR = "pwd"

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.password module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Username and password, checked against the tenant's user stores in order.",
	}
}

// UserStores gives the user store instances a tenant uses, in search order.
// The answer may change between calls (a reloaded configuration); it is
// asked on every login.
type UserStores interface {
	UserStores(ctx context.Context, tenant string) []*extension.Instance
}

// UserStoresFunc adapts a function to UserStores.
type UserStoresFunc func(ctx context.Context, tenant string) []*extension.Instance

// UserStores calls f.
func (f UserStoresFunc) UserStores(ctx context.Context, tenant string) []*extension.Instance {
	return f(ctx, tenant)
}

// enabler is what *extension.Instances offers.
type enabler interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

// Authenticator is an authn.password instance. Its exported fields are its
// configuration (see config.schema.json).
type Authenticator struct {
	// UsernameParam is the form parameter carrying the username.
	UsernameParam string `json:"username_param,omitempty"`
	// PasswordParam is the form parameter carrying the password.
	PasswordParam string `json:"password_param,omitempty"`
	// UsernameLabel is the label of the username field.
	UsernameLabel string `json:"username_label,omitempty"`
	// PasswordLabel is the label of the password field.
	PasswordLabel string `json:"password_label,omitempty"`

	stores   UserStores
	dir      Directory
	log      *slog.Logger
	outcomes *prometheus.CounterVec
}

// Provision fills in defaults and takes the user stores from env.
func (a *Authenticator) Provision(ctx context.Context, env extension.Env) error {
	a.UsernameParam = cmp.Or(a.UsernameParam, DefaultUsernameParam)
	a.PasswordParam = cmp.Or(a.PasswordParam, DefaultPasswordParam)
	a.UsernameLabel = cmp.Or(a.UsernameLabel, DefaultUsernameLabel)
	a.PasswordLabel = cmp.Or(a.PasswordLabel, DefaultPasswordLabel)
	a.log = env.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	d, _ := env.Dep(DepUserStores)
	switch s := d.(type) {
	case UserStores:
		a.stores = s
	case func(context.Context, string) []*extension.Instance:
		a.stores = UserStoresFunc(s)
	case enabler:
		a.stores = UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
			return s.Enabled(tenant, extension.KindUserStore)
		})
	default:
		return fmt.Errorf("provisioning %s: %w: %q is %T, want a password.UserStores or *extension.Instances", ID, ErrDependency, DepUserStores, d)
	}
	if d, ok := env.Dep(DepDirectory); ok {
		dir, ok := d.(Directory)
		if !ok {
			return fmt.Errorf("provisioning %s: %w: %q is %T, want a password.Directory", ID, ErrDependency, DepDirectory, d)
		}
		a.dir = dir
	}
	reg := env.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	outcomes, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "authn_password", Name: "outcomes_total",
		Help: "Password login requests by outcome and reason.",
	}, []string{"outcome", "reason"}))
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	a.outcomes = outcomes
	return nil
}

// Validate checks that the two parameters differ.
func (a *Authenticator) Validate() error {
	if a.UsernameParam == a.PasswordParam {
		return &extension.ConfigError{Fields: []extension.FieldError{{
			Path:    "config.password_param",
			Message: fmt.Sprintf("must differ from username_param (both are %q)", a.UsernameParam),
		}}}
	}
	return nil
}

// CanHandle reports whether the request carries both form parameters.
func (a *Authenticator) CanHandle(ctx context.Context, req abi.AuthenticateRequest) bool {
	_, u := req.Params[a.UsernameParam]
	_, p := req.Params[a.PasswordParam]
	return u && p
}

// Authenticate runs the step for one request; see the package
// documentation for the outcomes.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	resp, err := a.authenticate(ctx, req)
	switch {
	case err != nil:
		a.outcomes.WithLabelValues(abi.OutcomeFailure, "").Inc()
	default:
		a.outcomes.WithLabelValues(resp.Outcome, resp.Reason).Inc()
	}
	return resp, err
}

func (a *Authenticator) authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	username, uok := param(req.Params, a.UsernameParam)
	pw, pok := param(req.Params, a.PasswordParam)
	username = strings.TrimSpace(username)
	if !uok && !pok {
		return a.challenge("", ""), nil
	}
	if username == "" || pw == "" {
		return a.challenge(username, "Enter your username and password."), nil
	}

	if a.dir != nil {
		return a.authenticateDirectory(ctx, req, username, pw)
	}
	stores := a.stores.UserStores(ctx, req.Tenant)
	if len(stores) == 0 {
		return abi.AuthenticateResponse{}, fault.Internal.
			WithMessage("no user store is enabled for this tenant").
			WithCause(fmt.Errorf("authenticating in tenant %q: no user store enabled", req.Tenant))
	}
	for _, inst := range stores {
		us, ok := extension.As[userstore.Store](inst)
		if !ok {
			return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("authenticating: instance %q is a %T, not a user store", inst.Name(), inst.Value()))
		}
		var res abi.AuthenticateUserResponse
		err := extension.Call(ctx, inst, abi.OpAuthenticateUser, func(ctx context.Context) error {
			var err error
			res, err = userstore.CheckAuthenticate(us.AuthenticateUser(ctx, abi.AuthenticateUserRequest{
				Tenant:   req.Tenant,
				Username: username,
				Password: pw,
				Config:   inst.Config(),
			}))
			return err
		})
		if err != nil {
			return abi.AuthenticateResponse{}, fmt.Errorf("authenticating against user store %q: %w", inst.Name(), err)
		}
		switch res.Outcome {
		case abi.UserUnknown:
			continue
		case abi.UserAuthenticated:
			if req.KnownSubject != "" && req.KnownSubject != res.User.ID {
				// An earlier step established someone else.
				return refused(abi.ReasonInvalidCredentials), nil
			}
			return authenticated(inst.Name(), res.User), nil
		case abi.UserLocked:
			return refused(abi.ReasonLocked), nil
		case abi.UserDisabled:
			return refused(abi.ReasonDisabled), nil
		default: // abi.UserInvalidCredentials: the search stops here.
			return refused(abi.ReasonInvalidCredentials), nil
		}
	}
	return refused(abi.ReasonInvalidCredentials), nil
}

// authenticateDirectory checks the password through the tenant's user
// store domains (see the package documentation).
func (a *Authenticator) authenticateDirectory(ctx context.Context, req abi.AuthenticateRequest, username, pw string) (abi.AuthenticateResponse, error) {
	res, err := a.dir.Authenticate(ctx, req.Tenant, username, pw)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	switch res.Response.Outcome {
	case abi.UserAuthenticated:
		if req.KnownSubject != "" && req.KnownSubject != res.Response.User.ID {
			return refused(abi.ReasonInvalidCredentials), nil
		}
		resp := authenticated(res.Member.Instance.Name(), res.Response.User)
		resp.Claims["user_store_domain"] = res.Member.Domain
		return resp, nil
	case abi.UserLocked:
		return refused(abi.ReasonLocked), nil
	case abi.UserDisabled:
		return refused(abi.ReasonDisabled), nil
	}
	return refused(abi.ReasonInvalidCredentials), nil
}

// challenge asks for the form, with username pre-filled and an error
// sentence when set.
func (a *Authenticator) challenge(username, errMsg string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		Challenge: &abi.Challenge{
			Kind: abi.ChallengeForm,
			Fields: []abi.Field{
				{Name: a.UsernameParam, Type: abi.FieldText, Label: a.UsernameLabel, Value: username, Required: true},
				{Name: a.PasswordParam, Type: abi.FieldPassword, Label: a.PasswordLabel, Required: true},
			},
			Error: errMsg,
		},
	}
}

// authenticated answers for u found in the named store. The claims are in
// the local dialect; user_store names the store instance that knew the user.
func authenticated(store string, u *abi.User) abi.AuthenticateResponse {
	claims := map[string]any{"username": u.Username, "user_store": store}
	if u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeAuthenticated,
		Subject: u.ID,
		Claims:  claims,
		AMR:     []string{AMR},
	}
}

func refused(reason string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason}
}

// param returns the first value of a parameter and whether it was present.
func param(params map[string][]string, name string) (string, bool) {
	vs, ok := params[name]
	if !ok || len(vs) == 0 {
		return "", ok
	}
	return vs[0], true
}

var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ authn.Recognizer      = (*Authenticator)(nil)
	_ extension.Provisioner = (*Authenticator)(nil)
	_ extension.Validator   = (*Authenticator)(nil)
	_ UserStores            = UserStoresFunc(nil)
	_ enabler               = (*extension.Instances)(nil)
)

// Package federation holds what the federated authenticators share: the
// authn.oidc_federation instance that signs users in through an upstream
// OpenID Provider and the authn.saml_federation instance that does so
// through an upstream SAML identity provider.
//
// A federated login leaves Latch and comes back at an endpoint of the
// instance under the tenant ({base}/login/federated/{instance}/{op}),
// which the node routes to the instance's Endpoint. The round trip is
// bound to the login flow that started it: the authenticator stores a
// single-use pending record under a random key (the OAuth state, the SAML
// request id) naming the flow; the endpoint takes it (once), verifies the
// upstream's answer, resolves the local account (Accounts: links, linking
// by verified email, just-in-time creation) and stores a single-use result
// for that flow; the browser then returns to the flow, whose next call of
// Authenticate takes the result. The login flow itself is bound to the
// browser's CSRF cookie, so an answer delivered to another browser cannot
// finish its login.
package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// PathPrefix is the path, below a tenant's base, of the endpoints of
// federated authenticators: PathPrefix + "/{instance}/{op}".
const PathPrefix = "/login/federated"

// Dependency names the instances take from extension.Env.Dep.
const (
	// DepStore is the kernel store (links, tenants and the single-use
	// records of a round trip).
	DepStore = "store"
	// DepUserStores is the tenant's user stores in search order, as the
	// password authenticator takes them.
	DepUserStores = "userstores"
	// DepDirectory, optional, is the user store directory
	// (*router.Router): its primary store of a tenant is where
	// just-in-time provisioning creates users. Without it, the first of
	// the tenant's user stores is.
	DepDirectory = "userstore.directory"
)

// ErrDependency means a dependency is missing or of the wrong type.
var ErrDependency = errors.New("missing or mistyped dependency")

// Store is the part of the kernel store the federated authenticators use.
type Store interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	ListUsers(ctx context.Context, tenantID string, q store.UserQuery) ([]store.User, string, error)
	store.Tokens
	store.Links
}

// UserStores gives the user store instances a tenant uses, in search
// order; the first is the tenant's primary store, where just-in-time
// provisioning creates users, unless the value also has a
// PrimaryUserStore method.
type UserStores interface {
	UserStores(ctx context.Context, tenant string) []*extension.Instance
}

// primaryStore is a UserStores that names the tenant's primary store.
type primaryStore interface {
	PrimaryUserStore(ctx context.Context, tenant string) (*extension.Instance, error)
}

// withPrimary takes the primary store from a user store directory.
type withPrimary struct {
	stores UserStores
	dir    interface {
		Primary(tenant string) (router.Member, error)
	}
}

func (w withPrimary) UserStores(ctx context.Context, tenant string) []*extension.Instance {
	return w.stores.UserStores(ctx, tenant)
}

func (w withPrimary) PrimaryUserStore(_ context.Context, tenant string) (*extension.Instance, error) {
	m, err := w.dir.Primary(tenant)
	if err != nil {
		return nil, err
	}
	return m.Instance, nil
}

type enabler interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

type userStoresFunc func(ctx context.Context, tenant string) []*extension.Instance

func (f userStoresFunc) UserStores(ctx context.Context, tenant string) []*extension.Instance {
	return f(ctx, tenant)
}

// Setup is what a federated authenticator takes from its Env when it is
// provisioned.
type Setup struct {
	Store    Store
	Accounts *Accounts
	// Client reaches the upstream (HTTPClient with FetchTimeout).
	Client *http.Client
	// Log is the instance's logger, or one that discards.
	Log *slog.Logger
}

// NewSetup reads the dependencies of an instance of module id from env
// (see Deps) and makes its upstream client; allowPrivate lets the client
// reach loopback and private addresses.
func NewSetup(env extension.Env, id extension.ID, allowPrivate bool) (Setup, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, us, err := Deps(env, id)
	if err != nil {
		return Setup{}, err
	}
	return Setup{
		Store:    st,
		Accounts: &Accounts{Store: st, UserStores: us, Log: log},
		Client:   HTTPClient(allowPrivate, FetchTimeout),
		Log:      log,
	}, nil
}

// Deps reads the two dependencies from env.
func Deps(env extension.Env, id extension.ID) (Store, UserStores, error) {
	d, _ := env.Dep(DepStore)
	st, ok := d.(Store)
	if !ok {
		return nil, nil, fmt.Errorf("provisioning %s: %w: %q is %T, want the kernel store", id, ErrDependency, DepStore, d)
	}
	var us UserStores
	switch s, _ := env.Dep(DepUserStores); v := s.(type) {
	case UserStores:
		us = v
	case func(context.Context, string) []*extension.Instance:
		us = userStoresFunc(v)
	case enabler:
		us = userStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
			return v.Enabled(tenant, extension.KindUserStore)
		})
	default:
		return nil, nil, fmt.Errorf("provisioning %s: %w: %q is %T, want the tenant's user stores", id, ErrDependency, DepUserStores, s)
	}
	if d, ok := env.Dep(DepDirectory); ok {
		dir, ok := d.(interface {
			Primary(tenant string) (router.Member, error)
		})
		if !ok {
			return nil, nil, fmt.Errorf("provisioning %s: %w: %q is %T, want a user store directory", id, ErrDependency, DepDirectory, d)
		}
		us = withPrimary{stores: us, dir: dir}
	}
	return st, us, nil
}

// Endpoint is implemented by authenticators that receive the browser at
// {base}/login/federated/{instance}/{op}. The node routes a request there
// to the instance of that name, when the tenant enables it.
type Endpoint interface {
	ServeFederation(ctx context.Context, r *Request) (*Response, error)
}

// Request is one request to an Endpoint.
type Request struct {
	// Tenant is the tenant's name.
	Tenant string
	// BaseURL is the external URL of the tenant's base, without a
	// trailing slash ("https://id.example.com/t/acme").
	BaseURL string
	// Op is the last path segment ("callback", "acs", "metadata").
	Op string
	// Method is the HTTP method.
	Method string
	// Params are the query parameters, and for a POST the form ones.
	Params url.Values
}

// Response is an Endpoint's answer: a redirect, or a body.
type Response struct {
	// Redirect, when set, is where the browser goes next (303).
	Redirect string
	// Events are audit events the node records for the request.
	Events []Event
	// Status, ContentType and Body are the answer otherwise.
	Status      int
	ContentType string
	Body        []byte
}

// Audit actions of federated logins.
const (
	// ActionProvision: just-in-time provisioning created a user.
	ActionProvision = "user.provision"
	// ActionLink: a login linked a federated identity to a user.
	ActionLink = "user.link"
)

// Event is an audit event an Endpoint asks the node to record.
type Event struct {
	Action string
	// Actor and Target are event references ("user:{id}").
	Actor, Target string
	Detail        map[string]any
}

// AccountEvents are the audit events of resolving id to acc: the user's
// creation and the new link, when this login made them.
func AccountEvents(id Identity, acc Account) []Event {
	var evs []Event
	detail := map[string]any{"idp": id.IDP, "jit": acc.Created}
	if acc.Created {
		evs = append(evs, Event{Action: ActionProvision, Actor: "user:" + acc.UserID, Target: "user:" + acc.UserID, Detail: detail})
	}
	if acc.Linked {
		evs = append(evs, Event{Action: ActionLink, Actor: "user:" + acc.UserID, Target: "user:" + acc.UserID, Detail: detail})
	}
	return evs
}

// Refusal is an Endpoint's (or Accounts') answer that the user must see:
// the upstream's answer was refused or no local account may be used. The
// node shows Message on an error page with Status; it never holds secrets
// or internals.
type Refusal struct {
	Status  int
	Message string
	// Cause is logged, never shown.
	Cause error
}

func (r *Refusal) Error() string {
	if r.Cause != nil {
		return r.Message + ": " + r.Cause.Error()
	}
	return r.Message
}

func (r *Refusal) Unwrap() error { return r.Cause }

// Refuse returns a Refusal.
func Refuse(status int, message string, cause error) *Refusal {
	return &Refusal{Status: status, Message: message, Cause: cause}
}

// Messages of the common refusals.
const (
	MsgExpired     = "This sign-in attempt has expired or was already used. Go back to the application and sign in again."
	MsgUnverified  = "The identity provider's answer could not be verified, so you were not signed in."
	MsgCanceled    = "The identity provider did not sign you in."
	MsgNoAccount   = "No account here is linked to this identity, and this sign-in method does not create accounts. Sign in another way first to link it, or ask an administrator."
	MsgLinkedElse  = "This identity is already linked to a different account."
	MsgDisabled    = "Your account is disabled or locked."
	MsgAmbiguous   = "Several accounts share this email address, so the identity could not be linked. Ask an administrator."
	MsgNameTaken   = "An account with this username already exists. Sign in with it first to link this identity, or ask an administrator."
	MsgProvisioner = "Your account could not be created. Ask an administrator."
)

// Status codes of the refusals.
const (
	StatusBad       = http.StatusBadRequest
	StatusForbidden = http.StatusForbidden
)

// BaseFromCallback derives the tenant's external base URL from a login
// step's callback URL ("{base}/login?flow=…").
func BaseFromCallback(callback string) (string, error) {
	u, err := url.Parse(callback)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || !strings.HasSuffix(u.Path, "/login") {
		return "", fmt.Errorf("deriving the tenant base from callback %q: not a login url", callback)
	}
	u.RawQuery, u.Fragment, u.ForceQuery = "", "", false
	u.Path = strings.TrimSuffix(u.Path, "/login")
	u.RawPath = ""
	return u.String(), nil
}

// EndpointURL is the external URL of an instance's endpoint op below base.
func EndpointURL(base, instance, op string) string {
	return base + PathPrefix + "/" + url.PathEscape(instance) + "/" + op
}

// Package identifier is the authn.identifier extension: identifier-first
// login. Its step asks only for the username (or email address), finds the
// user in the tenant's user stores, and proves nothing: it implements
// kernel/authn.Identifier, so the login flow keeps the user as a claim
// (to pre-fill the username, to check that later steps sign in that user,
// and for adaptive scripts) and routes the next step: to the authenticator
// an email domain is mapped to (a federated login), else to the first
// offered authenticator the user is enrolled with (a passkey), else to the
// step's first option.
//
// Put it alone in step 1 and the real authenticators in step 2:
//
//	{"steps": [{"options": ["identifier"]}, {"options": ["password", "webauthn"]}]}
//
// An unknown name is refused as a wrong password is, with the same
// message. Identifier-first tells whoever types a name whether it exists;
// offer it only where that is acceptable.
package identifier

import (
	"cmp"
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/internal/lookup"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
)

// ID is the module id.
const ID extension.ID = "authn.identifier"

// DepUserStores is the dependency of the tenant's user stores.
const DepUserStores = lookup.DepUserStores

// Param is the form field of the identifier.
const Param = "username"

const maxIdentifier = 320

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.identifier module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Identifier-first login: asks for the username only, then routes the next step by the user.",
	}
}

// Authenticator is an authn.identifier instance; its exported fields are
// its configuration.
type Authenticator struct {
	Domains map[string]string `json:"domains,omitempty"`
	Label   string            `json:"label,omitempty"`

	stores lookup.UserStores
}

// Provision takes the user stores.
func (a *Authenticator) Provision(_ context.Context, env extension.Env) error {
	a.Label = cmp.Or(a.Label, "Username or email")
	d, _ := env.Dep(DepUserStores)
	s, ok := d.(lookup.UserStores)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want the tenant's user stores", ID, DepUserStores, d)
	}
	a.stores = s
	domains := make(map[string]string, len(a.Domains))
	for dom, inst := range a.Domains {
		if dom == "" || inst == "" {
			return fmt.Errorf("domains: %q maps to %q; both must be set", dom, inst)
		}
		domains[strings.ToLower(dom)] = inst
	}
	a.Domains = domains
	return nil
}

// IdentifiesOnly reports that the step proves nothing; it implements
// authn.Identifier.
func (a *Authenticator) IdentifiesOnly() bool { return true }

// Authenticate asks for the identifier, or finds the user it names.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	id := ""
	if v := req.Params[Param]; len(v) > 0 {
		id = strings.TrimSpace(v[0])
	}
	if id == "" {
		return a.challenge(""), nil
	}
	if len(id) > maxIdentifier {
		return refused(abi.ReasonInvalidCredentials), nil
	}
	u, found, err := lookup.Find(ctx, a.stores, abi.FindUsersRequest{Tenant: req.Tenant, Username: id})
	if err == nil && !found && strings.Contains(id, "@") {
		u, found, err = lookup.Find(ctx, a.stores, abi.FindUsersRequest{Tenant: req.Tenant, Email: id})
	}
	switch {
	case errors.Is(err, lookup.ErrNotUnique):
		return refused(abi.ReasonInvalidCredentials), nil
	case err != nil:
		return abi.AuthenticateResponse{}, err
	case !found:
		return refused(abi.ReasonInvalidCredentials), nil
	case !u.Enabled:
		return refused(abi.ReasonDisabled), nil
	}
	claims := map[string]any{"username": u.Username}
	if _, dom, ok := strings.Cut(id, "@"); ok {
		if inst := a.Domains[strings.ToLower(dom)]; inst != "" {
			claims[authn.Preference] = inst
		}
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: u.ID, Claims: claims}, nil
}

func (a *Authenticator) challenge(errMsg string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		Challenge: &abi.Challenge{
			Kind:   abi.ChallengeForm,
			Error:  errMsg,
			Fields: []abi.Field{{Name: Param, Type: abi.FieldText, Label: a.Label, Required: true}},
		},
	}
}

func refused(reason string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason}
}

// Interface guards.
var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ authn.Identifier      = (*Authenticator)(nil)
	_ extension.Provisioner = (*Authenticator)(nil)
)

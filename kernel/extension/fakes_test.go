package extension_test

import (
	"context"
	"errors"
	"sync"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
)

// journal records lifecycle steps across instances, in order.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// fakeStore is a user store that records its lifecycle and can be told to
// fail at each step through its configuration.
type fakeStore struct {
	j *journal

	Label         string `json:"label"`
	FailProvision bool   `json:"fail_provision"`
	FailValidate  bool   `json:"fail_validate"`
	FailClose     bool   `json:"fail_close"`
	Unhealthy     bool   `json:"unhealthy"`

	name string
}

var errFake = errors.New("fake failure")

func (s *fakeStore) Provision(_ context.Context, env extension.Env) error {
	s.name = env.Name
	s.j.add("provision " + env.Name)
	if s.FailProvision {
		return errFake
	}
	return nil
}

func (s *fakeStore) Validate() error {
	s.j.add("validate " + s.name)
	if s.FailValidate {
		return errFake
	}
	return nil
}

func (s *fakeStore) Close(context.Context) error {
	s.j.add("close " + s.name)
	if s.FailClose {
		return errFake
	}
	return nil
}

func (s *fakeStore) Health(context.Context) error {
	if s.Unhealthy {
		return errFake
	}
	return nil
}

func (s *fakeStore) GetUser(context.Context, abi.GetUserRequest) (abi.User, error) {
	return abi.User{ID: "u-1", Username: s.Label}, nil
}

func (s *fakeStore) FindUsers(context.Context, abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (s *fakeStore) AuthenticateUser(context.Context, abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

// fakeAuthn is an authenticator with a configuration schema.
type fakeAuthn struct {
	MaxAttempts int `json:"max_attempts"`
	Retry       struct {
		Backoff string `json:"backoff"`
	} `json:"retry"`
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Labels map[string]string `json:"labels"`
	Extra  extraConfig       `json:"extra"`
}

// extraConfig decodes itself, so it accepts any members.
type extraConfig struct{ raw []byte }

func (e *extraConfig) UnmarshalJSON(b []byte) error {
	e.raw = append([]byte(nil), b...)
	return nil
}

const fakeAuthnSchema = `{
  "type": "object",
  "properties": {
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
    "retry": {
      "type": "object",
      "properties": {"backoff": {"enum": ["linear", "exponential"]}},
      "required": ["backoff"]
    },
    "servers": {"type": "array", "items": {"type": "object", "properties": {"url": {"type": "string", "minLength": 1}}}}
  }
}`

func (a *fakeAuthn) Authenticate(context.Context, abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated}, nil
}

// plainGrant is a grant with no configuration and no lifecycle.
type plainGrant struct{}

func (plainGrant) Token(context.Context, abi.TokenRequest) (abi.TokenResponse, error) {
	return abi.TokenResponse{Declined: true}, nil
}

// newTestRegistry returns a registry with the fakes; fake stores write to j.
func newTestRegistry(j *journal) *extension.Registry {
	r := extension.NewRegistry()
	r.Register(extension.Module{ID: "userstore.fake", New: func() any { return &fakeStore{j: j} }})
	r.Register(extension.Module{ID: "authn.fake", New: func() any { return new(fakeAuthn) }, ConfigSchema: []byte(fakeAuthnSchema)})
	r.Register(extension.Module{ID: "grant.plain", Kind: extension.KindGrant, New: func() any { return plainGrant{} }})
	return r
}

var (
	_ extension.Provisioner   = (*fakeStore)(nil)
	_ extension.Validator     = (*fakeStore)(nil)
	_ extension.Cleaner       = (*fakeStore)(nil)
	_ extension.HealthChecker = (*fakeStore)(nil)
)

package login

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// An application may name a stored, versioned flow (store.Flow) instead of
// holding its steps inline:
//
//	{"authentication": {"flow": "admins-mfa"}}
//
// Each login runs the flow's latest version, read when the login decides
// its next step, so a new version (or a roll back) applies to the next
// step of every login without a restart, on every node.

// ErrFlowNotFound means an application names a stored flow the tenant does
// not have.
var ErrFlowNotFound = errors.New("the application's authentication flow does not exist")

// checkFlowRef refuses a reference mixed with inline steps.
func checkFlowRef(fc *flowConfig) error {
	if fc.Flow == "" {
		return nil
	}
	if len(fc.Steps) > 0 || fc.Script != "" {
		return errors.New(`"flow" names a stored flow and stands alone: remove "steps" and "script"`)
	}
	if len(fc.Flow) > 128 {
		return errors.New(`"flow" must be at most 128 bytes`)
	}
	return nil
}

// CheckFlowDefinition reports whether def is a valid stored flow: the
// shape of an inline flow (see ClientSettingAuthentication) with at least
// one step and no reference to another flow.
func CheckFlowDefinition(def map[string]any) error {
	fc, err := parseFlowConfig(def)
	if err != nil {
		return err
	}
	if fc == nil || len(fc.Steps) == 0 {
		return errors.New("a flow needs at least one step")
	}
	if fc.Flow != "" {
		return errors.New(`a stored flow cannot refer to another flow ("flow")`)
	}
	return nil
}

// FlowScript returns the adaptive script of a valid flow definition, or "".
func FlowScript(def map[string]any) string {
	s, _ := def["script"].(string)
	return s
}

// CheckFlowOptions reports the first option of def's steps that names no
// authenticator among opts (the instances a tenant enables).
func CheckFlowOptions(def map[string]any, opts []*extension.Instance) error {
	fc, err := parseFlowConfig(def)
	if err != nil || fc == nil {
		return err
	}
	for i, st := range fc.Steps {
		for j, o := range st.Options {
			if resolveOption(opts, o) == nil {
				return fmt.Errorf("steps[%d].options[%d]: %q names no authenticator this tenant enables", i, j, o)
			}
		}
	}
	return nil
}

// storedFlow loads the latest version of the tenant's flow.
func (s *Service) storedFlow(ctx context.Context, tenantID, name string) (*flowConfig, error) {
	f, err := s.d.Store.GetFlow(ctx, tenantID, name, 0)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %q", ErrFlowNotFound, name)
	case err != nil:
		return nil, fmt.Errorf("loading flow %q: %w", name, err)
	}
	fc, err := parseFlowConfig(f.Definition)
	if err != nil {
		return nil, fmt.Errorf("flow %q version %d: %w", name, f.Version, err)
	}
	if fc == nil || len(fc.Steps) == 0 || fc.Flow != "" {
		return nil, fmt.Errorf("flow %q version %d: not a runnable flow", name, f.Version)
	}
	return fc, nil
}

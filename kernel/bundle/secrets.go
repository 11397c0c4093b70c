package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/latchid/latch/kernel/secret"
)

// Mask stands for a secret value wherever a configuration is shown. Sent
// back as a secret's value (an operator re-applying what a listing showed),
// it keeps the stored value.
const Mask = "********"

// SecretPurpose is the purpose of the key, derived from the master key with
// secret.DeriveKey, that seals bundles' secret configuration values.
const SecretPurpose = "bundle-secrets"

// ErrNoSecretBox is returned when the bundle's configuration has secrets
// and the manager has no box to seal or open them.
var ErrNoSecretBox = errors.New("no key to seal bundle secrets")

// SecretFields lists the configuration's secret properties, sorted: the
// top-level properties of the config schema marked "writeOnly": true (JSON
// Schema's mark for a value that is written and never read back). Their
// values are sealed at rest, masked in listings and never logged.
func (m Manifest) SecretFields() []string {
	if len(m.ConfigSchema) == 0 {
		return nil
	}
	var s struct {
		Properties map[string]struct {
			WriteOnly bool `json:"writeOnly"`
		} `json:"properties"`
	}
	if json.Unmarshal(m.ConfigSchema, &s) != nil {
		return nil
	}
	var out []string
	for name, p := range s.Properties {
		if p.WriteOnly {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// splitConfig separates the secret fields' values from a configuration
// object. A configuration that is empty, not an object or has no secret
// fields comes back as it is.
func splitConfig(config json.RawMessage, fields []string) (public json.RawMessage, secrets map[string]json.RawMessage, err error) {
	if len(fields) == 0 || len(bytes.TrimSpace(config)) == 0 {
		return config, nil, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(config, &obj) != nil || obj == nil {
		return config, nil, nil
	}
	for _, f := range fields {
		if v, ok := obj[f]; ok {
			if secrets == nil {
				secrets = map[string]json.RawMessage{}
			}
			secrets[f] = v
			delete(obj, f)
		}
	}
	if secrets == nil {
		return config, nil, nil
	}
	public, err = json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return public, secrets, nil
}

// mergeConfig puts secret values back into a configuration object.
func mergeConfig(config json.RawMessage, secrets map[string]json.RawMessage) (json.RawMessage, error) {
	if len(secrets) == 0 {
		return config, nil
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(config)) > 0 {
		if err := json.Unmarshal(config, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%w: the configuration is not a JSON object, so it cannot hold secrets", ErrInvalidConfig)
		}
	}
	maps.Copy(obj, secrets)
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return out, nil
}

// redact replaces every secret value (as JSON and, for a string, as its
// text) in msg with Mask.
func redact(msg string, secrets map[string]json.RawMessage) string {
	for _, v := range secrets {
		var s string
		if json.Unmarshal(v, &s) == nil && s != "" {
			msg = strings.ReplaceAll(msg, s, Mask)
		}
		if len(v) > 2 {
			msg = strings.ReplaceAll(msg, string(v), Mask)
		}
	}
	return msg
}

// isMask reports whether a value is the mask (as a JSON string).
func isMask(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s == Mask
}

// secretAD binds sealed secrets to their bundle.
func secretAD(name string) []byte { return []byte("latch/bundle-secrets/" + name) }

// seal seals a bundle's secret values; nil for none.
func (m *Manager) seal(name string, secrets map[string]json.RawMessage) ([]byte, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	if m.Box == nil {
		return nil, fmt.Errorf("bundle %s: %w", name, ErrNoSecretBox)
	}
	raw, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encoding the secrets of bundle %s: %w", name, err)
	}
	sealed, err := m.Box.Seal(raw, secretAD(name))
	if err != nil {
		return nil, fmt.Errorf("sealing the secrets of bundle %s: %w", name, err)
	}
	return sealed, nil
}

// Secrets opens a stored version's secret configuration values, by field.
func (m *Manager) Secrets(rec Record) (map[string]json.RawMessage, error) {
	if len(rec.Sealed) == 0 {
		return nil, nil
	}
	if m.Box == nil {
		return nil, fmt.Errorf("bundle %s: %w", rec.Manifest.Name, ErrNoSecretBox)
	}
	raw, err := m.Box.Open(rec.Sealed, secretAD(rec.Manifest.Name))
	if err != nil {
		return nil, fmt.Errorf("opening the secrets of bundle %s (was the master key changed?): %w", rec.Manifest.Name, err)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decoding the secrets of bundle %s: %w", rec.Manifest.Name, err)
	}
	return out, nil
}

// FullConfig is a stored version's configuration with its secret values:
// what the bundle's instances are configured with. It is never stored or
// shown.
func (m *Manager) FullConfig(rec Record) (json.RawMessage, map[string]json.RawMessage, error) {
	secrets, err := m.Secrets(rec)
	if err != nil {
		return nil, nil, err
	}
	full, err := mergeConfig(rec.Config, secrets)
	if err != nil {
		return nil, nil, err
	}
	return full, secrets, nil
}

// MaskedConfig is a stored version's configuration as listings show it:
// every secret that is set stands as Mask.
func (r Record) MaskedConfig() json.RawMessage {
	if len(r.SecretNames) == 0 {
		return r.Config
	}
	masked := make(map[string]json.RawMessage, len(r.SecretNames))
	for _, n := range r.SecretNames {
		masked[n] = json.RawMessage(`"` + Mask + `"`)
	}
	out, err := mergeConfig(r.Config, masked)
	if err != nil {
		return r.Config
	}
	return out
}

// NewSecretBox is the box that seals bundles' secrets under a master key.
func NewSecretBox(masterKey []byte) (*secret.Box, error) {
	key, err := secret.DeriveKey(masterKey, SecretPurpose)
	if err != nil {
		return nil, err
	}
	return secret.NewBox(key)
}

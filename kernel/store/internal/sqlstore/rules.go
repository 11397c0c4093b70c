package sqlstore

import (
	"fmt"
	"strings"

	"github.com/latchid/latch/kernel/store"
)

// Bundle states.
const (
	bundleEnabled  = "enabled"
	bundleDisabled = "disabled"
	bundlePrevious = "previous"
)

// invalid returns a store.ErrInvalid error naming the broken rule.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), store.ErrInvalid)
}

// required returns store.ErrInvalid naming the first empty field.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return invalid("%s is required", fields[i])
		}
	}
	return nil
}

// validTenantName reports whether name is 1..63 characters of [a-z0-9-].
func validTenantName(name string) bool {
	if len(name) < 1 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkTenant(t store.Tenant) error {
	if !validTenantName(t.Name) {
		return invalid("tenant name %q is not 1..63 characters of [a-z0-9-]", t.Name)
	}
	return nil
}

// fold returns the form in which usernames and emails are compared: both
// backends fold in Go, so that they agree on every script.
func fold(s string) string {
	return strings.ToLower(s)
}

func checkUser(u store.User) error {
	return required("tenant id", u.TenantID, "username", u.Username)
}

func checkGroup(g store.Group) error {
	return required("tenant id", g.TenantID, "group name", g.Name)
}

func checkRole(r store.Role) error {
	return required("tenant id", r.TenantID, "role name", r.Name)
}

func checkClient(c store.Client) error {
	return required("tenant id", c.TenantID, "client id", c.ClientID)
}

func checkSession(s store.Session) error {
	return required("tenant id", s.TenantID, "user id", s.UserID)
}

func checkToken(t store.Token) error {
	return required("tenant id", t.TenantID, "kind", t.Kind, "key", t.Key)
}

func checkSigningKey(k store.SigningKey) error {
	if err := required("tenant id", k.TenantID, "key id", k.ID, "algorithm", k.Algorithm); err != nil {
		return err
	}
	switch k.State {
	case store.KeyNext, store.KeyActive, store.KeyRetiring:
		return nil
	}
	return invalid("key state %q is not %q, %q or %q", k.State, store.KeyNext, store.KeyActive, store.KeyRetiring)
}

func checkConsent(c store.Consent) error {
	return required("tenant id", c.TenantID, "user id", c.UserID, "client id", c.ClientID)
}

func checkAudit(e store.AuditEvent) error {
	return required("action", e.Action)
}

func checkBundleState(state string) error {
	switch state {
	case bundleEnabled, bundleDisabled, bundlePrevious:
		return nil
	}
	return invalid("bundle state %q is not %q, %q or %q", state, bundleEnabled, bundleDisabled, bundlePrevious)
}

func checkBundle(b store.Bundle) error {
	if err := required("bundle name", b.Name, "bundle version", b.Version); err != nil {
		return err
	}
	return checkBundleState(b.State)
}

func checkKV(plugin, key string) error {
	return required("plugin", plugin, "key", key)
}

func checkSubjectKind(kind string) error {
	switch kind {
	case store.SubjectUser, store.SubjectGroup:
		return nil
	}
	return invalid("subject kind %q is not %q or %q", kind, store.SubjectUser, store.SubjectGroup)
}

package login

import (
	"fmt"
	"maps"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/store"
)

// DataAttributes is the key in store.Session.Data of the user attributes
// a login released from a federated attribute step (see Attributes).
const DataAttributes = "attributes"

// Local claim names a federated step answers besides the user's
// attributes (builtin/authn/federation): they name the account and the
// provider, and are not released as attributes.
var federationClaims = map[string]bool{"username": true, "idp": true, "idp_subject": true, "user_store": true}

// Limits of the attributes a federated step may carry into a session.
const (
	maxReleasedAttrs = 64
	maxReleasedValue = 1024
)

// stepSubject is the History subject of a step that authenticated resp's
// user. A federated step (one whose answer names an upstream Issuer) is
// marked so, and carries the claims the upstream asserted, mapped to local
// names by its claim mapping, as remote claims: scripts read them as
// user.remoteClaims, and the login releases them when the step is its
// attribute step.
func stepSubject(resp abi.AuthenticateResponse, username, userStore string) *adaptive.Subject {
	subj := &adaptive.Subject{ID: resp.Subject, Username: username, UserStoreDomain: userStore}
	if resp.Issuer == "" {
		return subj
	}
	subj.Federated = true
	subj.RemoteClaims = map[string]string{}
	for k, v := range resp.Claims {
		if len(subj.RemoteClaims) >= maxReleasedAttrs+len(federationClaims) || len(k) > 128 {
			break
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case bool, float64, int, int64:
			s = fmt.Sprint(x)
		default:
			continue // lists and objects are not mapped attributes
		}
		if len(s) <= maxReleasedValue {
			subj.RemoteClaims[k] = s
		}
	}
	return subj
}

// sessionSubject is the History subject of the step a step-up login
// counts as done: the session's user, and when the session's login
// released a federated attribute step's attributes, those, so that a
// step-up whose attribute step stays the first one releases them again.
func sessionSubject(sess *store.Session, username string) *adaptive.Subject {
	subj := &adaptive.Subject{ID: sess.UserID, Username: username}
	attrs := Attributes(sess)
	if attrs == nil {
		return subj
	}
	subj.Federated = true
	subj.RemoteClaims = make(map[string]string, len(attrs))
	for k, v := range attrs {
		subj.RemoteClaims[k] = fmt.Sprint(v)
	}
	return subj
}

// attributeSubject is the user whose attributes a flow without a script
// releases, as the adaptive engine decides for a flow with one: the user
// of the last successful step marked attribute_step, else the subject's
// (the last successful step marked subject_step, else the first
// successful step).
func attributeSubject(history []adaptive.Entry, steps []stepConfig) *adaptive.Subject {
	var subj, attr *adaptive.Subject
	marked := func(n int, attrStep bool) bool {
		if n < 1 || n > len(steps) {
			return false
		}
		if attrStep {
			return steps[n-1].AttributeStep
		}
		return steps[n-1].SubjectStep
	}
	for _, e := range history {
		if e.Kind != adaptive.EntryStep || !e.Success || e.Subject == nil {
			continue
		}
		if subj == nil || marked(e.Step, false) {
			subj = e.Subject
		}
		if marked(e.Step, true) {
			attr = e.Subject
		}
	}
	if attr == nil {
		return subj
	}
	return attr
}

// releasedAttributes are the attributes a completed login releases from
// its attribute step's user: the remote claims of a federated step, with
// email_verified a boolean again; nil for a local step, whose account's
// own attributes are released.
func releasedAttributes(subj *adaptive.Subject) map[string]any {
	if subj == nil || !subj.Federated {
		return nil
	}
	out := map[string]any{}
	for k, v := range subj.RemoteClaims {
		switch {
		case federationClaims[k]:
		case k == "email_verified":
			out[k] = strings.EqualFold(v, "true")
		default:
			out[k] = v
		}
	}
	return out
}

// Attributes returns the user attributes the login of sess released from
// a federated attribute step: the attributes the identity provider
// asserted, mapped to local names by the authenticator's claim mapping.
// Protocol front doors release these to applications instead of the
// account's (see WithAttributes). It is nil when the attribute step was a
// local one, or sess is nil.
func Attributes(sess *store.Session) map[string]any {
	if sess == nil {
		return nil
	}
	m, _ := sess.Data[DataAttributes].(map[string]any)
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}

// WithAttributes returns u as an application sees it when its login
// released attrs (Attributes): the profile (display_name, given_name,
// family_name, email, email_verified, phone_number) and the other
// attributes are those of attrs alone, so that nothing the identity
// provider did not assert is released; the id, the username and the
// account's roles and groups stay u's. With attrs nil, u is returned as it
// is.
func WithAttributes(u store.User, attrs map[string]any) store.User {
	if attrs == nil {
		return u
	}
	str := func(k string) string { s, _ := attrs[k].(string); return s }
	u.DisplayName, u.GivenName, u.FamilyName = str("display_name"), str("given_name"), str("family_name")
	u.Email, u.PhoneNumber = str("email"), str("phone_number")
	u.EmailVerified, _ = attrs["email_verified"].(bool)
	u.Attributes = map[string]any{}
	for k, v := range attrs {
		switch k {
		case "display_name", "given_name", "family_name", "email", "email_verified", "phone_number":
		default:
			u.Attributes[k] = v
		}
	}
	return u
}

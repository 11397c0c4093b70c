package federation

import (
	"fmt"
	"strings"
)

// Local attribute names a claim mapping may fill; any other local name
// lands in the user's attributes.
const (
	AttrUsername      = "username"
	AttrEmail         = "email"
	AttrEmailVerified = "email_verified"
	AttrDisplayName   = "display_name"
	AttrGivenName     = "given_name"
	AttrFamilyName    = "family_name"
	AttrPhoneNumber   = "phone_number"
)

// Limits of a mapped value.
const (
	maxMappedValue = 1024
	maxMappedAttrs = 64
)

// Map builds an identity from the upstream's claims: mapping names, per
// local attribute, the upstream claim that fills it (defaults fill the
// local attributes the mapping leaves out). Values must be strings (or,
// for email_verified, a boolean or "true"); a list takes its first
// string; other values and overlong strings are left out.
func Map(idp, issuer, subject string, upstream map[string]any, mapping, defaults map[string]string) Identity {
	id := Identity{IDP: idp, Issuer: issuer, Subject: subject, Attributes: map[string]any{}}
	merged := make(map[string]string, len(defaults)+len(mapping))
	for k, v := range defaults {
		merged[k] = v
	}
	for k, v := range mapping {
		merged[k] = v
	}
	for local, remote := range merged {
		raw, ok := upstream[remote]
		if !ok || remote == "" {
			continue
		}
		if local == AttrEmailVerified {
			switch v := raw.(type) {
			case bool:
				id.EmailVerified = v
			case string:
				id.EmailVerified = strings.EqualFold(v, "true")
			case []string:
				id.EmailVerified = len(v) > 0 && strings.EqualFold(v[0], "true")
			}
			continue
		}
		s, ok := str(raw)
		if !ok {
			continue
		}
		switch local {
		case AttrUsername:
			id.Username = s
		case AttrEmail:
			id.Email = s
		case AttrDisplayName:
			id.DisplayName = s
		case AttrGivenName:
			id.GivenName = s
		case AttrFamilyName:
			id.FamilyName = s
		case AttrPhoneNumber:
			id.PhoneNumber = s
		default:
			if len(id.Attributes) < maxMappedAttrs {
				id.Attributes[local] = s
			}
		}
	}
	return id
}

func str(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []string:
		if len(x) == 0 {
			return "", false
		}
		s = x[0]
	case []any:
		if len(x) == 0 {
			return "", false
		}
		return str(x[0])
	case float64, bool:
		s = fmt.Sprint(x)
	default:
		return "", false
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxMappedValue {
		return "", false
	}
	return s, true
}

// Claim names of a federated login's answer that are not attributes of
// the identity: the local account's username, the authenticator instance
// and the upstream's id of the user.
const (
	ClaimIDP        = "idp"
	ClaimIDPSubject = "idp_subject"
)

// Claims is the local claims of a signed-in federated user, as the
// authenticator answers them to the login flow: the local account's
// username, the identity provider (ClaimIDP, ClaimIDPSubject), and every
// attribute the upstream asserted, mapped through the instance's claim
// mapping to local names (email and email_verified, display_name,
// given_name, family_name, phone_number, and the other mapped attributes
// under their local names). A login whose attribute step is this one
// releases these attributes to the application rather than the local
// account's (builtin/login).
func Claims(id Identity, acc Account) map[string]any {
	c := make(map[string]any, len(id.Attributes)+8)
	for k, v := range id.Attributes {
		c[k] = v
	}
	c[AttrUsername], c[ClaimIDP], c[ClaimIDPSubject] = acc.Username, id.IDP, id.Subject
	if id.Email != "" {
		c[AttrEmail] = id.Email
		c[AttrEmailVerified] = id.EmailVerified
	}
	for k, v := range map[string]string{
		AttrDisplayName: id.DisplayName, AttrGivenName: id.GivenName,
		AttrFamilyName: id.FamilyName, AttrPhoneNumber: id.PhoneNumber,
	} {
		if v != "" {
			c[k] = v
		}
	}
	return c
}

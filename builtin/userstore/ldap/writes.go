package ldap

import (
	"slices"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// attr is one directory attribute to write; no values removes it.
type attr struct {
	name string
	vals []string
}

// attrList is an ordered set of attributes, by case-insensitive name.
type attrList []attr

// set adds name with vals; when name is already set with values, the
// first mapping wins (two fields mapped to one attribute).
func (l *attrList) set(name string, vals []string) {
	if name == "" || name == unmapped {
		return
	}
	for i := range *l {
		if strings.EqualFold((*l)[i].name, name) {
			if len((*l)[i].vals) == 0 {
				(*l)[i].vals = vals
			}
			return
		}
	}
	*l = append(*l, attr{name: name, vals: vals})
}

// get returns the values set for name.
func (l attrList) get(name string) []string {
	for _, a := range l {
		if strings.EqualFold(a.name, name) {
			return a.vals
		}
	}
	return nil
}

func one(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// userToAttributes maps a user record to the attributes to write. cur is
// the entry as stored, nil for a new one. Attributes of the user that are
// not mapped are refused, so that nothing the caller sent is silently
// dropped.
func (st *settings) userToAttributes(u abi.User, cur *goldap.Entry) (attrList, error) {
	a := st.users.Attributes
	var l attrList
	l.set(a.Username, one(u.Username))
	l.set(a.Email, one(u.Email))
	l.set(a.DisplayName, one(u.DisplayName))
	l.set(a.GivenName, one(u.GivenName))
	l.set(a.FamilyName, one(u.FamilyName))
	l.set(a.PhoneNumber, one(u.PhoneNumber))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range u.Attributes {
			if !yield(k) {
				return
			}
		}
	}) {
		name, ok := a.Extra[k]
		if !ok {
			return nil, fault.InvalidRequest.WithMessagef("attribute %q is not mapped to a directory attribute (users.attributes.extra)", k).WithField("user.attributes." + k)
		}
		vals, err := attributeValues(u.Attributes[k])
		if err != nil {
			return nil, fault.InvalidRequest.WithMessagef("attribute %q: %v", k, err).WithField("user.attributes." + k)
		}
		l.set(name, vals)
	}
	for _, k := range sortedKeys(a.Extra) {
		l.set(a.Extra[k], nil)
	}
	s := st.users.State
	switch {
	case s.ActiveDirectory:
		uac := int64(uacNormalAccount)
		if cur != nil {
			if v, err := strconv.ParseInt(cur.GetEqualFoldAttributeValue("userAccountControl"), 10, 64); err == nil {
				uac = v
			}
		}
		if u.Enabled {
			uac &^= uacAccountDisable
		} else {
			uac |= uacAccountDisable
		}
		l.set("userAccountControl", []string{strconv.FormatInt(uac, 10)})
	case s.DisabledAttribute != "":
		switch {
		case u.Enabled:
			l.set(s.DisabledAttribute, nil)
		case s.DisabledValue != "":
			l.set(s.DisabledAttribute, []string{s.DisabledValue})
		default:
			return nil, fault.InvalidRequest.WithMessage("accounts cannot be disabled through this store: users.state.disabled_value is not set").WithField("user.enabled")
		}
	case !u.Enabled:
		return nil, fault.InvalidRequest.WithMessage("accounts cannot be disabled through this store: users.state maps no disabled state").WithField("user.enabled")
	}
	return l, nil
}

// renamed returns the new RDN of the entry at dn when the attribute that
// names it gets another value.
func (st *settings) renamed(dn string, attrs attrList) (string, bool, error) {
	// A DN that does not parse or a multi-valued RDN is not renamed; the
	// modify that follows decides.
	parsed, perr := goldap.ParseDN(dn)
	if perr != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) != 1 {
		return "", false, nil
	}
	rdn := parsed.RDNs[0].Attributes[0]
	vals := attrs.get(rdn.Type)
	if vals == nil && !slices.ContainsFunc(attrs, func(a attr) bool { return strings.EqualFold(a.name, rdn.Type) }) {
		return "", false, nil
	}
	if len(vals) == 0 {
		return "", false, fault.InvalidRequest.WithMessagef("%s names the entry and cannot be removed", rdn.Type)
	}
	if slices.ContainsFunc(vals, func(v string) bool { return strings.EqualFold(v, rdn.Value) }) {
		return "", false, nil
	}
	return rdn.Type + "=" + goldap.EscapeDN(vals[0]), true, nil
}

// parentDN returns dn without its first RDN.
func parentDN(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) < 2 {
		return ""
	}
	return (&goldap.DN{RDNs: parsed.RDNs[1:]}).String()
}

func rdnString(r *goldap.RelativeDN) string {
	return r.String()
}

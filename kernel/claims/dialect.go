package claims

import (
	"maps"
	"slices"
	"strings"

	"github.com/latchid/latch/abi"
)

// ProfilesAttribute is the user attribute holding a user's other profiles:
// an object from profile name to an object of local claims (by name or
// URI) whose values replace the default profile's. The default profile is
// the user record itself.
const ProfilesAttribute = "latch.profiles"

// ProfileClaim is the claim a caller of a dialect mapper sets in the
// request to select the user's profile (an application's client setting
// ClientSettingProfile); the mapper removes it from its answer.
const ProfileClaim = "latch.profile"

// ClientSettingProfile is the key in a client's settings naming the
// profile its tokens and assertions are built from; absent: the default
// profile.
const ClientSettingProfile = "claim_profile"

// DefaultProfile is the name of the profile the user record holds.
const DefaultProfile = "default"

// LocalClaim is a claim of the local dialect: its URI and the short name
// user records and the local claim set carry it under. AttributeMappings
// maps a user store domain to the store attribute that holds the claim; a
// domain without an entry keeps the claim under Name.
type LocalClaim struct {
	URI               string            `json:"uri"`
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	AttributeMappings map[string]string `json:"attribute_mappings,omitempty"`
	// BuiltIn is true for a claim Latch defines (it may still carry
	// stored attribute mappings).
	BuiltIn bool `json:"built_in"`
}

// Mapping maps a claim of an outside dialect to a local claim (by URI).
type Mapping struct {
	Dialect  string `json:"dialect"`
	Claim    string `json:"claim"`
	LocalURI string `json:"local_uri"`
	BuiltIn  bool   `json:"built_in"`
}

// Standard schema URNs of the SCIM dialect (RFC 7643 sections 4.1, 4.3).
const (
	scimCore       = "urn:ietf:params:scim:schemas:core:2.0:User:"
	scimEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
	// soapClaims is the prefix of the claim types SAML assertions
	// commonly use for identity attributes.
	soapClaims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	// localURIPrefix is the prefix of the built-in local claim URIs,
	// accepted as aliases so that configurations written for WSO2
	// Identity Server keep working.
	localURIPrefix = "http://wso2.org/claims/"
)

// Built-in local claim names; the user record's fields carry them.
const (
	ClaimUsername      = "username"
	ClaimEmail         = "email"
	ClaimEmailVerified = "email_verified"
	ClaimGivenName     = "given_name"
	ClaimFamilyName    = "family_name"
	ClaimDisplayName   = "display_name"
	ClaimPhoneNumber   = "phone_number"
	ClaimGroups        = "groups"
	ClaimDepartment    = "department"
	ClaimOrganization  = "organization"
	ClaimEmployeeID    = "employee_number"
)

// BuiltinLocalClaims returns the local claims Latch defines, by URI.
func BuiltinLocalClaims() []LocalClaim {
	out := []LocalClaim{
		{URI: localURIPrefix + "username", Name: ClaimUsername, Description: "Login name"},
		{URI: localURIPrefix + "emailaddress", Name: ClaimEmail, Description: "Primary email address"},
		{URI: localURIPrefix + "identity/emailVerified", Name: ClaimEmailVerified, Description: "Whether the email address was verified"},
		{URI: localURIPrefix + "givenname", Name: ClaimGivenName, Description: "First name"},
		{URI: localURIPrefix + "lastname", Name: ClaimFamilyName, Description: "Last name"},
		{URI: localURIPrefix + "displayName", Name: ClaimDisplayName, Description: "Name shown in user interfaces"},
		{URI: localURIPrefix + "telephone", Name: ClaimPhoneNumber, Description: "Phone number (E.164)"},
		{URI: localURIPrefix + "groups", Name: ClaimGroups, Description: "Group names"},
		{URI: localURIPrefix + "department", Name: ClaimDepartment, Description: "Department"},
		{URI: localURIPrefix + "organization", Name: ClaimOrganization, Description: "Organization"},
		{URI: localURIPrefix + "employeeNumber", Name: ClaimEmployeeID, Description: "Employee number"},
	}
	for i := range out {
		out[i].BuiltIn = true
	}
	slices.SortFunc(out, func(a, b LocalClaim) int { return strings.Compare(a.URI, b.URI) })
	return out
}

// BuiltinMappings returns the default mappings of the outside dialects:
// OpenID Connect standard claims (Core 1.0 section 5.1), SCIM 2.0 core and
// enterprise user attributes as URN paths (RFC 7643), and SAML attribute
// names.
func BuiltinMappings() []Mapping {
	u := func(name string) string { return localURIPrefix + name }
	ms := []Mapping{
		{abi.DialectOIDC, "preferred_username", u("username"), true},
		{abi.DialectOIDC, "email", u("emailaddress"), true},
		{abi.DialectOIDC, "email_verified", u("identity/emailVerified"), true},
		{abi.DialectOIDC, "given_name", u("givenname"), true},
		{abi.DialectOIDC, "family_name", u("lastname"), true},
		{abi.DialectOIDC, "name", u("displayName"), true},
		{abi.DialectOIDC, "phone_number", u("telephone"), true},
		{abi.DialectOIDC, "groups", u("groups"), true},

		{abi.DialectSCIM, scimCore + "userName", u("username"), true},
		{abi.DialectSCIM, scimCore + "emails.value", u("emailaddress"), true},
		{abi.DialectSCIM, scimCore + "name.givenName", u("givenname"), true},
		{abi.DialectSCIM, scimCore + "name.familyName", u("lastname"), true},
		{abi.DialectSCIM, scimCore + "displayName", u("displayName"), true},
		{abi.DialectSCIM, scimCore + "phoneNumbers.value", u("telephone"), true},
		{abi.DialectSCIM, scimCore + "groups.display", u("groups"), true},
		{abi.DialectSCIM, scimEnterprise + "department", u("department"), true},
		{abi.DialectSCIM, scimEnterprise + "organization", u("organization"), true},
		{abi.DialectSCIM, scimEnterprise + "employeeNumber", u("employeeNumber"), true},

		{abi.DialectSAML, soapClaims + "emailaddress", u("emailaddress"), true},
		{abi.DialectSAML, soapClaims + "givenname", u("givenname"), true},
		{abi.DialectSAML, soapClaims + "surname", u("lastname"), true},
		{abi.DialectSAML, soapClaims + "name", u("displayName"), true},
		{abi.DialectSAML, soapClaims + "mobilephone", u("telephone"), true},
		{abi.DialectSAML, "http://schemas.xmlsoap.org/claims/Group", u("groups"), true},
	}
	return ms
}

// Dialects is the effective dialect table of a tenant: the built-in local
// claims and mappings with the tenant's stored ones over them (a stored
// record with the same URI, or the same dialect and claim, wins). It is
// read-only once built.
type Dialects struct {
	local    []LocalClaim
	byURI    map[string]int
	byName   map[string]int
	mappings map[string][]Mapping // dialect -> mappings, by claim
}

// NewDialects merges stored local claims and mappings over the built-in
// ones.
func NewDialects(stored []LocalClaim, storedMappings []Mapping) *Dialects {
	d := &Dialects{byURI: map[string]int{}, byName: map[string]int{}, mappings: map[string][]Mapping{}}
	add := func(c LocalClaim) {
		if i, ok := d.byURI[c.URI]; ok {
			c.BuiltIn = d.local[i].BuiltIn
			delete(d.byName, d.local[i].Name)
			d.local[i] = c
			d.byName[c.Name] = i
			return
		}
		d.byURI[c.URI] = len(d.local)
		d.byName[c.Name] = len(d.local)
		d.local = append(d.local, c)
	}
	for _, c := range BuiltinLocalClaims() {
		add(c)
	}
	for _, c := range stored {
		c.BuiltIn = false
		add(c)
	}
	slices.SortFunc(d.local, func(a, b LocalClaim) int { return strings.Compare(a.URI, b.URI) })
	clear(d.byURI)
	clear(d.byName)
	for i, c := range d.local {
		d.byURI[c.URI] = i
		d.byName[c.Name] = i
	}
	type key struct{ dialect, claim string }
	idx := map[key]int{}
	var all []Mapping
	for _, m := range append(BuiltinMappings(), storedMappings...) {
		k := key{m.Dialect, m.Claim}
		if i, ok := idx[k]; ok {
			all[i] = m
			continue
		}
		idx[k] = len(all)
		all = append(all, m)
	}
	for _, m := range all {
		d.mappings[m.Dialect] = append(d.mappings[m.Dialect], m)
	}
	for _, ms := range d.mappings {
		slices.SortFunc(ms, func(a, b Mapping) int { return strings.Compare(a.Claim, b.Claim) })
	}
	return d
}

// LocalClaims returns the local claims by URI.
func (d *Dialects) LocalClaims() []LocalClaim { return slices.Clone(d.local) }

// Names returns the outside dialects that have mappings, sorted.
func (d *Dialects) Names() []string {
	return slices.Sorted(maps.Keys(d.mappings))
}

// Mappings returns the mappings of one outside dialect, by claim.
func (d *Dialects) Mappings(dialect string) []Mapping { return slices.Clone(d.mappings[dialect]) }

// Local returns the local claim a name or URI denotes.
func (d *Dialects) Local(nameOrURI string) (LocalClaim, bool) {
	if i, ok := d.byURI[nameOrURI]; ok {
		return d.local[i], true
	}
	if i, ok := d.byName[nameOrURI]; ok {
		return d.local[i], true
	}
	return LocalClaim{}, false
}

// Canonical rewrites claims keyed by local URIs to the local names; other
// keys pass unchanged. A name given both ways keeps the value under the
// name.
func (d *Dialects) Canonical(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if i, ok := d.byURI[k]; ok {
			if _, set := in[d.local[i].Name]; !set {
				out[d.local[i].Name] = v
			}
			continue
		}
		out[k] = v
	}
	return out
}

// StoreAttributes returns, for a user store domain, the local claim name
// of each store attribute mapped to a claim (attribute -> local name).
func (d *Dialects) StoreAttributes(domain string) map[string]string {
	out := map[string]string{}
	for _, c := range d.local {
		for dom, attr := range c.AttributeMappings {
			if strings.EqualFold(dom, domain) {
				out[attr] = c.Name
			}
		}
	}
	return out
}

// UserClaims returns the local claims of a user of a store: the record's
// fields, its attributes named like a local claim, and the store
// attributes read for the domain's attribute mappings (attrs, keyed by
// store attribute), then the named profile's values over them.
func (d *Dialects) UserClaims(u abi.User, domain string, attrs map[string]any, groups []string, profile string) map[string]any {
	out := map[string]any{}
	set := func(k string, v any) {
		if s, ok := v.(string); ok && s == "" {
			return
		}
		if v != nil {
			out[k] = v
		}
	}
	set(ClaimUsername, u.Username)
	set(ClaimEmail, u.Email)
	if u.Email != "" {
		out[ClaimEmailVerified] = u.EmailVerified
	}
	set(ClaimGivenName, u.GivenName)
	set(ClaimFamilyName, u.FamilyName)
	set(ClaimDisplayName, u.DisplayName)
	set(ClaimPhoneNumber, u.PhoneNumber)
	if len(groups) > 0 {
		out[ClaimGroups] = slices.Clone(groups)
	}
	mapped := d.StoreAttributes(domain)
	for _, c := range d.local {
		if _, viaStore := c.AttributeMappings[domain]; viaStore {
			continue
		}
		if v, ok := u.Attributes[c.Name]; ok {
			set(c.Name, v)
		}
	}
	for attr, name := range mapped {
		if v, ok := attrs[attr]; ok {
			set(name, v)
		} else if v, ok := u.Attributes[attr]; ok {
			set(name, v)
		}
	}
	if profile != "" && profile != DefaultProfile {
		if ps, ok := u.Attributes[ProfilesAttribute].(map[string]any); ok {
			if p, ok := ps[profile].(map[string]any); ok {
				maps.Copy(out, d.Canonical(p))
			}
		}
	}
	return out
}

// ToDialect translates local claims (by name or URI) into an outside
// dialect: every mapping of the dialect whose local claim has a value sets
// its claim. Claims without a mapping are left out.
func (d *Dialects) ToDialect(local map[string]any, dialect string) map[string]any {
	local = d.Canonical(local)
	out := map[string]any{}
	for _, m := range d.mappings[dialect] {
		c, ok := d.Local(m.LocalURI)
		if !ok {
			continue
		}
		if v, ok := local[c.Name]; ok {
			out[m.Claim] = v
		}
	}
	return out
}

// FromDialect translates claims of an outside dialect into local claims
// (by name); claims without a mapping are left out.
func (d *Dialects) FromDialect(in map[string]any, dialect string) map[string]any {
	out := map[string]any{}
	for _, m := range d.mappings[dialect] {
		v, ok := in[m.Claim]
		if !ok {
			continue
		}
		if c, ok := d.Local(m.LocalURI); ok {
			out[c.Name] = v
		}
	}
	return out
}

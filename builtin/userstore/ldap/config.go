package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Defaults of the configuration.
const (
	defaultTimeoutMillis     = 5000
	defaultDialTimeoutMillis = 5000
	defaultPoolSize          = 10
	defaultHealthMillis      = 30000
	defaultPageSize          = 500
	defaultUserFilter        = "(objectClass=inetOrgPerson)"
	defaultGroupFilter       = "(objectClass=groupOfNames)"
	// maxUsernameLength bounds a username before it reaches a filter.
	maxUsernameLength = 256
	// maxPasswordLength bounds a password before it reaches a bind.
	maxPasswordLength = 1024
)

// ID formats: how the id attribute's value becomes abi.User.ID.
const (
	// IDFormatText uses the attribute's value as it is (entryUUID, uid,
	// nsUniqueId, ipaUniqueID).
	IDFormatText = "text"
	// IDFormatGUID reads a 16-byte binary value in Active Directory's
	// objectGUID byte order and writes it as the usual GUID string
	// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).
	IDFormatGUID = "guid"
)

// Membership styles: where group membership is read.
const (
	// MembershipMember searches the groups whose member attribute holds
	// the user's DN (groupOfNames, groupOfUniqueNames, AD groups).
	MembershipMember = "member"
	// MembershipMemberOf reads the user's memberOf attribute (kept by the
	// OpenLDAP memberof overlay and by Active Directory).
	MembershipMemberOf = "member_of"
)

// Password methods: how CreateUser and UpdateUser set a password.
const (
	// PasswordModifyOperation uses the Password Modify extended operation
	// (RFC 3062), so the server hashes the password by its own policy.
	PasswordModifyOperation = "modify_operation"
	// PasswordAttribute replaces the password attribute with the clear
	// text (for servers that hash on write).
	PasswordAttribute = "attribute"
	// PasswordActiveDirectory replaces unicodePwd with the quoted UTF-16LE
	// form Active Directory requires (over LDAPS or StartTLS only).
	PasswordActiveDirectory = "active_directory"
)

// TLS is the TLS configuration of the connections.
type TLS struct {
	// CAFile is a PEM file of the certificate authorities trusted for the
	// server's certificate; empty trusts the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name checked against the server's certificate;
	// empty uses the host of the URL.
	ServerName string `json:"server_name,omitempty"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that ask for one.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// Pool sizes the connection pools.
type Pool struct {
	// Size is the most connections open at once per pool (one pool for
	// searches and writes as the service account, one for user binds).
	Size int `json:"size,omitempty"`
	// HealthCheckMillis is how long a connection may sit idle before it is
	// checked (a Who Am I? request) when taken from the pool.
	HealthCheckMillis int `json:"health_check_millis,omitempty"`
}

// UserAttributes maps the user record to directory attributes.
type UserAttributes struct {
	// ID is the stable id attribute: entryUUID (OpenLDAP, the default),
	// objectGUID (Active Directory, with id_format "guid").
	ID string `json:"id,omitempty"`
	// IDFormat is IDFormatText (default) or IDFormatGUID.
	IDFormat string `json:"id_format,omitempty"`
	// Username is the login name attribute: uid (default),
	// sAMAccountName or userPrincipalName.
	Username string `json:"username,omitempty"`
	// Email, DisplayName, GivenName, FamilyName and PhoneNumber name the
	// attributes of the profile fields; "-" leaves a field unmapped.
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
	// Extra maps user attribute names (the local dialect) to directory
	// attributes. A multi-valued directory attribute becomes a list.
	Extra map[string]string `json:"extra,omitempty"`
}

// AccountState says how the enabled and locked states are read (and, in
// read-write mode, written).
type AccountState struct {
	// ActiveDirectory reads userAccountControl: the ACCOUNTDISABLE bit
	// (0x2) disables the account, a lockoutTime other than 0 locks it.
	ActiveDirectory bool `json:"active_directory,omitempty"`
	// DisabledAttribute and DisabledValue disable an account whose
	// attribute holds the value (compared case-insensitively); an empty
	// value disables an account where the attribute is present at all.
	DisabledAttribute string `json:"disabled_attribute,omitempty"`
	DisabledValue     string `json:"disabled_value,omitempty"`
	// LockedAttribute locks an account where the attribute is present
	// (OpenLDAP ppolicy: pwdAccountLockedTime).
	LockedAttribute string `json:"locked_attribute,omitempty"`
}

// Users configures where users are and how they map.
type Users struct {
	// BaseDN is where users are searched (required).
	BaseDN string `json:"base_dn"`
	// Scope is "sub" (default, the whole subtree) or "one" (direct
	// children only).
	Scope string `json:"scope,omitempty"`
	// Filter selects the user entries; default (objectClass=inetOrgPerson).
	Filter string `json:"filter,omitempty"`
	// Attributes maps the user record to attributes.
	Attributes UserAttributes `json:"attributes,omitzero"`
	// State maps the enabled and locked states.
	State AccountState `json:"state,omitzero"`
	// EmailVerified marks the directory's email addresses as verified
	// (they are managed by administrators, not typed in by users).
	EmailVerified bool `json:"email_verified,omitempty"`
	// ObjectClasses are the object classes of new entries in read-write
	// mode; default top, person, organizationalPerson, inetOrgPerson.
	ObjectClasses []string `json:"object_classes,omitempty"`
	// RDNAttribute is the attribute naming new entries (default: the
	// username attribute); new entries go directly under CreateDN.
	RDNAttribute string `json:"rdn_attribute,omitempty"`
	// CreateDN is where new entries are created; default BaseDN.
	CreateDN string `json:"create_dn,omitempty"`
	// PasswordAttribute is the password attribute (default userPassword;
	// unicodePwd with the active_directory method).
	PasswordAttribute string `json:"password_attribute,omitempty"`
	// PasswordMethod is how passwords are written: PasswordModifyOperation
	// (default), PasswordAttribute or PasswordActiveDirectory.
	PasswordMethod string `json:"password_method,omitempty"`
}

// Groups configures where groups are and how membership is read.
type Groups struct {
	// BaseDN is where groups are searched; empty turns groups off.
	BaseDN string `json:"base_dn,omitempty"`
	// Filter selects group entries; default (objectClass=groupOfNames).
	Filter string `json:"filter,omitempty"`
	// Membership is MembershipMember (default) or MembershipMemberOf.
	Membership string `json:"membership,omitempty"`
	// MemberAttribute lists member DNs on a group; default member.
	MemberAttribute string `json:"member_attribute,omitempty"`
	// MemberOfAttribute lists group DNs on a user; default memberOf.
	MemberOfAttribute string `json:"member_of_attribute,omitempty"`
	// ID, IDFormat, Name and Description map the group record (defaults:
	// the user id attribute and format, cn, description).
	ID          string `json:"id,omitempty"`
	IDFormat    string `json:"id_format,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// MaxMembers bounds the members read for one group (a group's
	// listing in SCIM shows at most this many); default
	// DefaultMaxGroupMembers.
	MaxMembers int `json:"max_members,omitempty"`
}

// DefaultMaxGroupMembers is the default bound on the members read for one
// group (Groups.MaxMembers).
const DefaultMaxGroupMembers = 1000

// settings is the checked, defaulted form of a Store's configuration.
type settings struct {
	urls          []*url.URL
	startTLS      bool
	tls           *tls.Config
	bindDN        string
	bindPassword  string
	timeout       time.Duration
	dialTimeout   time.Duration
	poolSize      int
	healthAfter   time.Duration
	pageSize      uint32
	readOnly      bool
	users         Users
	userScope     int
	userFilter    string
	groups        Groups
	groupFilter   string
	userAttrList  []string
	groupAttrList []string
}

// errConfig marks a configuration the Validate step refuses.
var errConfig = errors.New("invalid configuration")

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: config.%s: %s", errConfig, field, fmt.Sprintf(format, args...))
}

// settle checks the configuration and fills in the defaults. It reads the
// files the configuration names (CA, client certificate, bind password).
func (s *Store) settle() (*settings, error) {
	st := &settings{
		startTLS:    s.StartTLS,
		bindDN:      s.BindDN,
		timeout:     millis(s.TimeoutMillis, defaultTimeoutMillis),
		dialTimeout: millis(s.DialTimeoutMillis, defaultDialTimeoutMillis),
		poolSize:    orInt(s.Pool.Size, defaultPoolSize),
		healthAfter: millis(s.Pool.HealthCheckMillis, defaultHealthMillis),
		pageSize:    uint32(orInt(s.PageSize, defaultPageSize)), //nolint:gosec // the schema bounds page_size to [1, 5000]
		readOnly:    s.Mode != modeReadWrite,
		users:       s.Users,
		groups:      s.Groups,
	}
	if len(s.URLs) == 0 {
		return nil, configErr("urls", "at least one server URL is required")
	}
	anyPlain := false
	for i, raw := range s.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
			return nil, configErr(fmt.Sprintf("urls[%d]", i), "%q is not an ldap:// or ldaps:// URL with a host", raw)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return nil, configErr(fmt.Sprintf("urls[%d]", i), "%q must not have a path or query", raw)
		}
		if u.Scheme == "ldaps" && s.StartTLS {
			return nil, configErr("start_tls", "StartTLS cannot be used with the ldaps:// URL %q", raw)
		}
		if u.Scheme == "ldap" && !s.StartTLS {
			anyPlain = true
		}
		st.urls = append(st.urls, u)
	}
	if anyPlain && !s.AllowInsecure {
		return nil, configErr("allow_insecure", "plain ldap:// without start_tls sends passwords in clear; use ldaps://, set start_tls, or set allow_insecure for a test directory")
	}
	tc, err := s.TLS.config()
	if err != nil {
		return nil, err
	}
	st.tls = tc

	st.bindPassword = s.BindPassword
	if s.BindPasswordFile != "" {
		if s.BindPassword != "" {
			return nil, configErr("bind_password_file", "set bind_password or bind_password_file, not both")
		}
		b, err := os.ReadFile(s.BindPasswordFile)
		if err != nil {
			return nil, configErr("bind_password_file", "reading: %v", err)
		}
		st.bindPassword = strings.TrimRight(string(b), "\r\n")
	}
	if st.bindDN != "" && st.bindPassword == "" {
		return nil, configErr("bind_password", "a bind_dn needs a password (an empty password is an unauthenticated bind)")
	}

	if err := st.settleUsers(); err != nil {
		return nil, err
	}
	if err := st.settleGroups(); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *settings) settleUsers() error {
	u := &st.users
	if _, err := goldap.ParseDN(u.BaseDN); err != nil || u.BaseDN == "" {
		return configErr("users.base_dn", "%q is not a DN", u.BaseDN)
	}
	switch u.Scope {
	case "", "sub":
		st.userScope = goldap.ScopeWholeSubtree
	case "one":
		st.userScope = goldap.ScopeSingleLevel
	default:
		return configErr("users.scope", "must be sub or one")
	}
	u.Filter = orString(u.Filter, defaultUserFilter)
	if _, err := goldap.CompileFilter(u.Filter); err != nil {
		return configErr("users.filter", "%q is not an LDAP filter: %v", u.Filter, err)
	}
	st.userFilter = u.Filter
	a := &u.Attributes
	a.ID = orString(a.ID, "entryUUID")
	a.IDFormat = orString(a.IDFormat, IDFormatText)
	if a.IDFormat != IDFormatText && a.IDFormat != IDFormatGUID {
		return configErr("users.attributes.id_format", "must be text or guid")
	}
	a.Username = orString(a.Username, "uid")
	a.Email = orString(a.Email, "mail")
	a.DisplayName = orString(a.DisplayName, "cn")
	a.GivenName = orString(a.GivenName, "givenName")
	a.FamilyName = orString(a.FamilyName, "sn")
	a.PhoneNumber = orString(a.PhoneNumber, "telephoneNumber")
	for _, p := range []struct{ field, v string }{
		{"id", a.ID}, {"username", a.Username}, {"email", a.Email}, {"display_name", a.DisplayName},
		{"given_name", a.GivenName}, {"family_name", a.FamilyName}, {"phone_number", a.PhoneNumber},
	} {
		if p.v != unmapped && !validAttribute(p.v) {
			return configErr("users.attributes."+p.field, "%q is not an attribute name", p.v)
		}
	}
	if a.ID == unmapped || a.Username == unmapped {
		return configErr("users.attributes", "id and username must be mapped")
	}
	for k, v := range a.Extra {
		if !validAttribute(v) {
			return configErr("users.attributes.extra."+k, "%q is not an attribute name", v)
		}
	}
	s := &u.State
	for _, p := range []struct{ field, v string }{{"disabled_attribute", s.DisabledAttribute}, {"locked_attribute", s.LockedAttribute}} {
		if p.v != "" && !validAttribute(p.v) {
			return configErr("users.state."+p.field, "%q is not an attribute name", p.v)
		}
	}
	if s.ActiveDirectory && s.DisabledAttribute != "" {
		return configErr("users.state", "active_directory and disabled_attribute exclude each other")
	}
	if len(u.ObjectClasses) == 0 {
		u.ObjectClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson"}
	}
	u.RDNAttribute = orString(u.RDNAttribute, a.Username)
	if !validAttribute(u.RDNAttribute) {
		return configErr("users.rdn_attribute", "%q is not an attribute name", u.RDNAttribute)
	}
	u.CreateDN = orString(u.CreateDN, u.BaseDN)
	if _, err := goldap.ParseDN(u.CreateDN); err != nil {
		return configErr("users.create_dn", "%q is not a DN", u.CreateDN)
	}
	u.PasswordMethod = orString(u.PasswordMethod, PasswordModifyOperation)
	switch u.PasswordMethod {
	case PasswordModifyOperation, PasswordAttribute:
		u.PasswordAttribute = orString(u.PasswordAttribute, "userPassword")
	case PasswordActiveDirectory:
		u.PasswordAttribute = orString(u.PasswordAttribute, "unicodePwd")
	default:
		return configErr("users.password_method", "must be modify_operation, attribute or active_directory")
	}
	if !validAttribute(u.PasswordAttribute) {
		return configErr("users.password_attribute", "%q is not an attribute name", u.PasswordAttribute)
	}
	st.userAttrList = userAttributeList(u)
	return nil
}

func (st *settings) settleGroups() error {
	g := &st.groups
	if g.BaseDN == "" {
		return nil
	}
	if _, err := goldap.ParseDN(g.BaseDN); err != nil {
		return configErr("groups.base_dn", "%q is not a DN", g.BaseDN)
	}
	g.Filter = orString(g.Filter, defaultGroupFilter)
	if _, err := goldap.CompileFilter(g.Filter); err != nil {
		return configErr("groups.filter", "%q is not an LDAP filter: %v", g.Filter, err)
	}
	st.groupFilter = g.Filter
	g.Membership = orString(g.Membership, MembershipMember)
	if g.Membership != MembershipMember && g.Membership != MembershipMemberOf {
		return configErr("groups.membership", "must be member or member_of")
	}
	g.MemberAttribute = orString(g.MemberAttribute, "member")
	g.MemberOfAttribute = orString(g.MemberOfAttribute, "memberOf")
	g.ID = orString(g.ID, st.users.Attributes.ID)
	g.IDFormat = orString(g.IDFormat, st.users.Attributes.IDFormat)
	if g.IDFormat != IDFormatText && g.IDFormat != IDFormatGUID {
		return configErr("groups.id_format", "must be text or guid")
	}
	g.Name = orString(g.Name, "cn")
	g.Description = orString(g.Description, "description")
	g.MaxMembers = orInt(g.MaxMembers, DefaultMaxGroupMembers)
	if g.MaxMembers < 1 || g.MaxMembers > maxGroupMembersBound {
		return configErr("groups.max_members", "must be from 1 to %d", maxGroupMembersBound)
	}
	for _, p := range []struct{ field, v string }{
		{"member_attribute", g.MemberAttribute}, {"member_of_attribute", g.MemberOfAttribute},
		{"id", g.ID}, {"name", g.Name}, {"description", g.Description},
	} {
		if !validAttribute(p.v) {
			return configErr("groups."+p.field, "%q is not an attribute name", p.v)
		}
	}
	st.groupAttrList = []string{g.ID, g.Name, g.Description}
	return nil
}

// config builds the TLS configuration: verification is always on.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, configErr("tls.ca_file", "reading: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("tls.ca_file", "%s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, configErr("tls", "cert_file and key_file go together")
	}
	if t.CertFile != "" {
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, configErr("tls.cert_file", "loading the client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// unmapped in a profile field's mapping leaves the field out.
const unmapped = "-"

// validAttribute reports whether s is an attribute description: a name
// (letter, then letters, digits and hyphens) or a numeric OID, with
// optional ;options. It keeps configuration from smuggling filter syntax.
func validAttribute(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	name, _, _ := strings.Cut(s, ";")
	if name == "" {
		return false
	}
	if name[0] >= '0' && name[0] <= '9' {
		for _, r := range name {
			if (r < '0' || r > '9') && r != '.' {
				return false
			}
		}
		return true
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == ';'):
		default:
			return false
		}
	}
	return true
}

// userAttributeList lists the attributes a user search asks for.
func userAttributeList(u *Users) []string {
	a := u.Attributes
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && v != unmapped && !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out = append(out, v)
		}
	}
	for _, v := range []string{a.ID, a.Username, a.Email, a.DisplayName, a.GivenName, a.FamilyName, a.PhoneNumber,
		u.State.DisabledAttribute, u.State.LockedAttribute} {
		add(v)
	}
	if u.State.ActiveDirectory {
		add("userAccountControl")
		add("lockoutTime")
	}
	for _, v := range sortedValues(a.Extra) {
		add(v)
	}
	return out
}

func millis(v, def int) time.Duration {
	return time.Duration(orInt(v, def)) * time.Millisecond
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Package router puts a tenant's user stores behind one directory: user
// store domains. Each store a tenant uses has a domain name; the primary
// store's users are addressed without a prefix, every other store's users
// with the domain as a prefix (WSO2 calls the primary domain PRIMARY):
//
//	alice            the primary store's alice, or the first store in the
//	                 search order that knows an alice (logins and look-ups)
//	LDAP/alice       the alice of the store whose domain is LDAP, only
//	PRIMARY/alice    the primary store's alice, only
//
// Ids are routable the same way: the primary store's ids pass unchanged,
// another store's ids carry the domain and a colon ("LDAP:5f0c…"), so any
// id the router hands out leads back to the store that made it. Group ids
// and names follow the same rules.
//
// New users are written to the primary store unless a domain is named. A
// store that is not a userstore.Writer, or refuses writes itself, answers
// writes with userstore.ErrReadOnly and a message naming the domain.
//
// Every call into a store goes through extension.Call, so metrics, error
// prefixes and panic recovery are those of any other extension call.
package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// PrimaryDomain is the domain name of a tenant's primary store. Its users
// have no prefix; "PRIMARY/alice" names the primary store's alice too.
const PrimaryDomain = "PRIMARY"

// Separators between a domain and a username, and a domain and an id.
const (
	UsernameSeparator = "/"
	IDSeparator       = ":"
)

// maxDomainLen bounds a domain name.
const maxDomainLen = 32

var domainRE = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)

// ErrConfig means the domain configuration is not usable; it is reported
// when the node starts.
var ErrConfig = errors.New("invalid user store domain configuration")

// Config names the domains of the user store instances and the primary
// store of each tenant. The search order is the tenant's enablement order
// of user stores (extensions.default.userstore,
// extensions.tenants.<t>.userstore).
type Config struct {
	// Domains maps a user store instance name to its domain name
	// (upper-case letters, digits, '-' and '_', starting with a letter).
	// An instance without an entry has its name, upper-cased, as domain.
	Domains map[string]string
	// Primary is the primary store instance of tenants that do not name
	// their own; empty: the first store in each tenant's search order.
	Primary string
	// TenantPrimary maps a tenant name to its primary store instance.
	TenantPrimary map[string]string
}

// Validate checks the configuration: domain names well formed, unique and
// not PRIMARY.
func (c Config) Validate() error {
	seen := map[string]string{}
	for inst, d := range c.Domains {
		switch {
		case len(d) > maxDomainLen || !domainRE.MatchString(d):
			return fmt.Errorf("%w: domain %q of %q: must be upper-case letters, digits, '-' or '_', starting with a letter, at most %d characters", ErrConfig, d, inst, maxDomainLen)
		case d == PrimaryDomain:
			return fmt.Errorf("%w: domain %q of %q: %s names the primary store of each tenant and cannot be given to an instance", ErrConfig, d, inst, PrimaryDomain)
		case seen[d] != "":
			return fmt.Errorf("%w: instances %q and %q both have the domain %q", ErrConfig, seen[d], inst, d)
		}
		seen[d] = inst
	}
	return nil
}

// Member is one store of a tenant's directory.
type Member struct {
	// Domain is the store's domain; PrimaryDomain for the primary store.
	Domain string
	// Primary is true for the primary store.
	Primary bool
	// Instance is the user store instance.
	Instance *extension.Instance
}

// Router is the directory of every tenant: its user stores in search
// order, with their domains. It is safe for concurrent use.
type Router struct {
	stores func(tenant string) []*extension.Instance
	cfg    Config
	// shadows keeps the database records of directory users (shadow.go).
	shadows ShadowStore
}

// New returns a router over stores, which gives a tenant's user store
// instances in search order (it is asked on every call, so a reloaded
// configuration takes effect at once).
func New(stores func(tenant string) []*extension.Instance, cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{stores: stores, cfg: cfg}, nil
}

// Members returns the tenant's stores in search order. The primary store
// keeps its place in that order; its Domain is PrimaryDomain.
func (r *Router) Members(tenant string) []Member {
	insts := r.stores(tenant)
	primary := r.cfg.TenantPrimary[tenant]
	if primary == "" {
		primary = r.cfg.Primary
	}
	found := false
	for _, in := range insts {
		if in.Name() == primary {
			found = true
		}
	}
	if !found && len(insts) > 0 {
		primary = insts[0].Name()
	}
	out := make([]Member, 0, len(insts))
	for _, in := range insts {
		if in.Name() == primary {
			out = append(out, Member{Domain: PrimaryDomain, Primary: true, Instance: in})
			continue
		}
		out = append(out, Member{Domain: r.domainOf(in.Name()), Instance: in})
	}
	return out
}

func (r *Router) domainOf(instance string) string {
	if d, ok := r.cfg.Domains[instance]; ok {
		return d
	}
	return strings.ToUpper(instance)
}

// Member returns the tenant's store of the domain (compared
// case-insensitively; PRIMARY is the primary store), or a not-found fault.
func (r *Router) Member(tenant, domain string) (Member, error) {
	for _, m := range r.Members(tenant) {
		if strings.EqualFold(m.Domain, domain) {
			return m, nil
		}
	}
	return Member{}, fault.NotFound.WithMessagef("no user store domain %q in this tenant", clip(domain)).WithField("domain")
}

// Primary returns the tenant's primary store, or an unavailable fault when
// the tenant has no user store.
func (r *Router) Primary(tenant string) (Member, error) {
	ms := r.Members(tenant)
	for _, m := range ms {
		if m.Primary {
			return m, nil
		}
	}
	return Member{}, fault.Unavailable.WithMessage("no user store is enabled for this tenant")
}

// SplitUsername splits a domain-qualified username. It returns the
// store's member and the username without prefix when the prefix names a
// domain of the tenant, and ok false otherwise (a plain username, or a
// slash that is part of the name).
func (r *Router) SplitUsername(tenant, username string) (Member, string, bool) {
	d, rest, ok := strings.Cut(username, UsernameSeparator)
	if !ok || d == "" || rest == "" {
		return Member{}, username, false
	}
	m, err := r.Member(tenant, d)
	if err != nil {
		return Member{}, username, false
	}
	return m, rest, true
}

// route finds the store that made an id and the store's own id.
func (r *Router) route(tenant, id string) (Member, string, error) {
	ms := r.Members(tenant)
	if len(ms) == 0 {
		return Member{}, "", fault.Unavailable.WithMessage("no user store is enabled for this tenant")
	}
	if d, rest, ok := strings.Cut(id, IDSeparator); ok && rest != "" {
		for _, m := range ms {
			if !m.Primary && strings.EqualFold(m.Domain, d) {
				return m, rest, nil
			}
		}
	}
	for _, m := range ms {
		if m.Primary {
			return m, id, nil
		}
	}
	return Member{}, "", fault.Unavailable.WithMessage("no user store is enabled for this tenant")
}

// Writable reports whether the store accepts writes: it is a
// userstore.Writer and does not report itself read-only.
func (m Member) Writable() bool {
	if _, ok := extension.As[userstore.Writer](m.Instance); !ok {
		return false
	}
	ro, ok := extension.As[userstore.ReadOnlyReporter](m.Instance)
	return !ok || !ro.IsReadOnly()
}

// QualifyID returns the id the router hands out for a store's own id.
func (m Member) QualifyID(id string) string {
	if m.Primary || id == "" {
		return id
	}
	return m.Domain + IDSeparator + id
}

// QualifyName returns the name the router hands out for a store's own
// username or group name.
func (m Member) QualifyName(name string) string {
	if m.Primary || name == "" {
		return name
	}
	return m.Domain + UsernameSeparator + name
}

// qualify rewrites a store's user into the directory's form.
func (m Member) qualify(u abi.User) abi.User {
	u.ID = m.QualifyID(u.ID)
	u.Username = m.QualifyName(u.Username)
	return u
}

func (m Member) qualifyGroup(g abi.Group) abi.Group {
	g.ID = m.QualifyID(g.ID)
	g.Name = m.QualifyName(g.Name)
	return g
}

// unqualify rewrites a user of the directory into the store's own form.
func (m Member) unqualify(u abi.User) abi.User {
	if m.Primary {
		return u
	}
	if d, rest, ok := strings.Cut(u.ID, IDSeparator); ok && strings.EqualFold(d, m.Domain) {
		u.ID = rest
	}
	if d, rest, ok := strings.Cut(u.Username, UsernameSeparator); ok && strings.EqualFold(d, m.Domain) {
		u.Username = rest
	}
	return u
}

// Authentication is the verdict of a login.
type Authentication struct {
	// Member is the store that decided; zero when no store knew the user.
	Member Member
	// Response is the store's answer; its User is in the directory's form
	// (qualified id and username).
	Response abi.AuthenticateUserResponse
}

// Authenticate checks a password. A domain-qualified username goes to that
// store only. A plain username is tried store by store in search order:
// a store answering unknown_user passes to the next; any other answer
// (authenticated, a wrong password, disabled, locked) decides, so that a
// wrong password for one store's alice never falls through to another
// store's alice. A store that fails stops the search with the error.
func (r *Router) Authenticate(ctx context.Context, tenant, username, password string) (Authentication, error) {
	ms := r.Members(tenant)
	if len(ms) == 0 {
		return Authentication{}, fault.Internal.WithMessage("no user store is enabled for this tenant").
			WithCause(fmt.Errorf("authenticating in tenant %q: no user store enabled", tenant))
	}
	if m, rest, ok := r.SplitUsername(tenant, username); ok {
		ms, username = []Member{m}, rest
	}
	for _, m := range ms {
		us, ok := extension.As[userstore.Store](m.Instance)
		if !ok {
			return Authentication{}, notAStore(m)
		}
		var res abi.AuthenticateUserResponse
		err := extension.Call(ctx, m.Instance, abi.OpAuthenticateUser, func(ctx context.Context) error {
			var err error
			res, err = userstore.CheckAuthenticate(us.AuthenticateUser(ctx, abi.AuthenticateUserRequest{
				Tenant: tenant, Username: username, Password: password, Config: m.Instance.Config(),
			}))
			return err
		})
		if err != nil {
			return Authentication{}, fmt.Errorf("authenticating against user store %q: %w", m.Instance.Name(), err)
		}
		if res.Outcome == abi.UserUnknown {
			continue
		}
		if res.User != nil {
			u := m.qualify(*res.User)
			res.User = &u
			if res.Outcome == abi.UserAuthenticated {
				if err := r.Shadow(ctx, tenant, m, u); err != nil {
					return Authentication{}, err
				}
			}
		}
		return Authentication{Member: m, Response: res}, nil
	}
	return Authentication{Response: abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}}, nil
}

// GetUser returns the user with a directory id and the store holding it.
func (r *Router) GetUser(ctx context.Context, tenant, id string) (Member, abi.User, error) {
	m, raw, err := r.route(tenant, id)
	if err != nil {
		return Member{}, abi.User{}, err
	}
	us, ok := extension.As[userstore.Store](m.Instance)
	if !ok {
		return Member{}, abi.User{}, notAStore(m)
	}
	var u abi.User
	err = extension.Call(ctx, m.Instance, abi.OpGetUser, func(ctx context.Context) error {
		var err error
		u, err = us.GetUser(ctx, abi.GetUserRequest{Tenant: tenant, ID: raw, Config: m.Instance.Config()})
		return err
	})
	if err != nil {
		return m, abi.User{}, fmt.Errorf("getting user from domain %s: %w", m.Domain, err)
	}
	u = m.qualify(u)
	if err := r.withShadowProfiles(ctx, tenant, m, &u); err != nil {
		return m, abi.User{}, err
	}
	return m, u, nil
}

// OpReadAttributes names ReadAttributes calls in extension metrics.
const OpReadAttributes = "read_attributes"

// ReadAttributes reads named attributes of the user with a directory id
// from its store (userstore.AttributeReader); a store without that ability
// answers an empty set.
func (r *Router) ReadAttributes(ctx context.Context, tenant, id string, names []string) (Member, map[string]any, error) {
	m, raw, err := r.route(tenant, id)
	if err != nil {
		return Member{}, nil, err
	}
	ar, ok := extension.As[userstore.AttributeReader](m.Instance)
	if !ok || len(names) == 0 {
		return m, map[string]any{}, nil
	}
	var out map[string]any
	err = extension.Call(ctx, m.Instance, OpReadAttributes, func(ctx context.Context) error {
		var err error
		out, err = ar.ReadAttributes(ctx, tenant, raw, names)
		return err
	})
	if err != nil {
		return m, nil, fmt.Errorf("reading attributes in domain %s: %w", m.Domain, err)
	}
	return m, out, nil
}

// FindUser returns the user with a username: a qualified username is
// looked up in its store only, a plain one store by store in search order,
// the first store that knows it winning (as for logins).
func (r *Router) FindUser(ctx context.Context, tenant, username string) (Member, abi.User, error) {
	ms := r.Members(tenant)
	if m, rest, ok := r.SplitUsername(tenant, username); ok {
		ms, username = []Member{m}, rest
	}
	for _, m := range ms {
		resp, err := r.find(ctx, m, abi.FindUsersRequest{Tenant: tenant, Username: username, Limit: 1})
		if err != nil {
			return Member{}, abi.User{}, err
		}
		if len(resp.Users) > 0 {
			return m, m.qualify(resp.Users[0]), nil
		}
	}
	return Member{}, abi.User{}, userstore.ErrNotFound
}

func (r *Router) find(ctx context.Context, m Member, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	us, ok := extension.As[userstore.Store](m.Instance)
	if !ok {
		return abi.FindUsersResponse{}, notAStore(m)
	}
	req.Config = m.Instance.Config()
	var resp abi.FindUsersResponse
	err := extension.Call(ctx, m.Instance, abi.OpFindUsers, func(ctx context.Context) error {
		var err error
		resp, err = us.FindUsers(ctx, req)
		return err
	})
	if err != nil {
		return abi.FindUsersResponse{}, fmt.Errorf("finding users in domain %s: %w", m.Domain, err)
	}
	if resp.Error != nil {
		return abi.FindUsersResponse{}, fault.FromWire(*resp.Error)
	}
	return resp, nil
}

// FindUsers returns one page of the users of every store, in search order
// (each store's users in its own order). A qualified req.Username searches
// its store only; the cursor (req.Cursor, resp.Next) says which store the
// next page continues in. Users are in the directory's form.
func (r *Router) FindUsers(ctx context.Context, tenant string, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return r.View(all).FindUsers(ctx, tenant, req)
}

// ListGroups returns one page of the groups of every store that keeps
// groups, in search order; with req.UserID, the groups of that user in its
// own store. Groups are in the directory's form.
func (r *Router) ListGroups(ctx context.Context, tenant string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	if req.UserID == "" {
		return r.View(all).ListGroups(ctx, tenant, req)
	}
	m, raw, err := r.route(tenant, req.UserID)
	if err != nil {
		return abi.ListGroupsResponse{}, err
	}
	req.UserID = raw
	out := abi.ListGroupsResponse{Groups: []abi.Group{}}
	err = r.pages([]Member{m}, req.Cursor, req.Limit, func(_ int, m Member, cursor string, limit int) (int, string, error) {
		return r.groupPage(ctx, tenant, m, req, cursor, limit, &out.Groups)
	}, &out.Next)
	if err != nil {
		return abi.ListGroupsResponse{}, err
	}
	return out, nil
}

func all(Member) bool { return true }

// OpListGroupMembers names ListGroupMembers calls in extension metrics.
const OpListGroupMembers = "list_group_members"

// ListGroupMembers returns the group with a directory id and its members,
// in the directory's form (qualified ids and names), from the group's
// store (userstore.GroupMemberLister). The store bounds the members; More
// says the group holds more. A store without that ability answers an
// unsupported fault.
func (r *Router) ListGroupMembers(ctx context.Context, tenant, groupID string) (userstore.GroupMembers, error) {
	m, raw, err := r.route(tenant, groupID)
	if err != nil {
		return userstore.GroupMembers{}, err
	}
	gl, ok := extension.As[userstore.GroupMemberLister](m.Instance)
	if !ok {
		return userstore.GroupMembers{}, fault.Unsupported.WithMessagef("user store domain %s does not list the members of its groups", m.Domain)
	}
	var out userstore.GroupMembers
	err = extension.Call(ctx, m.Instance, OpListGroupMembers, func(ctx context.Context) error {
		var err error
		out, err = gl.ListGroupMembers(ctx, tenant, raw)
		return err
	})
	if err != nil {
		return userstore.GroupMembers{}, fmt.Errorf("listing group members in domain %s: %w", m.Domain, err)
	}
	out.Group = m.qualifyGroup(out.Group)
	for i := range out.Members {
		out.Members[i] = m.qualify(out.Members[i])
	}
	return out, nil
}

// groupPage reads one page of a store's groups into out.
func (r *Router) groupPage(ctx context.Context, tenant string, m Member, req abi.ListGroupsRequest, cursor string, limit int, out *[]abi.Group) (int, string, error) {
	gl, ok := extension.As[userstore.GroupLister](m.Instance)
	if !ok {
		return 0, "", nil
	}
	sub := req
	sub.Tenant, sub.Cursor, sub.Limit, sub.Config = tenant, cursor, limit, m.Instance.Config()
	var resp abi.ListGroupsResponse
	err := extension.Call(ctx, m.Instance, abi.OpListGroups, func(ctx context.Context) error {
		var err error
		resp, err = gl.ListGroups(ctx, sub)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("listing groups in domain %s: %w", m.Domain, err)
	}
	if resp.Error != nil {
		return 0, "", fault.FromWire(*resp.Error)
	}
	for _, g := range resp.Groups {
		*out = append(*out, m.qualifyGroup(g))
	}
	return len(resp.Groups), resp.Next, nil
}

func onlyMember(ms []Member, m Member) []Member {
	for i := range ms {
		if ms[i].Instance == m.Instance {
			return ms[i : i+1]
		}
	}
	return nil
}

// defaultLimit is the page size when the caller names none.
const defaultLimit = 100

// pages fills one page from the stores ms, starting where cursor says. A
// cursor is "<store index>.<store's own cursor>"; the store index counts
// in the (possibly narrowed) list ms, which a caller rebuilds identically
// from the same request.
func (r *Router) pages(ms []Member, cursor string, limit int, fetch func(i int, m Member, cursor string, limit int) (int, string, error), next *string) error {
	if limit < 0 {
		return fault.InvalidRequest.WithMessage("limit must be >= 0").WithField("limit")
	}
	if limit == 0 {
		limit = defaultLimit
	}
	start, inner := 0, ""
	if cursor != "" {
		is, rest, ok := strings.Cut(cursor, ".")
		n, err := strconv.Atoi(is)
		if !ok || err != nil || n < 0 || n >= len(ms) || len(is) > 4 {
			return fault.InvalidRequest.WithMessage("malformed cursor").WithField("cursor")
		}
		start, inner = n, rest
	}
	got := 0
	for i := start; i < len(ms) && got < limit; i++ {
		c := ""
		if i == start {
			c = inner
		}
		n, nx, err := fetch(i, ms[i], c, limit-got)
		if err != nil {
			return err
		}
		got += n
		if nx != "" {
			*next = strconv.Itoa(i) + "." + nx
			return nil
		}
		if i+1 < len(ms) && got >= limit {
			*next = strconv.Itoa(i+1) + "."
			return nil
		}
	}
	return nil
}

// CreateUser writes a new user to the store of domain ("" or PRIMARY:
// the primary store) and returns it in the directory's form. A username
// carrying a domain prefix names the store too; naming two different
// domains is an invalid request.
func (r *Router) CreateUser(ctx context.Context, tenant, domain string, req abi.CreateUserRequest) (abi.User, error) {
	var m Member
	var err error
	if pm, rest, ok := r.SplitUsername(tenant, req.User.Username); ok {
		if domain != "" && !strings.EqualFold(domain, pm.Domain) {
			return abi.User{}, fault.InvalidRequest.WithMessagef("the username names domain %q but the request names %q", pm.Domain, clip(domain)).WithField("domain")
		}
		m, req.User.Username = pm, rest
	} else if domain == "" {
		if m, err = r.Primary(tenant); err != nil {
			return abi.User{}, err
		}
	} else if m, err = r.Member(tenant, domain); err != nil {
		return abi.User{}, err
	}
	w, err := writer(m)
	if err != nil {
		return abi.User{}, err
	}
	req.Tenant, req.Config = tenant, m.Instance.Config()
	req.User.ID = ""
	var u abi.User
	err = extension.Call(ctx, m.Instance, abi.OpCreateUser, func(ctx context.Context) error {
		var err error
		u, err = w.CreateUser(ctx, req)
		return err
	})
	if err != nil {
		return abi.User{}, readOnlyMessage(m, fmt.Errorf("creating user in domain %s: %w", m.Domain, err))
	}
	return m.qualify(u), nil
}

// UpdateUser replaces the user named by req.User.ID (a directory id) in
// its store and returns it in the directory's form.
func (r *Router) UpdateUser(ctx context.Context, tenant string, req abi.UpdateUserRequest) (abi.User, error) {
	m, raw, err := r.route(tenant, req.User.ID)
	if err != nil {
		return abi.User{}, err
	}
	w, err := writer(m)
	if err != nil {
		return abi.User{}, err
	}
	req.User = m.unqualify(req.User)
	req.User.ID = raw
	req.Tenant, req.Config = tenant, m.Instance.Config()
	var u abi.User
	err = extension.Call(ctx, m.Instance, abi.OpUpdateUser, func(ctx context.Context) error {
		var err error
		u, err = w.UpdateUser(ctx, req)
		return err
	})
	if err != nil {
		return abi.User{}, readOnlyMessage(m, fmt.Errorf("updating user in domain %s: %w", m.Domain, err))
	}
	return m.qualify(u), nil
}

// DeleteUser removes the user with a directory id from its store.
func (r *Router) DeleteUser(ctx context.Context, tenant, id string) error {
	m, raw, err := r.route(tenant, id)
	if err != nil {
		return err
	}
	w, err := writer(m)
	if err != nil {
		return err
	}
	err = extension.Call(ctx, m.Instance, abi.OpDeleteUser, func(ctx context.Context) error {
		return w.DeleteUser(ctx, abi.DeleteUserRequest{Tenant: tenant, ID: raw, Config: m.Instance.Config()})
	})
	if err != nil {
		return readOnlyMessage(m, fmt.Errorf("deleting user in domain %s: %w", m.Domain, err))
	}
	return r.dropShadow(ctx, tenant, m, id)
}

// writer returns the store's Writer, or ErrReadOnly naming the domain.
func writer(m Member) (userstore.Writer, error) {
	w, ok := extension.As[userstore.Writer](m.Instance)
	if !ok || !m.Writable() {
		return nil, readOnly(m)
	}
	return w, nil
}

func readOnly(m Member) *fault.Error {
	return userstore.ErrReadOnly.WithMessagef("user store domain %s is read-only: users of that domain cannot be created, changed or deleted through Latch", m.Domain)
}

// readOnlyMessage gives a store's own ErrReadOnly the message naming the
// domain, keeping the cause.
func readOnlyMessage(m Member, err error) error {
	if errors.Is(err, userstore.ErrReadOnly) {
		return readOnly(m).WithCause(err)
	}
	return err
}

func notAStore(m Member) error {
	return fault.Internal.WithCause(fmt.Errorf("instance %q is a %T, not a user store", m.Instance.Name(), m.Instance.Value()))
}

// clip shortens a value echoed in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// View is part of the directory: the stores a filter keeps. The admin API
// and SCIM serve the Latch database's users themselves and use a view of
// the other stores (LDAP, plugins) beside them.
type View struct {
	r    *Router
	keep func(Member) bool
}

// View returns the part of the directory whose stores keep accepts.
func (r *Router) View(keep func(Member) bool) *View {
	return &View{r: r, keep: keep}
}

// Members returns the view's stores of the tenant, in search order.
func (v *View) Members(tenant string) []Member {
	var out []Member
	for _, m := range v.r.Members(tenant) {
		if v.keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// All returns every store of the tenant, in the view or not, in search
// order.
func (v *View) All(tenant string) []Member { return v.r.Members(tenant) }

// Owns returns the view's store that an id (a user or group id) routes
// to, and false when the id belongs to a store outside the view.
func (v *View) Owns(tenant, id string) (Member, bool) {
	m, _, err := v.r.route(tenant, id)
	if err != nil || !v.keep(m) {
		return Member{}, false
	}
	return m, true
}

// OwnsUsername returns the view's store that a domain-qualified username
// names, and false for a plain username or another store's.
func (v *View) OwnsUsername(tenant, username string) (Member, bool) {
	m, _, ok := v.r.SplitUsername(tenant, username)
	if !ok || !v.keep(m) {
		return Member{}, false
	}
	return m, true
}

// GetUser returns the user with a directory id from the view's stores.
func (v *View) GetUser(ctx context.Context, tenant, id string) (abi.User, error) {
	if _, ok := v.Owns(tenant, id); !ok {
		return abi.User{}, userstore.ErrNotFound
	}
	_, u, err := v.r.GetUser(ctx, tenant, id)
	if err != nil {
		return abi.User{}, err
	}
	// The profiles kept on the shadow are the admin API's to show, apart
	// from the user's attributes, and never written back to the store.
	if _, ok := u.Attributes[claims.ProfilesAttribute]; ok {
		u.Attributes = maps.Clone(u.Attributes)
		delete(u.Attributes, claims.ProfilesAttribute)
	}
	return u, nil
}

// FindUsers returns one page of the users of the view's stores (see
// Router.FindUsers). A username qualified with a domain outside the view
// finds nobody.
func (v *View) FindUsers(ctx context.Context, tenant string, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	ms := v.Members(tenant)
	if req.Username != "" {
		if m, rest, ok := v.r.SplitUsername(tenant, req.Username); ok {
			ms, req.Username = onlyMember(ms, m), rest
		}
	}
	out := abi.FindUsersResponse{Users: []abi.User{}}
	err := v.r.pages(ms, req.Cursor, req.Limit, func(_ int, m Member, cursor string, limit int) (int, string, error) {
		sub := req
		sub.Tenant, sub.Cursor, sub.Limit = tenant, cursor, limit
		resp, err := v.r.find(ctx, m, sub)
		if err != nil {
			return 0, "", err
		}
		for _, u := range resp.Users {
			out.Users = append(out.Users, m.qualify(u))
		}
		return len(resp.Users), resp.Next, nil
	}, &out.Next)
	if err != nil {
		return abi.FindUsersResponse{}, err
	}
	return out, nil
}

// FindFirst answers a request naming a username as logins resolve one
// (Router.FindUser): a username qualified with a domain of the view is
// looked up in that store only; a plain one store by store in search
// order, and the first store that knows it answers alone, so another
// store's user of the same name is reached only with its prefix. The
// request's other filters apply in that store; req.Cursor and resp.Next
// page within it. Users are in the directory's form.
func (v *View) FindFirst(ctx context.Context, tenant string, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	ms := v.Members(tenant)
	if m, rest, ok := v.r.SplitUsername(tenant, req.Username); ok {
		ms, req.Username = onlyMember(ms, m), rest
	}
	req.Tenant = tenant
	for _, m := range ms {
		resp, err := v.r.find(ctx, m, req)
		if err != nil {
			return abi.FindUsersResponse{}, err
		}
		if len(resp.Users) == 0 {
			continue
		}
		out := abi.FindUsersResponse{Users: make([]abi.User, len(resp.Users)), Next: resp.Next}
		for i, u := range resp.Users {
			out.Users[i] = m.qualify(u)
		}
		return out, nil
	}
	return abi.FindUsersResponse{Users: []abi.User{}}, nil
}

// ListGroups returns one page of the groups of the view's stores, or of
// one of their users (req.UserID, a directory id).
func (v *View) ListGroups(ctx context.Context, tenant string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	if req.UserID != "" {
		if _, ok := v.Owns(tenant, req.UserID); !ok {
			return abi.ListGroupsResponse{}, userstore.ErrNotFound
		}
		return v.r.ListGroups(ctx, tenant, req)
	}
	ms := v.Members(tenant)
	out := abi.ListGroupsResponse{Groups: []abi.Group{}}
	err := v.r.pages(ms, req.Cursor, req.Limit, func(_ int, m Member, cursor string, limit int) (int, string, error) {
		return v.r.groupPage(ctx, tenant, m, req, cursor, limit, &out.Groups)
	}, &out.Next)
	if err != nil {
		return abi.ListGroupsResponse{}, err
	}
	return out, nil
}

// ListGroupMembers returns a group of the view's stores with its members
// (see Router.ListGroupMembers); a group id of a store outside the view is
// userstore.ErrNotFound.
func (v *View) ListGroupMembers(ctx context.Context, tenant, groupID string) (userstore.GroupMembers, error) {
	if _, ok := v.Owns(tenant, groupID); !ok {
		return userstore.GroupMembers{}, userstore.ErrNotFound
	}
	return v.r.ListGroupMembers(ctx, tenant, groupID)
}

// CreateUser writes a new user to the view's store of domain.
func (v *View) CreateUser(ctx context.Context, tenant, domain string, req abi.CreateUserRequest) (abi.User, error) {
	m, err := v.r.Member(tenant, domain)
	if err != nil || !v.keep(m) {
		return abi.User{}, fault.NotFound.WithMessagef("no user store domain %q in this tenant", clip(domain)).WithField("domain")
	}
	if _, rest, ok := v.r.SplitUsername(tenant, req.User.Username); ok {
		req.User.Username = rest
	}
	return v.r.CreateUser(ctx, tenant, m.Domain, req)
}

// UpdateUser replaces a user of the view's stores.
func (v *View) UpdateUser(ctx context.Context, tenant string, req abi.UpdateUserRequest) (abi.User, error) {
	if _, ok := v.Owns(tenant, req.User.ID); !ok {
		return abi.User{}, userstore.ErrNotFound
	}
	return v.r.UpdateUser(ctx, tenant, req)
}

// DeleteUser removes a user of the view's stores.
func (v *View) DeleteUser(ctx context.Context, tenant, id string) error {
	if _, ok := v.Owns(tenant, id); !ok {
		return userstore.ErrNotFound
	}
	return v.r.DeleteUser(ctx, tenant, id)
}

package adaptive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// StoreReader is the part of the kernel store StoreHost reads;
// store.Store has it.
type StoreReader interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	ListUsers(ctx context.Context, tenantID string, q store.UserQuery) ([]store.User, string, error)
	ListUserGroups(ctx context.Context, tenantID, userID string) ([]store.Group, error)
	ListEffectiveUserRoles(ctx context.Context, tenantID, userID string) ([]store.Role, error)
	ListUserSessions(ctx context.Context, tenantID, userID string) ([]store.Session, error)
}

// Claim URIs StoreHost maps to the columns of a stored user. Other claims
// are read from the user's Attributes under their URI.
const (
	ClaimUserID        = "http://wso2.org/claims/userid"
	ClaimUsername      = "http://wso2.org/claims/username"
	ClaimEmail         = "http://wso2.org/claims/emailaddress"
	ClaimEmailVerified = "http://wso2.org/claims/identity/emailVerified"
	ClaimMobile        = "http://wso2.org/claims/mobile"
	ClaimDisplayName   = "http://wso2.org/claims/displayName"
	ClaimGivenName     = "http://wso2.org/claims/givenname"
	ClaimLastName      = "http://wso2.org/claims/lastname"
	ClaimAccountLocked = "http://wso2.org/claims/identity/accountLocked"
	ClaimAccountOff    = "http://wso2.org/claims/identity/accountDisabled"
)

// DefaultMaxScan bounds the users FindUsers reads when the claims name
// neither the email address nor the username.
const DefaultMaxScan = 1000

// StoreHost is a Host over the kernel store: users with their groups,
// effective roles and claims, and SSO sessions. The tenant argument is the
// tenant's name (Input.TenantDomain); empty means the default tenant.
type StoreHost struct {
	Store StoreReader
	// Secrets resolves getSecretByName; nil makes it fail.
	Secrets func(ctx context.Context, tenantID, alias string) (string, error)
	// Libraries resolves loadLocalLibrary; nil makes it fail.
	Libraries func(ctx context.Context, tenantID, name string) (string, error)
	// MaxScan bounds a claim search that cannot use an index (see
	// FindUsers). Zero means DefaultMaxScan.
	MaxScan int
	// Now is the clock for the account-locked claim; nil means time.Now.
	Now func() time.Time
}

func (h *StoreHost) tenantID(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = store.DefaultTenantName
	}
	t, err := h.Store.GetTenantByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("reading tenant %q: %w", name, err)
	}
	return t.ID, nil
}

// User implements Host.
func (h *StoreHost) User(ctx context.Context, tenant, id string) (*User, error) {
	tid, err := h.tenantID(ctx, tenant)
	if err != nil {
		return nil, err
	}
	u, err := h.Store.GetUser(ctx, tid, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	out, err := h.full(ctx, tid, u)
	if err != nil {
		return nil, err
	}
	out.TenantDomain = tenant
	return &out, nil
}

// full adds roles and groups to a stored user.
func (h *StoreHost) full(ctx context.Context, tenantID string, u store.User) (User, error) {
	out := User{ID: u.ID, Username: u.Username, UserStoreDomain: "PRIMARY", Claims: h.claims(u)}
	roles, err := h.Store.ListEffectiveUserRoles(ctx, tenantID, u.ID)
	if err != nil {
		return User{}, fmt.Errorf("reading roles of user %s: %w", u.ID, err)
	}
	for _, r := range roles {
		out.Roles = append(out.Roles, r.Name)
	}
	groups, err := h.Store.ListUserGroups(ctx, tenantID, u.ID)
	if err != nil {
		return User{}, fmt.Errorf("reading groups of user %s: %w", u.ID, err)
	}
	for _, g := range groups {
		out.Groups = append(out.Groups, g.Name)
	}
	return out, nil
}

// claims returns a stored user's claims by URI.
func (h *StoreHost) claims(u store.User) map[string]string {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	m := map[string]string{}
	for k, v := range u.Attributes {
		switch x := v.(type) {
		case string:
			m[k] = x
		default:
			if b, err := json.Marshal(x); err == nil {
				m[k] = string(b)
			}
		}
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(ClaimUserID, u.ID)
	set(ClaimUsername, u.Username)
	set(ClaimEmail, u.Email)
	set(ClaimMobile, u.PhoneNumber)
	set(ClaimDisplayName, u.DisplayName)
	set(ClaimGivenName, u.GivenName)
	set(ClaimLastName, u.FamilyName)
	m[ClaimEmailVerified] = strconv.FormatBool(u.EmailVerified)
	m[ClaimAccountLocked] = strconv.FormatBool(u.LockedUntil.After(now()))
	m[ClaimAccountOff] = strconv.FormatBool(!u.Enabled)
	return m
}

// FindUsers implements Host. With the email address or username claim it
// asks the store by that index and filters the rest; otherwise it reads
// the tenant's users, and fails when it would read more than MaxScan before
// having found limit matches, rather than answer from part of the tenant.
func (h *StoreHost) FindUsers(ctx context.Context, tenant string, claims map[string]string, limit int) ([]User, error) {
	tid, err := h.tenantID(ctx, tenant)
	if err != nil {
		return nil, err
	}
	maxScan := h.MaxScan
	if maxScan <= 0 {
		maxScan = DefaultMaxScan
	}
	q := store.UserQuery{Email: claims[ClaimEmail], Username: claims[ClaimUsername], Page: store.Page{Limit: min(store.MaxPageLimit, maxScan+1)}}
	indexed := q.Email != "" || q.Username != ""
	var out []User
	read := 0
	for {
		users, next, err := h.Store.ListUsers(ctx, tid, q)
		if err != nil {
			return nil, fmt.Errorf("searching users: %w", err)
		}
		for _, u := range users {
			read++
			if !indexed && read > maxScan {
				return nil, fmt.Errorf("searching users by %d claims: the tenant has more than %d users; include the email address or username claim", len(claims), maxScan)
			}
			c := h.claims(u)
			match := true
			for k, v := range claims {
				if c[k] != v {
					match = false
					break
				}
			}
			if !match {
				continue
			}
			full, err := h.full(ctx, tid, u)
			if err != nil {
				return nil, err
			}
			full.TenantDomain = tenant
			out = append(out, full)
			if len(out) >= limit {
				return out, nil
			}
		}
		if next == "" {
			return out, nil
		}
		q.After = next
	}
}

// Sessions implements Host.
func (h *StoreHost) Sessions(ctx context.Context, tenant, userID string) ([]Session, error) {
	tid, err := h.tenantID(ctx, tenant)
	if err != nil {
		return nil, err
	}
	ss, err := h.Store.ListUserSessions(ctx, tid, userID)
	if err != nil {
		return nil, fmt.Errorf("reading sessions of user %s: %w", userID, err)
	}
	out := make([]Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, Session{ID: s.ID, IP: s.IP, LoginTime: s.AuthTime, LastAccessTime: s.LastSeenAt, UserAgent: s.UserAgent})
	}
	return out, nil
}

// Secret implements Host.
func (h *StoreHost) Secret(ctx context.Context, tenant, alias string) (string, error) {
	if h.Secrets == nil {
		return "", fmt.Errorf("secret %q: no secret store is configured for scripts", alias)
	}
	tid, err := h.tenantID(ctx, tenant)
	if err != nil {
		return "", err
	}
	return h.Secrets(ctx, tid, alias)
}

// Library implements Host.
func (h *StoreHost) Library(ctx context.Context, tenant, name string) (string, error) {
	if h.Libraries == nil {
		return "", fmt.Errorf("library %q: no script libraries are configured", name)
	}
	tid, err := h.tenantID(ctx, tenant)
	if err != nil {
		return "", err
	}
	return h.Libraries(ctx, tid, name)
}

var (
	_ Host        = (*StoreHost)(nil)
	_ StoreReader = (store.Store)(nil)
)

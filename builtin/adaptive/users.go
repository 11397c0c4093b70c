package adaptive

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// jsUser backs a user object (context.steps[n].subject, look-up results).
// Roles, groups and local claims are read through the Host on first use
// and cached for the evaluation.
type jsUser struct {
	r      *run
	subj   Subject
	obj    *goja.Object
	claims *goja.Object
	remote *goja.Object
	local  *goja.Object
}

var userKeys = []string{"uniqueId", "username", "tenantDomain", "userStoreDomain", "roles", "groups",
	"localClaims", "claims", "remoteClaims", "isFederated"}

func (r *run) newUser(s Subject) *jsUser {
	u := &jsUser{r: r, subj: s}
	u.obj = r.v.rt.NewDynamicObject(u)
	return u
}

// Get implements goja.DynamicObject.
func (u *jsUser) Get(key string) goja.Value {
	rt := u.r.v.rt
	switch key {
	case "uniqueId":
		return rt.ToValue(u.subj.ID)
	case "username":
		return rt.ToValue(u.subj.Username)
	case "tenantDomain":
		return rt.ToValue(cmp.Or(u.subj.TenantDomain, u.r.in.TenantDomain))
	case "userStoreDomain":
		return rt.ToValue(u.subj.UserStoreDomain)
	case "isFederated":
		return rt.ToValue(u.subj.Federated)
	case "roles":
		return strArray(rt, u.r.roles(u))
	case "groups":
		return strArray(rt, u.r.record(u).Groups)
	case "claims":
		if u.claims == nil {
			u.claims = strObject(rt, u.subj.Claims)
		}
		return u.claims
	case "remoteClaims":
		if u.remote == nil {
			u.remote = strObject(rt, u.subj.RemoteClaims)
		}
		return u.remote
	case "localClaims":
		if u.local == nil {
			u.local = rt.NewDynamicObject(&localClaims{u: u})
		}
		return u.local
	}
	return nil
}

// Set implements goja.DynamicObject; user fields are read-only.
func (u *jsUser) Set(string, goja.Value) bool { return false }

// Has implements goja.DynamicObject.
func (u *jsUser) Has(key string) bool { return slices.Contains(userKeys, key) }

// Delete implements goja.DynamicObject.
func (u *jsUser) Delete(string) bool { return false }

// Keys implements goja.DynamicObject.
func (u *jsUser) Keys() []string { return slices.Clone(userKeys) }

// localClaims backs user.localClaims: reads go to the Host (and this
// evaluation's writes), writes become set_local_claim effects.
type localClaims struct{ u *jsUser }

// Get implements goja.DynamicObject.
func (l *localClaims) Get(key string) goja.Value {
	r := l.u.r
	if v, ok := r.claimOverlay[l.u.subj.ID][key]; ok {
		return r.v.rt.ToValue(v)
	}
	if v, ok := r.record(l.u).Claims[key]; ok {
		return r.v.rt.ToValue(v)
	}
	return nil
}

// Set implements goja.DynamicObject.
func (l *localClaims) Set(key string, val goja.Value) bool {
	r := l.u.r
	s := val.String()
	if len(s) > MaxValueBytes {
		panic(r.v.rt.NewTypeError("localClaims value is longer than %d bytes", MaxValueBytes))
	}
	if r.claimOverlay == nil {
		r.claimOverlay = map[string]map[string]string{}
	}
	if r.claimOverlay[l.u.subj.ID] == nil {
		r.claimOverlay[l.u.subj.ID] = map[string]string{}
	}
	r.claimOverlay[l.u.subj.ID][key] = s
	r.effect(Effect{Kind: EffectSetLocalClaim, UserID: l.u.subj.ID, Claim: key, Value: s})
	return true
}

// Has implements goja.DynamicObject.
func (l *localClaims) Has(key string) bool { return l.Get(key) != nil }

// Delete implements goja.DynamicObject.
func (l *localClaims) Delete(string) bool { return false }

// Keys implements goja.DynamicObject.
func (l *localClaims) Keys() []string {
	r := l.u.r
	m := maps.Clone(r.record(l.u).Claims)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, r.claimOverlay[l.u.subj.ID])
	return slices.Sorted(maps.Keys(m))
}

// record returns the stored user behind u, through the Host, cached per
// evaluation. A user the Host does not know (a federated user not linked
// to a local one) has no roles, groups or local claims. A Host error stops
// the script and fails the login.
func (r *run) record(u *jsUser) *User {
	if rec, ok := r.users[u.subj.ID]; ok {
		return rec
	}
	rec := &User{ID: u.subj.ID, Username: u.subj.Username, UserStoreDomain: u.subj.UserStoreDomain}
	if r.host != nil && !u.subj.Federated {
		got, err := r.host.User(r.ctx, cmp.Or(u.subj.TenantDomain, r.in.TenantDomain), u.subj.ID)
		if err != nil {
			r.hostFail("reading user "+u.subj.ID, err)
		}
		if got != nil {
			rec = got
		}
	}
	if r.users == nil {
		r.users = map[string]*User{}
	}
	r.users[u.subj.ID] = rec
	return rec
}

// roles returns u's roles with this evaluation's assignments and removals
// applied.
func (r *run) roles(u *jsUser) []string {
	roles := slices.Clone(r.record(u).Roles)
	for role, add := range r.roleOverlay[u.subj.ID] {
		has := slices.Contains(roles, role)
		switch {
		case add && !has:
			roles = append(roles, role)
		case !add && has:
			roles = slices.DeleteFunc(roles, func(s string) bool { return s == role })
		}
	}
	slices.Sort(roles)
	return roles
}

func (r *run) overlayRoles(u *jsUser, roles []string, add bool) {
	if r.roleOverlay == nil {
		r.roleOverlay = map[string]map[string]bool{}
	}
	if r.roleOverlay[u.subj.ID] == nil {
		r.roleOverlay[u.subj.ID] = map[string]bool{}
	}
	for _, role := range roles {
		r.roleOverlay[u.subj.ID][role] = add
	}
}

// headerMap backs context.request.headers: read-only, names matched
// without regard to case.
type headerMap struct {
	rt *goja.Runtime
	m  map[string]string
}

// Get implements goja.DynamicObject.
func (h *headerMap) Get(key string) goja.Value {
	if v, ok := h.m[key]; ok {
		return h.rt.ToValue(v)
	}
	for k, v := range h.m {
		if strings.EqualFold(k, key) {
			return h.rt.ToValue(v)
		}
	}
	return nil
}

// Set implements goja.DynamicObject.
func (h *headerMap) Set(string, goja.Value) bool { return false }

// Has implements goja.DynamicObject.
func (h *headerMap) Has(key string) bool { return h.Get(key) != nil }

// Delete implements goja.DynamicObject.
func (h *headerMap) Delete(string) bool { return false }

// Keys implements goja.DynamicObject.
func (h *headerMap) Keys() []string { return slices.Sorted(maps.Keys(h.m)) }

// responseHeaders backs context.response.headers: each write is a
// response_header effect.
type responseHeaders struct {
	r *run
	m map[string]string
}

// Get implements goja.DynamicObject.
func (h *responseHeaders) Get(key string) goja.Value {
	if v, ok := h.m[key]; ok {
		return h.r.v.rt.ToValue(v)
	}
	return nil
}

// Set implements goja.DynamicObject.
func (h *responseHeaders) Set(key string, val goja.Value) bool {
	s := val.String()
	if !validHeader(key, s) {
		panic(h.r.v.rt.NewTypeError("response header %q is not a valid header", key))
	}
	h.m[key] = s
	h.r.effect(Effect{Kind: EffectResponseHeader, Name: key, Value: s})
	return true
}

// Has implements goja.DynamicObject.
func (h *responseHeaders) Has(key string) bool { _, ok := h.m[key]; return ok }

// Delete implements goja.DynamicObject.
func (h *responseHeaders) Delete(string) bool { return false }

// Keys implements goja.DynamicObject.
func (h *responseHeaders) Keys() []string { return slices.Sorted(maps.Keys(h.m)) }

// validHeader refuses header names and values that could split a response.
func validHeader(name, value string) bool {
	if name == "" || len(name) > 256 || len(value) > 8192 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return !strings.ContainsAny(value, "\r\n\x00")
}

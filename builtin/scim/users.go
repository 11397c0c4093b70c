package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// storedUserAttrs are the core User attributes without a column of their
// own; they are kept in store.User.Attributes under their SCIM names.
var storedUserAttrs = []string{
	"externalId", "nickName", "profileUrl", "title", "userType", "preferredLanguage",
	"locale", "timezone", "ims", "photos", "addresses", "entitlements", "roles", "x509Certificates",
}

const (
	maxUserNameLen   = 256
	maxAttributesLen = 64 << 10
)

// userResource renders u as a full SCIM User (every attribute, before
// attributes/excludedAttributes projection).
func (s *Service) userResource(u store.User, groups []store.Group, base string) map[string]any {
	rt := s.users
	r := map[string]any{"id": u.ID, "userName": u.Username, "active": u.Enabled}
	attrs := u.Attributes
	for _, name := range storedUserAttrs {
		if v, ok := attrs[name]; ok {
			if nv := tolerant(rt, name, v); nv != nil {
				r[name] = nv
			}
		}
	}
	name, _ := tolerant(rt, "name", attrs["name"]).(map[string]any)
	if name == nil {
		name = map[string]any{}
	}
	delete(name, "givenName")
	delete(name, "familyName")
	if u.GivenName != "" {
		name["givenName"] = u.GivenName
	}
	if u.FamilyName != "" {
		name["familyName"] = u.FamilyName
	}
	if len(name) > 0 {
		r["name"] = name
	}
	if u.DisplayName != "" {
		r["displayName"] = u.DisplayName
	}
	if l := withPrimary(tolerant(rt, "emails", attrs["emails"]), u.Email); l != nil {
		r["emails"] = l
	}
	if l := withPrimary(tolerant(rt, "phoneNumbers", attrs["phoneNumbers"]), u.PhoneNumber); l != nil {
		r["phoneNumbers"] = l
	}
	if len(groups) > 0 {
		gl := make([]any, len(groups))
		for i, g := range groups {
			gl[i] = map[string]any{"value": g.ID, "display": g.Name, "$ref": base + "/Groups/" + g.ID, "type": "direct"}
		}
		r["groups"] = gl
	}
	schemas := []any{SchemaUser}
	for _, ext := range rt.Extensions {
		m, ok := attrs[ext.ID].(map[string]any)
		if !ok {
			continue
		}
		if nm, err := normalizeAttrs(ext.Attributes, m, ext.ID+":"); err == nil && len(nm) > 0 {
			r[ext.ID] = nm
			schemas = append(schemas, ext.ID)
		}
	}
	r["schemas"] = schemas
	meta := map[string]any{
		"resourceType": "User",
		"location":     base + "/Users/" + u.ID,
		"version":      etagOf(u.Version),
	}
	// A user store domain outside the database may keep no timestamps.
	if !u.CreatedAt.IsZero() {
		meta["created"] = u.CreatedAt.UTC().Format(time.RFC3339Nano)
		meta["lastModified"] = u.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	r["meta"] = meta
	return r
}

// tolerant normalizes a stored value, dropping it when it does not fit the
// schema (the admin API may have written anything into Attributes).
func tolerant(rt *resourceType, name string, v any) any {
	if v == nil {
		return nil
	}
	a := attrOf(rt.Core.Attributes, name)
	if a == nil {
		a = attrOf(commonAttrs, name)
	}
	if a == nil {
		return nil
	}
	nv, err := normalizeValue(a, v, name)
	if err != nil {
		return nil
	}
	return nv
}

// withPrimary makes sure the column value (the primary email or phone
// number) is in the list and marked primary.
func withPrimary(v any, column string) []any {
	list, _ := v.([]any)
	if column == "" {
		return list
	}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if s, _ := m["value"].(string); strings.EqualFold(s, column) {
				return list
			}
		}
	}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			delete(m, "primary")
		}
	}
	return append([]any{map[string]any{"value": column, "primary": true}}, list...)
}

// primaryValue returns the primary value of a multi-valued attribute, or
// its first.
func primaryValue(v any) string {
	list, _ := v.([]any)
	first := ""
	for i, e := range list {
		m, _ := e.(map[string]any)
		s, _ := m["value"].(string)
		if m["primary"] == true {
			return s
		}
		if i == 0 {
			first = s
		}
	}
	return first
}

// applyUser writes the full SCIM resource r onto u: r replaces every SCIM
// attribute of u; Attributes keys SCIM does not know are kept.
func (s *Service) applyUser(r map[string]any, u *store.User) *Error {
	un, _ := r["userName"].(string)
	if err := checkUserName(un); err != nil {
		return err
	}
	u.Username = un
	attrs := map[string]any{}
	for k, v := range u.Attributes {
		attrs[k] = v
	}
	for _, name := range storedUserAttrs {
		delete(attrs, name)
		if v, ok := r[name]; ok {
			attrs[name] = v
		}
	}
	name, _ := deepCopy(r["name"]).(map[string]any)
	u.GivenName, _ = name["givenName"].(string)
	u.FamilyName, _ = name["familyName"].(string)
	delete(name, "givenName")
	delete(name, "familyName")
	delete(attrs, "name")
	if len(name) > 0 {
		attrs["name"] = name
	}
	u.DisplayName, _ = r["displayName"].(string)
	u.Enabled = true
	if b, ok := r["active"].(bool); ok {
		u.Enabled = b
	}
	for _, f := range []struct {
		attr   string
		column *string
	}{{"emails", &u.Email}, {"phoneNumbers", &u.PhoneNumber}} {
		delete(attrs, f.attr)
		*f.column = ""
		if v, ok := r[f.attr]; ok {
			attrs[f.attr] = v
			*f.column = primaryValue(v)
		}
	}
	if u.Email != "" && (!strings.Contains(u.Email, "@") || len(u.Email) > 320) {
		return badRequest(ErrTypeInvalidValue, "emails: %q is not an email address", clip(u.Email))
	}
	for _, ext := range s.users.Extensions {
		delete(attrs, ext.ID)
		if v, ok := r[ext.ID]; ok {
			attrs[ext.ID] = v
		}
	}
	if b, err := json.Marshal(attrs); err != nil || len(b) > maxAttributesLen {
		return badRequest(ErrTypeInvalidValue, "the user's attributes are larger than %d bytes", maxAttributesLen)
	}
	u.Attributes = attrs
	if pw, ok := r["password"].(string); ok {
		if err := checkPassword(pw); err != nil {
			return err
		}
		if err := s.checkPolicy(*u, pw); err != nil {
			return err
		}
		hash, err := s.d.Hasher.Hash(pw)
		if err != nil {
			return internal(fmt.Errorf("hashing password: %w", err))
		}
		s.recordPassword(u, hash)
	}
	return nil
}

func checkUserName(un string) *Error {
	switch {
	case un == "":
		return badRequest(ErrTypeInvalidValue, "userName: is required")
	case len(un) > maxUserNameLen:
		return badRequest(ErrTypeInvalidValue, "userName: must be at most %d bytes", maxUserNameLen)
	case strings.TrimSpace(un) != un:
		return badRequest(ErrTypeInvalidValue, "userName: must not start or end with white space")
	case strings.IndexFunc(un, unicode.IsControl) >= 0:
		return badRequest(ErrTypeInvalidValue, "userName: must not contain control characters")
	}
	return nil
}

func checkPassword(pw string) *Error {
	switch {
	case len(pw) > password.MaxLength:
		return badRequest(ErrTypeInvalidValue, "password: must be at most %d bytes", password.MaxLength)
	case len([]rune(pw)) < config.MinPasswordLength:
		return badRequest(ErrTypeInvalidValue, "password: must be at least %d characters", config.MinPasswordLength)
	}
	return nil
}

// loadUser reads a user and its rendering.
func (s *Service) loadUser(rc *reqCtx, id string) (store.User, map[string]any, *Error) {
	if _, ok := s.dirOwns(rc, id); ok {
		return s.loadDirUser(rc, id)
	}
	if id == "" || len(id) > 64 {
		return store.User{}, nil, notFound("user")
	}
	u, err := s.d.Store.GetUser(rc.ctx, rc.tenant.ID, id)
	if err != nil {
		return store.User{}, nil, storeErr("user", err)
	}
	gs, err := s.d.Store.ListUserGroups(rc.ctx, rc.tenant.ID, u.ID)
	if err != nil {
		return store.User{}, nil, storeErr("group", err)
	}
	return u, s.userResource(u, gs, rc.base), nil
}

// createUser stores a new user from a SCIM body (RFC 7644 section 3.3).
func (s *Service) createUser(rc *reqCtx, body map[string]any) (map[string]any, *Error) {
	r, err := normalizeResource(s.users, body)
	if err != nil {
		return nil, err
	}
	if un, _ := r["userName"].(string); s.d.Directory != nil {
		if m, ok := s.d.Directory.OwnsUsername(rc.tenant.Name, un); ok {
			return s.createDirUser(rc, m, r)
		}
	}
	u := store.User{TenantID: rc.tenant.ID}
	if err := s.applyUser(r, &u); err != nil {
		return nil, err
	}
	u, serr := s.d.Store.CreateUser(rc.ctx, u)
	if serr != nil {
		return nil, storeErr("user", serr)
	}
	s.audit(rc, event.UserCreate, event.Ref("user", u.ID), store.OutcomeSuccess, nil)
	return s.userResource(u, nil, rc.base), nil
}

// replaceUser replaces a user with a SCIM body (RFC 7644 section 3.5.1).
func (s *Service) replaceUser(rc *reqCtx, id, ifMatch string, body map[string]any) (map[string]any, *Error) {
	u, _, err := s.loadUser(rc, id)
	if err != nil {
		return nil, err
	}
	if !matchesIfMatch(ifMatch, etagOf(u.Version)) {
		return nil, preconditionFailed("user")
	}
	r, err := normalizeResource(s.users, body)
	if err != nil {
		return nil, err
	}
	return s.saveUser(rc, u, r, "replace")
}

// patchUser applies a PatchOp body (RFC 7644 section 3.5.2).
func (s *Service) patchUser(rc *reqCtx, id, ifMatch string, body map[string]any) (map[string]any, *Error) {
	ops, err := parsePatch(body)
	if err != nil {
		return nil, err
	}
	u, cur, err := s.loadUser(rc, id)
	if err != nil {
		return nil, err
	}
	if !matchesIfMatch(ifMatch, etagOf(u.Version)) {
		return nil, preconditionFailed("user")
	}
	delete(cur, "meta")
	delete(cur, "groups")
	r, err := applyPatch(s.users, cur, ops)
	if err != nil {
		return nil, err
	}
	return s.saveUser(rc, u, r, "patch")
}

func (s *Service) saveUser(rc *reqCtx, u store.User, r map[string]any, how string) (map[string]any, *Error) {
	if _, ok := s.dirOwns(rc, u.ID); ok {
		return s.saveDirUser(rc, u, r, how)
	}
	if err := s.applyUser(r, &u); err != nil {
		return nil, err
	}
	u, serr := s.d.Store.UpdateUser(rc.ctx, u)
	if serr != nil {
		return nil, storeErr("user", serr)
	}
	fields := []string{how}
	if _, ok := r["password"]; ok {
		fields = append(fields, "password")
	}
	s.audit(rc, event.UserUpdate, event.Ref("user", u.ID), store.OutcomeSuccess, map[string]any{"operation": fields})
	gs, err := s.d.Store.ListUserGroups(rc.ctx, rc.tenant.ID, u.ID)
	if err != nil {
		return nil, storeErr("group", err)
	}
	return s.userResource(u, gs, rc.base), nil
}

func (s *Service) deleteUser(rc *reqCtx, id, ifMatch string) *Error {
	u, _, err := s.loadUser(rc, id)
	if err != nil {
		return err
	}
	if !matchesIfMatch(ifMatch, etagOf(u.Version)) {
		return preconditionFailed("user")
	}
	if _, ok := s.dirOwns(rc, u.ID); ok {
		if err := s.d.Directory.DeleteUser(rc.ctx, rc.tenant.Name, u.ID); err != nil {
			return dirErr("user", err)
		}
		s.audit(rc, event.UserDelete, event.Ref("user", u.ID), store.OutcomeSuccess, nil)
		return nil
	}
	if err := s.d.Store.DeleteUser(rc.ctx, rc.tenant.ID, u.ID); err != nil {
		return storeErr("user", err)
	}
	s.audit(rc, event.UserDelete, event.Ref("user", u.ID), store.OutcomeSuccess, nil)
	return nil
}

// HTTP handlers.

func (s *Service) createUserHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.createUser(rc, body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusCreated, s.users, r)
}

func (s *Service) getUserHTTP(c *fiber.Ctx, rc *reqCtx) error {
	_, r, err := s.loadUser(rc, c.Params("id"))
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.users, r)
}

func (s *Service) replaceUserHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.replaceUser(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch), body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.users, r)
}

func (s *Service) patchUserHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.patchUser(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch), body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.users, r)
}

func (s *Service) deleteUserHTTP(c *fiber.Ctx, rc *reqCtx) error {
	if err := s.deleteUser(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch)); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// writeResource answers one resource with its ETag and Location, applying
// the attributes and excludedAttributes query parameters (RFC 7644 section
// 3.9), and answers 304 to a matching If-None-Match on GET.
func (s *Service) writeResource(c *fiber.Ctx, status int, rt *resourceType, r map[string]any) error {
	meta, _ := r["meta"].(map[string]any)
	if v, ok := meta["version"].(string); ok {
		c.Set(fiber.HeaderETag, v)
		if c.Method() == fiber.MethodGet {
			if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && (inm == "*" || matchesIfMatch(inm, v)) {
				return c.SendStatus(http.StatusNotModified)
			}
		}
	}
	if loc, ok := meta["location"].(string); ok {
		c.Set(fiber.HeaderLocation, loc)
	}
	proj, err := parseProjection(rt, c.Query("attributes"), c.Query("excludedAttributes"))
	if err != nil {
		return err
	}
	return writeJSON(c, status, proj.apply(r))
}

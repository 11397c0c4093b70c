package me

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// MinPasswordLength is the shortest new password accepted (NIST SP
// 800-63B section 5.1.1.2); the same rule as the admin API's.
const MinPasswordLength = config.MinPasswordLength

// Limits of profile fields.
const (
	maxTextLen = 256
	maxURLLen  = 2048
	maxBody    = 16 << 10
)

// profileAttributes are the OpenID Connect standard claims (OpenID
// Connect Core section 5.1) a user may set on themselves; they live in the
// user's attributes. Every other attribute is the operator's and stays
// hidden and unchangeable here.
var profileAttributes = []string{"nickname", "picture", "website", "locale", "zoneinfo", "birthdate", "gender"}

// editable are the top-level fields PATCH accepts.
var editable = []string{"email", "phone_number", "display_name", "given_name", "family_name", "attributes"}

// forbidden are the fields a user may see (or that exist on a user) but
// never change here; naming one is a 403 that names the field.
var forbidden = []string{"id", "username", "enabled", "locked", "locked_until", "email_verified", "roles", "groups",
	"password", "password_hash", "version", "user_store", "created_at", "updated_at", "tenant"}

// profileJSON is the signed-in user as this API shows them.
type profileJSON struct {
	ID            string            `json:"id"`
	Username      string            `json:"username"`
	Email         string            `json:"email,omitempty"`
	EmailVerified bool              `json:"email_verified"`
	PhoneNumber   string            `json:"phone_number,omitempty"`
	DisplayName   string            `json:"display_name,omitempty"`
	GivenName     string            `json:"given_name,omitempty"`
	FamilyName    string            `json:"family_name,omitempty"`
	Attributes    map[string]string `json:"attributes"`
	Groups        []string          `json:"groups"`
	Roles         []string          `json:"roles"`
	UserStore     string            `json:"user_store"`
	Version       int64             `json:"version"`
}

// findUser finds the signed-in user in the user store that keeps them:
// by the domain of their id when the node has a directory, else by asking
// the tenant's user stores in order. A user no store knows any more, or a
// disabled one, is refused.
func (a *API) findUser(c *fiber.Ctx) (userStore, error) {
	t, p := tenantOf(c), principalOf(c)
	ctx := c.UserContext()
	insts, raw := a.d.Extensions.Enabled(t.Name, extension.KindUserStore), p.UserID
	if a.d.Directory != nil {
		m, _, err := a.d.Directory.GetUser(ctx, t.Name, p.UserID)
		switch {
		case errors.Is(err, userstore.ErrNotFound):
			return userStore{}, fault.New(fault.CodeUnauthenticated, "the signed-in user no longer exists")
		case err != nil:
			return userStore{}, fault.Unavailable.WithMessage("the user store is not available").WithCause(err)
		}
		insts = []*extension.Instance{m.Instance}
		if !m.Primary {
			_, raw, _ = strings.Cut(p.UserID, router.IDSeparator)
		}
	}
	for _, inst := range insts {
		us, ok := extension.As[userstore.Store](inst)
		if !ok {
			continue
		}
		var u abi.User
		err := extension.Call(ctx, inst, abi.OpGetUser, func(ctx context.Context) error {
			var err error
			u, err = us.GetUser(ctx, abi.GetUserRequest{Tenant: t.Name, ID: raw, Config: inst.Config()})
			return err
		})
		switch {
		case errors.Is(err, userstore.ErrNotFound):
			continue
		case err != nil:
			return userStore{}, fault.Unavailable.WithMessage("the user store is not available").WithCause(fmt.Errorf("loading user from %q: %w", inst.Name(), err))
		}
		if !u.Enabled {
			return userStore{}, fault.New(fault.CodeForbidden, "the account is disabled")
		}
		return userStore{inst: inst, user: u}, nil
	}
	return userStore{}, fault.New(fault.CodeUnauthenticated, "the signed-in user no longer exists")
}

func (a *API) profile(c *fiber.Ctx, s userStore) profileJSON {
	t := tenantOf(c)
	u := s.user
	out := profileJSON{
		ID: principalOf(c).UserID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
		DisplayName: u.DisplayName, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Attributes: map[string]string{}, Groups: []string{}, Roles: []string{}, UserStore: s.inst.Name(), Version: u.Version,
	}
	for _, k := range profileAttributes {
		if v, ok := u.Attributes[k].(string); ok && v != "" {
			out.Attributes[k] = v
		}
	}
	// Groups and roles the kernel store keeps; a directory user has none
	// there, and failing to read them only leaves the lists empty.
	ctx := c.UserContext()
	if gs, err := a.d.Store.ListUserGroups(ctx, t.ID, principalOf(c).UserID); err == nil {
		for _, g := range gs {
			out.Groups = append(out.Groups, g.Name)
		}
	}
	if rs, err := a.d.Store.ListEffectiveUserRoles(ctx, t.ID, principalOf(c).UserID); err == nil {
		for _, r := range rs {
			out.Roles = append(out.Roles, r.Name)
		}
	}
	return out
}

func setETag(c *fiber.Ctx, version int64) {
	if version > 0 {
		c.Set(fiber.HeaderETag, `W/"`+strconv.FormatInt(version, 10)+`"`)
	}
}

// getProfile answers GET /api/me.
func (a *API) getProfile(c *fiber.Ctx) error {
	s, err := a.findUser(c)
	if err != nil {
		return err
	}
	setETag(c, s.user.Version)
	return c.JSON(a.profile(c, s))
}

// patchProfile answers PATCH /api/me: a JSON object with the fields to
// change (null or "" clears one). If-Match, when sent, must name the
// current version.
func (a *API) patchProfile(c *fiber.Ctx) error {
	body, err := decodeObject(c)
	if err != nil {
		return err
	}
	s, err := a.findUser(c)
	if err != nil {
		return err
	}
	if h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch)); h != "" && h != "*" {
		v, perr := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
		if perr != nil {
			return fault.New(fault.CodeInvalidRequest, "If-Match: must be an ETag this API returned").WithField("If-Match")
		}
		if v != s.user.Version {
			return fault.New(fault.CodePreconditionFailed, "the profile was changed since that version; fetch it again")
		}
	}
	u := s.user
	u.Attributes = maps.Clone(u.Attributes)
	changed, err := applyProfile(body, &u)
	if err != nil {
		a.auditSelf(c, event.UserUpdate, event.Ref("user", principalOf(c).UserID), event.OutcomeDenied, map[string]any{"reason": fault.From(err).Message})
		return err
	}
	w, ok := extension.As[userstore.Writer](s.inst)
	if !ok {
		return fault.New(fault.CodeUnsupported, "your account's user store is read-only")
	}
	var updated abi.User
	err = extension.Call(c.UserContext(), s.inst, abi.OpUpdateUser, func(ctx context.Context) error {
		var err error
		// The version read above: a concurrent change (a lockout, an
		// admin's edit) is never overwritten with stale values.
		updated, err = w.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: tenantOf(c).Name, User: u, Config: s.inst.Config()})
		return err
	})
	switch {
	case errors.Is(err, userstore.ErrVersionMismatch):
		return fault.New(fault.CodePreconditionFailed, "the profile was changed by another request; fetch it again")
	case errors.Is(err, userstore.ErrConflict):
		return fault.New(fault.CodeConflict, "that value is taken by another account")
	case errors.Is(err, userstore.ErrReadOnly):
		return fault.New(fault.CodeUnsupported, "your account's user store is read-only")
	case err != nil:
		return fault.Unavailable.WithMessage("the user store is not available").WithCause(err)
	}
	a.auditSelf(c, event.UserUpdate, event.Ref("user", principalOf(c).UserID), event.OutcomeSuccess, map[string]any{"fields": changed})
	s.user = updated
	setETag(c, updated.Version)
	return c.JSON(a.profile(c, s))
}

// applyProfile writes the editable fields of body onto u and returns the
// names of the fields that changed.
func applyProfile(body map[string]json.RawMessage, u *abi.User) ([]string, error) {
	keys := slices.Sorted(maps.Keys(body))
	var changed []string
	for _, k := range keys {
		if slices.Contains(forbidden, k) {
			return nil, fault.New(fault.CodeForbidden, k+": may not be changed here").WithField(k)
		}
		if !slices.Contains(editable, k) {
			return nil, invalid(k, "unknown field")
		}
	}
	for _, k := range keys {
		raw := body[k]
		if k == "attributes" {
			var attrs map[string]json.RawMessage
			if err := json.Unmarshal(raw, &attrs); err != nil {
				return nil, invalid(k, "must be an object")
			}
			for _, ak := range slices.Sorted(maps.Keys(attrs)) {
				field := "attributes." + ak
				if !slices.Contains(profileAttributes, ak) {
					return nil, fault.New(fault.CodeForbidden, field+": may not be changed here; you may set "+strings.Join(profileAttributes, ", ")).WithField(field)
				}
				var pv *string
				if err := json.Unmarshal(attrs[ak], &pv); err != nil {
					return nil, invalid(field, "must be a string or null")
				}
				v := ""
				if pv != nil {
					v = *pv
				}
				if err := checkAttribute(field, ak, v); err != nil {
					return nil, err
				}
				old, _ := u.Attributes[ak].(string)
				if old == v {
					continue
				}
				if u.Attributes == nil {
					u.Attributes = map[string]any{}
				}
				if v == "" {
					delete(u.Attributes, ak)
				} else {
					u.Attributes[ak] = v
				}
				changed = append(changed, field)
			}
			continue
		}
		var p *string
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, invalid(k, "must be a string or null")
		}
		v := ""
		if p != nil {
			v = *p
		}
		var dst *string
		switch k {
		case "email":
			if err := checkEmail(k, v); err != nil {
				return nil, err
			}
			dst = &u.Email
		case "phone_number":
			if v != "" && !e164.MatchString(v) {
				return nil, invalid(k, "must be in E.164 form, like +15551234567")
			}
			dst = &u.PhoneNumber
		case "display_name":
			dst = &u.DisplayName
		case "given_name":
			dst = &u.GivenName
		case "family_name":
			dst = &u.FamilyName
		}
		if err := checkText(k, v, maxTextLen); err != nil {
			return nil, err
		}
		if *dst == v {
			continue
		}
		*dst = v
		changed = append(changed, k)
		if k == "email" {
			// A new address is not proven yet.
			u.EmailVerified = false
		}
	}
	return changed, nil
}

var (
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	birthdate = regexp.MustCompile(`^([0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2})$`)
	locale    = regexp.MustCompile(`^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$`)
)

func checkAttribute(field, name, v string) error {
	if err := checkText(field, v, maxTextLen); err != nil {
		return err
	}
	if v == "" {
		return nil
	}
	switch name {
	case "picture", "website":
		if len(v) > maxURLLen {
			return invalid(field, "must be at most %d bytes", maxURLLen)
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return invalid(field, "must be an http or https URL")
		}
	case "birthdate":
		if !birthdate.MatchString(v) {
			return invalid(field, "must be YYYY or YYYY-MM-DD")
		}
	case "locale":
		if !locale.MatchString(v) {
			return invalid(field, "must be a BCP 47 language tag like en-US")
		}
	}
	return nil
}

// changePassword answers POST /api/me/password with
// {"current_password": "...", "new_password": "..."}. The current password
// is checked by the user store that keeps the account, so its lockout
// rules count a wrong one; the new one is hashed by the store. The user's
// other sessions end.
func (a *API) changePassword(c *fiber.Ctx) error {
	var in struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	switch {
	case in.Current == "":
		return invalid("current_password", "is required")
	case len(in.New) > password.MaxLength:
		return invalid("new_password", "must be at most %d bytes", password.MaxLength)
	case utf8.RuneCountInString(in.New) < MinPasswordLength:
		return invalid("new_password", "must be at least %d characters", MinPasswordLength)
	case in.New == in.Current:
		return invalid("new_password", "must differ from the current password")
	}
	s, err := a.findUser(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	target := event.Ref("user", principalOf(c).UserID)
	w, ok := extension.As[userstore.Writer](s.inst)
	if !ok {
		return fault.New(fault.CodeUnsupported, "your account's user store does not accept password changes")
	}
	if err := a.confirmPassword(c, in.Current, ActionPasswordChange); err != nil {
		return err
	}
	ctx := c.UserContext()
	// The check may have updated the record (a reset failure count, a
	// rehash): update the latest version, retrying a concurrent change.
	for attempt := 1; ; attempt++ {
		cur, err := a.findUser(c)
		if err != nil {
			return err
		}
		err = extension.Call(ctx, s.inst, abi.OpUpdateUser, func(ctx context.Context) error {
			_, err := w.UpdateUser(ctx, abi.UpdateUserRequest{Tenant: t.Name, User: cur.user, Password: in.New, Config: s.inst.Config()})
			return err
		})
		if errors.Is(err, userstore.ErrVersionMismatch) && attempt < 3 {
			continue
		}
		if err != nil {
			return fault.Unavailable.WithMessage("the user store is not available").WithCause(err)
		}
		break
	}
	ended := a.endSessions(c, principalOf(c).UserID)
	a.auditSelf(c, ActionPasswordChange, target, event.OutcomeSuccess, map[string]any{"sessions_ended": ended})
	return c.Status(fiber.StatusOK).JSON(fiber.Map{"sessions_ended": ended})
}

// --- input ------------------------------------------------------------------

// The input checks and error mapping shared with the admin API.
var (
	invalid    = restapi.Invalid
	storeError = restapi.StoreError
	checkText  = restapi.CheckText
	checkEmail = restapi.CheckEmail
)

func checkJSONType(c *fiber.Ctx) error {
	if len(c.Body()) > maxBody {
		return fault.New(fault.CodeInvalidRequest, fmt.Sprintf("request body must be at most %d bytes", maxBody))
	}
	return restapi.CheckJSONBody(c)
}

// decodeObject reads the body as one JSON object of raw members.
func decodeObject(c *fiber.Ctx) (map[string]json.RawMessage, error) {
	if err := checkJSONType(c); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := restapi.DecodeJSON(c.Body(), &m, false); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fault.New(fault.CodeInvalidRequest, "body must be a JSON object")
	}
	return m, nil
}

// decodeStrict reads the body as exactly one JSON object into v, refusing
// unknown fields.
func decodeStrict(c *fiber.Ctx, v any) error {
	if err := checkJSONType(c); err != nil {
		return err
	}
	return restapi.DecodeJSON(c.Body(), v, true)
}

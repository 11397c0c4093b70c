package admin

import (
	"errors"
	"maps"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// maxProfiles bounds the profiles of one user.
const maxProfiles = 16

// profileJSON is one of a user's profiles: local claims (by name or URI)
// whose values replace the default profile's for the applications whose
// client setting claim_profile names it.
type profileJSON struct {
	Name   string         `json:"name"`
	Claims map[string]any `json:"claims"`
}

// profilesOf returns the stored profiles of u.
func profilesOf(u store.User) map[string]map[string]any {
	out := map[string]map[string]any{}
	ps, _ := u.Attributes[claims.ProfilesAttribute].(map[string]any)
	for name, v := range ps {
		if m, ok := v.(map[string]any); ok {
			out[name] = m
		}
	}
	return out
}

// withoutProfiles is u's attributes as the API shows them: the default
// profile only.
func withoutProfiles(attrs map[string]any) map[string]any {
	if _, ok := attrs[claims.ProfilesAttribute]; !ok {
		return attrs
	}
	out := maps.Clone(attrs)
	delete(out, claims.ProfilesAttribute)
	return out
}

// profileUser loads the database record of the user for the profile
// routes. A user of a user store domain keeps its profiles on its shadow
// record: a write creates the shadow when the user has none yet, a read
// of a user without one finds no profiles.
func (a *API) profileUser(c *fiber.Ctx, write bool) (store.User, error) {
	id := c.Params("id")
	if _, ok := a.dirOwns(c, id); ok {
		if write {
			if err := a.attachTo(c, id); err != nil {
				return store.User{}, err
			}
		} else {
			if err := a.checkUser(c, id); err != nil {
				return store.User{}, err
			}
			u, err := a.d.Store.GetUser(c.UserContext(), tenantOf(c).ID, id)
			if errors.Is(err, store.ErrNotFound) {
				return store.User{ID: id}, nil
			}
			if err != nil {
				return store.User{}, storeError("user", err)
			}
			return u, nil
		}
	}
	u, err := a.d.Store.GetUser(c.UserContext(), tenantOf(c).ID, id)
	if err != nil {
		return store.User{}, storeError("user", err)
	}
	return u, nil
}

// listUserProfiles serves GET /users/{id}/profiles.
func (a *API) listUserProfiles(c *fiber.Ctx) error {
	u, err := a.profileUser(c, false)
	if err != nil {
		return err
	}
	ps := profilesOf(u)
	out := make([]profileJSON, 0, len(ps))
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		out = append(out, profileJSON{Name: name, Claims: ps[name]})
	}
	return c.JSON(newList(out, ""))
}

// putUserProfile serves PUT /users/{id}/profiles/{profile}: the body is
// an object of local claims (by name or URI) and their values.
func (a *API) putUserProfile(c *fiber.Ctx) error {
	name := c.Params("profile")
	if !claimNameRE.MatchString(name) || name == claims.DefaultProfile {
		return invalid("profile", "must be 1..128 letters, digits, '_', '.' or '-', and not %q (the user record itself)", claims.DefaultProfile)
	}
	var in map[string]any
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkAttributes("claims", in); err != nil {
		return err
	}
	u, err := a.profileUser(c, true)
	if err != nil {
		return err
	}
	ps := profilesOf(u)
	if _, ok := ps[name]; !ok && len(ps) >= maxProfiles {
		return invalid("profile", "a user has at most %d profiles", maxProfiles)
	}
	ps[name] = in
	return a.saveProfiles(c, u, ps, name)
}

// deleteUserProfile serves DELETE /users/{id}/profiles/{profile}.
func (a *API) deleteUserProfile(c *fiber.Ctx) error {
	u, err := a.profileUser(c, false)
	if err != nil {
		return err
	}
	ps := profilesOf(u)
	name := c.Params("profile")
	if _, ok := ps[name]; !ok {
		return fault.New(fault.CodeNotFound, "profile not found")
	}
	delete(ps, name)
	if err := a.saveProfiles(c, u, ps, name); err != nil {
		return err
	}
	return nil
}

func (a *API) saveProfiles(c *fiber.Ctx, u store.User, ps map[string]map[string]any, name string) error {
	attrs := maps.Clone(u.Attributes)
	if attrs == nil {
		attrs = map[string]any{}
	}
	if len(ps) == 0 {
		delete(attrs, claims.ProfilesAttribute)
	} else {
		m := make(map[string]any, len(ps))
		for k, v := range ps {
			m[k] = v
		}
		attrs[claims.ProfilesAttribute] = m
	}
	u.Attributes = attrs
	u, err := a.d.Store.UpdateUser(c.UserContext(), u)
	if err != nil {
		return storeError("user", err)
	}
	a.audit(c, u.TenantID, event.UserUpdate, "user:"+u.ID, store.OutcomeSuccess, map[string]any{"fields": []string{"profile:" + name}})
	if c.Method() == fiber.MethodDelete {
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.JSON(profileJSON{Name: name, Claims: ps[name]})
}

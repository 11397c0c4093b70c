package admin

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

type roleJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toRoleJSON(r store.Role) roleJSON {
	p := r.Permissions
	if p == nil {
		p = []string{}
	}
	return roleJSON{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: p,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type roleInput struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description"`
	Permissions *[]string `json:"permissions"`
}

func (in roleInput) apply(r *store.Role) error {
	if in.Name != nil {
		if err := checkName("name", *in.Name); err != nil {
			return err
		}
		r.Name = *in.Name
	}
	if in.Description != nil {
		if err := checkText("description", *in.Description, maxTextLen); err != nil {
			return err
		}
		r.Description = *in.Description
	}
	if in.Permissions != nil {
		if err := checkList("permissions", *in.Permissions, checkName); err != nil {
			return err
		}
		r.Permissions = *in.Permissions
	}
	return nil
}

func (a *API) createRole(c *fiber.Ctx) error {
	var in roleInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("name", "is required")
	}
	t := tenantOf(c)
	r := store.Role{TenantID: t.ID}
	if err := in.apply(&r); err != nil {
		return err
	}
	r, err := a.d.Store.CreateRole(c.UserContext(), r)
	if err != nil {
		return storeError("role", err)
	}
	a.audit(c, t.ID, event.RoleCreate, "role:"+r.ID, store.OutcomeSuccess, nil)
	c.Location(c.Path() + "/" + r.ID)
	return c.Status(fiber.StatusCreated).JSON(toRoleJSON(r))
}

func (a *API) getRole(c *fiber.Ctx) error {
	r, err := a.d.Store.GetRole(c.UserContext(), tenantOf(c).ID, c.Params("id"))
	if err != nil {
		return storeError("role", err)
	}
	return c.JSON(toRoleJSON(r))
}

func (a *API) listRoles(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	rs, next, err := a.d.Store.ListRoles(c.UserContext(), tenantOf(c).ID, p)
	if err != nil {
		return storeError("role", err)
	}
	out := make([]roleJSON, len(rs))
	for i, r := range rs {
		out[i] = toRoleJSON(r)
	}
	return c.JSON(newList(out, next))
}

func (a *API) updateRole(c *fiber.Ctx) error {
	var in roleInput
	if err := decode(c, &in); err != nil {
		return err
	}
	t := tenantOf(c)
	r, err := a.d.Store.GetRole(c.UserContext(), t.ID, c.Params("id"))
	if err != nil {
		return storeError("role", err)
	}
	if err := in.apply(&r); err != nil {
		return err
	}
	if r, err = a.d.Store.UpdateRole(c.UserContext(), r); err != nil {
		return storeError("role", err)
	}
	a.audit(c, t.ID, event.RoleUpdate, "role:"+r.ID, store.OutcomeSuccess, nil)
	return c.JSON(toRoleJSON(r))
}

func (a *API) deleteRole(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	if err := a.d.Store.DeleteRole(c.UserContext(), t.ID, id); err != nil {
		return storeError("role", err)
	}
	a.audit(c, t.ID, event.RoleDelete, "role:"+id, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) assignRole(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t := tenantOf(c)
		rid, sid := c.Params("id"), c.Params("subject")
		if kind == store.SubjectUser {
			if err := a.attachTo(c, sid); err != nil {
				return err
			}
		}
		if err := a.d.Store.AssignRole(c.UserContext(), t.ID, rid, kind, sid); err != nil {
			return storeError("role or "+kind, err)
		}
		a.audit(c, t.ID, event.RoleAssign, "role:"+rid, store.OutcomeSuccess, map[string]any{kind: sid})
		return c.SendStatus(fiber.StatusNoContent)
	}
}

func (a *API) unassignRole(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t := tenantOf(c)
		rid, sid := c.Params("id"), c.Params("subject")
		if err := a.d.Store.UnassignRole(c.UserContext(), t.ID, rid, kind, sid); err != nil {
			return storeError("role or "+kind, err)
		}
		a.audit(c, t.ID, event.RoleUnassign, "role:"+rid, store.OutcomeSuccess, map[string]any{kind: sid})
		return c.SendStatus(fiber.StatusNoContent)
	}
}

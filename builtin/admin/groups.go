package admin

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

type groupJSON struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	// Domain is the user store domain of a group kept outside the Latch
	// database ("LDAP"); empty for the database's groups.
	Domain string `json:"domain,omitempty"`
}

func toGroupJSON(g store.Group) groupJSON {
	return groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, Attributes: g.Attributes,
		CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC()}
}

type groupInput struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Attributes  *map[string]any `json:"attributes"`
}

func (in groupInput) apply(g *store.Group) error {
	if in.Name != nil {
		if err := checkName("name", *in.Name); err != nil {
			return err
		}
		g.Name = *in.Name
	}
	if in.Description != nil {
		if err := checkText("description", *in.Description, maxTextLen); err != nil {
			return err
		}
		g.Description = *in.Description
	}
	if in.Attributes != nil {
		if err := checkAttributes("attributes", *in.Attributes); err != nil {
			return err
		}
		g.Attributes = *in.Attributes
	}
	return nil
}

func (a *API) createGroup(c *fiber.Ctx) error {
	var in groupInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("name", "is required")
	}
	t := tenantOf(c)
	g := store.Group{TenantID: t.ID}
	if err := in.apply(&g); err != nil {
		return err
	}
	g, err := a.d.Store.CreateGroup(c.UserContext(), g)
	if err != nil {
		return storeError("group", err)
	}
	a.audit(c, t.ID, event.GroupCreate, "group:"+g.ID, store.OutcomeSuccess, nil)
	c.Location(c.Path() + "/" + g.ID)
	return c.Status(fiber.StatusCreated).JSON(toGroupJSON(g))
}

func (a *API) getGroup(c *fiber.Ctx) error {
	g, err := a.d.Store.GetGroup(c.UserContext(), tenantOf(c).ID, c.Params("id"))
	if err != nil {
		return storeError("group", err)
	}
	return c.JSON(toGroupJSON(g))
}

func (a *API) listGroups(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	withDir := len(a.dirMembers(c)) > 0
	if after, ok := strings.CutPrefix(p.After, dirCursor); ok && withDir {
		l, err := a.listDirGroups(c, after, p.Limit, nil)
		if err != nil {
			return err
		}
		return c.JSON(l)
	}
	gs, next, err := a.d.Store.ListGroups(c.UserContext(), tenantOf(c).ID, p)
	if err != nil {
		return storeError("group", err)
	}
	out := make([]groupJSON, len(gs))
	for i, g := range gs {
		out[i] = toGroupJSON(g)
	}
	// The user store domains' groups follow the database's.
	switch {
	case !withDir || next != "":
	case len(out) < p.Limit:
		l, err := a.listDirGroups(c, "", p.Limit-len(out), out)
		if err != nil {
			return err
		}
		return c.JSON(l)
	default:
		next = dirCursor
	}
	return c.JSON(newList(out, next))
}

func (a *API) updateGroup(c *fiber.Ctx) error {
	var in groupInput
	if err := decode(c, &in); err != nil {
		return err
	}
	t := tenantOf(c)
	g, err := a.d.Store.GetGroup(c.UserContext(), t.ID, c.Params("id"))
	if err != nil {
		return storeError("group", err)
	}
	if err := in.apply(&g); err != nil {
		return err
	}
	if g, err = a.d.Store.UpdateGroup(c.UserContext(), g); err != nil {
		return storeError("group", err)
	}
	a.audit(c, t.ID, event.GroupUpdate, "group:"+g.ID, store.OutcomeSuccess, nil)
	return c.JSON(toGroupJSON(g))
}

func (a *API) deleteGroup(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	// The members go with the group: the event names them, for the
	// provisioners whose rules depend on membership.
	former, err := provision.FormerMembers(c.UserContext(), a.d.Store, t.ID, id)
	if err != nil {
		return storeError("group", err)
	}
	if err := a.d.Store.DeleteGroup(c.UserContext(), t.ID, id); err != nil {
		return storeError("group", err)
	}
	a.audit(c, t.ID, event.GroupDelete, "group:"+id, store.OutcomeSuccess, former)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listGroupMembers(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	if _, err := a.d.Store.GetGroup(c.UserContext(), t.ID, c.Params("id")); err != nil {
		return storeError("group", err)
	}
	us, next, err := a.d.Store.ListGroupMembers(c.UserContext(), t.ID, c.Params("id"), p)
	if err != nil {
		return storeError("group", err)
	}
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = toUserJSON(u)
	}
	return c.JSON(newList(out, next))
}

func (a *API) addGroupMember(c *fiber.Ctx) error {
	t := tenantOf(c)
	gid, uid := c.Params("id"), c.Params("user")
	if _, err := a.d.Store.GetGroup(c.UserContext(), t.ID, gid); err != nil {
		return storeError("group", err)
	}
	if err := a.attachTo(c, uid); err != nil {
		return err
	}
	if err := a.d.Store.AddGroupMember(c.UserContext(), t.ID, gid, uid); err != nil {
		return storeError("group or user", err)
	}
	a.audit(c, t.ID, event.GroupMemberAdd, "group:"+gid, store.OutcomeSuccess, map[string]any{"user": uid})
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) removeGroupMember(c *fiber.Ctx) error {
	t := tenantOf(c)
	gid, uid := c.Params("id"), c.Params("user")
	if err := a.d.Store.RemoveGroupMember(c.UserContext(), t.ID, gid, uid); err != nil {
		return storeError("group or user", err)
	}
	a.audit(c, t.ID, event.GroupMemberRemove, "group:"+gid, store.OutcomeSuccess, map[string]any{"user": uid})
	return c.SendStatus(fiber.StatusNoContent)
}

package admin

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

type tenantJSON struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DisplayName string         `json:"display_name,omitempty"`
	Enabled     bool           `json:"enabled"`
	Settings    map[string]any `json:"settings,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

func toTenantJSON(t store.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, DisplayName: t.DisplayName, Enabled: t.Enabled,
		Settings: t.Settings, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

type tenantInput struct {
	Name        *string         `json:"name"`
	DisplayName *string         `json:"display_name"`
	Enabled     *bool           `json:"enabled"`
	Settings    *map[string]any `json:"settings"`
}

// validTenantName reports whether name can appear in a path (a DNS
// label).
var validTenantName = restapi.ValidTenantName

func (in tenantInput) apply(t *store.Tenant) error {
	if in.Name != nil {
		if !validTenantName(*in.Name) {
			return invalid("name", "must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
		}
		t.Name = *in.Name
	}
	if in.DisplayName != nil {
		if err := checkText("display_name", *in.DisplayName, maxNameLen*2); err != nil {
			return err
		}
		t.DisplayName = *in.DisplayName
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	if in.Settings != nil {
		if err := checkAttributes("settings", *in.Settings); err != nil {
			return err
		}
		t.Settings = *in.Settings
	}
	return nil
}

func (a *API) createTenant(c *fiber.Ctx) error {
	var in tenantInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("name", "is required")
	}
	t := store.Tenant{Enabled: true}
	if err := in.apply(&t); err != nil {
		return err
	}
	if err := a.checkTenantSettings(in); err != nil {
		return err
	}
	ctx := c.UserContext()
	t, err := a.d.Store.CreateTenant(ctx, t)
	if err != nil {
		if fault.CodeOf(storeError("tenant", err)) == fault.CodeConflict {
			return fault.New(fault.CodeConflict, fmt.Sprintf("tenant %q exists", t.Name)).WithField("name")
		}
		return storeError("tenant", err)
	}
	if err := a.d.Keys.EnsureKeys(ctx, t.ID); err != nil {
		// Leave no tenant without keys behind.
		if derr := a.d.Store.DeleteTenant(ctx, t.ID); derr != nil {
			a.d.Log.Error("removing tenant after key creation failed", "tenant", t.Name, "err", derr)
		}
		return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("creating signing keys: %w", err))
	}
	// Tenant events belong to the default tenant, where the operator acted.
	a.audit(c, "", event.TenantCreate, "tenant:"+t.ID, store.OutcomeSuccess, map[string]any{"name": t.Name})
	c.Location(c.Path() + "/" + t.ID)
	return c.Status(fiber.StatusCreated).JSON(toTenantJSON(t))
}

// lookupTenant finds a tenant by id or by name.
func (a *API) lookupTenant(c *fiber.Ctx) (store.Tenant, error) {
	ref := c.Params("id")
	t, err := a.d.Store.GetTenant(c.UserContext(), ref)
	if err == nil {
		return t, nil
	}
	if validTenantName(ref) {
		t, err = a.d.Store.GetTenantByName(c.UserContext(), ref)
	}
	if err != nil {
		return t, storeError("tenant", err)
	}
	return t, nil
}

func (a *API) getTenant(c *fiber.Ctx) error {
	t, err := a.lookupTenant(c)
	if err != nil {
		return err
	}
	return c.JSON(toTenantJSON(t))
}

func (a *API) listTenants(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	ts, next, err := a.d.Store.ListTenants(c.UserContext(), p)
	if err != nil {
		return storeError("tenant", err)
	}
	out := make([]tenantJSON, len(ts))
	for i, t := range ts {
		out[i] = toTenantJSON(t)
	}
	return c.JSON(newList(out, next))
}

func (a *API) updateTenant(c *fiber.Ctx) error {
	var in tenantInput
	if err := decode(c, &in); err != nil {
		return err
	}
	t, err := a.lookupTenant(c)
	if err != nil {
		return err
	}
	if t.Name == store.DefaultTenantName {
		if in.Name != nil && *in.Name != t.Name {
			return invalid("name", "the default tenant cannot be renamed")
		}
		if in.Enabled != nil && !*in.Enabled {
			return invalid("enabled", "the default tenant cannot be disabled")
		}
	}
	if err := in.apply(&t); err != nil {
		return err
	}
	if err := a.checkTenantSettings(in); err != nil {
		return err
	}
	if t, err = a.d.Store.UpdateTenant(c.UserContext(), t); err != nil {
		return storeError("tenant", err)
	}
	a.audit(c, "", event.TenantUpdate, "tenant:"+t.ID, store.OutcomeSuccess, nil)
	return c.JSON(toTenantJSON(t))
}

func (a *API) deleteTenant(c *fiber.Ctx) error {
	t, err := a.lookupTenant(c)
	if err != nil {
		return err
	}
	if t.Name == store.DefaultTenantName {
		return fault.New(fault.CodeConflict, "the default tenant cannot be deleted")
	}
	if err := a.d.Store.DeleteTenant(c.UserContext(), t.ID); err != nil {
		return storeError("tenant", err)
	}
	a.audit(c, "", event.TenantDelete, "tenant:"+t.ID, store.OutcomeSuccess, map[string]any{"name": t.Name})
	return c.SendStatus(fiber.StatusNoContent)
}

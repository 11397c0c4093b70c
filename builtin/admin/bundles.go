package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Bundles is the node's plugin bundle set (docs/bundles.md): the
// lifecycle over the store, a way to bring this node to the store at once
// after a change (the other nodes follow within a second), and what this
// node runs.
type Bundles interface {
	Manager() *bundle.Manager
	Sync(ctx context.Context) error
	Running() map[string]string
}

// bundleJSON is one stored version of a bundle.
type bundleJSON struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	ABIVersion string `json:"abi_version"`
	// State is enabled, disabled or previous (kept for roll back).
	State       string             `json:"state"`
	Digest      string             `json:"digest"`
	Signer      string             `json:"signer,omitempty"`
	Description string             `json:"description,omitempty"`
	Extensions  []bundle.Extension `json:"extensions"`
	// Capabilities are what the bundle asks for; Grants what was granted.
	Capabilities []bundle.Capability `json:"capabilities"`
	Grants       []string            `json:"grants"`
	Tenants      []string            `json:"tenants,omitempty"`
	// Config is the configuration; every secret field that is set (the
	// schema's writeOnly properties) reads as bundle.Mask.
	Config json.RawMessage `json:"config,omitempty"`
	// Secrets names the secret fields that are set.
	Secrets []string `json:"secrets,omitempty"`
	// Platforms are what the bundle runs on: "wasm" and os/arch pairs.
	Platforms []string `json:"platforms"`
	// PreviousVersion is the version this one replaced.
	PreviousVersion string    `json:"previous_version,omitempty"`
	InstalledAt     time.Time `json:"installed_at"`
	// Running is true when this node runs this version.
	Running bool `json:"running"`
	// Health maps each of the running version's instances on this node
	// ("<bundle>.<entry>") to "ok" or the reason it is unhealthy.
	Health map[string]string `json:"health,omitempty"`
}

// bundleConfigInput changes an installed bundle's configuration.
type bundleConfigInput struct {
	Config  json.RawMessage `json:"config,omitempty"`
	Tenants []string        `json:"tenants,omitempty"`
}

func (a *API) bundleJSON(v bundle.Version, running map[string]string) bundleJSON {
	r := v.Record
	out := bundleJSON{
		Name: v.Name, Version: v.Version, ABIVersion: r.Manifest.ABIVersion, State: v.State, Digest: v.Digest,
		Signer: r.Signer, Description: r.Manifest.Description, Extensions: r.Manifest.Extensions,
		Capabilities: r.Manifest.Capabilities, Grants: r.Grants, Tenants: r.Tenants, Config: r.MaskedConfig(),
		Secrets: r.SecretNames, Platforms: r.Manifest.Platforms(), PreviousVersion: r.PreviousVersion,
		InstalledAt: v.Stored.InstalledAt, Running: running[v.Name] == v.Version,
	}
	if out.Extensions == nil {
		out.Extensions = []bundle.Extension{}
	}
	if out.Capabilities == nil {
		out.Capabilities = []bundle.Capability{}
	}
	if out.Grants == nil {
		out.Grants = []string{}
	}
	return out
}

// bundles returns the bundle set, or an error when the node has none.
func (a *API) bundles() (Bundles, error) {
	if a.d.Bundles == nil {
		return nil, fault.New(fault.CodeUnsupported, "this server does not run plugin bundles")
	}
	return a.d.Bundles, nil
}

// listBundles lists every stored version of every bundle.
func (a *API) listBundles(c *fiber.Ctx) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	vs, err := b.Manager().Versions(c.UserContext())
	if err != nil {
		return bundleError(err)
	}
	running := b.Running()
	var statuses []extension.Status
	if a.d.Extensions != nil {
		// Health reports failures in the statuses; its error only joins them.
		statuses, _ = a.d.Extensions.Health(c.UserContext())
	}
	items := make([]bundleJSON, 0, len(vs))
	for _, v := range vs {
		item := a.bundleJSON(v, running)
		if item.Running {
			for _, st := range statuses {
				if strings.HasPrefix(st.Name, v.Name+".") {
					if item.Health == nil {
						item.Health = map[string]string{}
					}
					item.Health[st.Name] = "ok"
					if st.Err != nil {
						item.Health[st.Name] = st.Err.Error()
					}
				}
			}
		}
		items = append(items, item)
	}
	return c.JSON(newList(items, ""))
}

// bundleRequest reads an install or upgrade: the archive is the body, the
// grants, tenants and configuration are query parameters (grants=kv,http
// and tenants=a,b are comma-separated; config is JSON). An absent
// parameter keeps the installed version's value on upgrade.
func bundleRequest(c *fiber.Ctx) (bundle.Request, error) {
	req := bundle.Request{Archive: bytes.Clone(c.Body())}
	if len(req.Archive) == 0 {
		return req, fault.New(fault.CodeInvalidRequest, "request body is empty; send the bundle archive (.tar.gz)")
	}
	list := func(name string) ([]string, error) {
		raw := c.Context().QueryArgs().Peek(name)
		if raw == nil {
			return nil, nil
		}
		out := []string{}
		for _, s := range strings.Split(string(raw), ",") {
			if s = strings.TrimSpace(s); s != "" {
				if err := checkName(name, s); err != nil {
					return nil, err
				}
				out = append(out, s)
			}
		}
		return out, nil
	}
	var err error
	if req.Grants, err = list("grants"); err != nil {
		return req, err
	}
	if req.Tenants, err = list("tenants"); err != nil {
		return req, err
	}
	if raw := c.Context().QueryArgs().Peek("config"); raw != nil {
		if !json.Valid(raw) {
			return req, invalid("config", "must be JSON")
		}
		req.Config = bytes.Clone(raw)
	}
	return req, nil
}

// installBundle installs a bundle that is not installed yet.
func (a *API) installBundle(c *fiber.Ctx) error {
	return a.putBundle(c, false)
}

// upgradeBundle replaces the installed version of a bundle.
func (a *API) upgradeBundle(c *fiber.Ctx) error {
	return a.putBundle(c, true)
}

func (a *API) putBundle(c *fiber.Ctx, upgrade bool) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	req, err := bundleRequest(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	action, do := event.Action("bundle.install"), b.Manager().Install
	if upgrade {
		action, do = event.Action("bundle.upgrade"), b.Manager().Upgrade
		parsed, err := bundle.Read(req.Archive)
		if err != nil {
			return bundleError(err)
		}
		if parsed.Manifest.Name != c.Params("name") {
			return invalid("name", "the archive holds bundle %q, not %q", parsed.Manifest.Name, c.Params("name"))
		}
	}
	rec, err := do(ctx, req)
	if err != nil {
		a.audit(c, tenantOf(c).ID, action, "bundle", store.OutcomeFailure, map[string]any{"error": err.Error()})
		return bundleError(err)
	}
	a.audit(c, tenantOf(c).ID, action, "bundle:"+rec.Manifest.Name, store.OutcomeSuccess,
		map[string]any{"version": rec.Manifest.Version, "grants": rec.Grants, "signer": rec.Signer})
	return a.answerBundle(c, b, rec.Manifest.Name, rec.Manifest.Version, fiber.StatusCreated)
}

// answerBundle syncs this node and answers with the stored version.
func (a *API) answerBundle(c *fiber.Ctx, b Bundles, name, version string, status int) error {
	ctx := c.UserContext()
	if err := b.Sync(ctx); err != nil {
		a.d.Log.WarnContext(ctx, "applying a bundle change on this node", "bundle", name, "err", err)
	}
	vs, err := b.Manager().Versions(ctx)
	if err != nil {
		return bundleError(err)
	}
	running := b.Running()
	for _, v := range vs {
		if v.Name == name && v.Version == version {
			return c.Status(status).JSON(a.bundleJSON(v, running))
		}
	}
	return fault.New(fault.CodeNotFound, "bundle "+name+" "+version+" not found")
}

// rollbackBundle makes the previous version active again.
func (a *API) rollbackBundle(c *fiber.Ctx) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	v, err := b.Manager().Rollback(c.UserContext(), c.Params("name"))
	if err != nil {
		return bundleError(err)
	}
	a.audit(c, tenantOf(c).ID, event.Action("bundle.rollback"), "bundle:"+v.Name, store.OutcomeSuccess, map[string]any{"version": v.Version})
	return a.answerBundle(c, b, v.Name, v.Version, fiber.StatusOK)
}

// enableBundle and disableBundle switch the active version on or off.
func (a *API) enableBundle(c *fiber.Ctx) error  { return a.setBundle(c, true) }
func (a *API) disableBundle(c *fiber.Ctx) error { return a.setBundle(c, false) }

func (a *API) setBundle(c *fiber.Ctx, enabled bool) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	v, err := b.Manager().SetEnabled(c.UserContext(), c.Params("name"), enabled)
	if err != nil {
		return bundleError(err)
	}
	a.audit(c, tenantOf(c).ID, event.Action("bundle."+strings.TrimSuffix(v.State, "d")), "bundle:"+v.Name, store.OutcomeSuccess, map[string]any{"version": v.Version})
	return a.answerBundle(c, b, v.Name, v.Version, fiber.StatusOK)
}

// enableBundleTenant and disableBundleTenant add a tenant to, or take one
// from, the tenants that use the bundle.
func (a *API) enableBundleTenant(c *fiber.Ctx) error  { return a.setBundleTenant(c, true) }
func (a *API) disableBundleTenant(c *fiber.Ctx) error { return a.setBundleTenant(c, false) }

func (a *API) setBundleTenant(c *fiber.Ctx, on bool) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	tenant := c.Params("tenant")
	if err := checkName("tenant", tenant); err != nil {
		return err
	}
	v, err := b.Manager().SetTenant(c.UserContext(), c.Params("name"), tenant, on)
	if err != nil {
		return bundleError(err)
	}
	action := "bundle.tenant_disable"
	if on {
		action = "bundle.tenant_enable"
	}
	a.audit(c, tenantOf(c).ID, event.Action(action), "bundle:"+v.Name, store.OutcomeSuccess, map[string]any{"version": v.Version, "tenant": tenant})
	return a.answerBundle(c, b, v.Name, v.Version, fiber.StatusOK)
}

// configureBundle changes the configuration and tenants of the active
// version.
func (a *API) configureBundle(c *fiber.Ctx) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	var in bundleConfigInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkList("tenants", in.Tenants, checkName); err != nil {
		return err
	}
	v, err := b.Manager().Configure(c.UserContext(), c.Params("name"), in.Config, in.Tenants)
	if err != nil {
		return bundleError(err)
	}
	a.audit(c, tenantOf(c).ID, event.Action("bundle.configure"), "bundle:"+v.Name, store.OutcomeSuccess, map[string]any{"version": v.Version})
	return a.answerBundle(c, b, v.Name, v.Version, fiber.StatusOK)
}

// removeBundle deletes every version of a bundle.
func (a *API) removeBundle(c *fiber.Ctx) error {
	b, err := a.bundles()
	if err != nil {
		return err
	}
	name := c.Params("name")
	if err := b.Manager().Remove(c.UserContext(), name); err != nil {
		return bundleError(err)
	}
	a.audit(c, tenantOf(c).ID, event.Action("bundle.remove"), "bundle:"+name, store.OutcomeSuccess, nil)
	if err := b.Sync(c.UserContext()); err != nil {
		a.d.Log.WarnContext(c.UserContext(), "applying a bundle change on this node", "bundle", name, "err", err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// bundleError maps the lifecycle's errors to the API's.
func bundleError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, bundle.ErrUnsigned), errors.Is(err, bundle.ErrBadSignature), errors.Is(err, bundle.ErrNotGranted):
		return fault.New(fault.CodeForbidden, msg)
	case errors.Is(err, bundle.ErrInvalidArchive), errors.Is(err, bundle.ErrInvalidManifest),
		errors.Is(err, bundle.ErrInvalidConfig), errors.Is(err, bundle.ErrRefused), errors.Is(err, bundle.ErrNoModule):
		return fault.New(fault.CodeInvalidRequest, msg)
	case errors.Is(err, bundle.ErrConflict):
		return fault.New(fault.CodeConflict, msg)
	case errors.Is(err, bundle.ErrNotInstalled):
		return fault.New(fault.CodeNotFound, msg)
	default:
		return fault.New(fault.CodeInternal, "internal error").WithCause(err)
	}
}

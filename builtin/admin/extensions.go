package admin

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/extension"
)

// Extensions is what the API shows of the node's extensions: the modules it
// can instantiate and the instances it loaded.
type Extensions interface {
	Modules() []extension.Module
	Health(ctx context.Context) ([]extension.Status, error)
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

type moduleJSON struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
}

type instanceJSON struct {
	Name    string `json:"name"`
	Module  string `json:"module"`
	Kind    string `json:"kind"`
	Healthy bool   `json:"healthy"`
	// Problem says why an unhealthy instance is unhealthy.
	Problem string `json:"problem,omitempty"`
}

type extensionsJSON struct {
	Modules   []moduleJSON   `json:"modules"`
	Instances []instanceJSON `json:"instances"`
	// Enabled maps a kind to the instances this tenant uses, in order.
	Enabled map[string][]string `json:"enabled"`
}

// listExtensions shows the registered modules, the loaded instances with
// their health, and the tenant's enabled instances per kind.
func (a *API) listExtensions(c *fiber.Ctx) error {
	out := extensionsJSON{Modules: []moduleJSON{}, Instances: []instanceJSON{}, Enabled: map[string][]string{}}
	if a.d.Extensions == nil {
		return c.JSON(out)
	}
	for _, m := range a.d.Extensions.Modules() {
		out.Modules = append(out.Modules, moduleJSON{ID: m.ID.String(), Kind: string(m.ID.Kind()), Description: m.Description})
	}
	// Health reports failures in the statuses; its error only joins them.
	statuses, _ := a.d.Extensions.Health(c.UserContext())
	for _, s := range statuses {
		ij := instanceJSON{Name: s.Name, Module: s.ID.String(), Kind: string(s.Kind), Healthy: s.Err == nil}
		if s.Err != nil {
			ij.Problem = s.Err.Error()
		}
		out.Instances = append(out.Instances, ij)
	}
	t := tenantOf(c)
	for _, k := range extension.Kinds() {
		names := []string{}
		for _, inst := range a.d.Extensions.Enabled(t.Name, k) {
			names = append(names, inst.Name())
		}
		out.Enabled[string(k)] = names
	}
	return c.JSON(out)
}

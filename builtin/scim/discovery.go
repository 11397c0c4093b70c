package scim

import (
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// serviceProviderConfig serves RFC 7644 section 4 / RFC 7643 section 5.
func (s *Service) serviceProviderConfig(c *fiber.Ctx, rc *reqCtx) error {
	return writeJSON(c, http.StatusOK, map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/latchid/latch/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": MaxBulkOperations, "maxPayloadSize": MaxBodyBytes},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": true},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "An access token from this tenant's token endpoint (or an admin token of the default tenant) with the latch:admin, latch:scim:read or latch:scim:write scope.",
			"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": rc.base + "/ServiceProviderConfig"},
	})
}

func (s *Service) resourceTypeJSON(rt *resourceType, base string) map[string]any {
	out := map[string]any{
		"schemas":     []string{SchemaResType},
		"id":          rt.Name,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Core.Description,
		"schema":      rt.Core.ID,
		"meta":        map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/" + rt.Name},
	}
	if len(rt.Extensions) > 0 {
		exts := make([]any, len(rt.Extensions))
		for i, e := range rt.Extensions {
			exts[i] = map[string]any{"schema": e.ID, "required": false}
		}
		out["schemaExtensions"] = exts
	}
	return out
}

func schemaJSON(sc *Schema, base string) map[string]any {
	return map[string]any{
		"schemas":     []string{SchemaSchema},
		"id":          sc.ID,
		"name":        sc.Name,
		"description": sc.Description,
		"attributes":  sc.Attributes,
		"meta":        map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + sc.ID},
	}
}

// discoveryList answers a discovery listing; these endpoints take no
// filter (RFC 7644 section 4: 403 when one is given).
func discoveryList(c *fiber.Ctx, items []any) error {
	if c.Query("filter") != "" {
		return newErr(http.StatusForbidden, "", "discovery endpoints do not support filtering")
	}
	return writeJSON(c, http.StatusOK, map[string]any{
		"schemas":      []string{MsgListResponse},
		"totalResults": len(items),
		"startIndex":   1,
		"itemsPerPage": len(items),
		"Resources":    items,
	})
}

func (s *Service) listResourceTypes(c *fiber.Ctx, rc *reqCtx) error {
	return discoveryList(c, []any{s.resourceTypeJSON(s.users, rc.base), s.resourceTypeJSON(s.group, rc.base)})
}

func (s *Service) getResourceType(c *fiber.Ctx, rc *reqCtx) error {
	for _, rt := range []*resourceType{s.users, s.group} {
		if strings.EqualFold(c.Params("id"), rt.Name) {
			return writeJSON(c, http.StatusOK, s.resourceTypeJSON(rt, rc.base))
		}
	}
	return notFound("resource type")
}

func (s *Service) schemas() []*Schema {
	out := []*Schema{s.users.Core}
	out = append(out, s.users.Extensions...)
	return append(out, s.group.Core)
}

func (s *Service) listSchemas(c *fiber.Ctx, rc *reqCtx) error {
	var items []any
	for _, sc := range s.schemas() {
		items = append(items, schemaJSON(sc, rc.base))
	}
	return discoveryList(c, items)
}

func (s *Service) getSchema(c *fiber.Ctx, rc *reqCtx) error {
	for _, sc := range s.schemas() {
		if strings.EqualFold(c.Params("id"), sc.ID) {
			return writeJSON(c, http.StatusOK, schemaJSON(sc, rc.base))
		}
	}
	return notFound("schema")
}

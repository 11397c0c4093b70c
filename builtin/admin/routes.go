package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/builtin/gateway"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Gateway APIs and upstreams managed through the admin API are stored
// beside the deny policies (gateway.APIKeyPrefix + name and
// gateway.UpstreamKeyPrefix + name), each the JSON form of the routes
// file's API or upstream. Every gateway node merges them with its routes
// file and follows changes within a second (docs/gateway.md).

// Audit actions of the stored gateway configuration.
const (
	actionGatewayAPIPut         event.Action = "gateway.api.put"
	actionGatewayAPIDelete      event.Action = "gateway.api.delete"
	actionGatewayUpstreamPut    event.Action = "gateway.upstream.put"
	actionGatewayUpstreamDelete event.Action = "gateway.upstream.delete"
	actionGatewayImport         event.Action = "gateway.api.import"
)

// gatewayChecker is what a node running the gateway role offers to check a
// stored document against its routes file before it is written.
type gatewayChecker interface {
	CheckStored(ctx context.Context, kind, name string, doc []byte) error
}

// gatewayDocJSON is a stored API or upstream.
type gatewayDocJSON struct {
	Name string `json:"name"`
	// Spec is the API or upstream, in the routes file's fields.
	Spec json.RawMessage `json:"spec"`
}

// gatewayDocInput documents the body of PUT /gateway/apis/{name} and
// /gateway/upstreams/{name}: an object with the routes file's fields of an
// API (name, base_path, upstream, routes, security, throttle, cors,
// policy...) or an upstream (name, endpoints, timeouts, retries, breaker,
// tls...).
type gatewayDocInput map[string]any

type gatewayKind struct {
	kind, prefix, noun string
	put, del           event.Action
}

var (
	gatewayAPIs      = gatewayKind{gateway.KindAPI, gateway.APIKeyPrefix, "gateway API", actionGatewayAPIPut, actionGatewayAPIDelete}
	gatewayUpstreams = gatewayKind{gateway.KindUpstream, gateway.UpstreamKeyPrefix, "gateway upstream", actionGatewayUpstreamPut, actionGatewayUpstreamDelete}
)

func (a *API) listGatewayDocs(k gatewayKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := page(c)
		if err != nil {
			return err
		}
		t := tenantOf(c)
		entries, next, err := a.d.Store.KVList(c.UserContext(), gatewayNamespace, t.ID, k.prefix, p)
		if err != nil {
			return storeError(k.noun+"s", err)
		}
		out := make([]gatewayDocJSON, 0, len(entries))
		for _, e := range entries {
			out = append(out, gatewayDocJSON{Name: strings.TrimPrefix(e.Key, k.prefix), Spec: e.Value})
		}
		return c.JSON(newList(out, next))
	}
}

func (a *API) getGatewayDoc(k gatewayKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		name := c.Params("name")
		if err := checkName("name", name); err != nil {
			return err
		}
		e, err := a.d.Store.KVGet(c.UserContext(), gatewayNamespace, tenantOf(c).ID, k.prefix+name)
		if err != nil {
			return storeError(k.noun, err)
		}
		return c.JSON(gatewayDocJSON{Name: name, Spec: e.Value})
	}
}

func (a *API) putGatewayDoc(k gatewayKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t := tenantOf(c)
		if t.Name != store.DefaultTenantName {
			return fault.New(fault.CodeInvalidRequest, "gateway APIs and upstreams belong to the default tenant")
		}
		name := c.Params("name")
		if err := checkName("name", name); err != nil {
			return err
		}
		var obj map[string]any
		if err := decode(c, &obj); err != nil {
			return err
		}
		if v, ok := obj["name"]; ok && v != name {
			return invalid("name", "must be the name in the path, %q", name)
		}
		obj["name"] = name
		doc, err := json.Marshal(obj)
		if err != nil {
			return fault.Internal.WithCause(err)
		}
		return a.storeGatewayDoc(c, k, name, doc, fiber.StatusOK, nil)
	}
}

// storeGatewayDoc validates doc and writes it.
func (a *API) storeGatewayDoc(c *fiber.Ctx, k gatewayKind, name string, doc []byte, status int, detail map[string]any) error {
	ctx := c.UserContext()
	t := tenantOf(c)
	if err := a.checkGatewayDoc(ctx, k.kind, name, doc); err != nil {
		return err
	}
	if err := a.d.Store.KVPut(ctx, gatewayNamespace, t.ID, store.KVEntry{Key: k.prefix + name, Value: doc}); err != nil {
		return storeError(k.noun, err)
	}
	a.reloadDeny(ctx)
	a.audit(c, t.ID, k.put, k.kind+":"+name, store.OutcomeSuccess, detail)
	return c.Status(status).JSON(gatewayDocJSON{Name: name, Spec: doc})
}

// checkGatewayDoc validates a document (nil: its deletion): against this
// node's routes file when it runs the gateway, on its own otherwise.
func (a *API) checkGatewayDoc(ctx context.Context, kind, name string, doc []byte) error {
	var err error
	if gc, ok := a.d.Gateway.(gatewayChecker); ok && a.d.Gateway != nil {
		err = gc.CheckStored(ctx, kind, name, doc)
	} else if doc != nil {
		err = gateway.CheckDocument(kind, doc)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gateway.ErrNameTaken):
		return fault.New(fault.CodeConflict, err.Error())
	case errors.Is(err, gateway.ErrInvalidConfig), errors.Is(err, gateway.ErrInvalidOpenAPI):
		return fault.New(fault.CodeInvalidRequest, err.Error())
	default:
		return fault.New(fault.CodeInternal, "internal error").WithCause(err)
	}
}

func (a *API) deleteGatewayDoc(k gatewayKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t := tenantOf(c)
		name := c.Params("name")
		if err := checkName("name", name); err != nil {
			return err
		}
		ctx := c.UserContext()
		if _, err := a.d.Store.KVGet(ctx, gatewayNamespace, t.ID, k.prefix+name); err != nil {
			return storeError(k.noun, err)
		}
		if err := a.checkGatewayDoc(ctx, k.kind, name, nil); err != nil {
			return err
		}
		if err := a.d.Store.KVDelete(ctx, gatewayNamespace, t.ID, k.prefix+name); err != nil {
			return storeError(k.noun, err)
		}
		a.reloadDeny(ctx)
		a.audit(c, t.ID, k.del, k.kind+":"+name, store.OutcomeSuccess, nil)
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// importOpenAPI turns the OpenAPI 3 document of the body (YAML or JSON)
// into a stored API: ?name=, ?upstream= and ?base_path= override its
// x-latch-* extensions; ?dry_run=true returns the API without storing it.
func (a *API) importOpenAPI(c *fiber.Ctx) error {
	t := tenantOf(c)
	if t.Name != store.DefaultTenantName {
		return fault.New(fault.CodeInvalidRequest, "gateway APIs belong to the default tenant")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.New(fault.CodeInvalidRequest, "request body is empty; an OpenAPI 3 document (YAML or JSON) is required")
	}
	api, err := gateway.ImportOpenAPI(body, gateway.ImportOptions{Name: c.Query("name"), Upstream: c.Query("upstream"), BasePath: c.Query("base_path")})
	if err != nil {
		return fault.New(fault.CodeInvalidRequest, err.Error())
	}
	if err := checkName("name", api.Name); err != nil {
		return err
	}
	doc, err := apiJSON(api)
	if err != nil {
		return fault.Internal.WithCause(err)
	}
	if c.QueryBool("dry_run") {
		if err := a.checkGatewayDoc(c.UserContext(), gateway.KindAPI, api.Name, doc); err != nil {
			return err
		}
		return c.JSON(gatewayDocJSON{Name: api.Name, Spec: doc})
	}
	return a.storeGatewayDoc(c, gatewayAPIs, api.Name, doc, fiber.StatusCreated, map[string]any{"routes": len(api.Routes)})
}

// apiJSON is the stored JSON form of an API: its YAML encoding (the
// routes file's field names and duration strings) as JSON.
func apiJSON(api gateway.APIConfig) ([]byte, error) {
	y, err := yaml.Marshal(api)
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

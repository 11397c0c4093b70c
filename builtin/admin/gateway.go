package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// The gateway's deny policies live in the store's plugin key-value space
// under this namespace, one entry per policy keyed gatewayDenyPrefix + id
// with a JSON value {kind, value, reason, created_at}: the contract
// builtin/gateway reads (see its DenyNamespace). Every gateway node
// re-reads them about twice a second, so a change here is in force on every
// node within a second.
const (
	gatewayNamespace  = "latch.gateway"
	gatewayDenyPrefix = "deny/"
)

// Audit actions of the gateway endpoints.
const (
	actionDenyCreate event.Action = "gateway.deny.create"
	actionDenyDelete event.Action = "gateway.deny.delete"
)

// Gateway is what the API shows of the node's gateway role.
type Gateway interface {
	// Routes lists the published routes of the running configuration.
	Routes() []GatewayRoute
	// ReloadDeny makes this node apply changed deny policies at once.
	ReloadDeny(ctx context.Context) error
}

// GatewayRoute describes one published route.
type GatewayRoute struct {
	API              string   `json:"api"`
	Route            string   `json:"route"`
	Hosts            []string `json:"hosts,omitempty"`
	Path             string   `json:"path"`
	Methods          []string `json:"methods,omitempty"`
	Upstream         string   `json:"upstream"`
	Issuers          []string `json:"issuers,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
	Open             bool     `json:"open,omitempty"`
	Breaker          string   `json:"breaker,omitempty"`
	Endpoints        []string `json:"endpoints"`
	HealthyEndpoints []string `json:"healthy_endpoints"`
}

type denyInput struct {
	// Kind is ip, cidr, client, user or api.
	Kind string `json:"kind"`
	// Value is the address, CIDR range, client id, user (token subject)
	// or API name.
	Value  string `json:"value"`
	Reason string `json:"reason,omitempty"`
	// ExpiresAt, when set, ends the policy.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type denyJSON struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// denyRecord is the stored value.
type denyRecord struct {
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) listGatewayRoutes(c *fiber.Ctx) error {
	if a.d.Gateway == nil {
		return c.JSON(newList[GatewayRoute](nil, ""))
	}
	return c.JSON(newList(a.d.Gateway.Routes(), ""))
}

func (a *API) listDenyPolicies(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	entries, next, err := a.d.Store.KVList(c.UserContext(), gatewayNamespace, t.ID, gatewayDenyPrefix, p)
	if err != nil {
		return storeError("deny policies", err)
	}
	out := make([]denyJSON, 0, len(entries))
	for _, e := range entries {
		var r denyRecord
		if err := json.Unmarshal(e.Value, &r); err != nil {
			continue
		}
		out = append(out, denyOut(e, r))
	}
	return c.JSON(newList(out, next))
}

func denyOut(e store.KVEntry, r denyRecord) denyJSON {
	d := denyJSON{ID: strings.TrimPrefix(e.Key, gatewayDenyPrefix), Kind: r.Kind, Value: r.Value, Reason: r.Reason, CreatedAt: r.CreatedAt}
	if !e.ExpiresAt.IsZero() {
		exp := e.ExpiresAt.UTC()
		d.ExpiresAt = &exp
	}
	return d
}

func (a *API) createDenyPolicy(c *fiber.Ctx) error {
	t := tenantOf(c)
	if t.Name != store.DefaultTenantName {
		return fault.New(fault.CodeInvalidRequest, "gateway deny policies belong to the default tenant")
	}
	var in denyInput
	if err := decode(c, &in); err != nil {
		return err
	}
	value, err := checkDeny(in)
	if err != nil {
		return err
	}
	if err := checkText("reason", in.Reason, maxTextLen); err != nil {
		return err
	}
	now := a.d.Now().UTC()
	e := store.KVEntry{Key: gatewayDenyPrefix + store.NewID()}
	if in.ExpiresAt != nil {
		if !in.ExpiresAt.After(now) {
			return invalid("expires_at", "must be in the future")
		}
		e.ExpiresAt = in.ExpiresAt.UTC()
	}
	ctx := c.UserContext()
	rec := denyRecord{Kind: in.Kind, Value: value, Reason: in.Reason, CreatedAt: now}
	if e.Value, err = json.Marshal(rec); err != nil {
		return fault.Internal.WithCause(err)
	}
	if err := a.d.Store.KVPut(ctx, gatewayNamespace, t.ID, e); err != nil {
		return storeError("deny policy", err)
	}
	a.reloadDeny(ctx)
	out := denyOut(e, rec)
	a.audit(c, t.ID, actionDenyCreate, "deny:"+out.ID, store.OutcomeSuccess, map[string]any{"kind": rec.Kind, "value": rec.Value})
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (a *API) deleteDenyPolicy(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	if err := checkName("id", id); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := a.d.Store.KVGet(ctx, gatewayNamespace, t.ID, gatewayDenyPrefix+id); err != nil {
		return storeError("deny policy", err)
	}
	if err := a.d.Store.KVDelete(ctx, gatewayNamespace, t.ID, gatewayDenyPrefix+id); err != nil {
		return storeError("deny policy", err)
	}
	a.reloadDeny(ctx)
	a.audit(c, t.ID, actionDenyDelete, "deny:"+id, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// reloadDeny asks this node's gateway to apply the change now; the others
// see it at their next poll.
func (a *API) reloadDeny(ctx context.Context) {
	if a.d.Gateway == nil {
		return
	}
	if err := a.d.Gateway.ReloadDeny(ctx); err != nil && !errors.Is(err, context.Canceled) {
		a.d.Log.WarnContext(ctx, "reloading gateway deny policies", "err", err)
	}
}

// checkDeny validates a policy and returns its value in canonical form.
func checkDeny(in denyInput) (string, error) {
	switch in.Kind {
	case "ip":
		addr, err := netip.ParseAddr(in.Value)
		if err != nil || addr.Zone() != "" {
			return "", invalid("value", "must be an IPv4 or IPv6 address")
		}
		return addr.Unmap().String(), nil
	case "cidr":
		p, err := netip.ParsePrefix(in.Value)
		if err != nil {
			return "", invalid("value", "must be a CIDR range like 203.0.113.0/24")
		}
		return p.Masked().String(), nil
	case "client", "user", "api":
		if err := checkName("value", in.Value); err != nil {
			return "", err
		}
		return in.Value, nil
	case "":
		return "", invalid("kind", "is required")
	default:
		return "", invalid("kind", "must be one of ip, cidr, client, user, api")
	}
}

// Subscriptions let a client call a gateway API that sets subscription:
// true. They are stored beside the deny policies under
// gatewaySubscriptionPrefix + id, the value {api, client_id, created_at}.
const (
	gatewaySubscriptionPrefix              = "subscription/"
	actionSubscriptionCreate  event.Action = "gateway.subscription.create"
	actionSubscriptionDelete  event.Action = "gateway.subscription.delete"
)

type subscriptionInput struct {
	// API is the gateway API's name.
	API string `json:"api"`
	// ClientID is the client's id as its tokens carry it (a Latch client,
	// or an external issuer's client).
	ClientID string `json:"client_id"`
}

type subscriptionJSON struct {
	ID        string    `json:"id"`
	API       string    `json:"api"`
	ClientID  string    `json:"client_id"`
	CreatedAt time.Time `json:"created_at"`
}

type subscriptionRecord struct {
	API       string    `json:"api"`
	ClientID  string    `json:"client_id"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) listSubscriptions(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	entries, next, err := a.d.Store.KVList(c.UserContext(), gatewayNamespace, t.ID, gatewaySubscriptionPrefix, p)
	if err != nil {
		return storeError("subscriptions", err)
	}
	out := make([]subscriptionJSON, 0, len(entries))
	for _, e := range entries {
		var r subscriptionRecord
		if err := json.Unmarshal(e.Value, &r); err != nil {
			continue
		}
		out = append(out, subscriptionJSON{ID: strings.TrimPrefix(e.Key, gatewaySubscriptionPrefix), API: r.API, ClientID: r.ClientID, CreatedAt: r.CreatedAt})
	}
	return c.JSON(newList(out, next))
}

func (a *API) createSubscription(c *fiber.Ctx) error {
	t := tenantOf(c)
	if t.Name != store.DefaultTenantName {
		return fault.New(fault.CodeInvalidRequest, "gateway subscriptions belong to the default tenant")
	}
	var in subscriptionInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkName("api", in.API); err != nil {
		return err
	}
	if err := checkName("client_id", in.ClientID); err != nil {
		return err
	}
	rec := subscriptionRecord{API: in.API, ClientID: in.ClientID, CreatedAt: a.d.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return fault.Internal.WithCause(err)
	}
	id := store.NewID()
	ctx := c.UserContext()
	if err := a.d.Store.KVPut(ctx, gatewayNamespace, t.ID, store.KVEntry{Key: gatewaySubscriptionPrefix + id, Value: b}); err != nil {
		return storeError("subscription", err)
	}
	a.reloadDeny(ctx)
	a.audit(c, t.ID, actionSubscriptionCreate, "subscription:"+id, store.OutcomeSuccess, map[string]any{"api": rec.API, "client_id": rec.ClientID})
	return c.Status(fiber.StatusCreated).JSON(subscriptionJSON{ID: id, API: rec.API, ClientID: rec.ClientID, CreatedAt: rec.CreatedAt})
}

func (a *API) deleteSubscription(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	if err := checkName("id", id); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := a.d.Store.KVGet(ctx, gatewayNamespace, t.ID, gatewaySubscriptionPrefix+id); err != nil {
		return storeError("subscription", err)
	}
	if err := a.d.Store.KVDelete(ctx, gatewayNamespace, t.ID, gatewaySubscriptionPrefix+id); err != nil {
		return storeError("subscription", err)
	}
	a.reloadDeny(ctx)
	a.audit(c, t.ID, actionSubscriptionDelete, "subscription:"+id, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

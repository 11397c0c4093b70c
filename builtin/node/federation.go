package node

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// maxFederationForm bounds the form of a request to a federated
// authenticator's endpoint (a SAML response is the largest).
const maxFederationForm = 512 << 10

// federationRoutes routes {base}/login/federated/{instance}/{op} to the
// tenant's enabled authenticator instance of that name, when it is a
// federation.Endpoint (authn.oidc_federation, authn.saml_federation).
type federationRoutes struct {
	store     store.Store
	exts      *extensions
	login     *login.Service
	publicURL string
	log       *slog.Logger
	audit     *event.Bus
}

// mountFederation adds the routes of the federated authenticators.
func (n *Node) mountFederation(lg *login.Service) {
	r := &federationRoutes{store: n.store, exts: n.extensions, login: lg,
		publicURL: strings.TrimRight(n.cfg.PublicURL, "/"), log: n.log, audit: n.bus}
	app := n.server.App()
	for _, prefix := range []string{"", "/t/:tenant"} {
		app.Get(prefix+federation.PathPrefix+"/:instance/:op", r.serve)
		app.Post(prefix+federation.PathPrefix+"/:instance/:op", r.serve)
	}
}

func (r *federationRoutes) serve(c *fiber.Ctx) error {
	name, base := c.Params("tenant"), ""
	switch name {
	case "":
		name = store.DefaultTenantName
	case store.DefaultTenantName:
		return r.login.RenderError(c, http.StatusNotFound, login.Page{}, "error.request", "")
	default:
		base = "/t/" + name
	}
	ctx := c.UserContext()
	t, err := r.store.GetTenantByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !t.Enabled) {
		return r.login.RenderError(c, http.StatusNotFound, login.Page{}, "error.request", "")
	} else if err != nil {
		return r.fail(c, login.Page{}, err)
	}
	pg := login.Page{Base: base, Brand: t.DisplayName}
	var ep federation.Endpoint
	for _, inst := range r.exts.Enabled(t.Name, extension.KindAuthenticator) {
		if inst.Name() == c.Params("instance") {
			ep, _ = extension.As[federation.Endpoint](inst)
		}
	}
	if ep == nil {
		return r.login.RenderError(c, http.StatusNotFound, pg, "error.request", "")
	}
	params, err := url.ParseQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return r.login.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
	}
	if c.Method() == http.MethodPost {
		if len(c.Body()) > maxFederationForm {
			return r.login.RenderError(c, http.StatusRequestEntityTooLarge, pg, "error.request", "")
		}
		form, err := url.ParseQuery(string(c.Body()))
		if err != nil {
			return r.login.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	resp, err := ep.ServeFederation(ctx, &federation.Request{
		Tenant: t.Name, BaseURL: r.publicURL + base, Op: c.Params("op"), Method: c.Method(), Params: params,
	})
	if err != nil {
		r.publish(c, t.ID, event.Event{Actor: "anonymous", Action: login.ActionLogin, Outcome: event.OutcomeFailure,
			Detail: map[string]any{"authenticator": c.Params("instance"), "reason": "federation refused", "status": federation.StatusOf(err)}})
		return r.fail(c, pg, err)
	}
	for _, e := range resp.Events {
		r.publish(c, t.ID, event.Event{Actor: e.Actor, Action: event.Action(e.Action), Target: e.Target, Outcome: event.OutcomeSuccess, Detail: e.Detail})
	}
	if resp.Redirect != "" {
		return c.Redirect(resp.Redirect, http.StatusSeeOther)
	}
	c.Set(fiber.HeaderContentType, resp.ContentType)
	return c.Status(resp.Status).Send(resp.Body)
}

// publish records an audit event of the request.
func (r *federationRoutes) publish(c *fiber.Ctx, tenantID string, e event.Event) {
	if r.audit == nil {
		return
	}
	e.Tenant, e.Time, e.RequestID = tenantID, time.Now().UTC(), server.RequestID(c)
	r.audit.Publish(e)
}

// fail shows a refusal's message, or a generic page for a technical
// failure, and logs the cause.
func (r *federationRoutes) fail(c *fiber.Ctx, pg login.Page, err error) error {
	status := federation.StatusOf(err)
	var ref *federation.Refusal
	if errors.As(err, &ref) {
		r.log.WarnContext(c.UserContext(), "federated sign-in refused", "path", c.Path(), "status", status, "err", err)
		return r.login.RenderError(c, status, pg, "login.failed", ref.Message)
	}
	r.log.ErrorContext(c.UserContext(), "federated sign-in failed", "path", c.Path(), "err", err)
	return r.login.RenderError(c, status, pg, "login.error", "")
}

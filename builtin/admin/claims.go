package admin

import (
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of the claim dialect routes.
const (
	actionClaimUpdate   event.Action = "claim.update"
	actionClaimDelete   event.Action = "claim.delete"
	actionMappingUpdate event.Action = "claim.mapping.update"
	actionMappingDelete event.Action = "claim.mapping.delete"
)

// Bounds and shapes of claim names.
const (
	maxClaimURILen = 512
	maxDialectLen  = 256
)

var (
	claimNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,127}$`)
	domainRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
	attrNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9;_.-]{0,127}$`)
	dialectRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:/-]{0,255}$`)
)

// dialectJSON is one outside dialect with the number of its mappings.
type dialectJSON struct {
	Dialect  string `json:"dialect"`
	Mappings int    `json:"mappings"`
}

// localClaimInput is the body of PUT /claims/local.
type localClaimInput struct {
	URI               string            `json:"uri"`
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	AttributeMappings map[string]string `json:"attribute_mappings"`
}

// mappingInput is the body of PUT /claims/dialects/{dialect}: the claim of
// the dialect and the local claim (URI or name) it carries.
type mappingInput struct {
	Claim      string `json:"claim"`
	LocalClaim string `json:"local_claim"`
}

// dialects loads the request tenant's effective dialect tables.
func (a *API) dialects(c *fiber.Ctx) (*claims.Dialects, []store.LocalClaim, error) {
	ctx, tid := c.UserContext(), tenantOf(c).ID
	lcs, err := a.d.Store.ListLocalClaims(ctx, tid)
	if err != nil {
		return nil, nil, storeError("claim", err)
	}
	cms, err := a.d.Store.ListClaimMappings(ctx, tid, "")
	if err != nil {
		return nil, nil, storeError("claim mapping", err)
	}
	local := make([]claims.LocalClaim, len(lcs))
	for i, l := range lcs {
		local[i] = claims.LocalClaim{URI: l.URI, Name: l.Name, Description: l.Description, AttributeMappings: l.AttributeMappings}
	}
	ms := make([]claims.Mapping, len(cms))
	for i, m := range cms {
		ms[i] = claims.Mapping{Dialect: m.Dialect, Claim: m.Claim, LocalURI: m.LocalURI}
	}
	return claims.NewDialects(local, ms), lcs, nil
}

// listLocalClaims serves GET /claims/local.
func (a *API) listLocalClaims(c *fiber.Ctx) error {
	d, _, err := a.dialects(c)
	if err != nil {
		return err
	}
	return c.JSON(newList(d.LocalClaims(), ""))
}

// putLocalClaim serves PUT /claims/local: create or replace a local claim
// (a built-in URI keeps its name and takes the description and attribute
// mappings).
func (a *API) putLocalClaim(c *fiber.Ctx) error {
	var in localClaimInput
	if err := decode(c, &in); err != nil {
		return err
	}
	switch {
	case in.URI == "" || len(in.URI) > maxClaimURILen || !strings.Contains(in.URI, ":") || strings.ContainsAny(in.URI, " \t\r\n"):
		return invalid("uri", "must be a URI of at most %d bytes, such as http://example.com/claims/department", maxClaimURILen)
	case !claimNameRE.MatchString(in.Name):
		return invalid("name", "must be 1..128 letters, digits, '_', '.' or '-', starting with a letter")
	case len(in.AttributeMappings) > maxAttributes:
		return invalid("attribute_mappings", "must map at most %d domains", maxAttributes)
	}
	if err := checkText("description", in.Description, maxTextLen); err != nil {
		return err
	}
	mappings := map[string]string{}
	for dom, attr := range in.AttributeMappings {
		if !domainRE.MatchString(dom) {
			return invalid("attribute_mappings", "%q is not a user store domain name", clipText(dom))
		}
		if !attrNameRE.MatchString(attr) {
			return invalid("attribute_mappings", "%q is not an attribute name", clipText(attr))
		}
		mappings[strings.ToUpper(dom)] = attr
	}
	d, _, err := a.dialects(c)
	if err != nil {
		return err
	}
	cur, known := d.Local(in.URI)
	if known && cur.BuiltIn && cur.Name != in.Name {
		return invalid("name", "the built-in claim %s is named %q; its name cannot change", in.URI, cur.Name)
	}
	if other, ok := d.Local(in.Name); ok && other.URI != in.URI {
		return fault.New(fault.CodeConflict, "the name "+in.Name+" is taken by "+other.URI).WithField("name")
	}
	t := tenantOf(c)
	lc, err := a.d.Store.PutLocalClaim(c.UserContext(), store.LocalClaim{
		TenantID: t.ID, URI: in.URI, Name: in.Name, Description: in.Description, AttributeMappings: mappings,
	})
	if err != nil {
		return storeError("claim", err)
	}
	a.audit(c, t.ID, actionClaimUpdate, "claim:"+lc.URI, store.OutcomeSuccess, nil)
	return c.JSON(claims.LocalClaim{URI: lc.URI, Name: lc.Name, Description: lc.Description,
		AttributeMappings: lc.AttributeMappings, BuiltIn: known && cur.BuiltIn})
}

// deleteLocalClaim serves DELETE /claims/local?uri=: removes a stored
// local claim and the mappings to it. A built-in claim goes back to its
// defaults.
func (a *API) deleteLocalClaim(c *fiber.Ctx) error {
	uri := c.Query("uri")
	if uri == "" || len(uri) > maxClaimURILen {
		return invalid("uri", "is required")
	}
	t := tenantOf(c)
	if err := a.d.Store.DeleteLocalClaim(c.UserContext(), t.ID, uri); err != nil {
		if fault.CodeOf(storeError("claim", err)) == fault.CodeNotFound {
			return fault.New(fault.CodeNotFound, "no stored local claim has that uri (built-in claims without stored changes cannot be deleted)")
		}
		return storeError("claim", err)
	}
	a.audit(c, t.ID, actionClaimDelete, "claim:"+uri, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// listDialects serves GET /claims/dialects: every outside dialect with
// mappings, built-in or stored.
func (a *API) listDialects(c *fiber.Ctx) error {
	d, _, err := a.dialects(c)
	if err != nil {
		return err
	}
	var out []dialectJSON
	for _, name := range d.Names() {
		out = append(out, dialectJSON{Dialect: name, Mappings: len(d.Mappings(name))})
	}
	return c.JSON(newList(out, ""))
}

// listDialectMappings serves GET /claims/dialects/{dialect}.
func (a *API) listDialectMappings(c *fiber.Ctx) error {
	name, err := dialectParam(c)
	if err != nil {
		return err
	}
	d, _, err := a.dialects(c)
	if err != nil {
		return err
	}
	ms := d.Mappings(name)
	if len(ms) == 0 {
		return fault.New(fault.CodeNotFound, "dialect not found")
	}
	return c.JSON(newList(ms, ""))
}

// putDialectMapping serves PUT /claims/dialects/{dialect}: maps a claim
// of the dialect (a new dialect is created by its first mapping) to a
// local claim.
func (a *API) putDialectMapping(c *fiber.Ctx) error {
	name, err := dialectParam(c)
	if err != nil {
		return err
	}
	var in mappingInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Claim == "" || len(in.Claim) > maxClaimURILen || strings.ContainsAny(in.Claim, " \t\r\n") {
		return invalid("claim", "must be 1..%d bytes without white space", maxClaimURILen)
	}
	d, _, err := a.dialects(c)
	if err != nil {
		return err
	}
	lc, ok := d.Local(in.LocalClaim)
	if !ok {
		return invalid("local_claim", "names no local claim (give its URI or name; create it with PUT /claims/local)")
	}
	t := tenantOf(c)
	m, err := a.d.Store.PutClaimMapping(c.UserContext(), store.ClaimMapping{TenantID: t.ID, Dialect: name, Claim: in.Claim, LocalURI: lc.URI})
	if err != nil {
		return storeError("claim mapping", err)
	}
	a.audit(c, t.ID, actionMappingUpdate, "claim-mapping:"+name+" "+in.Claim, store.OutcomeSuccess, map[string]any{"local_claim": lc.URI})
	return c.JSON(claims.Mapping{Dialect: m.Dialect, Claim: m.Claim, LocalURI: m.LocalURI})
}

// deleteDialectMapping serves DELETE /claims/dialects/{dialect}?claim=:
// removes a stored mapping (a built-in one comes back).
func (a *API) deleteDialectMapping(c *fiber.Ctx) error {
	name, err := dialectParam(c)
	if err != nil {
		return err
	}
	claim := c.Query("claim")
	if claim == "" || len(claim) > maxClaimURILen {
		return invalid("claim", "is required")
	}
	t := tenantOf(c)
	if err := a.d.Store.DeleteClaimMapping(c.UserContext(), t.ID, name, claim); err != nil {
		return storeError("claim mapping", err)
	}
	a.audit(c, t.ID, actionMappingDelete, "claim-mapping:"+name+" "+claim, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// dialectParam reads the {dialect} path segment; the local dialect is
// managed under /claims/local.
func dialectParam(c *fiber.Ctx) (string, error) {
	name := c.Params("dialect")
	if name == "local" {
		return "", invalid("dialect", "the local dialect's claims are managed at /claims/local")
	}
	if len(name) > maxDialectLen || !dialectRE.MatchString(name) {
		return "", invalid("dialect", "must be a dialect name such as oidc, scim, saml or a custom one")
	}
	return name, nil
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

package admin

import (
	"fmt"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// signingAlgorithms are the algorithms a tenant can sign with.
var signingAlgorithms = []string{"ES256", "RS256", "EdDSA"}

type rotateInput struct {
	Algorithm string `json:"algorithm"`
}

type rotateOutput struct {
	KeyID string `json:"kid"`
}

// jwks describes a JWK Set for the OpenAPI document; the handler writes
// go-jose's JSONWebKeySet, which has this shape.
type jwks struct {
	Keys []map[string]any `json:"keys"`
}

// listKeys returns the tenant's published signing keys as a JWK Set
// (RFC 7517 section 5).
func (a *API) listKeys(c *fiber.Ctx) error {
	set, err := a.d.Keys.PublicJWKS(c.UserContext(), tenantOf(c).ID)
	if err != nil {
		return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("listing keys: %w", err))
	}
	return c.JSON(set)
}

// rotateKeys makes a new key of the algorithm active; the previous one stays
// published for the overlap window.
func (a *API) rotateKeys(c *fiber.Ctx) error {
	var in rotateInput
	if len(c.Body()) > 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	if in.Algorithm != "" && !slices.Contains(signingAlgorithms, in.Algorithm) {
		return invalid("algorithm", "must be one of %v", signingAlgorithms)
	}
	t := tenantOf(c)
	kid, err := a.d.Keys.Rotate(c.UserContext(), t.ID, in.Algorithm)
	if err != nil {
		return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("rotating keys: %w", err))
	}
	a.audit(c, t.ID, event.KeyRotate, "key:"+kid, store.OutcomeSuccess, map[string]any{"algorithm": in.Algorithm})
	return c.JSON(rotateOutput{KeyID: kid})
}

// prepareKey creates the tenant's next key: published in the JWK Set at
// once, signing only after the next rotation. Prepare a key longer before
// rotating than relying parties cache the JWK Set (five minutes), so that
// every one of them knows it before the first token it signs.
func (a *API) prepareKey(c *fiber.Ctx) error {
	var in rotateInput
	if len(c.Body()) > 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	if in.Algorithm != "" && !slices.Contains(signingAlgorithms, in.Algorithm) {
		return invalid("algorithm", "must be one of %v", signingAlgorithms)
	}
	t := tenantOf(c)
	kid, err := a.d.Keys.PrepareNext(c.UserContext(), t.ID, in.Algorithm)
	if err != nil {
		return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("preparing a key: %w", err))
	}
	a.audit(c, t.ID, ActionKeyPrepare, "key:"+kid, store.OutcomeSuccess, map[string]any{"algorithm": in.Algorithm})
	return c.JSON(rotateOutput{KeyID: kid})
}

// ActionKeyPrepare is the audit action of preparing a signing key.
const ActionKeyPrepare event.Action = "key.prepare"

package pipeline

// Stage names one step of a chain.
type Stage string

// Stages of the identity chain (every OIDC, SAML, SCIM or admin request).
const (
	// StageIngress parses the protocol request, finds the tenant and the
	// client, and fills the Flow.
	StageIngress Stage = "ingress"
	// StageThrottle applies deny policies (IP and subject deny lists) and
	// throttling. Both chains start with it.
	StageThrottle Stage = "throttle"
	// StageAuthenticate runs the login steps (authenticators, steered by
	// the adaptive script) and sets Flow.Subject.
	StageAuthenticate Stage = "authenticate"
	// StageResolveUser finds the subject's account in the tenant's user
	// stores, in their order.
	StageResolveUser Stage = "resolve_user"
	// StageMapClaims runs the tenant's claim mappers into Flow.Claims.
	StageMapClaims Stage = "map_claims"
	// StageAuthorize decides (RBAC, XACML policies) and records a
	// Decision.
	StageAuthorize Stage = "authorize"
	// StageIssue issues the result: tokens (a grant type), a SAML
	// assertion, a session.
	StageIssue Stage = "issue"
	// StageProvision queues the identity changes of the flow for the
	// provisioners (they run asynchronously, after the response).
	StageProvision Stage = "provision"
	// StageAudit records the flow's outcome as an audit event. It runs
	// always, also after a failure.
	StageAudit Stage = "audit"
)

// Stages of the gateway chain besides the shared ones (StageThrottle,
// StageMapClaims, StageAuthorize, StageAudit).
const (
	// StageValidateToken validates the caller's token (JWKS per issuer,
	// introspection) and sets Flow.Subject and Flow.Claims.
	StageValidateToken Stage = "validate_token"
	// StageBackendJWT mints the JWT sent to the backend.
	StageBackendJWT Stage = "backend_jwt"
	// StageProxy forwards the request to the backend (timeouts, retries,
	// circuit breaker).
	StageProxy Stage = "proxy"
)

// Chain names a stage order.
type Chain string

// Chains.
const (
	// Identity is the chain of identity-server requests.
	Identity Chain = "identity"
	// Gateway is the chain of API-gateway requests.
	Gateway Chain = "gateway"
)

// step is one entry of a chain's order.
type step struct {
	stage Stage
	// always marks a stage that runs even after an earlier stage failed or
	// halted the flow (with Flow.Err set), so that failures are audited.
	always bool
}

// order is the stage order of every chain: the one place it is written
// down. Nothing else in the kernel decides what runs after what.
func (c Chain) order() []step {
	switch c {
	case Identity:
		return []step{
			{stage: StageIngress},
			{stage: StageThrottle},
			{stage: StageAuthenticate},
			{stage: StageResolveUser},
			{stage: StageMapClaims},
			{stage: StageAuthorize},
			{stage: StageIssue},
			{stage: StageProvision},
			{stage: StageAudit, always: true},
		}
	case Gateway:
		return []step{
			{stage: StageThrottle},
			{stage: StageValidateToken},
			{stage: StageMapClaims},
			{stage: StageAuthorize},
			{stage: StageBackendJWT},
			{stage: StageProxy},
			{stage: StageAudit, always: true},
		}
	}
	return nil
}

// Stages returns the chain's stages in order; nil for an unknown chain.
func (c Chain) Stages() []Stage {
	o := c.order()
	if o == nil {
		return nil
	}
	out := make([]Stage, len(o))
	for i, s := range o {
		out[i] = s.stage
	}
	return out
}

// Always reports whether stage runs in chain c even after a failure.
func (c Chain) Always(stage Stage) bool {
	for _, s := range c.order() {
		if s.stage == stage {
			return s.always
		}
	}
	return false
}

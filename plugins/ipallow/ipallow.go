package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/plugin"
)

// Reasons of a not_authenticated answer, recorded in the audit log.
const (
	// ReasonNetworkNotAllowed: the client's address is outside every
	// allowed range.
	ReasonNetworkNotAllowed = "network_not_allowed"
	// ReasonNoClientIP: the request carries no client address, or one that
	// does not parse.
	ReasonNoClientIP = "no_client_ip"
	// ReasonNoKnownSubject: no earlier step established a subject; this
	// step only confirms the network of a subject it is given.
	ReasonNoKnownSubject = "no_known_subject"
)

// configSchema is the JSON Schema of the configuration, validated by the
// host before Configure; Configure checks it again (strictly) so that the
// native tests and a host without a validator refuse the same things.
const configSchema = `{
  "type": "object",
  "properties": {
    "allow": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    "subject_from": {"type": "string", "enum": ["known"]}
  },
  "required": ["allow"],
  "additionalProperties": false
}`

// config is the operator's configuration.
type config struct {
	// Allow lists the allowed networks in CIDR notation ("10.0.0.0/8",
	// "2001:db8::/32").
	Allow []string `json:"allow"`
	// SubjectFrom says where the subject comes from: "known" (the default),
	// the subject earlier steps established.
	SubjectFrom string `json:"subject_from"`
}

// policy is a parsed configuration.
type policy struct {
	allow []netip.Prefix
}

// parseConfig decodes and checks a configuration strictly: unknown
// fields, a missing or empty allow list and ranges that do not parse are
// refused with invalid_request naming the field.
func parseConfig(raw []byte) (*policy, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("configuration: %v", err)
	}
	if dec.More() {
		return nil, invalid("configuration: more than one JSON value")
	}
	switch c.SubjectFrom {
	case "", "known":
	default:
		return nil, invalid("subject_from: %q is not supported (want \"known\")", c.SubjectFrom)
	}
	if len(c.Allow) == 0 {
		return nil, invalid("allow: at least one CIDR range is required")
	}
	p := &policy{allow: make([]netip.Prefix, 0, len(c.Allow))}
	for i, s := range c.Allow {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, invalid("allow[%d]: %q is not a CIDR range (for example 10.0.0.0/8 or 2001:db8::/32)", i, s)
		}
		p.allow = append(p.allow, pfx.Masked())
	}
	return p, nil
}

func invalid(format string, args ...any) error {
	return plugin.ErrInvalidRequest.WithMessage("ipallow: " + fmt.Sprintf(format, args...))
}

// allows reports whether addr is in one of the allowed ranges. An
// IPv4-mapped IPv6 address (::ffff:10.1.2.3) counts as its IPv4 address.
func (p *policy) allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pfx := range p.allow {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// ipAllow is the authenticator: a step that confirms the subject of
// earlier steps signs in from an allowed network.
//
// The host sends Configure once per instance, but any warm instance of the
// module may serve a request, and every request carries its configuration:
// the policy is therefore looked up by the configuration's bytes, parsed
// once per distinct configuration and reused (no JSON on the hot path).
type ipAllow struct {
	policies map[string]*policy
}

// maxPolicies bounds the cache of parsed configurations (one per
// configured instance of the extension; a handful in practice).
const maxPolicies = 64

var errNoConfig = errors.New("ipallow: the request carries no configuration")

// policy returns the parsed policy of a configuration.
func (a *ipAllow) policy(raw []byte) (*policy, error) {
	if len(raw) == 0 {
		return nil, errNoConfig
	}
	if p, ok := a.policies[string(raw)]; ok {
		return p, nil
	}
	p, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	if a.policies == nil || len(a.policies) >= maxPolicies {
		a.policies = map[string]*policy{}
	}
	a.policies[string(raw)] = p
	return p, nil
}

// Configure checks the configuration and caches its policy.
func (a *ipAllow) Configure(raw []byte) error {
	_, err := a.policy(raw)
	return err
}

// Authenticate confirms req.KnownSubject when req.IP is in an allowed
// range.
func (a *ipAllow) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	p, err := a.policy(req.Config)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if req.KnownSubject == "" {
		return authn.NotAuthenticated(ReasonNoKnownSubject), nil
	}
	addr, err := netip.ParseAddr(req.IP)
	if err != nil {
		return authn.NotAuthenticated(ReasonNoClientIP), nil
	}
	if !p.allows(addr) {
		return authn.NotAuthenticated(ReasonNetworkNotAllowed), nil
	}
	return authn.Authenticated(req.KnownSubject, nil), nil
}

package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/grant"
	"github.com/latchid/latch/sdk/plugin"
)

// DefaultGrantType is the grant_type the plugin serves unless configured.
const DefaultGrantType = "urn:latch:params:oauth:grant-type:api-key"

// Param is the form parameter carrying the key.
const Param = "api_key"

const configSchema = `{
  "type": "object",
  "properties": {
    "grant_type": {"type": "string", "minLength": 1},
    "require_client_auth": {"type": "boolean"},
    "keys": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "subject": {"type": "string", "minLength": 1},
        "clients": {"type": "array", "items": {"type": "string"}},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "ttl_seconds": {"type": "integer", "minimum": 1}
      },
      "required": ["sha256", "subject"],
      "additionalProperties": false
    }}
  },
  "required": ["keys"],
  "additionalProperties": false
}`

// key is one configured API key.
type key struct {
	// SHA256 is the lowercase hex SHA-256 of the key.
	SHA256 string `json:"sha256"`
	// Subject is whom the tokens are for.
	Subject string `json:"subject"`
	// Clients lists the clients that may present the key; empty: any.
	Clients []string `json:"clients"`
	// Scopes lists the scopes the key may get; empty: none asked for is
	// refused, none is granted.
	Scopes []string `json:"scopes"`
	// TTLSeconds overrides the access token lifetime.
	TTLSeconds int64 `json:"ttl_seconds"`

	digest []byte
}

type config struct {
	GrantType         string `json:"grant_type"`
	RequireClientAuth *bool  `json:"require_client_auth"`
	Keys              []key  `json:"keys"`
}

// policy is a parsed configuration.
type policy struct {
	grantType  string
	clientAuth bool
	keys       []key
}

// apiKey is the grant type. Every request carries its instance's
// configuration, parsed once per distinct configuration.
type apiKey struct {
	configs plugin.Configs[*policy]
}

// Configure checks the configuration.
func (g *apiKey) Configure(raw []byte) error {
	_, err := g.policy(raw)
	return err
}

// policy returns the parsed configuration raw.
func (g *apiKey) policy(raw []byte) (*policy, error) {
	if g.configs.Parse == nil {
		g.configs.Parse = parseConfig
	}
	return g.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*policy, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	for i := range c.Keys {
		k := &c.Keys[i]
		d, err := hex.DecodeString(k.SHA256)
		if err != nil || len(d) != sha256.Size {
			return nil, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("keys[%d].sha256: want 64 hex digits", i))
		}
		if k.Subject == "" {
			return nil, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("keys[%d].subject: required", i))
		}
		k.digest = d
	}
	p := &policy{grantType: c.GrantType, clientAuth: c.RequireClientAuth == nil || *c.RequireClientAuth, keys: c.Keys}
	if p.grantType == "" {
		p.grantType = DefaultGrantType
	}
	return p, nil
}

// Token judges one token request.
func (g *apiKey) Token(req abi.TokenRequest) (abi.TokenResponse, error) {
	p, err := g.policy(req.Config)
	if err != nil {
		return abi.TokenResponse{}, err
	}
	if req.GrantType != p.grantType {
		return grant.Decline(), nil
	}
	if p.clientAuth && !req.ClientAuthenticated {
		return abi.TokenResponse{}, plugin.ErrForbidden.WithMessage("the client must authenticate to use API keys")
	}
	vals := req.Params[Param]
	if len(vals) != 1 || vals[0] == "" {
		return abi.TokenResponse{}, plugin.ErrInvalidRequest.WithMessage("the " + Param + " parameter is required, once")
	}
	k := p.lookup(vals[0])
	if k == nil || (len(k.Clients) > 0 && !slices.Contains(k.Clients, req.ClientID)) {
		return abi.TokenResponse{}, plugin.ErrUnauthenticated.WithMessage("the API key is not valid")
	}
	for _, s := range req.Scopes {
		if !slices.Contains(k.Scopes, s) {
			return abi.TokenResponse{}, plugin.ErrForbidden.WithMessage("scope " + s + " is not allowed for this key")
		}
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = k.Scopes
	}
	return abi.TokenResponse{
		Subject:               k.Subject,
		Scopes:                slices.Clone(scopes),
		AccessTokenTTLSeconds: k.TTLSeconds,
		Claims:                map[string]any{"auth_method": "api_key"},
	}, nil
}

// lookup finds the key whose digest matches presented's. Every key is
// compared, in constant time, so the time taken tells nothing about which
// digests are configured.
func (p *policy) lookup(presented string) *key {
	sum := sha256.Sum256([]byte(presented))
	var found *key
	for i := range p.keys {
		if subtle.ConstantTimeCompare(sum[:], p.keys[i].digest) == 1 && found == nil {
			found = &p.keys[i]
		}
	}
	return found
}

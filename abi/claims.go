package abi

import "encoding/json"

// Claim dialects: the vocabularies claims are named in. A claim mapper
// translates a set of claims from one dialect to another.
const (
	// DialectLocal is Latch's own vocabulary, the one user stores and the
	// authorization stage use.
	DialectLocal = "local"
	// DialectOIDC is the OpenID Connect standard claims vocabulary (OpenID
	// Connect Core 1.0 section 5.1).
	DialectOIDC = "oidc"
	// DialectSCIM is the SCIM 2.0 core and enterprise user schema (RFC 7643
	// section 4), as dotted attribute paths.
	DialectSCIM = "scim"
	// DialectSAML is SAML 2.0 attribute names (URIs) of assertions.
	DialectSAML = "saml"
	// DialectRemote is the vocabulary of an upstream identity provider; the
	// MapRequest's Issuer names which one.
	DialectRemote = "remote"
	// DialectBackendJWT is the claims of the JWT the gateway sends to
	// backends.
	DialectBackendJWT = "backend_jwt"
)

// MapRequest asks a claim mapper to translate claims.
//
// Encoding example:
//
//	{"tenant":"acme","from":"remote","to":"local","issuer":"https://accounts.google.com",
//	 "subject":"u-42","claims":{"given_name":"Alice","hd":"example.com"}}
type MapRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// From is the dialect of Claims; one of the Dialect... constants.
	From string `json:"from" wire:"2"`
	// To is the dialect wanted.
	To string `json:"to" wire:"3"`
	// Issuer names the upstream identity provider when From or To is
	// DialectRemote.
	Issuer string `json:"issuer,omitempty" wire:"4"`
	// Subject is whom the claims describe, when known.
	Subject string `json:"subject,omitempty" wire:"5"`
	// Claims holds the claims to translate.
	Claims map[string]any `json:"claims" wire:"6"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"7"`
}

// MapResponse carries the translated claims. Mappers run in a chain: each
// gets the previous one's output, so a mapper that does not know a claim
// passes it through unchanged unless it means to drop it.
type MapResponse struct {
	// Claims holds the claims in the To dialect. Empty or absent means every
	// claim is dropped (the encoding does not tell the two apart).
	Claims map[string]any `json:"claims" wire:"1"`
	// Error says why the mapping failed.
	Error *Error `json:"error,omitempty" wire:"2"`
}

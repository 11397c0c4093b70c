package abi

import "encoding/json"

// TokenRequest asks a grant type to judge a token request (RFC 6749 section
// 4.5 extension grants, and custom flows). The kernel has already
// authenticated the client, when it presented credentials; the grant decides
// whether to issue and for whom, and the kernel mints and signs the tokens.
//
// Encoding example:
//
//	{"tenant":"acme","grant_type":"urn:ietf:params:oauth:grant-type:token-exchange",
//	 "client_id":"svc-a","client_authenticated":true,"scopes":["orders:read"],
//	 "params":{"subject_token":["eyJ..."]}}
type TokenRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// GrantType is the grant_type parameter, as sent.
	GrantType string `json:"grant_type" wire:"2"`
	// ClientID is the requesting client's id.
	ClientID string `json:"client_id" wire:"3"`
	// ClientAuthenticated reports whether the client proved its identity
	// (a public client did not).
	ClientAuthenticated bool `json:"client_authenticated" wire:"4"`
	// Scopes lists the requested scopes (the scope parameter, split).
	Scopes []string `json:"scopes,omitempty" wire:"5"`
	// Audience lists the requested audiences (audience or resource).
	Audience []string `json:"audience,omitempty" wire:"6"`
	// Params holds every form parameter of the request.
	Params map[string][]string `json:"params,omitempty" wire:"7"`
	// Headers holds the request headers with lowercase names, without
	// Authorization and Cookie.
	Headers map[string][]string `json:"headers,omitempty" wire:"8"`
	// IP is the client's address.
	IP string `json:"ip,omitempty" wire:"9"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"10"`
}

// TokenResponse is a grant type's verdict on a TokenRequest.
//
// Encoding examples:
//
//	{"declined":true}
//	{"subject":"u-42","scopes":["orders:read"],"access_token_ttl_seconds":300}
//	{"error":{"code":"unauthenticated","message":"subject token expired"}}
type TokenResponse struct {
	// Declined reports that this grant does not handle the request (another
	// grant_type, or a variant it does not serve). The kernel offers the
	// request to the next grant, and answers unsupported_grant_type when
	// every one declines. The other fields are ignored.
	Declined bool `json:"declined,omitempty" wire:"1"`
	// Subject is whom the tokens are for; empty means the client itself.
	Subject string `json:"subject,omitempty" wire:"2"`
	// Scopes lists the granted scopes, a subset of the requested ones.
	Scopes []string `json:"scopes,omitempty" wire:"3"`
	// Audience lists the granted audiences.
	Audience []string `json:"audience,omitempty" wire:"4"`
	// Claims holds extra claims for the access token.
	Claims map[string]any `json:"claims,omitempty" wire:"5"`
	// AccessTokenTTLSeconds overrides the client's access token lifetime
	// when positive.
	AccessTokenTTLSeconds int64 `json:"access_token_ttl_seconds,omitempty" wire:"6"`
	// RefreshToken asks for a refresh token beside the access token.
	RefreshToken bool `json:"refresh_token,omitempty" wire:"7"`
	// Extra holds extra top-level members of the token response
	// ("issued_token_type" for token exchange).
	Extra map[string]any `json:"extra,omitempty" wire:"8"`
	// Error refuses the request. The front door maps CodeInvalidRequest to
	// invalid_request, CodeUnauthenticated to invalid_grant and
	// CodeForbidden to unauthorized_client.
	Error *Error `json:"error,omitempty" wire:"9"`
}

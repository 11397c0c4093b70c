// Package oidc is Latch's OpenID Connect / OAuth 2.0 conformance suite. It
// runs against a live `latch serve` (conformance/internal/live) and speaks
// to it only as independent clients do: golang.org/x/oauth2 for the code
// exchange with PKCE and for refresh, github.com/coreos/go-oidc for
// discovery and ID token verification, and a cookie-keeping HTTP client
// that fills in the login and consent forms the way a browser without
// JavaScript would.
//
// Test names follow the OpenID Foundation's OP test plans: Config
// (discovery), Basic (authorization code), Form Post, and RP-Initiated
// Logout, each with the negative cases those plans and RFC 6749, RFC 7636
// and RFC 9700 call for.
package oidc

// Package saml is Latch's SAML 2.0 identity provider conformance suite. It
// runs against a live `latch serve` (conformance/internal/live) and speaks
// to it only as independent parties do: service providers built with
// github.com/crewjam/saml's samlsp package, served on their own loopback
// HTTP servers and registered through the admin API, and a cookie-keeping
// HTTP client that fills in the login form and submits the HTTP-POST
// binding's forms the way a browser without JavaScript would.
//
// It covers SP-initiated SSO over the HTTP-Redirect and HTTP-POST
// bindings, IdP-initiated SSO, single logout (SP- and IdP-initiated, over
// both bindings, with the Redirect binding's detached signatures checked
// on both sides), cross-protocol logout with an OpenID Connect relying
// party (golang.org/x/oauth2) in both directions, the SAML 2.0 bearer
// grant at the token endpoint with assertions signed by goxmldsig, the
// `latch admin saml` commands, and the negative cases: an unsigned request where the SP must sign, an
// unregistered ACS URL, a replayed request and response, a tampered
// assertion and an expired assertion.
package saml

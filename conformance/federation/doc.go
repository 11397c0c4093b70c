// Package federation is the conformance suite of federated login: a live
// Latch (the "downstream") signs users in through a second live Latch (the
// "upstream") acting as an external OpenID Provider and as an external
// SAML identity provider, through the authn.oidc_federation and
// authn.saml_federation authenticators. Relying parties and browsers are
// independent: golang.org/x/oauth2 and go-oidc on the client side, and a
// cookie-keeping net/http client that follows redirects and posts forms
// as a browser without JavaScript does.
//
// The suite covers just-in-time provisioning, reuse of a link on later
// logins, linking by verified email and by a user signed in by an earlier
// step, and the refusals: a tampered or replayed state, an upstream error,
// an identity nothing may link, a tampered, unsigned or replayed SAML
// response. Each refusal is an error page with a clear sentence, never a
// 500.
package federation

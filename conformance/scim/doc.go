// Package scim is Latch's SCIM 2.0 conformance suite (RFC 7643, RFC
// 7644). It runs against a live `latch serve` (conformance/internal/live)
// and speaks to it only as an independent SCIM client does: access tokens
// from the token endpoint through golang.org/x/oauth2's client credentials
// flow, then plain HTTP with JSON objects. The store-backed suite in
// builtin/scim covers every operator and error case in depth; this one
// proves the same behaviour through the real binary: authentication with
// real tokens and scopes, tenants, users, groups, filters, PATCH, Bulk,
// ETags and errors.
package scim

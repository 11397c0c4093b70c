// Package host is the typed face of the host functions a Latch WASM guest
// may call through host_call (abi/SPEC.md section 6.2): configuration,
// key-value storage, secrets, user lookup, audit and outbound HTTP. Each
// function encodes its abi request, calls guest.HostCall and decodes the
// answer.
//
// Every function needs a capability (named in its doc) that the module
// declares in plugin.Meta.Capabilities and the operator grants when
// installing the bundle; the host refuses a call whose capability was not
// granted with plugin.ErrForbidden, without stopping the guest. Logging,
// the clock and randomness are not host calls: they are guest.Log,
// guest.Now and guest.Random (capabilities "log", "clock", "random").
//
// Using it:
//
//  1. Declare the capability: plugin.Meta{Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityKV}}}.
//  2. Call the function while handling a call (never from init or main):
//     v, found, err := host.KVGet(req.Tenant, "otp:"+req.FlowID).
//  3. Test err with errors.Is against the plugin.Err… sentinels (a refused
//     call is a *plugin.Error with the host's code), or return it: its code
//     passes through to the response.
//  4. In tests, sdk/plugintest's harness stands in for the host: seed it
//     with SetKV, SetSecret, SetConfig, SetUser and HandleHTTP.
package host

import (
	"encoding/json"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/plugin"
)

// Error wraps a failed host call with the operation's name: its message is
// "host: kv.get: forbidden: …". A refusal by the host wraps the
// *plugin.Error with the host's code; a failure to encode the request or
// decode the answer wraps that error (and is answered as internal when
// returned).
type Error struct {
	// Op is the host operation.
	Op abi.HostOp
	// Err is the cause: a *plugin.Error for the host's refusal.
	Err error
}

// Error returns "host: <op>: <cause>".
func (e *Error) Error() string { return "host: " + e.Op.String() + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// call sends op with req and decodes the answer's payload into resp (nil
// for an empty answer).
func call(op abi.HostOp, req, resp abi.Message) error {
	b, err := abi.AppendHostCall(nil, op, req)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	out, err := guest.HostCall(b)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	var rep abi.HostReply
	if err := rep.UnmarshalWire(out); err != nil {
		return &Error{Op: op, Err: err}
	}
	if rep.Error != nil {
		return &Error{Op: op, Err: plugin.FromWire(rep.Error)}
	}
	if resp == nil {
		return nil
	}
	if err := resp.UnmarshalWire(rep.Payload); err != nil {
		return &Error{Op: op, Err: err}
	}
	return nil
}

// Config returns the extension's configuration for tenant (a JSON object
// as the operator wrote it; empty when there is none; tenant "" for the
// configuration shared by every tenant). Capability "config".
func Config(tenant string) (json.RawMessage, error) {
	var resp abi.ConfigGetResponse
	if err := call(abi.HostOpConfigGet, &abi.ConfigGetRequest{Tenant: tenant}, &resp); err != nil {
		return nil, err
	}
	return resp.Config, nil
}

// KVGet reads key (at most 256 bytes) from the extension's key-value space
// for tenant; found is false for a missing or expired key. Capability "kv".
func KVGet(tenant, key string) (value []byte, found bool, err error) {
	var resp abi.KVGetResponse
	if err := call(abi.HostOpKVGet, &abi.KVGetRequest{Tenant: tenant, Key: key}, &resp); err != nil {
		return nil, false, err
	}
	return resp.Value, resp.Found, nil
}

// KVSet stores value (at most 64 KiB) under key, replacing any earlier
// value; a ttl above zero expires it (at millisecond precision), zero
// keeps it until deleted. Capability "kv".
func KVSet(tenant, key string, value []byte, ttl time.Duration) error {
	req := abi.KVSetRequest{Tenant: tenant, Key: key, Value: value}
	if ttl > 0 {
		req.TTLMillis = max(ttl.Milliseconds(), 1)
	}
	return call(abi.HostOpKVSet, &req, nil)
}

// KVDelete deletes key; deleting a missing key succeeds. Capability "kv".
func KVDelete(tenant, key string) error {
	return call(abi.HostOpKVDelete, &abi.KVDeleteRequest{Tenant: tenant, Key: key}, nil)
}

// KVList returns one page of the entries whose key starts with
// req.Prefix, in key order; pass the response's Next as req.Cursor for the
// following page (empty Next: the last page). Capability "kv".
func KVList(req abi.KVListRequest) (abi.KVListResponse, error) {
	var resp abi.KVListResponse
	if err := call(abi.HostOpKVList, &req, &resp); err != nil {
		return abi.KVListResponse{}, err
	}
	return resp, nil
}

// Secret returns the secret name the operator stored for the extension
// (tenant "" for a secret shared by every tenant); plugin.ErrNotFound when
// there is none. Never log it. Capability "secrets".
func Secret(tenant, name string) ([]byte, error) {
	var resp abi.SecretGetResponse
	if err := call(abi.HostOpSecretGet, &abi.SecretGetRequest{Tenant: tenant, Name: name}, &resp); err != nil {
		return nil, err
	}
	return resp.Value, nil
}

// LookupUser reads the user id from the tenant's user stores, routed by
// its user store domain as for logins ("LDAP:5f0c…" reads domain LDAP's
// user); plugin.ErrNotFound when there is none. Capability "userlookup".
func LookupUser(tenant, id string) (abi.User, error) {
	var resp abi.UserResponse
	if err := call(abi.HostOpGetUser, &abi.GetUserRequest{Tenant: tenant, ID: id}, &resp); err != nil {
		return abi.User{}, err
	}
	if resp.Error != nil {
		return abi.User{}, &Error{Op: abi.HostOpGetUser, Err: plugin.FromWire(resp.Error)}
	}
	return resp.User, nil
}

// FindUsers lists the users of the tenant's user stores matching req's
// filter, a page at a time (req.Config is ignored). A username is looked
// up as logins do: "LDAP/alice" in domain LDAP only, a plain name in the
// first store of the search order that knows it. Capability
// "userlookup".
func FindUsers(req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	var resp abi.FindUsersResponse
	if err := call(abi.HostOpFindUsers, &req, &resp); err != nil {
		return abi.FindUsersResponse{}, err
	}
	if resp.Error != nil {
		return abi.FindUsersResponse{}, &Error{Op: abi.HostOpFindUsers, Err: plugin.FromWire(resp.Error)}
	}
	return resp, nil
}

// Audit records ev in the audit log; the host adds the time, the extension
// id and the request's correlation id. Keep secrets out of ev.Details.
// Capability "audit".
func Audit(ev abi.AuditEvent) error {
	return call(abi.HostOpAudit, &ev, nil)
}

// HTTP makes an outbound request to a URL whose host the operator granted
// the plugin (its http_hosts: https, or plain http where an entry says so);
// other hosts, and internal addresses the grant does not name, are refused
// with plugin.ErrForbidden. Redirects are not
// followed. A transport failure is an error with abi.CodeUnavailable or
// abi.CodeTimeout; any status, 5xx included, is a response. Capability
// "http".
func HTTP(req abi.HTTPRequest) (abi.HTTPResponse, error) {
	var resp abi.HTTPResponse
	if err := call(abi.HostOpHTTP, &req, &resp); err != nil {
		return abi.HTTPResponse{}, err
	}
	return resp, nil
}

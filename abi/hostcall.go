package abi

import "encoding/json"

// HostOp is the small integer naming what a guest asks of the host through
// ImportHostCall. Codes are grouped by capability, sixteen to a capability;
// a code is never reused. A host that does not know a code answers
// CodeUnsupported, so a guest can probe for a newer host operation.
type HostOp uint32

// Host operations, each with the capability it needs and its request and
// response types. Every HostReply may instead carry an Error:
// CodeForbidden when the capability (or, for HTTP, the host) was not
// granted, CodeInvalidRequest for a request that does not decode.
const (
	// HostOpConfigGet (1), CapabilityConfig: ConfigGetRequest ->
	// ConfigGetResponse.
	HostOpConfigGet HostOp = 1

	// HostOpKVGet (16), CapabilityKV: KVGetRequest -> KVGetResponse.
	HostOpKVGet HostOp = 16
	// HostOpKVSet (17), CapabilityKV: KVSetRequest -> empty payload.
	HostOpKVSet HostOp = 17
	// HostOpKVDelete (18), CapabilityKV: KVDeleteRequest -> empty payload
	// (deleting a missing key succeeds).
	HostOpKVDelete HostOp = 18
	// HostOpKVList (19), CapabilityKV: KVListRequest -> KVListResponse.
	HostOpKVList HostOp = 19

	// HostOpSecretGet (32), CapabilitySecrets: SecretGetRequest ->
	// SecretGetResponse; CodeNotFound for an unknown secret.
	HostOpSecretGet HostOp = 32

	// HostOpGetUser (48), CapabilityUserLookup: GetUserRequest ->
	// UserResponse (the request's Config is ignored).
	HostOpGetUser HostOp = 48
	// HostOpFindUsers (49), CapabilityUserLookup: FindUsersRequest ->
	// FindUsersResponse (the request's Config is ignored).
	HostOpFindUsers HostOp = 49

	// HostOpAudit (64), CapabilityAudit: AuditEvent -> empty payload.
	HostOpAudit HostOp = 64

	// HostOpHTTP (80), CapabilityHTTP: HTTPRequest -> HTTPResponse.
	HostOpHTTP HostOp = 80
)

// Capability returns the capability op needs (one of the Capability…
// constants), or "" for a code the contract does not define.
func (op HostOp) Capability() string {
	switch op {
	case HostOpConfigGet:
		return CapabilityConfig
	case HostOpKVGet, HostOpKVSet, HostOpKVDelete, HostOpKVList:
		return CapabilityKV
	case HostOpSecretGet:
		return CapabilitySecrets
	case HostOpGetUser, HostOpFindUsers:
		return CapabilityUserLookup
	case HostOpAudit:
		return CapabilityAudit
	case HostOpHTTP:
		return CapabilityHTTP
	}
	return ""
}

// String returns the operation's name ("kv.get"), or "hostop(N)" for an
// unknown code.
func (op HostOp) String() string {
	switch op {
	case HostOpConfigGet:
		return "config.get"
	case HostOpKVGet:
		return "kv.get"
	case HostOpKVSet:
		return "kv.set"
	case HostOpKVDelete:
		return "kv.delete"
	case HostOpKVList:
		return "kv.list"
	case HostOpSecretGet:
		return "secrets.get"
	case HostOpGetUser:
		return "userlookup.get_user"
	case HostOpFindUsers:
		return "userlookup.find_users"
	case HostOpAudit:
		return "audit.record"
	case HostOpHTTP:
		return "http.do"
	}
	return "hostop(" + itoa(int(op)) + ")"
}

// HostCall is the envelope a guest writes into its memory for
// ImportHostCall.
//
// Encoding example (HostOpKVGet of key "k" in tenant "a"):
//
//	08 10                      field 1 (Op), varint 16
//	12 06 0a 01 61 12 01 6b    field 2 (Payload), 6 bytes: KVGetRequest {Tenant: "a", Key: "k"}
type HostCall struct {
	// Op is what the guest asks.
	Op HostOp `json:"op" wire:"1"`
	// Payload is the encoded request message of Op. After UnmarshalWire it
	// aliases the decoded input (guest memory, for the host).
	Payload []byte `json:"payload,omitempty" wire:"2,alias"`
}

// HostReply is the envelope of the host's answer to a HostCall. A reply
// that decodes to zero bytes is a success with no payload.
type HostReply struct {
	// Payload is the encoded response message of the call's Op. After
	// UnmarshalWire it aliases the decoded input.
	Payload []byte `json:"payload,omitempty" wire:"1,alias"`
	// Error, when set, says why the host refused or failed the call.
	Error *Error `json:"error,omitempty" wire:"2"`
}

// AppendHostCall appends the HostCall envelope of op with the encoding of
// req as its payload. req may be nil for an empty payload. On error b is
// returned unchanged.
func AppendHostCall(b []byte, op HostOp, req Message) ([]byte, error) {
	start := len(b)
	b = appendKey(b, 1, wireVarint)
	b = appendVarint(b, uint64(op))
	if req == nil {
		return b, nil
	}
	b, err := appendPayload(b, 2, req)
	if err != nil {
		return b[:start], err
	}
	if err := checkEncodeSize("HostCall", len(b)-start); err != nil {
		return b[:start], err
	}
	return b, nil
}

// AppendHostReply appends the HostReply envelope with the encoding of resp
// as its payload; resp may be nil for an empty payload. On error b is
// returned unchanged.
func AppendHostReply(b []byte, resp Message) ([]byte, error) {
	if resp == nil {
		return b, nil
	}
	start := len(b)
	b, err := appendPayload(b, 1, resp)
	if err != nil {
		return b[:start], err
	}
	if err := checkEncodeSize("HostReply", len(b)-start); err != nil {
		return b[:start], err
	}
	return b, nil
}

// ConfigGetRequest reads the extension's configuration for a tenant.
type ConfigGetRequest struct {
	// Tenant is the name of the tenant; empty for the configuration shared
	// by every tenant.
	Tenant string `json:"tenant,omitempty" wire:"1"`
}

// ConfigGetResponse carries a configuration.
type ConfigGetResponse struct {
	// Config is the configuration as the operator wrote it (a JSON
	// object); empty when there is none.
	Config json.RawMessage `json:"config,omitempty" wire:"1"`
}

// KVGetRequest reads one value of the extension's key-value space. Spaces
// are separate per extension and tenant: a guest never sees another's keys.
type KVGetRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Key names the value; at most 256 bytes.
	Key string `json:"key" wire:"2"`
}

// KVGetResponse carries one value.
type KVGetResponse struct {
	// Found reports whether the key holds a value (an expired value is not
	// found).
	Found bool `json:"found" wire:"1"`
	// Value is the value; empty when not Found.
	Value []byte `json:"value,omitempty" wire:"2"`
}

// KVSetRequest stores one value, replacing any earlier one.
type KVSetRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Key names the value; at most 256 bytes.
	Key string `json:"key" wire:"2"`
	// Value is the value; at most 64 KiB.
	Value []byte `json:"value,omitempty" wire:"3"`
	// TTLMillis is the value's lifetime; 0 keeps it until deleted.
	TTLMillis int64 `json:"ttl_millis,omitempty" wire:"4"`
}

// KVDeleteRequest deletes one value.
type KVDeleteRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Key names the value.
	Key string `json:"key" wire:"2"`
}

// KVListRequest lists values whose key starts with a prefix, in key order.
type KVListRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Prefix selects the keys; empty lists every key.
	Prefix string `json:"prefix,omitempty" wire:"2"`
	// Limit caps the number of entries returned; 0 means the host's
	// default.
	Limit int `json:"limit,omitempty" wire:"3"`
	// Cursor is the Next of the previous page; empty for the first page.
	Cursor string `json:"cursor,omitempty" wire:"4"`
}

// KVListResponse is one page of a key-value space.
type KVListResponse struct {
	// Entries lists the entries, in key order.
	Entries []KVEntry `json:"entries,omitempty" wire:"1"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty" wire:"2"`
}

// KVEntry is one entry of a key-value space.
type KVEntry struct {
	// Key names the value.
	Key string `json:"key" wire:"1"`
	// Value is the value.
	Value []byte `json:"value,omitempty" wire:"2"`
}

// SecretGetRequest reads a secret the operator stored for the extension.
type SecretGetRequest struct {
	// Tenant is the name of the tenant; empty for a secret shared by every
	// tenant.
	Tenant string `json:"tenant,omitempty" wire:"1"`
	// Name names the secret.
	Name string `json:"name" wire:"2"`
}

// SecretGetResponse carries a secret. The guest must not log it.
type SecretGetResponse struct {
	// Value is the secret.
	Value []byte `json:"value" wire:"1"`
}

// AuditEvent is an event a guest records in the audit log. The host adds
// the time, the extension id and the request's correlation id.
type AuditEvent struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Action names what happened, lowercase and dotted
	// ("otp.sent", "device.registered").
	Action string `json:"action" wire:"2"`
	// Subject is whom the event concerns, when known.
	Subject string `json:"subject,omitempty" wire:"3"`
	// Outcome is "success" or "failure".
	Outcome string `json:"outcome,omitempty" wire:"4"`
	// Details holds more facts about the event; no secrets.
	Details map[string]any `json:"details,omitempty" wire:"5"`
}

// HTTPRequest is an outbound HTTP request (HostOpHTTP). Its URL's scheme,
// host and port must match the operator's allow-list for the plugin (its
// http_hosts; CapabilityRequest.Hosts only documents what the module means
// to reach); the host refuses others, and non-public addresses the
// allow-list does not name, with CodeForbidden. Redirects are not followed
// (abi/SPEC.md section 6.2).
type HTTPRequest struct {
	// Method is the HTTP method ("GET", "POST", ...).
	Method string `json:"method" wire:"1"`
	// URL is the absolute URL: https, or http where the allow-list grants
	// plain http to that host and port.
	URL string `json:"url" wire:"2"`
	// Headers holds the request headers.
	Headers map[string][]string `json:"headers,omitempty" wire:"3"`
	// Body is the request body.
	Body []byte `json:"body,omitempty" wire:"4"`
	// TimeoutMillis bounds the request; 0 means the host's default, and
	// the host's maximum caps it.
	TimeoutMillis int64 `json:"timeout_millis,omitempty" wire:"5"`
}

// HTTPResponse is the answer to an HTTPRequest. A transport failure (no
// connection, a timeout) is a HostReply.Error with CodeUnavailable or
// CodeTimeout, not a response.
type HTTPResponse struct {
	// Status is the HTTP status code.
	Status int `json:"status" wire:"1"`
	// Headers holds the response headers, with canonical names.
	Headers map[string][]string `json:"headers,omitempty" wire:"2"`
	// Body is the response body, cut at the host's limit (1 MiB less the
	// envelope).
	Body []byte `json:"body,omitempty" wire:"3"`
}

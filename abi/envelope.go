package abi

import "encoding/json"

// OpCode is the small integer that stands for an operation name (the Op…
// constants) in a Call envelope. Codes are grouped by kind, sixteen to a
// kind, so that a kind can gain operations without renumbering; a code is
// never reused for another operation.
type OpCode uint32

// Operation codes. Each carries the request and response types of the
// operation it stands for (see the Op… names in version.go).
const (
	// OpCodeConfigure (1) is OpConfigure: ConfigureRequest -> empty
	// payload, or a Reply.Error when the guest refuses the configuration.
	OpCodeConfigure OpCode = 1
	// OpCodeHealth (2) is OpHealth: empty payload -> empty payload, or a
	// Reply.Error when the instance cannot serve.
	OpCodeHealth OpCode = 2
	// OpCodeClose (3) is OpClose: empty payload -> empty payload. No call
	// follows it.
	OpCodeClose OpCode = 3

	// OpCodeAuthenticate (16) is OpAuthenticate: AuthenticateRequest ->
	// AuthenticateResponse.
	OpCodeAuthenticate OpCode = 16

	// OpCodeToken (32) is OpToken: TokenRequest -> TokenResponse.
	OpCodeToken OpCode = 32

	// OpCodeFindUsers (48) is OpFindUsers: FindUsersRequest ->
	// FindUsersResponse.
	OpCodeFindUsers OpCode = 48
	// OpCodeGetUser (49) is OpGetUser: GetUserRequest -> UserResponse.
	OpCodeGetUser OpCode = 49
	// OpCodeCreateUser (50) is OpCreateUser: CreateUserRequest ->
	// UserResponse.
	OpCodeCreateUser OpCode = 50
	// OpCodeUpdateUser (51) is OpUpdateUser: UpdateUserRequest ->
	// UserResponse.
	OpCodeUpdateUser OpCode = 51
	// OpCodeDeleteUser (52) is OpDeleteUser: DeleteUserRequest ->
	// DeleteUserResponse.
	OpCodeDeleteUser OpCode = 52
	// OpCodeAuthenticateUser (53) is OpAuthenticateUser:
	// AuthenticateUserRequest -> AuthenticateUserResponse.
	OpCodeAuthenticateUser OpCode = 53
	// OpCodeListGroups (54) is OpListGroups: ListGroupsRequest ->
	// ListGroupsResponse.
	OpCodeListGroups OpCode = 54

	// OpCodeMapClaims (64) is OpMapClaims: MapRequest -> MapResponse.
	OpCodeMapClaims OpCode = 64

	// OpCodeAllow (80) is OpAllow: AllowRequest -> AllowResponse.
	OpCodeAllow OpCode = 80

	// OpCodeProvision (96) is OpProvision: ProvisionEvent ->
	// ProvisionResponse.
	OpCodeProvision OpCode = 96
)

// LookupOp returns the code of an operation name (one of the Op…
// constants), and false for a name the contract does not define.
func LookupOp(name string) (OpCode, bool) {
	switch name {
	case OpConfigure:
		return OpCodeConfigure, true
	case OpHealth:
		return OpCodeHealth, true
	case OpClose:
		return OpCodeClose, true
	case OpAuthenticate:
		return OpCodeAuthenticate, true
	case OpToken:
		return OpCodeToken, true
	case OpFindUsers:
		return OpCodeFindUsers, true
	case OpGetUser:
		return OpCodeGetUser, true
	case OpCreateUser:
		return OpCodeCreateUser, true
	case OpUpdateUser:
		return OpCodeUpdateUser, true
	case OpDeleteUser:
		return OpCodeDeleteUser, true
	case OpAuthenticateUser:
		return OpCodeAuthenticateUser, true
	case OpListGroups:
		return OpCodeListGroups, true
	case OpMapClaims:
		return OpCodeMapClaims, true
	case OpAllow:
		return OpCodeAllow, true
	case OpProvision:
		return OpCodeProvision, true
	}
	return 0, false
}

// Name returns the operation name of c (one of the Op… constants), or ""
// for a code the contract does not define.
func (c OpCode) Name() string {
	switch c {
	case OpCodeConfigure:
		return OpConfigure
	case OpCodeHealth:
		return OpHealth
	case OpCodeClose:
		return OpClose
	case OpCodeAuthenticate:
		return OpAuthenticate
	case OpCodeToken:
		return OpToken
	case OpCodeFindUsers:
		return OpFindUsers
	case OpCodeGetUser:
		return OpGetUser
	case OpCodeCreateUser:
		return OpCreateUser
	case OpCodeUpdateUser:
		return OpUpdateUser
	case OpCodeDeleteUser:
		return OpDeleteUser
	case OpCodeAuthenticateUser:
		return OpAuthenticateUser
	case OpCodeListGroups:
		return OpListGroups
	case OpCodeMapClaims:
		return OpMapClaims
	case OpCodeAllow:
		return OpAllow
	case OpCodeProvision:
		return OpProvision
	}
	return ""
}

// String returns the operation name, or "op(N)" for an unknown code.
func (c OpCode) String() string {
	if n := c.Name(); n != "" {
		return n
	}
	return "op(" + itoa(int(c)) + ")"
}

// Kind returns the extension kind that answers c (one of the Kind…
// constants), or "" for the lifecycle operations, which every kind answers,
// and for unknown codes.
func (c OpCode) Kind() string {
	switch {
	case c == OpCodeAuthenticate:
		return KindAuthenticator
	case c == OpCodeToken:
		return KindGrant
	case c >= OpCodeFindUsers && c <= OpCodeListGroups:
		return KindUserStore
	case c == OpCodeMapClaims:
		return KindClaims
	case c == OpCodeAllow:
		return KindThrottler
	case c == OpCodeProvision:
		return KindProvisioner
	}
	return ""
}

// Call is the envelope of one call from the host into a guest: what the
// host writes into the buffer returned by latch_buffer before calling
// latch_handle, and what the go-plugin transport sends as a request.
//
// Encoding example (OpCodeAllow with a 3-byte payload, entry 0):
//
//	08 50          field 1 (Op), varint 80
//	12 03 0a 01 61 field 2 (Payload), 3 bytes: an AllowRequest {Tenant: "a"}
type Call struct {
	// Op is the operation.
	Op OpCode `json:"op" wire:"1"`
	// Payload is the encoded request message of Op (empty for OpCodeHealth
	// and OpCodeClose). After UnmarshalWire it aliases the decoded input:
	// decode it before the input buffer is reused.
	Payload []byte `json:"payload,omitempty" wire:"2,alias"`
	// Entry selects which extension of the module answers, as an index into
	// Description.Extensions; 0 (the first, and for most modules the only
	// one) is not written.
	Entry uint32 `json:"entry,omitempty" wire:"3"`
}

// Reply is the envelope of a guest's answer to a Call: what latch_handle
// returns (packed pointer and length), and what the go-plugin transport
// sends as a response.
//
// A Reply with an Error means the call failed as a call: the operation is
// unknown to the guest (CodeUnsupported), its payload could not be decoded
// (CodeInvalidRequest), the guest's code panicked and recovered
// (CodeInternal). An operation that ran and failed answers with its
// response type's own Error field in Payload instead. A reply that decodes
// to zero bytes is a success with no payload.
type Reply struct {
	// Payload is the encoded response message of the call's Op. After
	// UnmarshalWire it aliases the decoded input (guest memory for the WASM
	// host): decode it before the guest is called again.
	Payload []byte `json:"payload,omitempty" wire:"1,alias"`
	// Error, when set, says why the call failed; Payload is then empty.
	Error *Error `json:"error,omitempty" wire:"2"`
}

// ConfigureRequest is the payload of OpCodeConfigure: an instance's
// configuration, delivered once before any other call.
type ConfigureRequest struct {
	// Tenant is the name of the tenant the instance serves; empty for an
	// instance shared by every tenant.
	Tenant string `json:"tenant,omitempty" wire:"1"`
	// Config is the instance's configuration as the operator wrote it (a
	// JSON object), valid against Description.ConfigSchema.
	Config json.RawMessage `json:"config,omitempty" wire:"2"`
}

// AppendCall appends the Call envelope of op with the encoding of req as
// its payload, for extension entry 0, without encoding the payload
// separately first. req may be nil for an empty payload. On error b is
// returned unchanged.
func AppendCall(b []byte, op OpCode, req Message) ([]byte, error) {
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
	if err := checkEncodeSize("Call", len(b)-start); err != nil {
		return b[:start], err
	}
	return b, nil
}

// AppendReply appends the Reply envelope with the encoding of resp as its
// payload. resp may be nil for an empty payload (a success with nothing to
// say), which encodes to zero bytes. On error b is returned unchanged.
func AppendReply(b []byte, resp Message) ([]byte, error) {
	if resp == nil {
		return b, nil
	}
	start := len(b)
	b, err := appendPayload(b, 1, resp)
	if err != nil {
		return b[:start], err
	}
	if err := checkEncodeSize("Reply", len(b)-start); err != nil {
		return b[:start], err
	}
	return b, nil
}

// appendPayload appends m as a length-delimited field num, leaving the
// field out when m encodes to nothing.
func appendPayload(b []byte, num uint32, m Message) ([]byte, error) {
	mark := len(b)
	b, off := beginNested(b, num)
	b, err := m.AppendWire(b)
	if err != nil {
		return b[:mark], err
	}
	if len(b) == off+1 {
		return b[:mark], nil
	}
	return endNested(b, off), nil
}

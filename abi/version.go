package abi

// Version is the version of this contract: the set of kinds, operation names,
// wire types, field names and error codes in this package. It changes only
// when a change would break an existing extension (a field removed or
// renamed, a meaning changed); adding an optional field or a new error code
// keeps the version. A bundle manifest names the ABI version its modules were
// built against, and the kernel refuses a bundle whose version it does not
// speak.
const Version = "1"

// Extension kinds. A kind names one extension point: the operations an
// extension of that kind answers and the data types they exchange. Bundle
// manifests list the kinds a bundle provides by these names.
const (
	// KindAuthenticator answers "who is this, for this step?" with
	// OpAuthenticate (AuthenticateRequest, AuthenticateResponse).
	KindAuthenticator = "authenticator"
	// KindGrant exchanges a token request for the facts of a token with
	// OpToken (TokenRequest, TokenResponse). It may decline a request.
	KindGrant = "grant"
	// KindUserStore finds, creates, updates, deletes and authenticates users
	// and lists groups with the OpFindUsers ... OpListGroups operations.
	KindUserStore = "userstore"
	// KindClaims translates claims between dialects with OpMapClaims
	// (MapRequest, MapResponse).
	KindClaims = "claims"
	// KindThrottler answers "may this key spend N units now?" with OpAllow
	// (AllowRequest, AllowResponse).
	KindThrottler = "throttler"
	// KindProvisioner pushes identity changes outward with OpProvision
	// (ProvisionEvent, ProvisionResponse).
	KindProvisioner = "provisioner"
)

// Extension id namespaces. An extension id is a namespace, a dot and a
// lowercase name ("authn.password", "grant.client_credentials",
// "userstore.ldap"); the namespace tells the kind.
const (
	// NamespaceAuthenticator is the namespace of KindAuthenticator ids.
	NamespaceAuthenticator = "authn"
	// NamespaceGrant is the namespace of KindGrant ids.
	NamespaceGrant = "grant"
	// NamespaceUserStore is the namespace of KindUserStore ids.
	NamespaceUserStore = "userstore"
	// NamespaceClaims is the namespace of KindClaims ids.
	NamespaceClaims = "claims"
	// NamespaceThrottler is the namespace of KindThrottler ids.
	NamespaceThrottler = "throttle"
	// NamespaceProvisioner is the namespace of KindProvisioner ids.
	NamespaceProvisioner = "provision"
)

// Operation names. Each names one call into an extension: the kernel labels
// its metrics and error messages with it, and the hosts map it to the guest's
// entry point (a WASM export, a gRPC method). The request and response types
// of each operation are given beside it.
const (
	// OpAuthenticate: AuthenticateRequest -> AuthenticateResponse.
	OpAuthenticate = "authenticate"
	// OpToken: TokenRequest -> TokenResponse.
	OpToken = "token"
	// OpFindUsers: FindUsersRequest -> FindUsersResponse.
	OpFindUsers = "find_users"
	// OpGetUser: GetUserRequest -> UserResponse.
	OpGetUser = "get_user"
	// OpCreateUser: CreateUserRequest -> UserResponse.
	OpCreateUser = "create_user"
	// OpUpdateUser: UpdateUserRequest -> UserResponse.
	OpUpdateUser = "update_user"
	// OpDeleteUser: DeleteUserRequest -> DeleteUserResponse.
	OpDeleteUser = "delete_user"
	// OpAuthenticateUser: AuthenticateUserRequest -> AuthenticateUserResponse.
	OpAuthenticateUser = "authenticate_user"
	// OpListGroups: ListGroupsRequest -> ListGroupsResponse.
	OpListGroups = "list_groups"
	// OpMapClaims: MapRequest -> MapResponse.
	OpMapClaims = "map_claims"
	// OpAllow: AllowRequest -> AllowResponse.
	OpAllow = "allow"
	// OpProvision: ProvisionEvent -> ProvisionResponse.
	OpProvision = "provision"

	// OpConfigure delivers an instance's configuration (a JSON object)
	// once, before any other operation; a guest answers with an Error when
	// it refuses the configuration.
	OpConfigure = "configure"
	// OpHealth asks an instance whether it can serve; the answer is an Error
	// or nothing.
	OpHealth = "health"
	// OpClose tells an instance to release what it holds. No operation
	// follows it.
	OpClose = "close"
)

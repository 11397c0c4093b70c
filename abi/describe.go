package abi

import "encoding/json"

// Capabilities: what a module may ask of the host beyond computing. A
// module declares the capabilities it needs in its Description (and its
// bundle manifest); the operator grants them when installing the bundle.
// Nothing is granted by default. A module is refused at load, with a
// message naming the capability, when it declares a capability that was
// not granted, or that this contract does not define, or when it imports
// a host function whose capability it did not declare.
const (
	// CapabilityLog: write to the host's log (ImportLog).
	CapabilityLog = "log"
	// CapabilityConfig: read the extension's configuration for a tenant
	// (HostOpConfigGet).
	CapabilityConfig = "config"
	// CapabilityKV: a small key-value space of the extension's own, per
	// tenant (HostOpKVGet, HostOpKVSet, HostOpKVDelete, HostOpKVList).
	CapabilityKV = "kv"
	// CapabilityClock: read the wall clock (ImportNowUnixNanos).
	CapabilityClock = "clock"
	// CapabilityRandom: cryptographically secure random bytes
	// (ImportRandom).
	CapabilityRandom = "random"
	// CapabilitySecrets: read secrets the operator stored for the
	// extension (HostOpSecretGet).
	CapabilitySecrets = "secrets"
	// CapabilityUserLookup: read users from the tenant's user stores
	// (HostOpGetUser, HostOpFindUsers).
	CapabilityUserLookup = "userlookup"
	// CapabilityAudit: write events to the audit log (HostOpAudit).
	CapabilityAudit = "audit"
	// CapabilityHTTP: make outbound HTTP requests (HostOpHTTP) to the hosts
	// listed in CapabilityRequest.Hosts, and to no other.
	CapabilityHTTP = "http"
)

// KnownCapability reports whether name is one of the Capability…
// constants.
func KnownCapability(name string) bool {
	switch name {
	case CapabilityLog, CapabilityConfig, CapabilityKV, CapabilityClock, CapabilityRandom,
		CapabilitySecrets, CapabilityUserLookup, CapabilityAudit, CapabilityHTTP:
		return true
	}
	return false
}

// CapabilityOfImport returns the capability a host function of HostModule
// needs (ImportLog needs CapabilityLog, and so on), "" for ImportHostCall
// (gated per call, by HostOp.Capability), and false for a name the host does
// not provide (a module importing it is refused at load).
func CapabilityOfImport(name string) (string, bool) {
	switch name {
	case ImportLog:
		return CapabilityLog, true
	case ImportNowUnixNanos:
		return CapabilityClock, true
	case ImportRandom:
		return CapabilityRandom, true
	case ImportHostCall:
		return "", true
	}
	return "", false
}

// Description is what a module says about itself: the answer of
// latch_describe (encoded with AppendWire), and the same facts as the
// bundle manifest, which the host checks against it at load.
//
// Encoding example (as JSON, for reading):
//
//	{"abi_version":"1","name":"acme-otp","version":"1.4.0",
//	 "extensions":[{"kind":"authenticator","name":"sms_otp"}],
//	 "capabilities":[{"name":"http","hosts":["sms.example.com"]},{"name":"random"}],
//	 "config_schema":{"type":"object","required":["sender"]}}
type Description struct {
	// ABIVersion is the contract version the module was built against; the
	// host refuses a module whose version it does not speak (Version).
	ABIVersion string `json:"abi_version" wire:"1"`
	// Name is the module's name, lowercase ("acme-otp").
	Name string `json:"name" wire:"2"`
	// Version is the module's version (semantic versioning).
	Version string `json:"version" wire:"3"`
	// Extensions lists the extensions the module provides; Call.Entry
	// indexes this list. At least one.
	Extensions []ExtensionEntry `json:"extensions" wire:"4"`
	// Capabilities lists the capabilities the module asks for.
	Capabilities []CapabilityRequest `json:"capabilities,omitempty" wire:"5"`
	// ConfigSchema is a JSON Schema (draft 2020-12) of the configuration
	// the module's extensions take; the host validates an operator's
	// configuration against it before OpConfigure. Empty: no configuration.
	ConfigSchema json.RawMessage `json:"config_schema,omitempty" wire:"6"`
}

// ExtensionEntry is one extension a module provides.
type ExtensionEntry struct {
	// Kind is one of the Kind… constants.
	Kind string `json:"kind" wire:"1"`
	// Name is the entry's name, lowercase; with the kind's namespace it
	// makes the extension id ("sms_otp" of KindAuthenticator is
	// "authn.sms_otp").
	Name string `json:"name" wire:"2"`
}

// CapabilityRequest asks for one capability.
type CapabilityRequest struct {
	// Name is one of the Capability… constants.
	Name string `json:"name" wire:"1"`
	// Hosts lists, for CapabilityHTTP, the hosts the module means to call:
	// exact names ("sms.example.com"), or a leading "*." for any subdomain
	// ("*.example.com"), with an optional ":port" (443 when absent); empty
	// when the operator chooses them (a webhook's endpoint). It informs the
	// operator (latch plugin inspect); the operator's allow-list, the
	// plugin's http_hosts, decides what is reached. Empty for the other
	// capabilities.
	Hosts []string `json:"hosts,omitempty" wire:"2"`
}

// Package plugin turns an extension module that runs outside the kernel (a
// WASM module, or a go-plugin binary through kernel/plugin/native) into
// ordinary kernel extensions: one extension.Module per extension the module declares, whose
// instances implement the kind's Go interface (authn.Authenticator,
// grant.Type, userstore.Store with userstore.Writer and
// userstore.GroupLister, claims.Mapper, throttle.Throttler,
// provision.Provisioner) by sending Call envelopes to the module and
// decoding its Reply envelopes (abi/SPEC.md). The rest of the kernel cannot
// tell them from builtin extensions.
//
// The package is transport-neutral: it moves bytes through a Transport,
// which *wasmhost.Module satisfies, and reads the module's abi.Description.
//
// # Loading a WASM module
//
//  1. LoadWASM loads the bytes into a wasmhost.Host (which checks the
//     module's imports and exports against the calling convention and the
//     grants), decodes the module's Description and checks it with
//     CheckDescription: the ABI version, the kinds and names of its
//     extensions, its capabilities against the operator's grants and its
//     configuration schema. A refused module is closed.
//  2. Modules returns the extension modules, with ids "<namespace>.<entry
//     name>" ("authn.sms_otp") and the module's configuration schema; the
//     caller registers them into its extension.Registry.
//  3. Registry.Load builds instances as for any module: the configuration
//     is checked against the schema, then kept whole (the adapters decode
//     it with UnmarshalJSON into a json.RawMessage); Provision sends it to
//     the guest with OpCodeConfigure, which may refuse it; Health sends
//     OpCodeHealth; Close sends OpCodeClose.
//
// # Calls
//
// Each method encodes its request with the abi encoding straight into a
// Call envelope (in a pooled buffer), for the extension's entry, and with
// the instance's configuration in the request's Config field when the
// caller left it empty: the host may send any call to any pooled instance
// of the module, so a guest must not rely on what it kept from
// OpCodeConfigure (abi/SPEC.md section 2.3). The reply is decoded into the
// response type; the kind's Check (authn.Check, grant.Check, ...) is left
// to the caller, as for a builtin. Errors:
//
//   - the transport's error as it is (the WASM host's carry a kernel/fault
//     code: Internal for a trap, Timeout for the deadline, ...);
//   - Reply.Error as fault.FromWire makes it, so the guest's code survives
//     (errors.Is(err, fault.Forbidden));
//   - a reply or response that does not decode as fault.Internal wrapping
//     ErrMalformedReply ("plugin/<module>: malformed reply to authenticate
//     ...");
//   - for the userstore methods that return a user or an error
//     (GetUser, CreateUser, ...) and for FindUsers and ListGroups, which
//     have no Check, the response's own Error as fault.FromWire;
//     userstore.CheckAuthenticate reads AuthenticateUserResponse.Error.
//
// A userstore extension implements Writer and GroupLister whatever the
// guest supports; a guest without them answers CodeUnsupported, which
// reaches the caller as fault.Unsupported.
//
// # Host calls
//
// HostCalls answers a module's host_call from the server's services, each
// gated by the capability the operator granted (abi/SPEC.md section 6.2):
// config (the calling instance's configuration), kv (the store's PluginKV,
// per plugin id and tenant id, with key and value limits), secrets (the
// operator's named secrets, kept sealed with a secret.Box), userlookup (the
// tenant's user stores behind their domains, through the router of
// kernel/userstore/router as for logins, read-only, the plugin's own
// skipped), audit (an
// event on the bus with actor "plugin:<id>" and action "plugin.<action>")
// and http (the operator's allow-list, with an SSRF guard on the address
// dialled, no redirects, no proxy, timeouts and a body cap). The adapters
// put a Scope in the context of every call, so that HostCalls knows the
// instance and the tenant a host_call serves, and refuses requests for
// another tenant. Make one HostCalls per plugin with NewHostCalls and pass
// it as wasmhost.ModuleOptions.HostCaller.
//
// # Decisions
//
// Why a Transport and not *wasmhost.Module? The go-plugin host carries the
// same Call and Reply bytes (abi/SPEC.md section 3); one set of adapters
// serves both.
//
// Why is the configuration sent on every call? A module's instances are
// pooled and replaced when one fails, and OpCodeConfigure reaches one of
// them; the request's Config field is the contract's answer (abi/SPEC.md
// section 2.3). A guest that must parse its configuration caches the
// parsed form keyed by the bytes.
//
// Why no grant.Matcher or authn.Recognizer? Their answers would each cost
// a call into the guest, and the contract has no operation for them yet; a
// plugin grant declines in Token instead.
package plugin

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Sentinel errors of CheckDescription, matched with errors.Is.
var (
	// ErrInvalidDescription: the module's description breaks the contract
	// (another ABI version, no extension, an unknown kind, a bad entry name,
	// an unknown capability, a configuration schema that does not compile).
	ErrInvalidDescription = errors.New("invalid module description")
	// ErrNotGranted: the module requests a capability the operator did not
	// grant.
	ErrNotGranted = errors.New("not granted")
)

// CheckDescription checks a module's description before its extensions
// are registered (abi/SPEC.md sections 6.1 and 7) and returns every
// problem, joined, or nil:
//
//   - its ABIVersion must be abi.Version;
//   - it must declare at least one extension, each of a known kind, with a
//     name that makes a valid extension id (extension.ParseID), once;
//   - every capability it requests must be one of the abi.Capability…
//     names, carry hosts only for http, and be in grants;
//   - its ConfigSchema, when set, must be a JSON Schema that compiles
//     without referring to other documents.
//
// A refused capability is named with its hosts: `module acme-otp requests
// capability "http" (hosts [sms.example.com]) which was not granted`.
func CheckDescription(desc abi.Description, grants []string) error {
	name := desc.Name
	if name == "" {
		name = "(unnamed)"
	}
	var errs []error
	if desc.ABIVersion != abi.Version {
		errs = append(errs, fmt.Errorf("module %s: %w: it speaks ABI version %q, this host speaks %q", name, ErrInvalidDescription, desc.ABIVersion, abi.Version))
	}
	if _, err := entryIDs(desc); err != nil {
		errs = append(errs, fmt.Errorf("module %s: %w", name, err))
	}
	for _, c := range desc.Capabilities {
		switch {
		case !abi.KnownCapability(c.Name):
			errs = append(errs, fmt.Errorf("module %s: %w: it requests capability %q, which this host does not know", name, ErrInvalidDescription, c.Name))
		case len(c.Hosts) > 0 && c.Name != abi.CapabilityHTTP:
			errs = append(errs, fmt.Errorf("module %s: %w: capability %q takes no hosts (only %q does)", name, ErrInvalidDescription, c.Name, abi.CapabilityHTTP))
		case !slices.Contains(grants, c.Name):
			hosts := ""
			if len(c.Hosts) > 0 {
				hosts = fmt.Sprintf(" (hosts %v)", c.Hosts)
			}
			errs = append(errs, fmt.Errorf("module %s requests capability %q%s which was %w", name, c.Name, hosts, ErrNotGranted))
		}
	}
	if len(desc.ConfigSchema) > 0 {
		if err := checkSchema(desc.ConfigSchema); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w: config schema: %w", name, ErrInvalidDescription, err))
		}
	}
	return errors.Join(errs...)
}

// checkSchema compiles a configuration schema as the extension registry
// will, so that a bad one is an error here rather than a panic there.
func checkSchema(raw json.RawMessage) error {
	if !json.Valid(raw) {
		return errors.New("not valid JSON")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parsing: %w", err)
	}
	const url = "latch:///plugin/config.schema.json"
	c := jsonschema.NewCompiler()
	c.UseLoader(denyLoader{})
	if err := c.AddResource(url, doc); err != nil {
		return fmt.Errorf("adding: %w", err)
	}
	if _, err := c.Compile(url); err != nil {
		return fmt.Errorf("compiling: %w", err)
	}
	return nil
}

// denyLoader refuses every external reference, as the extension registry
// does: a module's schema must not make the kernel read files or the
// network.
type denyLoader struct{}

func (denyLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %q: schemas may not refer to other documents", url)
}

// LoadWASM loads a WASM module into host under id (host.Load checks its
// imports and exports against the calling convention and opts.Grants),
// decodes its description and checks it with CheckDescription against
// opts.Grants. On any failure the module is closed and the error names it.
// Pass the module and the description to Modules.
func LoadWASM(ctx context.Context, host *wasmhost.Host, id string, wasm []byte, opts wasmhost.ModuleOptions) (*wasmhost.Module, abi.Description, error) {
	m, err := host.Load(ctx, id, wasm, opts)
	if err != nil {
		return nil, abi.Description{}, fmt.Errorf("loading wasm module %q: %w", id, err)
	}
	desc, err := describe(ctx, m, opts.Grants)
	if err != nil {
		return nil, abi.Description{}, errors.Join(fmt.Errorf("loading wasm module %q: %w", id, err), m.Close(ctx))
	}
	return m, desc, nil
}

// describe decodes and checks m's description.
func describe(ctx context.Context, m *wasmhost.Module, grants []string) (abi.Description, error) {
	raw, err := m.Describe(ctx)
	if err != nil {
		return abi.Description{}, fmt.Errorf("reading its description: %w", err)
	}
	var desc abi.Description
	if err := desc.UnmarshalWire(raw); err != nil {
		return abi.Description{}, fmt.Errorf("%w: decoding it: %w", ErrInvalidDescription, err)
	}
	if err := CheckDescription(desc, grants); err != nil {
		return abi.Description{}, fmt.Errorf("checking its description: %w", err)
	}
	return desc, nil
}

// UnsupportedHostCalls answers every host_call with a HostReply carrying
// abi.CodeUnsupported: a HostCaller for a host that grants capabilities
// served through host_call but does not serve them yet. A guest sees the
// refusal as the contract's probe answer (abi/SPEC.md section 1) and is not
// stopped.
var UnsupportedHostCalls wasmhost.HostCaller = wasmhost.HostCallerFunc(unsupportedHostCall)

func unsupportedHostCall(ctx context.Context, module string, req []byte) ([]byte, error) {
	msg := "host calls are not served by this host"
	var call abi.HostCall
	if err := call.UnmarshalWire(req); err == nil {
		msg = "host operation " + call.Op.String() + " is not served by this host"
	}
	rep := abi.HostReply{Error: &abi.Error{Code: abi.CodeUnsupported, Message: msg}}
	out, err := rep.AppendWire(nil)
	if err != nil {
		return nil, fmt.Errorf("encoding the host reply: %w", err)
	}
	return out, nil
}

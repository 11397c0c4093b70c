package plugin

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Transport carries one Call envelope to a module and brings its Reply
// envelope back (abi/SPEC.md section 3). *wasmhost.Module implements it.
//
// Call must not keep payload after it returns (the adapters reuse the
// buffer), and the reply it returns is the caller's. An error means the
// call did not run to a Reply (a trap, a deadline, a closed module); it
// should carry a kernel/fault code.
type Transport interface {
	Call(ctx context.Context, payload []byte) ([]byte, error)
}

// ErrMalformedReply is wrapped (inside a fault.Internal) by the error of a
// call whose Reply envelope or response message does not decode.
var ErrMalformedReply = errors.New("malformed reply")

// Modules returns one extension.Module per extension desc declares, in
// declaration order: its id is the kind's namespace, a dot and the entry's
// name ("authn.pin"), its ConfigSchema is desc.ConfigSchema, and its New
// returns an adapter that implements the kind's Go interface and
// extension.Provisioner, extension.HealthChecker and extension.Cleaner by
// calling the module through t. id names the module (as it was loaded, the
// configuration's plugin id) in errors and descriptions.
//
// Modules checks what it needs to build the modules (kinds, entry names);
// check the rest, grants included, with CheckDescription first.
func Modules(id string, desc abi.Description, t Transport) ([]extension.Module, error) {
	if t == nil {
		return nil, fmt.Errorf("building the extensions of module %s: nil transport", id)
	}
	ids, err := entryIDs(desc)
	if err != nil {
		return nil, fmt.Errorf("building the extensions of module %s: %w", id, err)
	}
	schema := bytes.Clone(desc.ConfigSchema)
	mods := make([]extension.Module, len(ids))
	for i, ext := range ids {
		b := base{ext: ext, module: id, entry: uint32(i), name: desc.Extensions[i].Name, t: t}
		mods[i] = extension.Module{
			ID:           ext,
			Kind:         ext.Kind(),
			New:          newFunc(b),
			ConfigSchema: schema,
			Description:  describeModule(id, desc, i),
		}
	}
	return mods, nil
}

// entryIDs returns the extension id of every entry of desc, or the problems
// joined: an unknown kind, a name that is not a valid id segment, an id
// declared twice.
func entryIDs(desc abi.Description) ([]extension.ID, error) {
	if len(desc.Extensions) == 0 {
		return nil, fmt.Errorf("%w: it declares no extension", ErrInvalidDescription)
	}
	var errs []error
	ids := make([]extension.ID, len(desc.Extensions))
	seen := make(map[extension.ID]int, len(desc.Extensions))
	for i, e := range desc.Extensions {
		kind := extension.Kind(e.Kind)
		if !kind.Valid() {
			errs = append(errs, fmt.Errorf("%w: extension %d (%q) has unknown kind %q", ErrInvalidDescription, i, e.Name, e.Kind))
			continue
		}
		id, err := extension.ParseID(kind.Namespace() + "." + e.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: extension %d: name %q: %w", ErrInvalidDescription, i, e.Name, err))
			continue
		}
		if j, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("%w: extensions %d and %d are both %s", ErrInvalidDescription, j, i, id))
			continue
		}
		seen[id] = i
		ids[i] = id
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ids, nil
}

// describeModule is the one-sentence listing of entry i.
func describeModule(id string, desc abi.Description, i int) string {
	s := "Plugin module " + id
	if desc.Name != "" && desc.Name != id {
		s += " (" + desc.Name + ")"
	}
	if desc.Version != "" {
		s += " " + desc.Version
	}
	return s + ": " + desc.Extensions[i].Kind + " " + desc.Extensions[i].Name + "."
}

// newFunc returns the Module.New of an entry: a fresh adapter of the
// entry's kind around a copy of b.
func newFunc(b base) func() any {
	switch b.ext.Kind() {
	case extension.KindAuthenticator:
		return func() any { return &authenticator{base: b} }
	case extension.KindGrant:
		return func() any { return &grantType{base: b} }
	case extension.KindUserStore:
		return func() any { return &userStore{base: b} }
	case extension.KindClaims:
		return func() any { return &mapper{base: b} }
	case extension.KindThrottler:
		return func() any { return &throttler{base: b} }
	case extension.KindProvisioner:
		return func() any { return &provisioner{base: b} }
	}
	panic("plugin: no adapter for kind " + string(b.ext.Kind())) // entryIDs admits only the kinds above
}

// base is what every adapter shares: where its calls go, and the
// instance's configuration. The lifecycle runs its methods one at a time;
// the kind methods only read it, so it is safe for concurrent calls once
// provisioned.
type base struct {
	ext    extension.ID // "authn.pin"
	module string       // the module's id, for errors
	name   string       // the entry's name
	entry  uint32       // the entry's index, Call.Entry
	t      Transport

	// config is the instance's configuration as the operator wrote it,
	// captured by UnmarshalJSON.
	config json.RawMessage
	// configured is set once OpCodeConfigure succeeded.
	configured bool
}

// UnmarshalJSON keeps the whole configuration, unparsed: the registry has
// checked it against the module's schema, and the guest parses it.
func (b *base) UnmarshalJSON(data []byte) error {
	b.config = bytes.Clone(data)
	return nil
}

// Provision sends the configuration to the guest (OpCodeConfigure), which
// may refuse it: the refusal's code and message come back as a fault.
func (b *base) Provision(ctx context.Context, env extension.Env) error {
	if len(b.config) == 0 {
		b.config = json.RawMessage("{}")
	}
	req := abi.ConfigureRequest{Config: b.config}
	if err := b.call(b.scoped(ctx, ""), abi.OpCodeConfigure, &req, nil); err != nil {
		return err
	}
	b.configured = true
	return nil
}

// Health asks the guest whether it can serve (OpCodeHealth).
func (b *base) Health(ctx context.Context) error {
	return b.call(b.scoped(ctx, ""), abi.OpCodeHealth, nil, nil)
}

// Close tells the guest the instance is done (OpCodeClose). It sends
// nothing for an instance the guest never accepted. It does not close the
// transport, which the module's other extensions share; its owner closes
// it after the instances.
func (b *base) Close(ctx context.Context) error {
	if !b.configured {
		return nil
	}
	b.configured = false
	return b.call(b.scoped(ctx, ""), abi.OpCodeClose, nil, nil)
}

// cfg returns the configuration to send with a request whose Config is c:
// c when the caller set one, the instance's otherwise.
func (b *base) cfg(c json.RawMessage) json.RawMessage {
	if len(c) > 0 {
		return c
	}
	return b.config
}

// maxPooledBuffer bounds the buffers kept in bufPool, so that one large
// call does not pin its buffer for good.
const maxPooledBuffer = 64 << 10

// bufPool holds the buffers Call envelopes are encoded into.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// call sends op with req (nil for an empty payload) to the entry and
// decodes the reply's payload into resp (nil to ignore it).
func (b *base) call(ctx context.Context, op abi.OpCode, req, resp abi.Message) error {
	bp := bufPool.Get().(*[]byte)
	payload, err := appendCall((*bp)[:0], op, b.entry, req)
	if err != nil {
		putBuffer(bp, payload)
		f := fault.Internal
		if errors.Is(err, abi.ErrLimit) {
			f = fault.InvalidRequest
		}
		return f.WithCause(fmt.Errorf("plugin/%s: encoding the %s request for entry %q: %w", b.module, op, b.name, err))
	}
	out, err := b.t.Call(ctx, payload)
	putBuffer(bp, payload)
	if err != nil {
		return err
	}
	var rep abi.Reply
	if err := rep.UnmarshalWire(out); err != nil {
		return b.malformed(op, err)
	}
	if rep.Error != nil {
		return fault.FromWire(*rep.Error)
	}
	if resp != nil {
		if err := resp.UnmarshalWire(rep.Payload); err != nil {
			return b.malformed(op, err)
		}
	}
	return nil
}

func (b *base) malformed(op abi.OpCode, err error) error {
	return fault.Internal.WithCause(fmt.Errorf("plugin/%s: %w to %s from entry %q: %w", b.module, ErrMalformedReply, op, b.name, err))
}

// putBuffer returns a buffer to the pool, keeping the storage b grew into.
func putBuffer(bp *[]byte, b []byte) {
	if cap(b) > maxPooledBuffer {
		return
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

// callEntryKey is the key of Call field 3 (Entry): the field number
// shifted left by three, or'd with wire type 0 (varint).
const callEntryKey = 3 << 3

// appendCall appends the Call envelope of op, with req's encoding as its
// payload, for the extension entry (abi.AppendCall writes entry 0; a later
// entry adds field 3, which follows the others in canonical order).
func appendCall(b []byte, op abi.OpCode, entry uint32, req abi.Message) ([]byte, error) {
	start := len(b)
	b, err := abi.AppendCall(b, op, req)
	if err != nil {
		return b, err
	}
	if entry != 0 {
		b = append(b, callEntryKey)
		b = binary.AppendUvarint(b, uint64(entry))
		if len(b)-start > abi.MaxMessageSize {
			return b[:start], fmt.Errorf("encoding a Call of %d bytes: %w", len(b)-start, abi.ErrLimit)
		}
	}
	return b, nil
}

// Interface guards.
var (
	_ Transport               = (*wasmhost.Module)(nil)
	_ json.Unmarshaler        = (*base)(nil)
	_ extension.Provisioner   = (*base)(nil)
	_ extension.HealthChecker = (*base)(nil)
	_ extension.Cleaner       = (*base)(nil)
)

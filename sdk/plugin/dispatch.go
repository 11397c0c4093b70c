package plugin

import (
	"strconv"

	"github.com/latchid/latch/abi"
)

// handle is the module's latch_handle: it decodes the Call envelope, routes
// it by operation and entry, and encodes the Reply. It never fails as a
// function: every failure is a Reply with an Error (abi/SPEC.md section 5).
// The reply reuses one buffer, valid until the next call, which is as long
// as the host needs it (section 2.4).
//
// Routing, in order:
//   - a Call that does not decode: invalid_request;
//   - an operation the contract does not define: unsupported (so a newer
//     host can probe an older guest, section 1);
//   - an entry beyond the registered extensions: not_found;
//   - configure, health and close: the extension's optional Configurer,
//     HealthChecker and Closer (none: success);
//   - an operation of another kind than the entry's: unsupported;
//   - otherwise the kind's Handler.
//
// A panic in an extension is not recovered: it traps the guest, and the
// host discards the instance and fails the call closed (section 2.5), so a
// broken instance never serves another call.
func (m *module) handle(call []byte) []byte {
	m.cur.id, m.cur.op = "", 0
	var c abi.Call
	if err := c.UnmarshalWire(call); err != nil {
		return m.fail(abi.CodeInvalidRequest, "malformed call envelope: "+err.Error())
	}
	m.cur.op = c.Op
	if c.Op.Name() == "" {
		return m.fail(abi.CodeUnsupported, "unknown operation "+c.Op.String())
	}
	if uint64(c.Entry) >= uint64(len(m.entries)) {
		return m.fail(abi.CodeNotFound, "no extension entry "+strconv.FormatUint(uint64(c.Entry), 10))
	}
	e := &m.entries[c.Entry]
	m.cur.id = e.id
	switch c.Op {
	case abi.OpCodeConfigure:
		var req abi.ConfigureRequest
		if err := Decode(c.Payload, &req); err != nil {
			return m.failErr(err)
		}
		if x, ok := e.impl.(Configurer); ok {
			return m.failErr(x.Configure(req.Config))
		}
		return m.ok(nil)
	case abi.OpCodeHealth:
		if x, ok := e.impl.(HealthChecker); ok {
			return m.failErr(x.Health())
		}
		return m.ok(nil)
	case abi.OpCodeClose:
		if x, ok := e.impl.(Closer); ok {
			return m.failErr(x.Close())
		}
		return m.ok(nil)
	}
	if c.Op.Kind() != e.kind {
		return m.fail(abi.CodeUnsupported, e.id+" does not answer "+c.Op.String())
	}
	resp, err := e.handle(c.Op, c.Payload)
	if err != nil {
		return m.failErr(err)
	}
	return m.ok(resp)
}

// ok encodes a successful Reply with resp as its payload; an encoding
// failure (a claim with no JSON form, a response over the size limit) is
// answered as internal.
func (m *module) ok(resp abi.Message) []byte {
	out, err := abi.AppendReply(m.out[:0], resp)
	if err != nil {
		m.reportInternal(err)
		return m.fail(abi.CodeInternal, "the response could not be encoded")
	}
	m.out = out
	return out
}

// failErr encodes a Reply for err (WireError), or an empty success for a
// nil err.
func (m *module) failErr(err error) []byte {
	if err == nil {
		return m.ok(nil)
	}
	return m.reply(m.wireError(err))
}

// fail encodes a Reply with an Error of code and msg.
func (m *module) fail(code, msg string) []byte {
	return m.reply(&abi.Error{Code: code, Message: msg})
}

func (m *module) reply(e *abi.Error) []byte {
	r := abi.Reply{Error: e}
	out, err := r.AppendWire(m.out[:0])
	if err != nil {
		// An Error of two short strings always encodes; keep the contract
		// anyway with the smallest internal error.
		out = append(m.out[:0], 0x12, 0x0a, 0x0a, 0x08, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l')
	}
	m.out = out
	return out
}

// describe is the module's latch_describe: Meta and the registered
// extensions as an encoded abi.Description. A module that never called
// Define describes itself with an empty name, which the host refuses.
func (m *module) describe() []byte {
	d := m.description()
	b, err := d.AppendWire(nil)
	if err != nil {
		return nil // too large for the contract: the host refuses an empty description
	}
	return b
}

// description returns the module's abi.Description.
func (m *module) description() abi.Description {
	d := abi.Description{
		ABIVersion:   abi.Version,
		Name:         m.meta.Name,
		Version:      m.meta.Version,
		Capabilities: cloneCapabilities(m.meta.Capabilities),
		ConfigSchema: append([]byte(nil), m.meta.ConfigSchema...),
	}
	if len(d.ConfigSchema) == 0 {
		d.ConfigSchema = nil
	}
	for _, e := range m.entries {
		d.Extensions = append(d.Extensions, abi.ExtensionEntry{Kind: e.kind, Name: e.name})
	}
	return d
}

// Decode decodes payload, the request of a call, into req, and returns an
// *Error with abi.CodeInvalidRequest when it does not decode. Handlers use
// it.
func Decode(payload []byte, req abi.Message) error {
	if err := req.UnmarshalWire(payload); err != nil {
		return ErrInvalidRequest.WithMessage(err.Error())
	}
	return nil
}

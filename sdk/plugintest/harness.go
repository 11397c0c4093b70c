//go:build !wasip1

package plugintest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/plugin"
)

// callMu serialises every call into the module, across harnesses: the
// module's dispatcher, its extensions and sdk/guest's buffers are one per
// process, as they are one per WASM instance.
var callMu sync.Mutex

// Harness drives the registered module through its dispatcher and stands
// in for the host. Create one per test with New. Its methods are safe to
// call from several goroutines; calls into the module are serialised.
type Harness struct {
	t testing.TB

	mu         sync.Mutex // guards the fields below
	now        time.Time  // zero: the real clock
	random     io.Reader  // nil: crypto/rand
	configs    map[string]json.RawMessage
	kv         map[string]map[string]kvValue
	secrets    map[secretKey][]byte
	users      map[string][]abi.User
	http       func(abi.HTTPRequest) (abi.HTTPResponse, error)
	httpHosts  []string // nil: none set (SetHTTPHosts)
	logs       []Log
	audits     []abi.AuditEvent
	configured map[uint32]json.RawMessage // by entry: the last Configure
	warned     map[string]bool            // capabilities already reported missing

	// desc is the module's description during a call (under callMu).
	desc abi.Description
}

// New returns a harness for the module registered in this process (by
// plugin.Define and the kind packages' Register functions, from init
// functions). It fails t when no module is defined.
//
// t may be nil outside a test (in an Example): the harness then panics
// where it would fail the test.
func New(t testing.TB) *Harness {
	if t != nil {
		t.Helper()
	}
	h := &Harness{t: t}
	d := h.Describe()
	if d.Name == "" {
		h.fatalf("plugintest: no module defined: call plugin.Define from an init function of the package under test")
	}
	return h
}

// Describe returns the module's description, as latch_describe reports it
// to the host: Meta and the registered extensions, in registration order.
func (h *Harness) Describe() abi.Description {
	h.helper()
	callMu.Lock()
	defer callMu.Unlock()
	return h.describe()
}

// describe reads the description; callMu must be held.
func (h *Harness) describe() abi.Description {
	h.helper()
	b := guest.TestDescribe()
	var d abi.Description
	if err := d.UnmarshalWire(b); err != nil {
		h.fatalf("plugintest: the module's description does not decode: %v", err)
	}
	return d
}

// Configure sends the configuration (a JSON object) to the extension
// entry, as the host does once before any other call, and returns the
// extension's refusal as a *plugin.Error. entry is the extension's name
// ("sms_otp") or, when two kinds share it, its id ("authn.sms_otp").
// Later requests to the entry whose Config is empty carry this
// configuration, as the host's do.
func (h *Harness) Configure(entry string, config []byte) error {
	h.helper()
	i := h.entry("", entry)
	if err := h.run(i, abi.OpCodeConfigure, &abi.ConfigureRequest{Config: config}, nil); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configured == nil {
		h.configured = map[uint32]json.RawMessage{}
	}
	h.configured[i] = slices.Clone(config)
	return nil
}

// Health asks the extension entry whether it can serve.
func (h *Harness) Health(entry string) error {
	h.helper()
	return h.run(h.entry("", entry), abi.OpCodeHealth, nil, nil)
}

// Close tells the extension entry to release what it holds.
func (h *Harness) Close(entry string) error {
	h.helper()
	return h.run(h.entry("", entry), abi.OpCodeClose, nil, nil)
}

// Authenticate runs the authenticator name on req. The error is a
// *plugin.Error when the call failed as a call or the response is a
// failure (resp.Error); resp is what the authenticator answered.
func (h *Harness) Authenticate(name string, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	h.helper()
	i := h.entry(abi.KindAuthenticator, name)
	req.Config = h.config(i, req.Config)
	var resp abi.AuthenticateResponse
	err := h.run(i, abi.OpCodeAuthenticate, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// Token runs the grant type name on req. The error is a *plugin.Error when
// the call failed or the grant refused (resp.Error).
func (h *Harness) Token(name string, req abi.TokenRequest) (abi.TokenResponse, error) {
	h.helper()
	i := h.entry(abi.KindGrant, name)
	req.Config = h.config(i, req.Config)
	var resp abi.TokenResponse
	err := h.run(i, abi.OpCodeToken, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// GetUser runs the user store name's GetUser. The error is a *plugin.Error
// when the call failed or the store answered an Error (not_found, …).
func (h *Harness) GetUser(name string, req abi.GetUserRequest) (abi.User, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.UserResponse
	err := h.run(i, abi.OpCodeGetUser, &req, &resp)
	return resp.User, orWire(err, resp.Error)
}

// FindUsers runs the user store name's FindUsers.
func (h *Harness) FindUsers(name string, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.FindUsersResponse
	err := h.run(i, abi.OpCodeFindUsers, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// AuthenticateUser runs the user store name's AuthenticateUser.
func (h *Harness) AuthenticateUser(name string, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.AuthenticateUserResponse
	err := h.run(i, abi.OpCodeAuthenticateUser, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// CreateUser runs the user store name's CreateUser; a store without one
// answers plugin.ErrUnsupported.
func (h *Harness) CreateUser(name string, req abi.CreateUserRequest) (abi.User, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.UserResponse
	err := h.run(i, abi.OpCodeCreateUser, &req, &resp)
	return resp.User, orWire(err, resp.Error)
}

// UpdateUser runs the user store name's UpdateUser; a store without one
// answers plugin.ErrUnsupported.
func (h *Harness) UpdateUser(name string, req abi.UpdateUserRequest) (abi.User, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.UserResponse
	err := h.run(i, abi.OpCodeUpdateUser, &req, &resp)
	return resp.User, orWire(err, resp.Error)
}

// DeleteUser runs the user store name's DeleteUser; a store without one
// answers plugin.ErrUnsupported.
func (h *Harness) DeleteUser(name string, req abi.DeleteUserRequest) error {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.DeleteUserResponse
	err := h.run(i, abi.OpCodeDeleteUser, &req, &resp)
	return orWire(err, resp.Error)
}

// ListGroups runs the user store name's ListGroups; a store without one
// answers plugin.ErrUnsupported.
func (h *Harness) ListGroups(name string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	h.helper()
	i := h.entry(abi.KindUserStore, name)
	req.Config = h.config(i, req.Config)
	var resp abi.ListGroupsResponse
	err := h.run(i, abi.OpCodeListGroups, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// MapClaims runs the claim mapper name on req.
func (h *Harness) MapClaims(name string, req abi.MapRequest) (abi.MapResponse, error) {
	h.helper()
	i := h.entry(abi.KindClaims, name)
	req.Config = h.config(i, req.Config)
	var resp abi.MapResponse
	err := h.run(i, abi.OpCodeMapClaims, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// Allow runs the throttler name on req. The error is a *plugin.Error when
// the call failed or the throttler could not decide (resp.Error).
func (h *Harness) Allow(name string, req abi.AllowRequest) (abi.AllowResponse, error) {
	h.helper()
	i := h.entry(abi.KindThrottler, name)
	req.Config = h.config(i, req.Config)
	var resp abi.AllowResponse
	err := h.run(i, abi.OpCodeAllow, &req, &resp)
	return resp, orWire(err, resp.Error)
}

// Provision runs the provisioner name on ev.
func (h *Harness) Provision(name string, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	h.helper()
	i := h.entry(abi.KindProvisioner, name)
	ev.Config = h.config(i, ev.Config)
	var resp abi.ProvisionResponse
	err := h.run(i, abi.OpCodeProvision, &ev, &resp)
	return resp, orWire(err, resp.Error)
}

// Call hands call, an encoded abi.Call envelope, to the module's
// dispatcher as the host does and returns the encoded abi.Reply (a copy):
// for tests of the envelope itself, such as malformed or unknown calls.
func (h *Harness) Call(call []byte) []byte {
	h.helper()
	callMu.Lock()
	defer callMu.Unlock()
	h.desc = h.describe()
	defer guest.SetTestHost(h)()
	return slices.Clone(guest.TestCall(call))
}

// Do runs fn with the harness standing in for the host, so that code
// calling sdk/host, guest.Log, guest.Now or guest.Random directly (a helper
// of the extension, outside an operation) can be tested. fn must not call
// the harness's other methods.
func (h *Harness) Do(fn func()) {
	h.helper()
	callMu.Lock()
	defer callMu.Unlock()
	h.desc = h.describe()
	defer guest.SetTestHost(h)()
	fn()
}

// Entry returns the index (Call.Entry) of the extension with name or id
// entry, for calls built by hand for Call.
func (h *Harness) Entry(entry string) uint32 {
	h.helper()
	return h.entry("", entry)
}

// run sends op with req to entry i and decodes the Reply's payload into
// resp. It returns the Reply's Error as a *plugin.Error.
func (h *Harness) run(i uint32, op abi.OpCode, req, resp abi.Message) error {
	h.helper()
	c := abi.Call{Op: op, Entry: i}
	if req != nil {
		p, err := req.AppendWire(nil)
		if err != nil {
			h.fatalf("plugintest: encoding the %s request: %v", op, err)
		}
		c.Payload = p
	}
	b, err := c.AppendWire(nil)
	if err != nil {
		h.fatalf("plugintest: encoding the %s call: %v", op, err)
	}
	var r abi.Reply
	func() {
		callMu.Lock()
		defer callMu.Unlock()
		h.desc = h.describe()
		defer guest.SetTestHost(h)()
		err = r.UnmarshalWire(guest.TestCall(b))
		if err == nil && resp != nil && r.Error == nil {
			// The payload aliases the reply buffer: decode it before the
			// next call reuses it.
			err = resp.UnmarshalWire(r.Payload)
		}
	}()
	if err != nil {
		h.fatalf("plugintest: the module's %s reply does not decode: %v", op, err)
	}
	if r.Error != nil {
		return plugin.FromWire(r.Error)
	}
	return nil
}

// orWire returns err, or else the *plugin.Error of a response's Error.
func orWire(err error, e *abi.Error) error {
	if err != nil {
		return err
	}
	if e != nil {
		return plugin.FromWire(e)
	}
	return nil
}

// errorOf returns the wire form of an error a fake's callback returned:
// the code and message of a *plugin.Error, or unavailable with err's text.
func errorOf(err error) *abi.Error {
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return &abi.Error{Code: pe.Code, Message: pe.Message}
	}
	return &abi.Error{Code: abi.CodeUnavailable, Message: err.Error()}
}

// entry resolves an extension of kind ("" for any) named name, or with id
// name, to its index in the description.
func (h *Harness) entry(kind, name string) uint32 {
	h.helper()
	d := h.Describe()
	found := -1
	var have []string
	for i, e := range d.Extensions {
		id := namespace(e.Kind) + "." + e.Name
		have = append(have, id)
		if (kind == "" || e.Kind == kind) && (e.Name == name || id == name) {
			if found >= 0 {
				h.fatalf("plugintest: extension name %q is ambiguous: use its id (one of %s)", name, strings.Join(have, ", "))
			}
			found = i
		}
	}
	if found < 0 {
		what := "extension"
		if kind != "" {
			what = kind
		}
		h.fatalf("plugintest: no %s %q registered (the module has: %s)", what, name, strings.Join(have, ", "))
	}
	return uint32(found)
}

// config returns the configuration a request to entry i carries: its own,
// or the entry's last Configure.
func (h *Harness) config(i uint32, own json.RawMessage) json.RawMessage {
	if len(own) > 0 {
		return own
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.configured[i]
}

// namespace returns the id namespace of an extension kind.
func namespace(kind string) string {
	switch kind {
	case abi.KindAuthenticator:
		return abi.NamespaceAuthenticator
	case abi.KindGrant:
		return abi.NamespaceGrant
	case abi.KindUserStore:
		return abi.NamespaceUserStore
	case abi.KindClaims:
		return abi.NamespaceClaims
	case abi.KindThrottler:
		return abi.NamespaceThrottler
	case abi.KindProvisioner:
		return abi.NamespaceProvisioner
	}
	return kind
}

func (h *Harness) helper() {
	if h.t != nil {
		h.t.Helper()
	}
}

// fatalf fails the test now, or panics without one.
func (h *Harness) fatalf(format string, args ...any) {
	if h.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	h.t.Helper()
	h.t.Fatalf(format, args...)
}

// errorf fails the test and goes on, or panics without one.
func (h *Harness) errorf(format string, args ...any) {
	if h.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	h.t.Helper()
	h.t.Errorf(format, args...)
}

package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Limits of the key-value space a plugin reaches through host_call.
const (
	// MaxKVKeyBytes bounds a key.
	MaxKVKeyBytes = 256
	// MaxKVValueBytes bounds a value.
	MaxKVValueBytes = 64 << 10
	// DefaultKVListLimit is the page size of a kv.list without a limit.
	DefaultKVListLimit = store.DefaultPageLimit
	// MaxAuditDetails bounds the entries of an audit event's details.
	MaxAuditDetails = 32
)

// TenantResolver finds a tenant by its name: the store does.
type TenantResolver interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
}

// AuditPublisher takes audit events: *event.Bus does.
type AuditPublisher interface {
	Publish(e event.Event) bool
}

// DirectoryFunc returns the directory of every tenant's user stores (the
// router of user store domains), or nil while the node has none yet. It
// is asked on every look-up, because the node builds the directory after
// it loads the plugins.
type DirectoryFunc func() *router.Router

// HostOptions are the kernel services a plugin's host calls reach, and what
// the operator granted it. A service left nil is answered unavailable,
// whatever the grants.
type HostOptions struct {
	// Plugin is the plugin's id (its configuration's id): the namespace of
	// its key-value space, the actor of its audit events.
	Plugin string
	// Grants lists the capabilities granted (config.PluginConfig.Grants).
	Grants []string
	// Logger receives the host's own diagnostics; nil discards them.
	Logger *slog.Logger

	// KV stores the plugin's key-value space, per plugin and tenant id.
	KV store.PluginKV
	// Tenants resolves the tenant names guests use to tenant ids, for KV
	// and audit.
	Tenants TenantResolver
	// Secrets holds the secrets the operator configured for the plugin, by
	// name. NewHostCalls seals each with Box and keeps only the sealed
	// form; a secret is opened for the call that asks for it.
	Secrets map[string][]byte
	// Box seals Secrets; required when Secrets is not empty.
	Box *secret.Box
	// Directory gives the tenant's user stores behind their domains for
	// user look-up, the way logins see them: a qualified username
	// ("LDAP/alice") asks its store only, a plain one the stores in search
	// order, and ids route back to the store that made them. The plugin's
	// own extensions (see Exclude) are left out, so a user store plugin
	// cannot call itself.
	Directory DirectoryFunc
	// Audit publishes the plugin's audit events.
	Audit AuditPublisher
	// HTTP configures outbound HTTP; its Hosts is the operator's allow-list.
	HTTP HTTPOptions
}

// HostCalls answers a plugin's host_call (abi/SPEC.md section 6.2) from the
// kernel's services, each gated by the capability the operator granted. It
// implements wasmhost.HostCaller; make one per plugin with NewHostCalls.
//
// Every refusal and failure is an abi.Error in the HostReply, never an
// error of HostCall, so a guest that is refused keeps running.
type HostCalls struct {
	opts    HostOptions
	log     *slog.Logger
	secrets map[string][]byte // sealed
	http    *httpClient
	own     []extension.ID
}

// Exclude names the plugin's own extensions, which user lookup skips. Call
// it once the module is described, before the module serves calls.
func (h *HostCalls) Exclude(ids ...extension.ID) {
	h.own = append(h.own, ids...)
}

// NewHostCalls checks opts and returns the plugin's host services.
func NewHostCalls(opts HostOptions) (*HostCalls, error) {
	h := &HostCalls{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Secrets) > 0 {
		if opts.Box == nil {
			return nil, errors.New("plugin host calls: secrets configured without a box to seal them")
		}
		h.secrets = make(map[string][]byte, len(opts.Secrets))
		for name, v := range opts.Secrets {
			sealed, err := opts.Box.Seal(v, secretAD(opts.Plugin, name))
			if err != nil {
				return nil, fmt.Errorf("plugin host calls: sealing secret %q: %w", name, err)
			}
			h.secrets[name] = sealed
		}
	}
	if slices.Contains(opts.Grants, abi.CapabilityHTTP) {
		c, err := newHTTPClient(opts.HTTP)
		if err != nil {
			return nil, fmt.Errorf("plugin host calls: %w", err)
		}
		h.http = c
	}
	return h, nil
}

// secretAD binds a sealed secret to its plugin and name.
func secretAD(plugin, name string) []byte {
	return []byte("latch/plugin-secret\x00" + plugin + "\x00" + name)
}

// HostCall decodes the guest's HostCall envelope, checks the operation's
// capability against the grants, serves it and returns the HostReply.
func (h *HostCalls) HostCall(ctx context.Context, module string, req []byte) ([]byte, error) {
	var call abi.HostCall
	if err := call.UnmarshalWire(req); err != nil {
		return reply(nil, fault.InvalidRequest.WithMessagef("the host call does not decode: %v", err))
	}
	resp, err := h.serve(ctx, call)
	if err != nil {
		f := fault.From(err)
		if f.Code == fault.CodeInternal || f.Code == fault.CodeUnavailable {
			h.log.WarnContext(ctx, "plugin host call failed",
				slog.String("plugin", module), slog.String("op", call.Op.String()), slog.Any("error", err))
		}
		return reply(nil, f)
	}
	return reply(resp, nil)
}

// reply encodes a HostReply carrying resp or err's wire form.
func reply(resp abi.Message, err *fault.Error) ([]byte, error) {
	if err != nil {
		rep := abi.HostReply{Error: fault.ToWire(err)}
		return rep.AppendWire(nil)
	}
	out, encErr := abi.AppendHostReply(nil, resp)
	if encErr != nil {
		rep := abi.HostReply{Error: &abi.Error{Code: abi.CodeInternal, Message: "the host's answer does not encode: " + encErr.Error()}}
		return rep.AppendWire(nil)
	}
	return out, nil
}

// serve runs one host operation.
func (h *HostCalls) serve(ctx context.Context, call abi.HostCall) (abi.Message, error) {
	capability := call.Op.Capability()
	if capability == "" {
		return nil, fault.Unsupported.WithMessagef("host operation %s is not served by this host", call.Op)
	}
	if !slices.Contains(h.opts.Grants, capability) {
		return nil, fault.Forbidden.WithMessagef("host operation %s needs capability %q, which was not granted", call.Op, capability)
	}
	sc := ScopeFrom(ctx)
	switch call.Op {
	case abi.HostOpConfigGet:
		var r abi.ConfigGetRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.config(sc, r)
	case abi.HostOpKVGet:
		var r abi.KVGetRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.kvGet(ctx, sc, r)
	case abi.HostOpKVSet:
		var r abi.KVSetRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return nil, h.kvSet(ctx, sc, r)
	case abi.HostOpKVDelete:
		var r abi.KVDeleteRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return nil, h.kvDelete(ctx, sc, r)
	case abi.HostOpKVList:
		var r abi.KVListRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.kvList(ctx, sc, r)
	case abi.HostOpSecretGet:
		var r abi.SecretGetRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.secret(sc, r)
	case abi.HostOpGetUser:
		var r abi.GetUserRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.getUser(ctx, sc, r)
	case abi.HostOpFindUsers:
		var r abi.FindUsersRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.findUsers(ctx, sc, r)
	case abi.HostOpAudit:
		var r abi.AuditEvent
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return nil, h.audit(ctx, sc, r)
	case abi.HostOpHTTP:
		var r abi.HTTPRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return h.do(ctx, r)
	}
	return nil, fault.Unsupported.WithMessagef("host operation %s is not served by this host", call.Op)
}

// decode decodes call's payload into m.
func decode(call abi.HostCall, m abi.Message) error {
	if err := m.UnmarshalWire(call.Payload); err != nil {
		return fault.InvalidRequest.WithMessagef("the %s request does not decode: %v", call.Op, err)
	}
	return nil
}

// tenantAllowed refuses a request naming another tenant than the call's.
func tenantAllowed(sc *Scope, tenant string) error {
	if sc != nil && sc.Tenant != "" && tenant != sc.Tenant {
		return fault.Forbidden.WithMessagef("the call serves tenant %q; tenant %q is out of reach", sc.Tenant, tenant)
	}
	return nil
}

// config answers config.get with the calling instance's configuration.
func (h *HostCalls) config(sc *Scope, r abi.ConfigGetRequest) (abi.Message, error) {
	if err := tenantAllowed(sc, r.Tenant); err != nil {
		return nil, err
	}
	if sc == nil {
		return &abi.ConfigGetResponse{}, nil
	}
	return &abi.ConfigGetResponse{Config: sc.Config}, nil
}

// tenantID resolves a tenant name for the key-value space and audit.
func (h *HostCalls) tenantID(ctx context.Context, sc *Scope, tenant string) (string, error) {
	if err := tenantAllowed(sc, tenant); err != nil {
		return "", err
	}
	if tenant == "" {
		return "", fault.InvalidRequest.WithMessage("the tenant is required")
	}
	if h.opts.Tenants == nil {
		return "", fault.Unavailable.WithMessage("tenants are not available to plugins on this host")
	}
	t, err := h.opts.Tenants.GetTenantByName(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return "", fault.NotFound.WithMessagef("no tenant %q", tenant)
	}
	if err != nil {
		return "", fmt.Errorf("resolving tenant %q: %w", tenant, err)
	}
	return t.ID, nil
}

// kvReady checks the KV service and the key.
func (h *HostCalls) kvReady(key string) error {
	if h.opts.KV == nil {
		return fault.Unavailable.WithMessage("the key-value store is not available to plugins on this host")
	}
	if len(key) > MaxKVKeyBytes {
		return fault.InvalidRequest.WithMessagef("a key of %d bytes is over the %d-byte limit", len(key), MaxKVKeyBytes)
	}
	return nil
}

func (h *HostCalls) kvGet(ctx context.Context, sc *Scope, r abi.KVGetRequest) (abi.Message, error) {
	if err := h.kvReady(r.Key); err != nil {
		return nil, err
	}
	if r.Key == "" {
		return nil, fault.InvalidRequest.WithMessage("the key is required")
	}
	tid, err := h.tenantID(ctx, sc, r.Tenant)
	if err != nil {
		return nil, err
	}
	e, err := h.opts.KV.KVGet(ctx, h.opts.Plugin, tid, r.Key)
	if errors.Is(err, store.ErrNotFound) {
		return &abi.KVGetResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv.get: %w", err)
	}
	return &abi.KVGetResponse{Found: true, Value: e.Value}, nil
}

func (h *HostCalls) kvSet(ctx context.Context, sc *Scope, r abi.KVSetRequest) error {
	if err := h.kvReady(r.Key); err != nil {
		return err
	}
	switch {
	case r.Key == "":
		return fault.InvalidRequest.WithMessage("the key is required")
	case len(r.Value) > MaxKVValueBytes:
		return fault.InvalidRequest.WithMessagef("a value of %d bytes is over the %d-byte limit", len(r.Value), MaxKVValueBytes)
	case r.TTLMillis < 0:
		return fault.InvalidRequest.WithMessage("the ttl must not be negative")
	}
	tid, err := h.tenantID(ctx, sc, r.Tenant)
	if err != nil {
		return err
	}
	e := store.KVEntry{Key: r.Key, Value: r.Value}
	if r.TTLMillis > 0 {
		e.ExpiresAt = time.Now().Add(time.Duration(r.TTLMillis) * time.Millisecond)
	}
	if err := h.opts.KV.KVPut(ctx, h.opts.Plugin, tid, e); err != nil {
		return fmt.Errorf("kv.set: %w", err)
	}
	return nil
}

func (h *HostCalls) kvDelete(ctx context.Context, sc *Scope, r abi.KVDeleteRequest) error {
	if err := h.kvReady(r.Key); err != nil {
		return err
	}
	tid, err := h.tenantID(ctx, sc, r.Tenant)
	if err != nil {
		return err
	}
	if err := h.opts.KV.KVDelete(ctx, h.opts.Plugin, tid, r.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("kv.delete: %w", err)
	}
	return nil
}

func (h *HostCalls) kvList(ctx context.Context, sc *Scope, r abi.KVListRequest) (abi.Message, error) {
	if err := h.kvReady(r.Prefix); err != nil {
		return nil, err
	}
	if r.Limit < 0 {
		return nil, fault.InvalidRequest.WithMessage("the limit must not be negative")
	}
	tid, err := h.tenantID(ctx, sc, r.Tenant)
	if err != nil {
		return nil, err
	}
	limit := r.Limit
	if limit == 0 {
		limit = DefaultKVListLimit
	}
	limit = min(limit, store.MaxPageLimit)
	entries, next, err := h.opts.KV.KVList(ctx, h.opts.Plugin, tid, r.Prefix, store.Page{Limit: limit, After: r.Cursor})
	if err != nil {
		return nil, fmt.Errorf("kv.list: %w", err)
	}
	resp := &abi.KVListResponse{Next: next, Entries: make([]abi.KVEntry, len(entries))}
	for i, e := range entries {
		resp.Entries[i] = abi.KVEntry{Key: e.Key, Value: e.Value}
	}
	return resp, nil
}

// secret opens one of the plugin's secrets. Neither the value nor the
// name's presence is logged.
func (h *HostCalls) secret(sc *Scope, r abi.SecretGetRequest) (abi.Message, error) {
	if err := tenantAllowed(sc, r.Tenant); err != nil {
		return nil, err
	}
	sealed, ok := h.secrets[r.Name]
	if !ok {
		return nil, fault.NotFound.WithMessagef("no secret %q is configured for this plugin", r.Name)
	}
	v, err := h.opts.Box.Open(sealed, secretAD(h.opts.Plugin, r.Name))
	if err != nil {
		return nil, fmt.Errorf("opening secret %q: %w", r.Name, err)
	}
	return &abi.SecretGetResponse{Value: v}, nil
}

// directory returns the tenant's user store domains, the plugin's own
// stores left out.
func (h *HostCalls) directory(sc *Scope, tenant string) (*router.View, error) {
	if err := tenantAllowed(sc, tenant); err != nil {
		return nil, err
	}
	if tenant == "" {
		return nil, fault.InvalidRequest.WithMessage("the tenant is required")
	}
	var dir *router.Router
	if h.opts.Directory != nil {
		dir = h.opts.Directory()
	}
	if dir == nil {
		return nil, fault.Unavailable.WithMessage("user lookup is not available to plugins on this host")
	}
	return dir.View(func(m router.Member) bool { return !slices.Contains(h.own, m.Instance.ID()) }), nil
}

// getUser returns the user with a directory id ("LDAP:5f0c…" for a user
// of domain LDAP, a primary store's id unchanged) from the store that
// made it.
func (h *HostCalls) getUser(ctx context.Context, sc *Scope, r abi.GetUserRequest) (abi.Message, error) {
	dir, err := h.directory(sc, r.Tenant)
	if err != nil {
		return nil, err
	}
	u, err := dir.GetUser(ctx, r.Tenant, r.ID)
	if fault.CodeOf(err) == fault.CodeNotFound {
		return &abi.UserResponse{Error: &abi.Error{Code: abi.CodeNotFound, Message: "no such user"}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &abi.UserResponse{User: u}, nil
}

// findUsers finds users as logins do. With a username: a qualified one
// ("LDAP/alice") in its store only, a plain one in the first store of the
// search order that knows it. Otherwise one page of the users of every
// store, in search order (resp.Next continues across stores). Users are
// in the directory's form: qualified ids and usernames.
func (h *HostCalls) findUsers(ctx context.Context, sc *Scope, r abi.FindUsersRequest) (abi.Message, error) {
	dir, err := h.directory(sc, r.Tenant)
	if err != nil {
		return nil, err
	}
	r.Config = nil
	var resp abi.FindUsersResponse
	if r.Username != "" {
		resp, err = dir.FindFirst(ctx, r.Tenant, r)
	} else {
		resp, err = dir.FindUsers(ctx, r.Tenant, r)
	}
	if err != nil {
		return &abi.FindUsersResponse{Error: fault.ToWire(err)}, nil
	}
	return &resp, nil
}

// auditAction is the form of an audit action a plugin may record.
var auditAction = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,7}$`)

// audit publishes the guest's event, marked as the plugin's: its actor is
// "plugin:<id>" and its action is prefixed "plugin.".
func (h *HostCalls) audit(ctx context.Context, sc *Scope, r abi.AuditEvent) error {
	if h.opts.Audit == nil {
		return fault.Unavailable.WithMessage("the audit log is not available to plugins on this host")
	}
	switch {
	case len(r.Action) > 64 || !auditAction.MatchString(r.Action):
		return fault.InvalidRequest.WithMessage(`the action must be lowercase and dotted ("otp.sent"), at most 64 bytes`)
	case r.Outcome != "" && r.Outcome != event.OutcomeSuccess && r.Outcome != event.OutcomeFailure:
		return fault.InvalidRequest.WithMessage(`the outcome must be "success" or "failure"`)
	case len(r.Details) > MaxAuditDetails:
		return fault.InvalidRequest.WithMessagef("%d details are over the limit of %d", len(r.Details), MaxAuditDetails)
	}
	tid, err := h.tenantID(ctx, sc, r.Tenant)
	if err != nil {
		return err
	}
	detail := maps.Clone(r.Details)
	if detail == nil {
		detail = make(map[string]any, 2)
	}
	detail["plugin"] = h.opts.Plugin
	if sc != nil {
		detail["extension"] = string(sc.Extension)
	}
	ev := event.Event{
		Tenant:  tid,
		Actor:   event.Ref("plugin", h.opts.Plugin),
		Action:  event.Action("plugin." + r.Action),
		Outcome: r.Outcome,
		Detail:  detail,
	}
	if ev.Outcome == "" {
		ev.Outcome = event.OutcomeSuccess
	}
	if r.Subject != "" {
		ev.Target = event.Ref("user", r.Subject)
	}
	if !h.opts.Audit.Publish(ev) {
		h.log.WarnContext(ctx, "plugin audit event dropped", slog.String("plugin", h.opts.Plugin), slog.String("action", string(ev.Action)))
	}
	return nil
}

var _ wasmhost.HostCaller = (*HostCalls)(nil)

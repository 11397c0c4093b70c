//go:build !wasip1

package plugintest

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

// Limits the fake host enforces, as the real one does (abi/SPEC.md
// section 9).
const (
	// MaxLogBytes is the longest log message kept; longer ones are cut.
	MaxLogBytes = 4096
	// MaxKVKeyBytes is the longest key-value key.
	MaxKVKeyBytes = 256
	// MaxKVValueBytes is the largest key-value value.
	MaxKVValueBytes = 64 << 10
	// DefaultKVListLimit is the page size of a KVList without a Limit.
	DefaultKVListLimit = 100
)

// Log is one message the module sent to guest.Log.
type Log struct {
	// Level is the message's level.
	Level guest.Level
	// Message is the text, cut at MaxLogBytes.
	Message string
}

type kvValue struct {
	value   []byte
	expires time.Time // zero: never
}

type secretKey struct{ tenant, name string }

var _ guest.TestHost = (*Harness)(nil)

// SetNow fixes the clock that guest.Now reads and key-value expiry uses;
// the zero time restores the real clock.
func (h *Harness) SetNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = t
}

// SetRandom makes guest.Random read from r (for deterministic tests);
// nil restores crypto/rand.
func (h *Harness) SetRandom(r io.Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.random = r
}

// SetConfig sets what host.Config(tenant) returns (a JSON object).
func (h *Harness) SetConfig(tenant string, config []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configs == nil {
		h.configs = map[string]json.RawMessage{}
	}
	h.configs[tenant] = slices.Clone(config)
}

// SetKV stores value under key in tenant's key-value space, as host.KVSet
// would without a TTL.
func (h *Harness) SetKV(tenant, key string, value []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kvSet(tenant, key, value, time.Time{})
}

// KV returns the value under key in tenant's key-value space, and whether
// there is one (an expired value is not).
func (h *Harness) KV(tenant, key string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kvGet(tenant, key)
	return slices.Clone(v), ok
}

// SetSecret stores the secret name for tenant ("" for a secret shared by
// every tenant), for host.Secret; the lookup is by exact tenant.
func (h *Harness) SetSecret(tenant, name string, value []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.secrets == nil {
		h.secrets = map[secretKey][]byte{}
	}
	h.secrets[secretKey{tenant, name}] = slices.Clone(value)
}

// SetUser adds u to tenant's users, or replaces the user with its ID, for
// host.LookupUser and host.FindUsers.
func (h *Harness) SetUser(tenant string, u abi.User) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users == nil {
		h.users = map[string][]abi.User{}
	}
	us := h.users[tenant]
	if i := slices.IndexFunc(us, func(x abi.User) bool { return x.ID == u.ID }); i >= 0 {
		us[i] = u
		return
	}
	h.users[tenant] = append(us, u)
}

// SetHTTPHosts stands for the operator's allow-list (a plugin's
// http_hosts): entries "api.example.com", "*.example.com", "host:8443",
// and "http://127.0.0.1:8080" for plain http to that host and port, which
// lets a test reach a local httptest.Server. With an allow-list set, a
// request must match it; without one, it must match the hosts the module
// declared, or any https host when the module declared none (the operator
// then chooses them).
func (h *Harness) SetHTTPHosts(hosts ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.httpHosts = slices.Clone(hosts)
}

// HandleHTTP makes fn answer host.HTTP requests that pass the capability
// checks (an https URL whose host the module declared, see SetHTTPHosts). An error from fn,
// a *plugin.Error with abi.CodeUnavailable or abi.CodeTimeout, stands for a
// transport failure; another error is answered as unavailable. Without a
// handler every request fails as unavailable.
func (h *Harness) HandleHTTP(fn func(req abi.HTTPRequest) (abi.HTTPResponse, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.http = fn
}

// Logs returns the messages the module logged, in order.
func (h *Harness) Logs() []Log {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.logs)
}

// Audits returns the events the module recorded with host.Audit, in order.
func (h *Harness) Audits() []abi.AuditEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.audits)
}

// Log records a guest.Log message (guest.TestHost).
func (h *Harness) Log(level guest.Level, msg string) {
	h.requireCapability(abi.CapabilityLog, "guest.Log")
	if len(msg) > MaxLogBytes {
		msg = msg[:MaxLogBytes]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, Log{Level: level, Message: msg})
}

// Now answers guest.Now (guest.TestHost).
func (h *Harness) Now() time.Time {
	h.requireCapability(abi.CapabilityClock, "guest.Now")
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock()
}

// clock returns the harness's time; h.mu must be held.
func (h *Harness) clock() time.Time {
	if h.now.IsZero() {
		return time.Now()
	}
	return h.now
}

// Random answers guest.Random (guest.TestHost).
func (h *Harness) Random(b []byte) {
	h.requireCapability(abi.CapabilityRandom, "guest.Random")
	if len(b) > guest.MaxRandomBytes {
		h.fatalf("plugintest: random asked for %d bytes at once; the host traps above %d", len(b), guest.MaxRandomBytes)
	}
	h.mu.Lock()
	r := h.random
	h.mu.Unlock()
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		h.fatalf("plugintest: reading random bytes: %v", err)
	}
}

// requireCapability fails the test, once per capability, when the module
// uses a host function whose capability it did not declare.
func (h *Harness) requireCapability(capability, fn string) {
	if h.declared(capability) {
		return
	}
	h.mu.Lock()
	seen := h.warned[capability]
	if h.warned == nil {
		h.warned = map[string]bool{}
	}
	h.warned[capability] = true
	h.mu.Unlock()
	if !seen {
		h.errorf("plugintest: the module calls %s without declaring the %q capability in plugin.Meta; the host refuses to load such a module", fn, capability)
	}
}

// declared reports whether the module declares capability.
func (h *Harness) declared(capability string) bool {
	return slices.ContainsFunc(h.desc.Capabilities, func(c abi.CapabilityRequest) bool { return c.Name == capability })
}

// HostCall answers a host_call (guest.TestHost): it decodes the HostCall
// envelope, checks the operation's capability against the module's
// declaration, and answers from the fakes.
func (h *Harness) HostCall(req []byte) ([]byte, error) {
	var c abi.HostCall
	if err := c.UnmarshalWire(req); err != nil {
		return hostError(abi.CodeInvalidRequest, "malformed host call: "+err.Error())
	}
	capability := c.Op.Capability()
	if capability == "" {
		return hostError(abi.CodeUnsupported, "unknown host operation "+c.Op.String())
	}
	if !h.declared(capability) {
		return hostError(abi.CodeForbidden, "capability "+capability+" not granted")
	}
	switch c.Op {
	case abi.HostOpConfigGet:
		var r abi.ConfigGetRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return &abi.ConfigGetResponse{Config: h.configs[r.Tenant]}, nil
		})
	case abi.HostOpKVGet:
		var r abi.KVGetRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			v, ok := h.kvGet(r.Tenant, r.Key)
			return &abi.KVGetResponse{Found: ok, Value: v}, nil
		})
	case abi.HostOpKVSet:
		var r abi.KVSetRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			switch {
			case r.Key == "" || len(r.Key) > MaxKVKeyBytes:
				return nil, &abi.Error{Code: abi.CodeInvalidRequest, Message: "key must be 1 to 256 bytes"}
			case len(r.Value) > MaxKVValueBytes:
				return nil, &abi.Error{Code: abi.CodeInvalidRequest, Message: "value longer than 64 KiB"}
			case r.TTLMillis < 0:
				return nil, &abi.Error{Code: abi.CodeInvalidRequest, Message: "negative ttl"}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			var exp time.Time
			if r.TTLMillis > 0 {
				exp = h.clock().Add(time.Duration(r.TTLMillis) * time.Millisecond)
			}
			h.kvSet(r.Tenant, r.Key, r.Value, exp)
			return nil, nil
		})
	case abi.HostOpKVDelete:
		var r abi.KVDeleteRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.kv[r.Tenant], r.Key)
			return nil, nil
		})
	case abi.HostOpKVList:
		var r abi.KVListRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.kvList(r), nil
		})
	case abi.HostOpSecretGet:
		var r abi.SecretGetRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			v, ok := h.secrets[secretKey{r.Tenant, r.Name}]
			if !ok {
				return nil, &abi.Error{Code: abi.CodeNotFound, Message: "no secret " + r.Name}
			}
			return &abi.SecretGetResponse{Value: v}, nil
		})
	case abi.HostOpGetUser:
		var r abi.GetUserRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			i := slices.IndexFunc(h.users[r.Tenant], func(u abi.User) bool { return u.ID == r.ID })
			if i < 0 {
				return &abi.UserResponse{Error: &abi.Error{Code: abi.CodeNotFound, Message: "user not found"}}, nil
			}
			return &abi.UserResponse{User: h.users[r.Tenant][i]}, nil
		})
	case abi.HostOpFindUsers:
		var r abi.FindUsersRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.findUsers(r), nil
		})
	case abi.HostOpAudit:
		var r abi.AuditEvent
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.audits = append(h.audits, r)
			return nil, nil
		})
	case abi.HostOpHTTP:
		var r abi.HTTPRequest
		return answer(c.Payload, &r, func() (abi.Message, *abi.Error) {
			return h.doHTTP(r)
		})
	}
	return hostError(abi.CodeUnsupported, "unknown host operation "+c.Op.String())
}

// answer decodes payload into req, runs fn and encodes its answer as a
// HostReply.
func answer(payload []byte, req abi.Message, fn func() (abi.Message, *abi.Error)) ([]byte, error) {
	if err := req.UnmarshalWire(payload); err != nil {
		return hostError(abi.CodeInvalidRequest, "malformed host call payload: "+err.Error())
	}
	resp, e := fn()
	if e != nil {
		return (&abi.HostReply{Error: e}).AppendWire(nil)
	}
	return abi.AppendHostReply(nil, resp)
}

func hostError(code, msg string) ([]byte, error) {
	return (&abi.HostReply{Error: &abi.Error{Code: code, Message: msg}}).AppendWire(nil)
}

// kvGet, kvSet and kvList work on the key-value spaces; h.mu must be held.
func (h *Harness) kvGet(tenant, key string) ([]byte, bool) {
	v, ok := h.kv[tenant][key]
	if !ok || !v.expires.IsZero() && !h.clock().Before(v.expires) {
		return nil, false
	}
	return v.value, true
}

func (h *Harness) kvSet(tenant, key string, value []byte, expires time.Time) {
	if h.kv == nil {
		h.kv = map[string]map[string]kvValue{}
	}
	if h.kv[tenant] == nil {
		h.kv[tenant] = map[string]kvValue{}
	}
	h.kv[tenant][key] = kvValue{value: slices.Clone(value), expires: expires}
}

// kvList pages through the keys with r.Prefix after r.Cursor (the last key
// of the previous page).
func (h *Harness) kvList(r abi.KVListRequest) *abi.KVListResponse {
	limit := r.Limit
	if limit <= 0 {
		limit = DefaultKVListLimit
	}
	var keys []string
	for k := range h.kv[r.Tenant] {
		if _, ok := h.kvGet(r.Tenant, k); ok && strings.HasPrefix(k, r.Prefix) && k > r.Cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	resp := &abi.KVListResponse{}
	for _, k := range keys {
		if len(resp.Entries) == limit {
			resp.Next = resp.Entries[len(resp.Entries)-1].Key
			break
		}
		resp.Entries = append(resp.Entries, abi.KVEntry{Key: k, Value: h.kv[r.Tenant][k].value})
	}
	return resp
}

// findUsers filters the tenant's users as a user store would: username and
// email case-insensitively, attributes exactly; pages by position.
func (h *Harness) findUsers(r abi.FindUsersRequest) *abi.FindUsersResponse {
	var match []abi.User
	for _, u := range h.users[r.Tenant] {
		if r.Username != "" && !strings.EqualFold(u.Username, r.Username) ||
			r.Email != "" && !strings.EqualFold(u.Email, r.Email) {
			continue
		}
		ok := true
		for k, want := range r.Attributes {
			if got, isString := u.Attributes[k].(string); !isString || got != want {
				ok = false
				break
			}
		}
		if ok {
			match = append(match, u)
		}
	}
	resp := &abi.FindUsersResponse{Users: match}
	if r.Limit > 0 && len(match) > r.Limit {
		resp.Users, resp.Next = match[:r.Limit], "more"
	}
	return resp
}

// doHTTP checks an HTTP request against the module's http capability and
// hands it to the handler.
func (h *Harness) doHTTP(r abi.HTTPRequest) (abi.Message, *abi.Error) {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &abi.Error{Code: abi.CodeInvalidRequest, Message: "not an absolute http(s) URL"}
	}
	var hosts []string
	for _, c := range h.desc.Capabilities {
		if c.Name == abi.CapabilityHTTP {
			hosts = c.Hosts
		}
	}
	h.mu.Lock()
	if h.httpHosts != nil {
		hosts = h.httpHosts
	}
	anyHost := h.httpHosts == nil && len(hosts) == 0
	h.mu.Unlock()
	if (!anyHost || u.Scheme != "https") && !hostAllowed(u, hosts) {
		return nil, &abi.Error{Code: abi.CodeForbidden, Message: "host " + u.Host + " not granted"}
	}
	h.mu.Lock()
	fn := h.http
	h.mu.Unlock()
	if fn == nil {
		return nil, &abi.Error{Code: abi.CodeUnavailable, Message: "no HTTP handler in the test harness (HandleHTTP)"}
	}
	resp, err := fn(r)
	if err != nil {
		e := errorOf(err)
		if e.Code != abi.CodeTimeout {
			e.Code = abi.CodeUnavailable
		}
		return nil, e
	}
	return &resp, nil
}

// hostAllowed reports whether u's host and port match one of the
// patterns: an exact name, or "*." for any subdomain, with an optional
// ":port" (443 when absent).
func hostAllowed(u *url.URL, patterns []string) bool {
	name, port := strings.ToLower(u.Hostname()), u.Port()
	defaultPort := "443"
	if u.Scheme == "http" {
		defaultPort = "80"
	}
	if port == "" {
		port = defaultPort
	}
	for _, p := range patterns {
		scheme := "https"
		if rest, ok := strings.CutPrefix(p, "http://"); ok {
			scheme, p = "http", rest
		}
		if scheme != u.Scheme {
			continue
		}
		pname, pport := strings.ToLower(p), defaultPort
		if i := strings.LastIndexByte(p, ':'); i >= 0 && !strings.HasSuffix(p, "]") {
			pname, pport = strings.ToLower(p[:i]), p[i+1:]
		}
		pname = strings.Trim(pname, "[]")
		if pport != port {
			continue
		}
		if rest, ok := strings.CutPrefix(pname, "*."); ok {
			if strings.HasSuffix(name, "."+rest) {
				return true
			}
			continue
		}
		if name == pname {
			return true
		}
	}
	return false
}

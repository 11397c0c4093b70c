package adaptive

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// unavailable lists functions of the WSO2 API that Latch does not offer;
// each throws an Error that says so, so a migrated script fails with a
// clear message instead of "not defined".
var unavailable = map[string]string{
	"callAnalytics":                "analytics engines are not part of Latch; call a risk service with httpPost",
	"publishToAnalytics":           "analytics engines are not part of Latch; call a service with httpPost",
	"callElastic":                  "analytics engines are not part of Latch; call a service with httpPost",
	"callChoreo":                   "Choreo is not part of Latch; call a service with httpPost",
	"getAssociatedLocalUser":       "account linking is configured on the identity provider in Latch",
	"doAssociationWithLocalUser":   "account linking is configured on the identity provider in Latch",
	"removeAssociatedLocalUser":    "account linking is configured on the identity provider in Latch",
	"updateUserPassword":           "scripts cannot change passwords in Latch",
	"filterAuthenticators":         "use the authenticationOptions of executeStep",
	"promptIdentifierForStep":      "use the identifier_first authenticator in a step",
	"getAuthenticatedApplications": "use getUserSessions(user)[i].applications",
	"require":                      "modules cannot be loaded; use loadLocalLibrary",
}

// fn is a helper's body; it reads the evaluation in progress.
type fn func(r *run, c goja.FunctionCall) goja.Value

// install defines the script API in the runtime's global object.
func (v *vm) install(e *Engine) error {
	rt := v.rt
	wrap := func(name string, f fn) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			r := v.cur
			if r == nil {
				panic(rt.NewTypeError("%s can only be called during a login, not in top-level code", name))
			}
			defer func() {
				if x := recover(); x != nil {
					panic(jsPanic(rt, name, x))
				}
			}()
			return f(r, c)
		}
	}
	g := rt.GlobalObject()
	funcs := map[string]fn{
		"executeStep":                  fnExecuteStep,
		"fail":                         fnFail,
		"sendError":                    fnSendError,
		"prompt":                       fnPrompt,
		"selectAcrFrom":                fnSelectAcrFrom,
		"hasRole":                      fnHasRole,
		"hasAnyOfTheRoles":             fnHasAnyOfTheRoles,
		"hasAnyOfTheRolesV2":           fnHasAnyOfTheRolesV2,
		"isMemberOfAnyOfGroups":        fnIsMemberOfAnyOfGroups,
		"assignUserRoles":              rolesEffect(false, true),
		"assignUserRolesV2":            rolesEffect(true, true),
		"removeUserRoles":              rolesEffect(false, false),
		"removeUserRolesV2":            rolesEffect(true, false),
		"getUniqueUserWithClaimValues": fnGetUniqueUserWithClaimValues,
		"getUsersWithClaimValues":      fnGetUsersWithClaimValues,
		"getUserClaimValue":            fnGetUserClaimValue,
		"getUserSessions":              fnGetUserSessions,
		"terminateUserSession":         fnTerminateUserSession,
		"isWithinSessionLimit":         fnIsWithinSessionLimit,
		"setCookie":                    fnSetCookie,
		"getCookieValue":               fnGetCookieValue,
		"httpGet":                      fnHTTPGet,
		"httpPost":                     fnHTTPPost,
		"sendEmail":                    fnSendEmail,
		"getSecretByName":              fnGetSecretByName,
		"getMaskedValue":               fnGetMaskedValue,
		"getValueFromDecodedAssertion": fnGetValueFromDecodedAssertion,
		"loadLocalLibrary":             fnLoadLocalLibrary,
	}
	for name, f := range funcs {
		if err := g.Set(name, wrap(name, f)); err != nil {
			return err
		}
	}
	for name, why := range unavailable {
		msg := fmt.Sprintf("%s is not available in Latch: %s", name, why)
		if err := g.Set(name, func(goja.FunctionCall) goja.Value { panic(rt.NewGoError(errors.New(msg))) }); err != nil {
			return err
		}
	}
	log := rt.NewObject()
	for _, lvl := range []string{"debug", "info", "warn", "error"} {
		if err := log.Set(lvl, wrap("Log."+lvl, logFn(lvl))); err != nil {
			return err
		}
	}
	return g.Set("Log", log)
}

// jsPanic passes JavaScript exceptions and goja's uncatchable errors on,
// and turns any other panic in a helper into a JavaScript error, so that
// a bug in a helper fails one evaluation instead of the process.
func jsPanic(rt *goja.Runtime, name string, x any) any {
	switch x.(type) {
	case goja.Value, *goja.Exception, *goja.InterruptedError, *goja.StackOverflowError:
		return x
	}
	return rt.NewGoError(fmt.Errorf("internal error in %s: %v", name, x))
}

// throw stops the script with a TypeError.
func throw(r *run, format string, args ...any) {
	panic(r.v.rt.NewTypeError(fmt.Sprintf(format, args...)))
}

// hostFail records a failed look-up and stops the script. The login fails
// even if the script catches the exception.
func (r *run) hostFail(what string, err error) {
	if r.hostErr == nil {
		r.hostErr = &ScriptError{Script: r.scriptName(), Kind: KindHost, Detail: what + ": " + err.Error(), cause: err}
	}
	panic(r.v.rt.NewGoError(fmt.Errorf("%s failed", what)))
}

func isObject(v goja.Value) (*goja.Object, bool) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, false
	}
	o, ok := v.(*goja.Object)
	return o, ok
}

// exportJSON copies a script value out as plain JSON data, bounded to
// MaxValueBytes.
func (r *run) exportJSON(what string, v goja.Value) any {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	// The script's own (bounded) JSON.stringify, not json.Marshal: a
	// structure holding one large string many times would otherwise be
	// expanded in Go before any size check.
	sv, err := r.v.stringify(goja.Undefined(), v)
	if err != nil {
		panic(err)
	}
	if goja.IsUndefined(sv) {
		return nil
	}
	b := []byte(sv.String())
	if len(b) > MaxValueBytes {
		throw(r, "%s is larger than %d bytes", what, MaxValueBytes)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		throw(r, "%s: %v", what, err)
	}
	return out
}

// stringMap copies a script object of strings out.
func (r *run) stringMap(what string, v goja.Value) map[string]string {
	o, ok := isObject(v)
	if !ok {
		return nil
	}
	m := map[string]string{}
	size := 0
	for _, k := range o.Keys() {
		val := o.Get(k)
		if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
			continue
		}
		s := val.String()
		if arr, ok := val.Export().([]any); ok && len(arr) > 0 {
			s = fmt.Sprint(arr[0])
		}
		size += len(k) + len(s)
		if size > MaxValueBytes {
			throw(r, "%s is larger than %d bytes", what, MaxValueBytes)
		}
		m[k] = s
	}
	return m
}

// stringList copies a script array of strings out.
func (r *run) stringList(what string, v goja.Value) []string {
	o, ok := isObject(v)
	if !ok {
		throw(r, "%s must be an array of strings", what)
	}
	n := o.Get("length")
	if n == nil {
		throw(r, "%s must be an array of strings", what)
	}
	l := n.ToInteger()
	if l > 10000 {
		throw(r, "%s has more than 10000 items", what)
	}
	out := make([]string, 0, l)
	for i := range l {
		out = append(out, o.Get(strconv.FormatInt(i, 10)).String())
	}
	return out
}

// callbacks reads {onSuccess, onFail} (and onSkip for prompts).
func callbacks(r *run, v goja.Value) (onSuccess, onFail goja.Callable) {
	o, ok := isObject(v)
	if !ok {
		return nil, nil
	}
	get := func(name string) goja.Callable {
		x := o.Get(name)
		if x == nil || goja.IsUndefined(x) || goja.IsNull(x) {
			return nil
		}
		f, ok := goja.AssertFunction(x)
		if !ok {
			throw(r, "callback %s must be a function", name)
		}
		return f
	}
	onSuccess, onFail = get("onSuccess"), get("onFail")
	if onFail == nil {
		onFail = get("onSkip")
	}
	return onSuccess, onFail
}

func hasCallbacks(v goja.Value) bool {
	o, ok := isObject(v)
	if !ok {
		return false
	}
	for _, k := range []string{"onSuccess", "onFail", "onSkip"} {
		if x := o.Get(k); x != nil && !goja.IsUndefined(x) {
			return true
		}
	}
	return false
}

func (r *run) schedule(a *action) {
	if r.final != nil {
		return // fail() or sendError() already ended the login
	}
	if len(r.pending) >= 100 {
		throw(r, "too many steps scheduled in one callback")
	}
	r.pending = append(r.pending, a)
}

// executeStep(stepId[, options][, callbacks]). With two arguments the
// second is taken as callbacks, unless it holds only option keys.
func fnExecuteStep(r *run, c goja.FunctionCall) goja.Value {
	n := int(c.Argument(0).ToInteger())
	var cfg *StepConfig
	for i := range r.in.Steps {
		if r.in.Steps[i].Number == n {
			cfg = &r.in.Steps[i]
		}
	}
	if cfg == nil {
		throw(r, "executeStep(%d): the flow has no step %d", n, n)
	}
	opts, cbs := c.Argument(1), c.Argument(2)
	if len(c.Arguments) == 2 && (hasCallbacks(opts) || !hasOptionKeys(opts)) {
		opts, cbs = goja.Undefined(), c.Argument(1)
	}
	sd := &StepDecision{Number: n, Options: slices.Clone(cfg.Options)}
	a := &action{kind: EntryStep, step: sd, subjStep: cfg.SubjectStep, attrStep: cfg.AttributeStep}
	if o, ok := isObject(opts); ok {
		if ao, ok := isObject(o.Get("authenticationOptions")); ok {
			sd.Options = nil
			l := ao.Get("length").ToInteger()
			for i := range min(l, 100) {
				item, ok := isObject(ao.Get(strconv.FormatInt(i, 10)))
				if !ok {
					throw(r, "executeStep(%d): authenticationOptions[%d] must be an object", n, i)
				}
				opt := AuthOption{}
				if x := item.Get("authenticator"); x != nil && !goja.IsUndefined(x) {
					opt.Authenticator = AuthenticatorID(x.String())
				}
				if x := item.Get("idp"); x != nil && !goja.IsUndefined(x) {
					opt.IDP = x.String()
				}
				if !slices.Contains(cfg.Options, opt) {
					throw(r, "executeStep(%d): step %d does not offer %s", n, n, optionName(opt))
				}
				if !slices.Contains(sd.Options, opt) {
					sd.Options = append(sd.Options, opt)
				}
			}
			if len(sd.Options) == 0 {
				throw(r, "executeStep(%d): authenticationOptions is empty", n)
			}
		}
		if p := o.Get("authenticatorParams"); p != nil && !goja.IsUndefined(p) {
			params, ok := r.exportJSON("authenticatorParams", p).(map[string]any)
			if !ok {
				throw(r, "executeStep(%d): authenticatorParams must be an object", n)
			}
			if local, ok := params["local"].(map[string]any); ok {
				norm := make(map[string]any, len(local))
				for k, v := range local {
					norm[AuthenticatorID(k)] = v
				}
				params["local"] = norm
			}
			sd.AuthenticatorParams = params
		}
		if so := r.stringMap("stepOptions", o.Get("stepOptions")); len(so) > 0 {
			sd.StepOptions = so
			if v, ok := so["markAsSubjectIdentifierStep"]; ok {
				a.subjStep = v == "true"
			}
			if v, ok := so["markAsSubjectAttributeStep"]; ok {
				a.attrStep = v == "true"
			}
		}
	}
	a.onSuccess, a.onFail = callbacks(r, cbs)
	r.schedule(a)
	return goja.Undefined()
}

func hasOptionKeys(v goja.Value) bool {
	o, ok := isObject(v)
	if !ok {
		return false
	}
	for _, k := range []string{"authenticationOptions", "authenticatorParams", "stepOptions"} {
		if x := o.Get(k); x != nil && !goja.IsUndefined(x) {
			return true
		}
	}
	return false
}

// fail([{errorCode, errorMessage, errorURI}]) ends the login.
func fnFail(r *run, c goja.FunctionCall) goja.Value {
	if r.final != nil {
		return goja.Undefined()
	}
	m := r.stringMap("fail parameters", c.Argument(0))
	r.final = &Decision{Kind: DecisionFail, Error: &ErrorDecision{
		Code: cmp.Or(m["errorCode"], "access_denied"), Message: m["errorMessage"], URI: m["errorURI"],
	}}
	return goja.Undefined()
}

// sendError(url, params) ends the login on an error page.
func fnSendError(r *run, c goja.FunctionCall) goja.Value {
	if r.final != nil {
		return goja.Undefined()
	}
	url := ""
	if u := c.Argument(0); !goja.IsUndefined(u) && !goja.IsNull(u) {
		url = u.String()
	}
	r.final = &Decision{Kind: DecisionSendError, Error: &ErrorDecision{URL: url, Params: r.stringMap("sendError parameters", c.Argument(1))}}
	return goja.Undefined()
}

// prompt(templateId, data, callbacks) shows a form.
func fnPrompt(r *run, c goja.FunctionCall) goja.Value {
	tpl := c.Argument(0).String()
	if tpl == "" || goja.IsUndefined(c.Argument(0)) {
		throw(r, "prompt: a template id is required")
	}
	a := &action{kind: EntryPrompt, prompt: &PromptDecision{Template: tpl, Data: r.exportJSON("prompt data", c.Argument(1))}}
	a.onSuccess, a.onFail = callbacks(r, c.Argument(2))
	r.schedule(a)
	return goja.Undefined()
}

// selectAcrFrom(context, [acrs]) returns the first of acrs the client
// requested, or "".
func fnSelectAcrFrom(r *run, c goja.FunctionCall) goja.Value {
	for _, acr := range r.stringList("selectAcrFrom acr list", c.Argument(1)) {
		if slices.Contains(r.in.RequestedACRs, acr) {
			return r.v.rt.ToValue(acr)
		}
	}
	return r.v.rt.ToValue("")
}

// userArg reads a user object argument; V2 functions pass the context and
// mean its last authenticated user.
func (r *run) userArg(fname string, v goja.Value) *jsUser {
	o, ok := isObject(v)
	if !ok {
		throw(r, "%s: a user is required", fname)
	}
	if u, ok := o.Export().(*jsUser); ok {
		return u
	}
	if o == r.ctxObj {
		if r.lastUser == nil {
			throw(r, "%s: no user has been authenticated yet", fname)
		}
		return r.lastUser
	}
	throw(r, "%s: the argument is not a user object", fname)
	return nil
}

func fnHasRole(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("hasRole", c.Argument(0))
	return r.v.rt.ToValue(slices.Contains(r.roles(u), c.Argument(1).String()))
}

func anyOf(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func fnHasAnyOfTheRoles(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("hasAnyOfTheRoles", c.Argument(0))
	return r.v.rt.ToValue(anyOf(r.roles(u), r.stringList("hasAnyOfTheRoles roles", c.Argument(1))))
}

func fnHasAnyOfTheRolesV2(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("hasAnyOfTheRolesV2", c.Argument(0))
	return r.v.rt.ToValue(anyOf(r.roles(u), r.stringList("hasAnyOfTheRolesV2 roles", c.Argument(1))))
}

func fnIsMemberOfAnyOfGroups(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("isMemberOfAnyOfGroups", c.Argument(0))
	return r.v.rt.ToValue(anyOf(r.record(u).Groups, r.stringList("isMemberOfAnyOfGroups groups", c.Argument(1))))
}

// rolesEffect builds assignUserRoles(V2) and removeUserRoles(V2): an effect
// for the caller, and the change visible to the rest of this evaluation.
func rolesEffect(v2, add bool) fn {
	name := map[bool]string{true: "assignUserRoles", false: "removeUserRoles"}[add]
	if v2 {
		name += "V2"
	}
	kind := map[bool]EffectKind{true: EffectAssignRoles, false: EffectRemoveRoles}[add]
	return func(r *run, c goja.FunctionCall) goja.Value {
		u := r.userArg(name, c.Argument(0))
		if u.subj.Federated {
			throw(r, "%s: %s is a federated user with no local account", name, u.subj.Username)
		}
		roles := r.stringList(name+" roles", c.Argument(1))
		r.overlayRoles(u, roles, add)
		r.effect(Effect{Kind: kind, UserID: u.subj.ID, Roles: roles})
		return r.v.rt.ToValue(true)
	}
}

func (r *run) findUsers(fname string, claims goja.Value, limit int) []User {
	m := r.stringMap(fname+" claims", claims)
	if len(m) == 0 {
		throw(r, "%s: a map of claim URIs to values is required", fname)
	}
	if r.host == nil {
		r.hostFail(fname, errNoHost)
	}
	users, err := r.host.FindUsers(r.ctx, r.in.TenantDomain, m, limit)
	if err != nil {
		r.hostFail(fname, err)
	}
	return users
}

func userSubject(u User) Subject {
	return Subject{ID: u.ID, Username: u.Username, UserStoreDomain: u.UserStoreDomain, TenantDomain: u.TenantDomain}
}

func (r *run) userObject(u User) *goja.Object {
	if r.users == nil {
		r.users = map[string]*User{}
	}
	if _, ok := r.users[u.ID]; !ok {
		rec := u
		r.users[u.ID] = &rec
	}
	return r.newUser(userSubject(u)).obj
}

// getUniqueUserWithClaimValues(claimMap, context[, profile]): one user or
// null; several matching users throw.
func fnGetUniqueUserWithClaimValues(r *run, c goja.FunctionCall) goja.Value {
	users := r.findUsers("getUniqueUserWithClaimValues", c.Argument(0), 2)
	switch len(users) {
	case 0:
		return goja.Null()
	case 1:
		return r.userObject(users[0])
	}
	throw(r, "getUniqueUserWithClaimValues: more than one user has these claim values")
	return nil
}

// getUsersWithClaimValues(claimMap, context): every matching user (at most
// 100).
func fnGetUsersWithClaimValues(r *run, c goja.FunctionCall) goja.Value {
	users := r.findUsers("getUsersWithClaimValues", c.Argument(0), 100)
	vals := make([]any, len(users))
	for i, u := range users {
		vals[i] = r.userObject(u)
	}
	return r.v.rt.NewArray(vals...)
}

// getUserClaimValue(user, claimUri) returns a local claim's value or null.
func fnGetUserClaimValue(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("getUserClaimValue", c.Argument(0))
	uri := c.Argument(1).String()
	if v, ok := r.claimOverlay[u.subj.ID][uri]; ok {
		return r.v.rt.ToValue(v)
	}
	if v, ok := r.record(u).Claims[uri]; ok {
		return r.v.rt.ToValue(v)
	}
	return goja.Null()
}

func (r *run) sessions(fname string, u *jsUser) []Session {
	if r.host == nil {
		r.hostFail(fname, errNoHost)
	}
	ss, err := r.host.Sessions(r.ctx, cmp.Or(u.subj.TenantDomain, r.in.TenantDomain), u.subj.ID)
	if err != nil {
		r.hostFail(fname, err)
	}
	return ss
}

// getUserSessions(user) returns the user's session objects.
func fnGetUserSessions(r *run, c goja.FunctionCall) goja.Value {
	rt := r.v.rt
	u := r.userArg("getUserSessions", c.Argument(0))
	ss := r.sessions("getUserSessions", u)
	vals := make([]any, 0, len(ss))
	for _, s := range ss {
		o := rt.NewObject()
		_ = o.Set("id", s.ID)
		_ = o.Set("ip", s.IP)
		_ = o.Set("loginTime", s.LoginTime.UnixMilli())
		_ = o.Set("lastAccessTime", s.LastAccessTime.UnixMilli())
		ua := rt.NewObject()
		browser, platform, device := parseUserAgent(s.UserAgent)
		_ = ua.Set("raw", s.UserAgent)
		_ = ua.Set("browser", browser)
		_ = ua.Set("platform", platform)
		_ = ua.Set("device", device)
		_ = o.Set("userAgent", ua)
		apps := make([]any, 0, len(s.Applications))
		for _, a := range s.Applications {
			ao := rt.NewObject()
			_ = ao.Set("subject", a.Subject)
			_ = ao.Set("appName", a.AppName)
			_ = ao.Set("appId", a.AppID)
			apps = append(apps, ao)
		}
		_ = o.Set("applications", rt.NewArray(apps...))
		vals = append(vals, o)
	}
	return rt.NewArray(vals...)
}

// parseUserAgent gives coarse browser, platform and device names; it is a
// few substring checks, enough for a script to tell sessions apart, and
// no user-agent database.
func parseUserAgent(ua string) (browser, platform, device string) {
	l := strings.ToLower(ua)
	pick := func(pairs ...string) string {
		for i := 0; i+1 < len(pairs); i += 2 {
			if strings.Contains(l, pairs[i]) {
				return pairs[i+1]
			}
		}
		return "Other"
	}
	browser = pick("edg/", "Edge", "firefox/", "Firefox", "chrome/", "Chrome", "safari/", "Safari")
	platform = pick("windows", "Windows", "android", "Android", "iphone", "iOS", "ipad", "iOS", "mac os", "macOS", "linux", "Linux")
	device = pick("mobile", "Mobile", "ipad", "Tablet", "tablet", "Tablet")
	if device == "Other" {
		device = "Desktop"
	}
	return browser, platform, device
}

// terminateUserSession(user, sessionId) asks the caller to end a session.
func fnTerminateUserSession(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("terminateUserSession", c.Argument(0))
	id := c.Argument(1).String()
	if id == "" {
		throw(r, "terminateUserSession: a session id is required")
	}
	r.effect(Effect{Kind: EffectTerminateSession, UserID: u.subj.ID, SessionID: id})
	return r.v.rt.ToValue(true)
}

// isWithinSessionLimit(user or context, {MaxSessionCount}) reports
// whether the user has fewer active sessions than the limit.
func fnIsWithinSessionLimit(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("isWithinSessionLimit", c.Argument(0))
	o, ok := isObject(c.Argument(1))
	if !ok {
		throw(r, "isWithinSessionLimit: {MaxSessionCount: n} is required")
	}
	limit := int64(-1)
	for _, k := range []string{"MaxSessionCount", "maxSessionCount"} {
		if x := o.Get(k); x != nil && !goja.IsUndefined(x) {
			limit = x.ToInteger()
		}
	}
	if limit < 0 {
		throw(r, "isWithinSessionLimit: MaxSessionCount must be a number >= 0")
	}
	return r.v.rt.ToValue(int64(len(r.sessions("isWithinSessionLimit", u))) < limit)
}

// sendEmail(user, templateId, placeholders) asks the caller to send a
// templated email.
func fnSendEmail(r *run, c goja.FunctionCall) goja.Value {
	u := r.userArg("sendEmail", c.Argument(0))
	tpl := c.Argument(1).String()
	if tpl == "" || goja.IsUndefined(c.Argument(1)) {
		throw(r, "sendEmail: a template id is required")
	}
	r.effect(Effect{Kind: EffectSendEmail, UserID: u.subj.ID, Template: tpl, Placeholders: r.stringMap("sendEmail placeholders", c.Argument(2))})
	return r.v.rt.ToValue(true)
}

// getSecretByName(alias) reads a tenant secret through the Host.
func fnGetSecretByName(r *run, c goja.FunctionCall) goja.Value {
	alias := c.Argument(0).String()
	if r.host == nil {
		r.hostFail("getSecretByName", errNoHost)
	}
	s, err := r.host.Secret(r.ctx, r.in.TenantDomain, alias)
	if err != nil {
		r.hostFail("getSecretByName("+alias+")", err)
	}
	return r.v.rt.ToValue(s)
}

// getMaskedValue(value) keeps the first and last character of a value and
// masks the rest, for logs.
func fnGetMaskedValue(r *run, c goja.FunctionCall) goja.Value {
	return r.v.rt.ToValue(maskValue(c.Argument(0).String()))
}

func maskValue(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 2 {
		return strings.Repeat("*", n)
	}
	rs := []rune(s)
	return string(rs[0]) + strings.Repeat("*", n-2) + string(rs[n-1])
}

// getValueFromDecodedAssertion(jwt, name, isInPayload) returns a claim of
// the payload (or a header parameter) of a JWT as a string. It does not
// check the signature: use it on assertions Latch already validated.
func fnGetValueFromDecodedAssertion(r *run, c goja.FunctionCall) goja.Value {
	jwt, name := c.Argument(0).String(), c.Argument(1).String()
	part := 1
	if p := c.Argument(2); !goja.IsUndefined(p) && !p.ToBoolean() {
		part = 0
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || len(jwt) > MaxValueBytes {
		throw(r, "getValueFromDecodedAssertion: not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		throw(r, "getValueFromDecodedAssertion: not a JWT: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		throw(r, "getValueFromDecodedAssertion: not a JWT: %v", err)
	}
	v, ok := m[name]
	if !ok {
		return goja.Null()
	}
	if s, ok := v.(string); ok {
		return r.v.rt.ToValue(s)
	}
	b, _ := json.Marshal(v)
	return r.v.rt.ToValue(string(b))
}

// logFn builds Log.<level>: new lines go to the engine's logger and to
// Decision.Logs (at most 100 per evaluation, 4 KiB each).
func logFn(level string) fn {
	lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[level]
	return func(r *run, c goja.FunctionCall) goja.Value {
		if !r.isNew() {
			return goja.Undefined()
		}
		parts := make([]string, len(c.Arguments))
		for i, a := range c.Arguments {
			parts[i] = a.String()
		}
		msg := truncate(strings.Join(parts, " "), 4096)
		r.e.log.Log(r.ctx, lvl, msg,
			slog.String("script", r.scriptName()), slog.String("tenant", r.in.TenantDomain), slog.String("flow", r.in.FlowID))
		if len(r.dec.Logs) < 100 {
			r.dec.Logs = append(r.dec.Logs, LogLine{Level: level, Message: msg})
		}
		return goja.Undefined()
	}
}

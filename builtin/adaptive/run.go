package adaptive

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/dop251/goja"
)

// action is something the script asked for that needs the outside world:
// a step, a prompt or an HTTP call, with the callbacks to replay its
// outcome into.
type action struct {
	kind      EntryKind
	step      *StepDecision
	subjStep  bool
	attrStep  bool
	prompt    *PromptDecision
	req       *httpRequest
	onSuccess goja.Callable
	onFail    goja.Callable
}

// doneStep is a successful step as replayed.
type doneStep struct {
	subj     *Subject
	subjStep bool
	attrStep bool
}

// run is one evaluation: the replay cursor, the flow state the script
// sees and the decision being built.
type run struct {
	ctx     context.Context
	e       *Engine
	s       *Script
	v       *vm
	in      *Input
	do      httpDoer
	host    Host
	hist    []Entry
	newFrom int
	cursor  int
	budget  time.Duration
	// pending collects the actions the JavaScript call in progress asks
	// for.
	pending []*action
	// final is set by fail() and sendError(); it ends the evaluation.
	final     *Decision
	dec       Decision
	hostErr   error
	httpCalls int
	succeeded []doneStep

	ctxObj    *goja.Object
	stepsObj  *goja.Object
	paramsObj *goja.Object
	lastUser  *jsUser

	users        map[string]*User
	roleOverlay  map[string]map[string]bool
	claimOverlay map[string]map[string]string
}

func newRun(ctx context.Context, e *Engine, s *Script, in *Input, do httpDoer, host Host) *run {
	return &run{
		ctx: ctx, e: e, s: s, in: in, do: do, host: host,
		hist:    slices.Clip(in.History),
		newFrom: len(in.History),
		budget:  e.opt.TimeLimit,
	}
}

// isNew reports whether the code running now runs for the first time in
// this login: effects and logs are reported only then, so that replaying
// a callback does not apply its effects twice. Code that runs after the
// last History entry of the Input has been replayed is new; code before
// it ran in an earlier evaluation with the same History prefix.
func (r *run) isNew() bool { return r.cursor >= r.newFrom }

func (r *run) effect(ef Effect) {
	if r.isNew() {
		if len(r.dec.Effects) >= 100 {
			panic(r.v.rt.NewTypeError("too many side effects in one evaluation"))
		}
		r.dec.Effects = append(r.dec.Effects, ef)
	}
}

// js enters JavaScript under the remaining budget.
func (r *run) js(fn func() error) error {
	start := time.Now()
	err := r.e.guard(r.ctx, r.v, r, r.budget, fn)
	r.budget -= time.Since(start)
	return err
}

func (r *run) historyError(format string, args ...any) error {
	return &ScriptError{Script: r.scriptName(), Kind: KindHistory, Detail: fmt.Sprintf(format, args...)}
}

// drive runs the flow from the start, replaying the History, until it
// reaches something not yet in it.
func (r *run) drive() (Decision, error) {
	var queue []*action
	if r.s == nil {
		steps := slices.Clone(r.in.Steps)
		slices.SortFunc(steps, func(a, b StepConfig) int { return cmp.Compare(a.Number, b.Number) })
		for _, sc := range steps {
			queue = append(queue, &action{kind: EntryStep, step: &StepDecision{Number: sc.Number, Options: slices.Clone(sc.Options)},
				subjStep: sc.SubjectStep, attrStep: sc.AttributeStep})
		}
	} else {
		r.setup()
		// Top-level code runs with no flow, as when the script was
		// compiled: calls to the API there throw.
		var h goja.Value
		r.v.cur = nil
		err := r.js(func() (err error) { h, err = r.v.wrapper(goja.Undefined()); return err })
		r.v.cur = r
		if err != nil {
			return Decision{}, err
		}
		fn, err := handlerOf(r.v.rt, h)
		if err != nil {
			return Decision{}, &ScriptError{Script: r.s.name, Kind: KindRuntime, Detail: err.Error()}
		}
		if err := r.js(func() error { _, err := fn(goja.Undefined(), r.ctxObj); return err }); err != nil {
			return Decision{}, err
		}
		queue = r.take()
	}
	for r.final == nil && len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if r.cursor == len(r.hist) {
			if a.kind != EntryHTTP {
				return r.decide(a), nil
			}
			r.performHTTP(a)
		}
		entry := r.hist[r.cursor] // a copy: r.hist may grow below
		en := &entry
		if err := r.match(a, en); err != nil {
			return Decision{}, err
		}
		args, err := r.apply(a, en)
		if err != nil {
			return Decision{}, err
		}
		r.cursor++
		cb := a.onFail
		if en.Success {
			cb = a.onSuccess
		}
		if cb == nil {
			if !en.Success {
				r.final = &Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied", Message: failMessage(a.kind)}}
			}
			continue
		}
		if err := r.js(func() error { _, err := cb(goja.Undefined(), args...); return err }); err != nil {
			return Decision{}, err
		}
		next := r.take()
		if en.Success {
			queue = append(next, queue...)
		} else {
			// A failure ends the sequence it happened in: only what the
			// onFail callback schedules runs.
			queue = next
		}
	}
	if r.final != nil {
		return r.finish(*r.final), nil
	}
	if r.cursor < len(r.hist) {
		return Decision{}, r.historyError("the History holds %d entries the script did not ask for (first: %s)", len(r.hist)-r.cursor, describe(&r.hist[r.cursor]))
	}
	return r.complete(), nil
}

func failMessage(k EntryKind) string {
	switch k {
	case EntryPrompt:
		return "the prompt was not answered"
	case EntryHTTP:
		return "a call the login depends on failed"
	}
	return "authentication failed"
}

func describe(en *Entry) string {
	switch en.Kind {
	case EntryStep:
		return fmt.Sprintf("step %d", en.Step)
	case EntryHTTP:
		return "http " + en.URL
	}
	return string(en.Kind)
}

func describeAction(a *action) string {
	switch a.kind {
	case EntryStep:
		return fmt.Sprintf("step %d", a.step.Number)
	case EntryHTTP:
		return "http " + a.req.URL
	}
	return string(a.kind)
}

// take returns and clears the actions the last JavaScript call asked for.
func (r *run) take() []*action {
	p := r.pending
	r.pending = nil
	return p
}

// match checks that the History entry at the cursor is the outcome of a.
func (r *run) match(a *action, en *Entry) error {
	if en.Kind != a.kind {
		return r.historyError("entry %d is %s but the script asked for %s", r.cursor, describe(en), describeAction(a))
	}
	switch a.kind {
	case EntryStep:
		if en.Step != a.step.Number {
			return r.historyError("entry %d is %s but the script asked for %s", r.cursor, describe(en), describeAction(a))
		}
		if en.Success && (en.Subject == nil || en.Subject.ID == "") {
			return r.historyError("entry %d: a successful step must name its subject", r.cursor)
		}
		if en.Authenticator != "" || en.IDP != "" {
			got := AuthOption{Authenticator: AuthenticatorID(en.Authenticator), IDP: en.IDP}
			if !slices.Contains(a.step.Options, got) {
				return r.historyError("entry %d: step %d was done with %s, which the script did not offer", r.cursor, en.Step, optionName(got))
			}
		}
	case EntryHTTP:
		if en.URL != a.req.URL {
			return r.historyError("entry %d is %s but the script asked for %s", r.cursor, describe(en), describeAction(a))
		}
	}
	return nil
}

func optionName(o AuthOption) string {
	if o.IDP != "" {
		return "identity provider " + o.IDP
	}
	return "authenticator " + o.Authenticator
}

// apply updates the flow state with a replayed entry and returns the
// arguments for its callback.
func (r *run) apply(a *action, en *Entry) ([]goja.Value, error) {
	switch a.kind {
	case EntryStep:
		if en.Success {
			r.succeeded = append(r.succeeded, doneStep{subj: en.Subject, subjStep: a.subjStep, attrStep: a.attrStep})
		}
		if r.v == nil {
			return nil, nil
		}
		rt := r.v.rt
		so := rt.NewObject()
		_ = so.Set("subject", goja.Null())
		_ = so.Set("authenticator", strOrNull(AuthenticatorID(en.Authenticator)))
		_ = so.Set("idp", strOrNull(cmp.Or(en.IDP, localIDP(en))))
		_ = so.Set("success", en.Success)
		_ = r.ctxObj.Set("currentStep", en.Step)
		if en.Success {
			u := r.newUser(*en.Subject)
			_ = so.Set("subject", u.obj)
			_ = r.ctxObj.Set("currentKnownSubject", u.obj)
			_ = r.ctxObj.Set("lastAuthenticatedUser", u.obj)
			r.lastUser = u
		} else if en.Subject != nil && en.Subject.ID != "" {
			_ = r.ctxObj.Set("lastLoginFailedUser", r.newUser(*en.Subject).obj)
		}
		_ = r.stepsObj.Set(strconv.Itoa(en.Step), so)
		return []goja.Value{r.ctxObj}, nil
	case EntryPrompt:
		rt := r.v.rt
		vals := rt.NewObject()
		keys := make([]string, 0, len(en.Values))
		for k := range en.Values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			_ = r.paramsObj.Set(k, strArray(rt, en.Values[k]))
			_ = vals.Set(k, strArray(rt, en.Values[k]))
		}
		return []goja.Value{r.ctxObj, vals}, nil
	case EntryHTTP:
		return []goja.Value{r.ctxObj, r.httpData(en)}, nil
	}
	return nil, r.historyError("unknown entry kind %q", en.Kind)
}

// localIDP is the idp a local authenticator reports, as WSO2 scripts
// expect ("LOCAL").
func localIDP(en *Entry) string {
	if en.Authenticator != "" {
		return "LOCAL"
	}
	return ""
}

func strOrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// decide turns the first action not yet in the History into the Decision.
func (r *run) decide(a *action) Decision {
	d := Decision{Kind: DecisionExecuteStep, Step: a.step}
	if a.kind == EntryPrompt {
		d = Decision{Kind: DecisionPrompt, Prompt: a.prompt}
	}
	return r.finish(d)
}

// complete ends a flow whose script has nothing left to do.
func (r *run) complete() Decision {
	if len(r.succeeded) == 0 {
		return r.finish(Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied", Message: "no step authenticated the user"}})
	}
	subj := r.succeeded[0].subj
	for _, d := range r.succeeded {
		if d.subjStep {
			subj = d.subj
		}
	}
	attr := subj
	for _, d := range r.succeeded {
		if d.attrStep {
			attr = d.subj
		}
	}
	return r.finish(Decision{Kind: DecisionComplete, Subject: subj, AttributeSubject: attr})
}

// finish adds what every decision carries.
func (r *run) finish(d Decision) Decision {
	d.Effects, d.Logs, d.Record = r.dec.Effects, r.dec.Logs, r.dec.Record
	if r.ctxObj != nil {
		if v := r.ctxObj.Get("selectedAcr"); v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
			d.SelectedACR = v.String()
		}
	}
	return d
}

// setup builds the context object and fixes time and randomness for
// replay.
func (r *run) setup() {
	rt := r.v.rt
	start := r.in.Time
	if start.IsZero() {
		start = time.Now() // the caller did not say; see Input.Time
	}
	rt.SetTimeSource(func() time.Time { return start })
	h := fnv.New64a()
	_, _ = h.Write([]byte(r.in.FlowID))
	seed := h.Sum64()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) //nolint:gosec // Math.random must be reproducible for replay; it is not for secrets
	rt.SetRandSource(rng.Float64)

	c := rt.NewObject()
	r.ctxObj = c
	r.stepsObj = rt.NewObject()
	for _, sc := range r.in.Steps {
		so := rt.NewObject()
		_ = so.Set("subject", goja.Null())
		_ = so.Set("authenticator", goja.Null())
		_ = so.Set("idp", goja.Null())
		_ = r.stepsObj.Set(strconv.Itoa(sc.Number), so)
	}
	_ = c.Set("steps", r.stepsObj)
	_ = c.Set("currentStep", 0)
	_ = c.Set("currentKnownSubject", goja.Null())
	_ = c.Set("lastAuthenticatedUser", goja.Null())
	_ = c.Set("lastLoginFailedUser", goja.Null())
	_ = c.Set("requestedAcr", strArray(rt, r.in.RequestedACRs))
	_ = c.Set("selectedAcr", goja.Null())
	_ = c.Set("serviceProviderName", r.in.ServiceProvider)
	_ = c.Set("tenantDomain", r.in.TenantDomain)

	req := rt.NewObject()
	_ = req.Set("ip", r.in.Request.IP)
	_ = req.Set("headers", rt.NewDynamicObject(&headerMap{rt: rt, m: r.in.Request.Headers}))
	r.paramsObj = rt.NewObject()
	for k, vs := range r.in.Request.Params {
		_ = r.paramsObj.Set(k, strArray(rt, vs))
	}
	_ = req.Set("params", r.paramsObj)
	_ = req.Set("cookies", strObject(rt, r.in.Request.Cookies))
	_ = c.Set("request", req)

	resp := rt.NewObject()
	_ = resp.Set("headers", rt.NewDynamicObject(&responseHeaders{r: r, m: map[string]string{}}))
	_ = c.Set("response", resp)
	_ = c.Set("endpointParams", strObject(rt, r.in.EndpointParams))
}

func strArray(rt *goja.Runtime, ss []string) *goja.Object {
	vs := make([]any, len(ss))
	for i, s := range ss {
		vs[i] = s
	}
	return rt.NewArray(vs...)
}

func strObject(rt *goja.Runtime, m map[string]string) *goja.Object {
	o := rt.NewObject()
	for k, v := range m {
		_ = o.Set(k, v)
	}
	return o
}

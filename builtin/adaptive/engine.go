package adaptive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeLimit        = 500 * time.Millisecond
	DefaultMaxHeapGrowth    = 64 << 20
	DefaultMaxCallStackSize = 256
	DefaultPoolSize         = 8
	DefaultHTTPTimeout      = 5 * time.Second
	DefaultMaxHTTPCalls     = 4
	DefaultMaxHTTPBody      = 1 << 20
	// MaxValueBytes bounds what a helper copies out of the script (prompt
	// data, HTTP bodies sent, cookie values, log lines, email placeholders),
	// measured as JSON.
	MaxValueBytes = 64 << 10
	// MaxSourceBytes bounds a script's source.
	MaxSourceBytes = 1 << 20
	// watchdogTick is how often the heap is sampled while a script runs.
	watchdogTick = 5 * time.Millisecond
)

// Options configure an Engine. The zero value of each field picks the
// default named in its comment.
type Options struct {
	// TimeLimit is the JavaScript time one Evaluate may spend, summed over
	// onLoginRequest and every callback it replays; look-ups through the
	// Host count, HTTP calls do not (they have HTTPTimeout). Default 500 ms.
	TimeLimit time.Duration
	// MaxHeapGrowth bounds how far the process heap may grow while a
	// script runs before the script is stopped (see the package doc for
	// what this does and does not bound). Default 64 MiB; negative turns
	// the check off.
	MaxHeapGrowth int64
	// MaxCallStackSize bounds the JavaScript call depth. Default 256.
	MaxCallStackSize int
	// PoolSize is how many idle runtimes each Script keeps for reuse.
	// Default 8.
	PoolSize int
	// Logger receives Log.* calls and evaluation failures. Default: a
	// logger that discards.
	Logger *slog.Logger
	// Host answers look-ups; nil makes every look-up fail.
	Host Host
	// HTTPAllow lists the host names httpGet and httpPost may reach: an
	// exact name ("risk.example.com") or a suffix pattern
	// ("*.example.com", which does not match example.com itself). Empty
	// refuses every call.
	HTTPAllow []string
	// AllowPrivateNetworks lets HTTP calls reach loopback, private,
	// link-local and other non-public addresses. Off by default (SSRF
	// guard); turn it on only for tests or for a risk service on a private
	// network.
	AllowPrivateNetworks bool
	// HTTPTimeout bounds one HTTP call. Default 5 s.
	HTTPTimeout time.Duration
	// MaxHTTPCalls bounds the HTTP calls one Evaluate performs. Default 4.
	MaxHTTPCalls int
	// CookieKey is a 32-byte key for signed and encrypted cookies
	// (setCookie with sign or encrypt, getCookieValue with
	// validateSignature or decrypt). Derive it from the master key with
	// secret.DeriveKey(master, "adaptive-cookie"). Without it those options
	// throw.
	CookieKey []byte
}

// Engine compiles and evaluates adaptive scripts. It is safe for
// concurrent use and holds no per-login state.
type Engine struct {
	opt     Options
	log     *slog.Logger
	http    httpDoer
	signKey []byte
	box     *secret.Box
	libs    libCache
	// gcRunning is set while a garbage collection the memory watchdog
	// started runs.
	gcRunning atomic.Bool
}

// New returns an Engine. It fails only on a malformed CookieKey.
func New(opt Options) (*Engine, error) {
	if opt.TimeLimit <= 0 {
		opt.TimeLimit = DefaultTimeLimit
	}
	if opt.MaxHeapGrowth == 0 {
		opt.MaxHeapGrowth = DefaultMaxHeapGrowth
	}
	if opt.MaxCallStackSize <= 0 {
		opt.MaxCallStackSize = DefaultMaxCallStackSize
	}
	if opt.PoolSize <= 0 {
		opt.PoolSize = DefaultPoolSize
	}
	if opt.HTTPTimeout <= 0 {
		opt.HTTPTimeout = DefaultHTTPTimeout
	}
	if opt.MaxHTTPCalls <= 0 {
		opt.MaxHTTPCalls = DefaultMaxHTTPCalls
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.HTTPAllow = append([]string(nil), opt.HTTPAllow...)
	boundRegexps(opt.TimeLimit)
	e := &Engine{opt: opt, log: opt.Logger}
	e.http = newGuardedHTTP(opt)
	if len(opt.CookieKey) > 0 {
		sk, err := secret.DeriveKey(opt.CookieKey, "adaptive-cookie-sign")
		if err != nil {
			return nil, fmt.Errorf("creating adaptive engine: cookie key: %w", err)
		}
		box, err := secret.NewBox(opt.CookieKey)
		if err != nil {
			return nil, fmt.Errorf("creating adaptive engine: cookie key: %w", err)
		}
		e.signKey, e.box = sk, box
	}
	return e, nil
}

var regexpOnce sync.Once

// boundRegexps bounds the matching time of regular expressions that goja
// runs with a backtracking engine (those with lookaround or
// backreferences): such a match is Go code, which Runtime.Interrupt cannot
// stop, so a catastrophic pattern would otherwise run past the time limit
// for as long as it likes. The backtracking engine has one process-wide
// setting, read when a pattern is compiled; the first Engine sets it to
// its time limit. A match that times out finds nothing, and the script is
// interrupted right after by its own time limit.
func boundRegexps(limit time.Duration) {
	regexpOnce.Do(func() { regexp2.DefaultMatchTimeout = limit })
}

// Script is a compiled script. It is safe for concurrent use; it keeps a
// pool of runtimes that have the script loaded.
type Script struct {
	name string
	prog *goja.Program
	pool chan *vm
}

// Name returns the name the script was compiled under.
func (s *Script) Name() string { return s.name }

// wrapperPrefix opens the function every script is compiled inside, so
// that each evaluation gets fresh top-level bindings (see the package doc).
// It shares the first line with the script: columns on line 1 are shifted
// back by its length when errors are reported.
const wrapperPrefix = "(function(){"

const wrapperSuffix = "\n;return {onLoginRequest: typeof onLoginRequest === 'function' ? onLoginRequest : undefined," +
	" onInitialRequest: typeof onInitialRequest === 'function' ? onInitialRequest : undefined};})"

// Compile checks and compiles a script once. The error is a fault
// (InvalidRequest) wrapping a *ScriptError with the line and column.
// Source maps are never loaded: a "//# sourceMappingURL" comment could
// otherwise make the parser read a file.
func (e *Engine) Compile(name, source string) (*Script, error) {
	if len(source) > MaxSourceBytes {
		return nil, compileFault(&ScriptError{Script: name, Kind: KindSyntax, Detail: fmt.Sprintf("the script is larger than %d bytes", MaxSourceBytes)})
	}
	// Parse the source alone first, for positions that match the file and
	// so that nothing can close the wrapper function early.
	if _, err := parser.ParseFile(nil, name, source, 0, parser.WithDisableSourceMaps); err != nil {
		return nil, compileFault(syntaxError(name, err))
	}
	ast, err := parser.ParseFile(nil, name, wrapperPrefix+source+wrapperSuffix, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, compileFault(syntaxError(name, err))
	}
	prog, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, compileFault(&ScriptError{Script: name, Kind: KindSyntax, Detail: err.Error(), cause: err})
	}
	s := &Script{name: name, prog: prog, pool: make(chan *vm, e.opt.PoolSize)}
	// Load it once now: top-level code that throws or loops, and a script
	// without onLoginRequest, are refused here rather than at a login.
	v, err := e.newVM(s)
	if err != nil {
		var se *ScriptError
		if errors.As(err, &se) {
			return nil, compileFault(se)
		}
		return nil, fmt.Errorf("compiling adaptive script %q: %w", name, err)
	}
	s.put(v)
	return s, nil
}

func compileFault(se *ScriptError) error {
	return fault.InvalidRequest.WithMessage(se.Error()).WithCause(se)
}

func syntaxError(name string, err error) *ScriptError {
	se := &ScriptError{Script: name, Kind: KindSyntax, Detail: err.Error(), cause: err}
	var list parser.ErrorList
	var one *parser.Error
	switch {
	case errors.As(err, &list) && len(list) > 0:
		se.Detail, se.Line, se.Column = list[0].Message, list[0].Position.Line, list[0].Position.Column
	case errors.As(err, &one):
		se.Detail, se.Line, se.Column = one.Message, one.Position.Line, one.Position.Column
	}
	if se.Line == 1 && se.Column > len(wrapperPrefix) {
		se.Column -= len(wrapperPrefix)
	}
	return se
}

func (s *Script) get() *vm {
	select {
	case v := <-s.pool:
		return v
	default:
		return nil
	}
}

func (s *Script) put(v *vm) {
	select {
	case s.pool <- v:
	default:
	}
}

// Evaluate runs the script against in, replaying in.History, and returns
// what happens next. A nil script runs the default flow: every configured
// step in order, each failure failing the login.
//
// A script error (a throw, the time limit, the memory bound, a History
// that does not match the script, a failed look-up) fails the login
// closed: the error is a fault whose Message is UserMessage and whose
// cause is a *ScriptError with the detail for the administrator. The
// engine logs it too.
func (e *Engine) Evaluate(ctx context.Context, s *Script, in Input) (Decision, error) {
	return e.evaluate(ctx, s, &in, e.http, e.opt.Host)
}

func (e *Engine) evaluate(ctx context.Context, s *Script, in *Input, do httpDoer, host Host) (dec Decision, err error) {
	r := newRun(ctx, e, s, in, do, host)
	var v *vm
	defer func() {
		// A panic here is a bug in the engine, not in the script: fail
		// this login closed and keep serving (STYLE 20). The runtime is
		// not reused.
		if x := recover(); x != nil {
			dec, err = Decision{}, e.failed(ctx, r, fmt.Errorf("internal error: %v", x))
		}
	}()
	if s != nil {
		v = s.get()
		if v == nil {
			v, err = e.newVM(s)
			if err != nil {
				return Decision{}, e.failed(ctx, r, err)
			}
		}
		v.cur = r
		r.v = v
	}
	dec, err = r.drive()
	if v != nil {
		v.cur = nil
		if err == nil && v.reset() {
			s.put(v)
		}
	}
	if err != nil {
		return Decision{}, e.failed(ctx, r, err)
	}
	return dec, nil
}

// failed logs a failed evaluation and turns err into the fault Evaluate
// returns.
func (e *Engine) failed(ctx context.Context, r *run, err error) error {
	var se *ScriptError
	if !errors.As(err, &se) {
		se = &ScriptError{Script: r.scriptName(), Kind: KindRuntime, Detail: err.Error(), cause: err}
	}
	e.log.ErrorContext(ctx, "adaptive script failed; login failed closed",
		slog.String("script", se.Script), slog.String("kind", string(se.Kind)),
		slog.String("tenant", r.in.TenantDomain), slog.String("flow", r.in.FlowID),
		slog.String("error", se.Error()))
	return failClosed(se)
}

// vm is one pooled runtime with the script loaded.
type vm struct {
	rt      *goja.Runtime
	script  *Script
	wrapper goja.Callable
	// stringify is the bounded JSON.stringify (see hardenJS).
	stringify goja.Callable
	baseline  map[string]bool
	// cur is the evaluation in progress; the helpers read it. nil outside
	// an evaluation, which makes them throw.
	cur *run
}

// Sizes the built-ins may work on in a script. goja's built-ins are Go
// code: Runtime.Interrupt cannot stop them and the heap watchdog only sees
// their allocation once it is made, so one call such as 'x'.repeat(3e9)
// or new Array(3e8).fill(0) would make the process run out of memory.
// hardenJS wraps the built-ins that can amplify a small script into a
// large allocation and refuses work past these sizes with a RangeError.
const (
	// MaxArrayLength bounds the length of an array a built-in iterates
	// over, and the length of an argument list.
	MaxArrayLength = 1 << 20
	// MaxStringLength bounds the length (in UTF-16 units) of a string a
	// built-in builds: repeat, padStart/padEnd, join, replace, concat,
	// JSON.stringify.
	MaxStringLength = 1 << 24
)

// hardenJS bounds the amplifying built-ins (see MaxArrayLength), removes
// eval and the binary buffer types (typed arrays allocate their whole
// length at once; login scripts have no use for them), and freezes the
// built-in prototypes and the API objects, so that one evaluation cannot
// leave code behind for the next one that uses the same runtime.
const hardenJS = `(function (g, MAXLEN, MAXSTR) {
  'use strict';
  var call = Function.prototype.call, apply = Function.prototype.apply;
  function run(f, self, args) { return call.call(apply, f, self, args); }
  function len(o) { if (o === null || o === undefined) { return 0; } var l = o.length; return typeof l === 'number' ? l : 0; }
  function tooLarge(what) {
    return new RangeError(what + ' is too large for a login script (limits: ' + MAXLEN + ' array elements, ' + MAXSTR + ' characters)');
  }
  delete g.eval;
  ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
   'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'].forEach(function (n) { delete g[n]; });

  Function.prototype.apply = function (self, args) {
    if (len(args) > MAXLEN) { throw tooLarge('an argument list'); }
    return call.call(apply, this, self, args);
  };
  if (g.Reflect) {
    var rapply = Reflect.apply, rconstruct = Reflect.construct;
    Reflect.apply = function (f, self, args) { if (len(args) > MAXLEN) { throw tooLarge('an argument list'); } return rapply(f, self, args); };
    Reflect.construct = function (f, args) { if (len(args) > MAXLEN) { throw tooLarge('an argument list'); } return run(rconstruct, Reflect, arguments); };
  }

  var AP = Array.prototype;
  ['fill', 'map', 'filter', 'forEach', 'reduce', 'reduceRight', 'some', 'every', 'indexOf', 'lastIndexOf', 'includes', 'find',
   'findIndex', 'findLast', 'findLastIndex', 'reverse', 'sort', 'slice', 'splice', 'flat', 'flatMap', 'copyWithin', 'keys',
   'values', 'entries', 'toReversed', 'toSorted', 'toSpliced', 'with', 'shift', 'unshift', 'toLocaleString'].forEach(function (name) {
    var f = AP[name];
    if (typeof f !== 'function') { return; }
    AP[name] = function () { if (len(this) > MAXLEN) { throw tooLarge('an array'); } return run(f, this, arguments); };
  });
  AP[Symbol.iterator] = AP.values;
  var concat = AP.concat;
  AP.concat = function () {
    var n = len(this);
    for (var i = 0; i < arguments.length; i++) { n += len(arguments[i]); }
    if (n > MAXLEN) { throw tooLarge('an array'); }
    return run(concat, this, arguments);
  };
  var join = AP.join;
  AP.join = function (sep) {
    var n = len(this);
    if (n > MAXLEN) { throw tooLarge('an array'); }
    var s = sep === undefined ? 1 : String(sep).length, total = 0;
    for (var i = 0; i < n; i++) {
      var e = this[i];
      if (e !== null && e !== undefined) { total += typeof e === 'string' ? e.length : String(e).length; }
      total += s;
      if (total > MAXSTR) { throw tooLarge('a joined string'); }
    }
    return run(join, this, arguments);
  };
  var from = Array.from;
  Array.from = function (items) { if (len(items) > MAXLEN) { throw tooLarge('an array'); } return run(from, this, arguments); };

  var SP = String.prototype;
  function wrapString(name, check) {
    var f = SP[name];
    if (typeof f !== 'function') { return; }
    SP[name] = function () { check(String(this), arguments); return run(f, this, arguments); };
  }
  wrapString('repeat', function (s, a) { if (s.length * Number(a[0]) > MAXSTR) { throw tooLarge('a string'); } });
  wrapString('padStart', function (s, a) { if (Number(a[0]) > MAXSTR) { throw tooLarge('a string'); } });
  wrapString('padEnd', function (s, a) { if (Number(a[0]) > MAXSTR) { throw tooLarge('a string'); } });
  wrapString('concat', function (s, a) {
    var n = s.length;
    for (var i = 0; i < a.length; i++) { n += String(a[i]).length; }
    if (n > MAXSTR) { throw tooLarge('a string'); }
  });
  function splitLike(s, a) { if (s.length > MAXLEN && !(a[1] <= MAXLEN)) { throw tooLarge('a string to split or match'); } }
  wrapString('split', splitLike);
  wrapString('match', function (s) { if (s.length > MAXLEN) { throw tooLarge('a string to match'); } });
  wrapString('matchAll', function (s) { if (s.length > MAXLEN) { throw tooLarge('a string to match'); } });
  function replaceLike(s, a) {
    if (typeof a[1] === 'string' && a[1].length > 1 && a[1].length * (s.length + 1) > MAXSTR) { throw tooLarge('a replaced string'); }
  }
  wrapString('replace', replaceLike);
  wrapString('replaceAll', replaceLike);

  var stringify = JSON.stringify;
  function jsonSize(v, depth, acc) {
    if (depth > 64) { throw new RangeError('a structure is nested more than 64 levels deep (or is cyclic)'); }
    if (typeof v === 'string') { return acc + v.length + 2; }
    if (v === null || typeof v !== 'object') { return acc + 24; }
    var keys = Object.keys(v);
    if (keys.length > MAXLEN) { throw tooLarge('an object'); }
    for (var i = 0; i < keys.length; i++) {
      acc = jsonSize(v[keys[i]], depth + 1, acc + keys[i].length + 4);
      if (acc > MAXSTR) { throw tooLarge('a JSON text'); }
    }
    return acc;
  }
  JSON.stringify = function (v) { jsonSize(v, 0, 0); return run(stringify, JSON, arguments); };

  ['Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'Error', 'TypeError', 'RangeError', 'SyntaxError',
   'ReferenceError', 'EvalError', 'URIError', 'Date', 'RegExp', 'Map', 'Set', 'WeakMap', 'WeakSet', 'Promise'].forEach(function (n) {
    var c = g[n];
    if (c) { Object.freeze(c.prototype); Object.freeze(c); }
  });
  Object.freeze(Math); Object.freeze(JSON); Object.freeze(g.Log);
  if (g.Reflect) { Object.freeze(g.Reflect); }
})`

var hardenProg = goja.MustCompile("harden", hardenJS, true)

func (e *Engine) newVM(s *Script) (*vm, error) {
	rt := goja.New()
	rt.SetParserOptions(parser.WithDisableSourceMaps)
	rt.SetMaxCallStackSize(e.opt.MaxCallStackSize)
	v := &vm{rt: rt, script: s}
	if err := v.install(e); err != nil {
		return nil, fmt.Errorf("installing the script API: %w", err)
	}
	harden, err := rt.RunProgram(hardenProg)
	if err != nil {
		return nil, fmt.Errorf("hardening the runtime: %w", err)
	}
	hf, ok := goja.AssertFunction(harden)
	if !ok {
		return nil, errors.New("hardening the runtime: not a function")
	}
	if _, err := hf(goja.Undefined(), rt.GlobalObject(), rt.ToValue(MaxArrayLength), rt.ToValue(MaxStringLength)); err != nil {
		return nil, fmt.Errorf("hardening the runtime: %w", err)
	}
	json, ok := rt.GlobalObject().Get("JSON").(*goja.Object)
	if !ok {
		return nil, errors.New("hardening the runtime: no JSON")
	}
	if v.stringify, ok = goja.AssertFunction(json.Get("stringify")); !ok {
		return nil, errors.New("hardening the runtime: no JSON.stringify")
	}
	v.baseline = make(map[string]bool)
	for _, k := range rt.GlobalObject().Keys() {
		v.baseline[k] = true
	}
	for _, k := range rt.GlobalObject().GetOwnPropertyNames() {
		v.baseline[k] = true
	}
	var w goja.Value
	err = e.guard(context.Background(), v, nil, e.opt.TimeLimit, func() error {
		var err error
		w, err = rt.RunProgram(s.prog)
		return err
	})
	if err != nil {
		return nil, err
	}
	fn, ok := goja.AssertFunction(w)
	if !ok {
		return nil, &ScriptError{Script: s.name, Kind: KindSyntax, Detail: "the script did not load"}
	}
	v.wrapper = fn
	// A dry load: the script must define onLoginRequest (or
	// onInitialRequest). Top-level code runs here with no flow, so calls
	// to the API at the top level throw.
	var h goja.Value
	err = e.guard(context.Background(), v, nil, e.opt.TimeLimit, func() error {
		var err error
		h, err = fn(goja.Undefined())
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := handlerOf(rt, h); err != nil {
		return nil, &ScriptError{Script: s.name, Kind: KindSyntax, Detail: err.Error()}
	}
	if !v.reset() {
		return nil, &ScriptError{Script: s.name, Kind: KindRuntime, Detail: "the script's top-level code changed the runtime"}
	}
	return v, nil
}

// handlerOf picks onLoginRequest, else onInitialRequest, from what the
// wrapper returned.
func handlerOf(rt *goja.Runtime, h goja.Value) (goja.Callable, error) {
	o, ok := h.(*goja.Object)
	if ok {
		for _, name := range []string{"onLoginRequest", "onInitialRequest"} {
			if fn, ok := goja.AssertFunction(o.Get(name)); ok {
				return fn, nil
			}
		}
	}
	return nil, errors.New("the script defines neither onLoginRequest nor onInitialRequest")
}

// reset removes the globals an evaluation created (implicit globals of
// sloppy-mode code) and clears a pending interrupt. It reports whether the
// runtime may be reused.
func (v *vm) reset() bool {
	g := v.rt.GlobalObject()
	for _, k := range g.GetOwnPropertyNames() {
		if !v.baseline[k] {
			if err := g.Delete(k); err != nil {
				return false
			}
			if g.Get(k) != nil {
				return false
			}
		}
	}
	v.rt.ClearInterrupt()
	return true
}

// guard runs fn (which enters JavaScript) under the time limit, the
// memory bound and ctx, and turns what JavaScript returns into a
// *ScriptError. r may be nil (loading).
func (e *Engine) guard(ctx context.Context, v *vm, r *run, budget time.Duration, fn func() error) error {
	name := v.script.name
	if budget <= 0 {
		return &ScriptError{Script: name, Kind: KindTimeout, Detail: fmt.Sprintf("the script ran longer than %s", e.opt.TimeLimit), cause: ErrTimeout}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go e.watch(ctx, v.rt, budget, done, exited)
	err := fn()
	close(done)
	<-exited
	// The watchdog may have fired after JavaScript returned; never let
	// the interrupt leak into the next call.
	v.rt.ClearInterrupt()
	if r != nil && r.hostErr != nil {
		return r.hostErr
	}
	if err == nil {
		return nil
	}
	return e.classify(name, err)
}

func (e *Engine) classify(name string, err error) *ScriptError {
	se := &ScriptError{Script: name, Kind: KindRuntime, Detail: err.Error(), cause: err}
	var intr *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &intr):
		switch {
		case errors.Is(err, ErrTimeout):
			se.Kind, se.Detail = KindTimeout, fmt.Sprintf("the script ran longer than %s", e.opt.TimeLimit)
		case errors.Is(err, ErrMemory):
			se.Kind, se.Detail = KindMemory, fmt.Sprintf("the heap grew by more than %d bytes while the script ran", e.opt.MaxHeapGrowth)
		default:
			se.Kind, se.Detail = KindTimeout, "the login was cancelled: "+err.Error()
		}
	case errors.As(err, &so):
		se.Kind, se.Detail = KindMemory, fmt.Sprintf("the call stack grew deeper than %d calls", e.opt.MaxCallStackSize)
	case errors.As(err, &ex):
		se.Detail = ex.Value().String()
		// The innermost frame with a position in the script: frames of
		// the API's Go functions have none.
		for _, f := range ex.Stack() {
			if p := f.Position(); p.Line > 0 && f.SrcName() == name {
				se.Line, se.Column = p.Line, p.Column
				if se.Line == 1 && se.Column > len(wrapperPrefix) {
					se.Column -= len(wrapperPrefix)
				}
				break
			}
		}
	}
	return se
}

// watch interrupts rt when the budget is spent, ctx is done, or the heap
// grows past the bound (see overHeap); it returns when done is closed.
func (e *Engine) watch(ctx context.Context, rt *goja.Runtime, budget time.Duration, done <-chan struct{}, exited chan<- struct{}) {
	defer close(exited)
	timer := time.NewTimer(budget)
	defer timer.Stop()
	var tick <-chan time.Time
	var hw heapWatch
	if e.opt.MaxHeapGrowth > 0 {
		t := time.NewTicker(watchdogTick)
		defer t.Stop()
		tick = t.C
		hw.base, _ = heapSample()
	}
	for {
		select {
		case <-done:
			return
		case <-timer.C:
			rt.Interrupt(ErrTimeout)
			return
		case <-ctx.Done():
			rt.Interrupt(ctx.Err())
			return
		case <-tick:
			if e.overHeap(&hw) {
				rt.Interrupt(ErrMemory)
				return
			}
		}
	}
}

// heapWatch is one watchdog's view of the heap.
type heapWatch struct {
	base uint64
	// cycles is the GC cycle count when the heap was first seen over the
	// bound; 0 when it was not.
	cycles uint64
}

// overHeap reports whether the script must stop for memory. The heap
// figure counts garbage not yet collected, which other goroutines make
// too, so one sighting over base+MaxHeapGrowth only starts a garbage
// collection (at most one at a time engine-wide, in the background); the
// script is stopped when the heap is still over the bound after a
// collection has finished, or at once when it is over twice the
// bound.
func (e *Engine) overHeap(hw *heapWatch) bool {
	heap, cycles := heapSample()
	limit := uint64(e.opt.MaxHeapGrowth) //nolint:gosec // MaxHeapGrowth is positive here
	switch {
	case heap > hw.base+2*limit:
		return true
	case heap <= hw.base+limit:
		hw.cycles = 0
		return false
	case hw.cycles == 0:
		hw.cycles = cycles + 1
		if e.gcRunning.CompareAndSwap(false, true) {
			go func() {
				defer e.gcRunning.Store(false)
				runtime.GC()
			}()
		}
		return false
	}
	return cycles > hw.cycles
}

// heapSample reads the bytes held by heap objects (live, or dead and not
// yet swept) and the number of finished GC cycles. runtime/metrics reads
// them without stopping the world. Both are 0 if this Go release does not
// offer them, which turns the memory bound off rather than crash.
func heapSample() (heap, cycles uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		heap = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		cycles = s[1].Value.Uint64()
	}
	return heap, cycles
}

func (r *run) scriptName() string {
	if r.s == nil {
		return "default-flow"
	}
	return r.s.name
}

// truncate cuts s to n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

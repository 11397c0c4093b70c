package adaptive

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/fault"
)

func scriptErr(t *testing.T, err error) *ScriptError {
	t.Helper()
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a ScriptError", err)
	}
	return se
}

// TestEndlessLoopStoppedWhileOthersServe runs scripts that loop forever
// next to well-behaved ones: each loop fails at its limit with a timeout,
// every other evaluation completes, and the looping script's pool keeps
// serving afterwards.
func TestEndlessLoopStoppedWhileOthersServe(t *testing.T) {
	// The limit is wall-clock time: it leaves the well-behaved evaluations
	// room to finish on a loaded machine while the loops spin.
	e := newEngine(t, func(o *Options) { o.TimeLimit = time.Second })
	loop := mustCompile(t, e, `function onLoginRequest(context) {
		executeStep(1, {onSuccess: function (context) {
			if (context.request.ip === 'loop') { while (true) {} }
		}});
	}`)
	good := mustCompile(t, e, "function onLoginRequest(context) { executeStep(1); executeStep(2); }")
	done := Input{Steps: twoSteps(), History: []Entry{step(1, true, "u1")}}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := done
			in.Request.IP = "loop"
			_, err := e.Evaluate(context.Background(), loop, in)
			se := scriptErr(t, err)
			if se.Kind != KindTimeout || !errors.Is(err, ErrTimeout) || !errors.Is(err, fault.Timeout) {
				errs <- err
			}
		}()
	}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.Evaluate(context.Background(), good, done)
			if err != nil || d.Kind != DecisionExecuteStep || d.Step.Number != 2 {
				errs <- errors.Join(err, errors.New("good script: "+js(d)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The same script, on a request that does not loop, still works.
	d := eval(t, e, loop, done)
	if d.Kind != DecisionComplete {
		t.Errorf("after the loops: %s", js(d))
	}
}

// TestThrowFailsOnlyThatEvaluation runs a script that throws for one user
// only, concurrently with the same script for others.
func TestThrowFailsOnlyThatEvaluation(t *testing.T) {
	e := newEngine(t, nil)
	s := mustCompile(t, e, `function onLoginRequest(context) {
		executeStep(1, {onSuccess: function (context) {
			if (context.currentKnownSubject.username === 'bob') { throw new Error('bob is not welcome'); }
		}});
	}`)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "u1"
			if i%4 == 0 {
				user = "u2"
			}
			d, err := e.Evaluate(context.Background(), s, Input{Steps: twoSteps(), History: []Entry{step(1, true, user)}})
			if user == "u2" {
				se := scriptErr(t, err)
				if se.Kind != KindRuntime || se.Line != 3 || fault.From(err).Message != UserMessage {
					t.Errorf("bob: %v (line %d)", se, se.Line)
				}
				return
			}
			if err != nil || d.Kind != DecisionComplete {
				t.Errorf("alice: %v %s", err, js(d))
			}
		}()
	}
	wg.Wait()
}

// TestMemoryBlowUpStopped grows the heap without end under a time limit
// long enough that only the memory bound can stop it.
func TestMemoryBlowUpStopped(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind ErrorKind
	}{
		{name: "array of strings", body: "var a = []; for (;;) { a.push('x'.repeat(1 << 16) + a.length); }", kind: KindMemory},
		{name: "string doubling", body: "var s = 'xxxxxxxx'; for (;;) { s = s + s; }", kind: KindMemory},
		{name: "deep recursion", body: "function f(n) { return f(n + 1) + 1; } f(0);", kind: KindMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, func(o *Options) { o.TimeLimit = time.Minute; o.MaxHeapGrowth = 32 << 20 })
			_, err := runBody(t, e, tt.body, Request{})
			se := scriptErr(t, err)
			if se.Kind != tt.kind {
				t.Fatalf("kind = %s, want %s (%v)", se.Kind, tt.kind, se)
			}
		})
	}
}

// TestAmplifiersRefused checks that the built-ins which would turn a
// small script into one huge allocation (out of reach of Interrupt and of
// the heap watchdog) refuse sizes past the limits. The sizes are just past
// them, so a regression shows as a failed test, not as a crash.
func TestAmplifiersRefused(t *testing.T) {
	// The refusals, not the time limit, must stop these scripts: a loaded
	// machine under the race detector can take longer than the default
	// limit just to build the megabyte strings they start from.
	e := newEngine(t, func(o *Options) { o.TimeLimit = time.Minute })
	over := strconv.Itoa(MaxArrayLength + 1)
	tests := map[string]string{
		"repeat":                 "'xx'.repeat(" + strconv.Itoa(MaxStringLength/2+1) + ");",
		"padStart":               "'x'.padStart(" + strconv.Itoa(MaxStringLength+1) + ");",
		"padEnd":                 "'x'.padEnd(" + strconv.Itoa(MaxStringLength+1) + ");",
		"fill":                   "new Array(" + over + ").fill(0);",
		"join of a sparse array": "new Array(" + over + ").join('');",
		"join of references":     "var s = 'x'.repeat(1 << 20); new Array(17).fill(s).join('');",
		"implicit toString":      "var s = 'x'.repeat(1 << 20); new Array(17).fill(s) + '';",
		"Array.from":             "Array.from({length: " + over + "});",
		"spread":                 "var a = [...new Array(" + over + ")];",
		"for of":                 "for (var x of new Array(" + over + ")) {}",
		"apply":                  "Math.max.apply(Math, {length: " + over + "});",
		"concat":                 "[].concat(new Array(" + over + "));",
		"JSON.stringify":         "var s = 'x'.repeat(1 << 20); JSON.stringify(new Array(17).fill(s));",
		"prompt data":            "var s = 'x'.repeat(1 << 20); prompt('t', {a: new Array(17).fill(s)}, {});",
		"replace":                "'x'.repeat(1 << 16).replace(/x/g, 'y'.repeat(1 << 9));",
		"split":                  "'x'.repeat(" + over + ").split('');",
		"typed arrays removed":   "new Uint8Array(8);",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := runBody(t, e, body, Request{})
			se := scriptErr(t, err)
			refused := strings.Contains(se.Detail, "too large for a login script") || strings.Contains(se.Detail, "Uint8Array is not defined")
			if se.Kind != KindRuntime || !refused {
				t.Fatalf("err = %v", se)
			}
		})
	}
	// Within the limits the built-ins work as usual.
	d, err := runBody(t, e, "Log.info([1, 2, 3].map(function (x) { return x * 2; }).join('-') + ' ' + 'ab'.repeat(2) + ' ' + JSON.stringify({a: [1]}) + ' ' + Math.max.apply(Math, [1, 5]) + ' ' + [...[1, 2]].length);", Request{})
	if err != nil || logs(d) != `2-4-6 abab {"a":[1]} 5 2` {
		t.Fatalf("%v %q", err, logs(d))
	}
}

// TestCatastrophicRegexpStopped runs a pattern that needs the backtracking
// engine (a lookahead) on an input that makes it backtrack exponentially:
// the match itself is Go code that Interrupt cannot reach, so only the
// match timeout stops it.
func TestCatastrophicRegexpStopped(t *testing.T) {
	e := newEngine(t, nil)
	_, err := runBody(t, e, "Log.info(/^(?=a)(a+)+$/.test(new Array(40).join('a') + '!'));", Request{})
	if se := scriptErr(t, err); se.Kind != KindTimeout {
		t.Fatalf("kind = %s", se.Kind)
	}
}

func TestContextCancelStopsScript(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.TimeLimit = time.Minute })
	s := mustCompile(t, e, "function onLoginRequest(c) { while (true) {} }")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := e.Evaluate(ctx, s, Input{Steps: twoSteps()})
	if se := scriptErr(t, err); se.Kind != KindTimeout || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestReplayDeterminism evaluates the same History many times, on pooled
// and fresh runtimes, and expects the same Decision each time, even from
// a script that reads the clock and Math.random.
func TestReplayDeterminism(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.PoolSize = 2 })
	src := `function onLoginRequest(context) {
		var r = Math.random();
		executeStep(1, {onSuccess: function (context) {
			Log.info(r + ' ' + Math.random() + ' ' + new Date().toISOString());
			if (Math.random() < 2) { executeStep(2, {authenticationOptions: [{authenticator: 'totp'}]}, {}); }
		}});
	}`
	s := mustCompile(t, e, src)
	in := Input{FlowID: "flow-1", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Steps: twoSteps(), History: []Entry{step(1, true, "u1")}}
	first := js(eval(t, e, s, in))
	for range 10 {
		if got := js(eval(t, e, s, in)); got != first {
			t.Fatalf("decision changed:\n%s\n%s", first, got)
		}
	}
	other := mustCompile(t, e, src) // a fresh pool
	if got := js(eval(t, e, other, in)); got != first {
		t.Fatalf("decision differs on a fresh runtime:\n%s\n%s", first, got)
	}
	in.FlowID = "flow-2"
	if got := js(eval(t, e, s, in)); got == first {
		t.Errorf("another flow drew the same random numbers: %s", got)
	}
}

// TestNoStateBetweenEvaluations checks that what one login leaves in a
// pooled runtime is gone for the next.
func TestNoStateBetweenEvaluations(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.PoolSize = 1 })
	s := mustCompile(t, e, `var counter = 0;
	function onLoginRequest(context) {
		counter++;
		Log.info(counter + ' ' + typeof leaked);
		leaked = context.request.ip;
		executeStep(1);
	}`)
	for i := range 3 {
		d := eval(t, e, s, Input{Steps: twoSteps(), Request: Request{IP: "10.0.0.1"}})
		if got := logs(d); got != "1 undefined" {
			t.Fatalf("evaluation %d: logs %q", i, got)
		}
	}
}

func TestHostFailureFailsClosed(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.Host = nil })
	_, err := runBody(t, e, "try { hasRole(context.currentKnownSubject, 'admin'); } catch (e) {} ", Request{})
	// Without a Host the user has no roles: no look-up, no error.
	if err != nil {
		t.Fatalf("no host, role check: %v", err)
	}
	_, err = runBody(t, e, "try { getUserSessions(context.currentKnownSubject); } catch (e) {}", Request{})
	if se := scriptErr(t, err); se.Kind != KindHost {
		t.Fatalf("kind = %s", se.Kind)
	}
}

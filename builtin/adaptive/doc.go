// Package adaptive runs adaptive authentication scripts: JavaScript that
// steers a login flow, in the shape of WSO2 Identity Server's conditional
// authentication scripts, so that those scripts run in Latch unchanged.
// docs/adaptive-scripts.md is the script writers' reference; this comment
// is for the code that calls the engine.
//
// # Use
//
//	eng, _ := adaptive.New(adaptive.Options{Host: host, HTTPAllow: []string{"risk.example.com"}})
//	script, err := eng.Compile(app.Name, app.Script) // once, when the flow is saved or loaded
//	d, err := eng.Evaluate(ctx, script, in)          // on every request of the login
//
// # Execution model: deterministic replay
//
// A login spans several HTTP requests and may move between cluster nodes,
// so the engine keeps nothing between requests. The caller keeps the
// flow's History (what happened so far) and passes it in Input each time.
// Evaluate runs onLoginRequest (or onInitialRequest) from the start; each
// executeStep, prompt or httpGet/httpPost the script reaches is matched
// against the next History entry, and its onSuccess or onFail callback
// runs at once with the context updated. The first request not yet in the
// History becomes the Decision:
//
//   - executeStep → DecisionExecuteStep (run the step, append its outcome,
//     evaluate again);
//   - prompt → DecisionPrompt (show the form, append the answer);
//   - httpGet/httpPost → performed by the engine itself, synchronously,
//     under Options.HTTPTimeout; the result is appended to the working
//     History and returned in Decision.Record, which the caller appends
//     before the outcome of the Decision, so later evaluations replay the
//     answer instead of calling again;
//   - fail() → DecisionFail, sendError() → DecisionSendError, at once;
//   - nothing left → DecisionComplete with the subject, or DecisionFail
//     when no step succeeded.
//
// Ordering: steps scheduled at one level run in the order they were
// scheduled; the steps a callback schedules run right after that callback,
// before the ones scheduled earlier at an outer level. A failed step
// (prompt, HTTP call) runs its onFail callback and only what that callback
// schedules: the rest of the sequence is dropped. A failure with no onFail
// fails the login. A nil *Script runs the default flow: every configured
// step in order, any failure failing the login.
//
// The subject of a completed login is the user of the last successful step
// marked as subject step (StepConfig.SubjectStep or stepOptions
// markAsSubjectIdentifierStep), else of the first successful step.
//
// Replay is deterministic when the caller passes the same Input on every
// request of one login except for a longer History: Input.Request is the
// request that started the login (keep it with the flow), Date answers
// Input.Time and Math.random is seeded from Input.FlowID. If the History no longer matches what the
// script does (the script or the roles it reads changed mid-login), the
// evaluation fails with KindHistory.
//
// # Effects
//
// Side effects (cookies, response headers, role changes, local claim
// writes, session termination, emails) are never applied by the engine.
// They come back in Decision.Effects, and only from code that runs after
// the Input's last History entry was replayed: code replayed from earlier
// requests already returned its effects then. Apply each once. Log lines
// follow the same rule. Look-ups (users, roles, groups, sessions,
// secrets, libraries) go through the Host.
//
// # Sandbox and limits
//
// Scripts cannot load modules (require throws), reach files or the
// network other than through httpGet/httpPost (host allow-list; non-public
// addresses refused at connect time, after DNS, unless
// AllowPrivateNetworks; redirects re-checked; 1 MiB bodies; MaxHTTPCalls
// per evaluation). eval is removed; source maps are never loaded. Built-in
// prototypes are frozen and globals a script creates are deleted after
// each evaluation, so one login leaves nothing for the next in a pooled
// runtime; each evaluation also re-runs the script's top level inside a
// function, so its top-level variables start fresh.
//
// What is bounded:
//   - time: Options.TimeLimit (500 ms) of JavaScript per Evaluate, summed
//     over all callbacks; enforced with Runtime.Interrupt, so a loop stops
//     at its limit. Host look-ups count; HTTP calls have their own timeout.
//     Cancelling ctx interrupts the script too.
//   - call depth: Options.MaxCallStackSize (256).
//   - sizes of what helpers copy out: prompt data, authenticatorParams,
//     HTTP bodies sent, claim values, placeholders (MaxValueBytes), log
//     lines (4 KiB, 100 lines), effects (100), actions per callback (100).
//   - built-ins: goja's built-ins are Go code that neither Interrupt nor
//     the watchdog can stop mid-call, so the ones that turn a small script
//     into a huge allocation are wrapped (hardenJS) and throw a RangeError
//     past MaxArrayLength elements (Array methods, spread, for-of,
//     Array.from, apply, concat) or MaxStringLength characters (repeat,
//     padStart/padEnd, join and toString, replace, concat,
//     JSON.stringify, split and match of long strings). Typed arrays and
//     ArrayBuffer are removed. Regular expressions that need backtracking
//     are bounded per match by regexp2.DefaultMatchTimeout, set once to
//     the first Engine's time limit.
//   - heap: goja has no per-runtime heap limit. A watchdog samples the
//     process heap every 5 ms while a script runs; when it has grown more
//     than Options.MaxHeapGrowth (64 MiB) since the script started and is
//     still over after a garbage collection, or over twice the bound at
//     any time, the script is interrupted.
//
// What is not bounded exactly: the heap figure is process-wide, so a
// script running at the same moment as a blow-up may be stopped too (it
// fails closed); the allocation of one instruction (a string concatenation
// doubles a string) completes before the interrupt is seen, so the peak
// can exceed twice the bound by that allocation; a script that grows the
// heap by less than the bound is stopped only by its time limit; built-ins
// not listed above (sorting, Object.keys, regular expressions without
// backtracking) work on data the script already holds and run to the end
// of the call before the time limit is seen.
//
// # Errors
//
// Every script failure fails the login closed. Evaluate returns a fault
// (kernel/fault: Internal, or Timeout for the time limit) whose Message is
// UserMessage, safe for the user, and whose cause is a *ScriptError with
// the detail, kind and position for the administrator; the engine also
// logs it. A Host error stops the script and fails the login even if the
// script catches the exception.
package adaptive

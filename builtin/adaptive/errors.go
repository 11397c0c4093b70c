package adaptive

import (
	"errors"
	"fmt"

	"github.com/latchid/latch/kernel/fault"
)

// UserMessage is what the user is told when a script fails: scripts are
// the administrator's code, and their errors say nothing a user could act
// on.
const UserMessage = "the login could not be completed; please try again later or contact the administrator"

// ErrorKind says how a script failed.
type ErrorKind string

// Script error kinds.
const (
	// KindSyntax: the script does not compile.
	KindSyntax ErrorKind = "syntax"
	// KindRuntime: the script threw, or called a function wrongly.
	KindRuntime ErrorKind = "runtime"
	// KindTimeout: the script ran past its time limit.
	KindTimeout ErrorKind = "timeout"
	// KindMemory: the script grew the heap past its bound or recursed past
	// the call stack limit.
	KindMemory ErrorKind = "memory"
	// KindHistory: the History does not match what the script does; the
	// script or the data it reads changed during the login.
	KindHistory ErrorKind = "history"
	// KindHost: a look-up through the Host failed.
	KindHost ErrorKind = "host"
)

// Sentinels for errors.Is on a ScriptError.
var (
	ErrTimeout = errors.New("adaptive: script time limit exceeded")
	ErrMemory  = errors.New("adaptive: script memory bound exceeded")
	errNoHost  = errors.New("the engine has no Host for look-ups")
)

// ScriptError is a failed script, with the detail for the administrator.
// Evaluate and Compile return it wrapped in a fault whose client-safe
// message is UserMessage (Compile: the detail, since only administrators
// compile scripts):
//
//	var se *adaptive.ScriptError
//	if errors.As(err, &se) { log(se.Error()) }   // detail for the admin log
//	fault.From(err).Message                      // safe for the user
type ScriptError struct {
	// Script is the script's name.
	Script string
	Kind   ErrorKind
	// Line and Column locate the error in the script when known (1-based).
	Line, Column int
	// Detail is the message for the administrator.
	Detail string
	cause  error
}

// Error returns the detail for logs: name, position, kind and message.
func (e *ScriptError) Error() string {
	pos := e.Script
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d:%d", e.Script, e.Line, e.Column)
	}
	return fmt.Sprintf("adaptive script %s: %s error: %s", pos, e.Kind, e.Detail)
}

// Unwrap returns the cause.
func (e *ScriptError) Unwrap() error { return e.cause }

// failClosed wraps a script error in the fault Evaluate returns.
func failClosed(se *ScriptError) error {
	base := fault.Internal
	if se.Kind == KindTimeout {
		base = fault.Timeout
	}
	return base.WithMessage(UserMessage).WithCause(se)
}

package fault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		code fault.Code
		abi  string
		want int
	}{
		{fault.CodeInvalidRequest, abi.CodeInvalidRequest, http.StatusBadRequest},
		{fault.CodeUnauthenticated, abi.CodeUnauthenticated, http.StatusUnauthorized},
		{fault.CodeForbidden, abi.CodeForbidden, http.StatusForbidden},
		{fault.CodeNotFound, abi.CodeNotFound, http.StatusNotFound},
		{fault.CodeConflict, abi.CodeConflict, http.StatusConflict},
		{fault.CodePreconditionFailed, abi.CodePreconditionFailed, http.StatusPreconditionFailed},
		{fault.CodeRateLimited, abi.CodeRateLimited, http.StatusTooManyRequests},
		{fault.CodeCanceled, abi.CodeCanceled, 499},
		{fault.CodeInternal, abi.CodeInternal, http.StatusInternalServerError},
		{fault.CodeUnsupported, abi.CodeUnsupported, http.StatusNotImplemented},
		{fault.CodeUnavailable, abi.CodeUnavailable, http.StatusServiceUnavailable},
		{fault.CodeTimeout, abi.CodeTimeout, http.StatusGatewayTimeout},
		{"teapot", "teapot", 0},
		{"", "", 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if string(tt.code) != tt.abi {
				t.Fatalf("fault code %q differs from abi code %q", tt.code, tt.abi)
			}
			if got := fault.HTTPStatus(tt.code); got != tt.want {
				t.Fatalf("HTTPStatus(%q) = %d, want %d", tt.code, got, tt.want)
			}
			if tt.code.Known() != (tt.want != 0) {
				t.Fatalf("Known() = %v", tt.code.Known())
			}
		})
	}
}

func TestWithReturnsCopies(t *testing.T) {
	cause := errors.New("row 7 missing")
	f := fault.NotFound.WithMessage("user not found").WithField("user.id").WithCause(cause).WithRetryAfter(time.Second)
	if fault.NotFound.Message != "not found" || fault.NotFound.Field != "" || fault.NotFound.Cause() != nil || fault.NotFound.RetryAfter != 0 {
		t.Fatalf("the template was modified: %+v", fault.NotFound)
	}
	if f.Message != "user not found" || f.Field != "user.id" || f.RetryAfter != time.Second {
		t.Fatalf("derived fault = %+v", f)
	}
	if got, want := f.Error(), "not_found: user not found (user.id): row 7 missing"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if g := fault.Internal.WithMessagef("step %d failed", 2); g.Message != "step 2 failed" {
		t.Fatalf("WithMessagef = %q", g.Message)
	}
}

func TestIsMatchesByCode(t *testing.T) {
	cause := errors.New("db")
	err := fmt.Errorf("loading user: %w", fault.NotFound.WithMessage("user not found").WithCause(cause))
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{"same code template", fault.NotFound, true},
		{"same code other message", fault.New(fault.CodeNotFound, "gone"), true},
		{"other code", fault.Conflict, false},
		{"cause", cause, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Fatalf("errors.Is = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	plain := errors.New("boom")
	tests := []struct {
		name    string
		err     error
		code    fault.Code
		msg     string
		errText string
	}{
		{"fault itself", fault.Forbidden, fault.CodeForbidden, "the request is not allowed", "forbidden: the request is not allowed"},
		{"wrapped fault keeps the outer context", fmt.Errorf("plugin/authn.x: calling authenticate: %w", fault.Unavailable.WithMessage("ldap down")),
			fault.CodeUnavailable, "ldap down", "plugin/authn.x: calling authenticate: unavailable: ldap down"},
		{"deadline", fmt.Errorf("querying: %w", context.DeadlineExceeded), fault.CodeTimeout, "the request timed out", ""},
		{"canceled", context.Canceled, fault.CodeCanceled, "the request was canceled", ""},
		{"store not found", fmt.Errorf("getting user: %w", store.ErrNotFound), fault.CodeNotFound, "not found", ""},
		{"store conflict", store.ErrConflict, fault.CodeConflict, "", ""},
		{"store version", store.ErrVersionMismatch, fault.CodePreconditionFailed, "", ""},
		{"store invalid", store.ErrInvalid, fault.CodeInvalidRequest, "", ""},
		{"anything else is internal, message stays generic", plain, fault.CodeInternal, "internal error", "internal: internal error: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fault.From(tt.err)
			if f.Code != tt.code {
				t.Fatalf("code = %q, want %q", f.Code, tt.code)
			}
			if tt.msg != "" && f.Message != tt.msg {
				t.Errorf("message = %q, want %q", f.Message, tt.msg)
			}
			if tt.errText != "" && f.Error() != tt.errText {
				t.Errorf("Error() = %q, want %q", f.Error(), tt.errText)
			}
			if !errors.Is(f, tt.err) {
				t.Errorf("the fault lost its cause %v", tt.err)
			}
		})
	}
	if fault.From(nil) != nil || fault.CodeOf(nil) != "" || fault.ToWire(nil) != nil {
		t.Fatal("nil error did not give nil")
	}
}

func TestWire(t *testing.T) {
	secret := errors.New("password=hunter2")
	w := fault.ToWire(fmt.Errorf("x: %w", fault.Conflict.WithMessage("username taken").WithCause(secret)))
	if *w != (abi.Error{Code: abi.CodeConflict, Message: "username taken"}) {
		t.Fatalf("ToWire = %+v, the cause must not cross", w)
	}
	if w := fault.ToWire(secret); w.Message != "internal error" {
		t.Fatalf("ToWire of a plain error leaked %q", w.Message)
	}
	tests := []struct {
		in   abi.Error
		code fault.Code
	}{
		{abi.Error{Code: abi.CodeNotFound, Message: "no such user"}, fault.CodeNotFound},
		{abi.Error{Code: "bogus", Message: "?"}, fault.CodeInternal},
		{abi.Error{}, fault.CodeInternal},
	}
	for _, tt := range tests {
		if f := fault.FromWire(tt.in); f.Code != tt.code || f.Message != tt.in.Message {
			t.Errorf("FromWire(%+v) = %+v", tt.in, f)
		}
	}
}

func ExampleFrom() {
	err := fmt.Errorf("loading user: %w", fault.NotFound.WithMessage("user not found"))
	f := fault.From(err)
	fmt.Println(fault.HTTPStatus(f.Code), f.Message)
	// Output: 404 user not found
}

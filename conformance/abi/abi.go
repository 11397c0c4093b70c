package abi

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	latchabi "github.com/latchid/latch/abi"
)

// CancelWithin is how soon a call with a cancelled context must return.
var CancelWithin = 2 * time.Second

// concurrency is how many goroutines the concurrency subtests run.
const concurrency = 16

// callWithin runs call and fails t unless it returns within d.
func callWithin(t *testing.T, d time.Duration, call func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		call()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("the call did not return within %v of its context being cancelled", d)
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// cloneValue deep-copies a decoded JSON value (maps, slices, scalars), so
// that a suite can tell whether an implementation modified its input.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneClaims(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case []string:
		return slices.Clone(v)
	}
	return v
}

func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneParams(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// cloneAuthenticateRequest deep-copies the fields an authenticator could
// modify in place.
func cloneAuthenticateRequest(r latchabi.AuthenticateRequest) latchabi.AuthenticateRequest {
	c := r
	c.Params = cloneParams(r.Params)
	c.Headers = cloneParams(r.Headers)
	c.Cookies = maps.Clone(r.Cookies)
	c.State = slices.Clone(r.State)
	c.Config = slices.Clone(r.Config)
	return c
}

// sameRequest fails t when got differs from want (a copy taken before the
// call).
func sameRequest(t *testing.T, what string, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("the implementation modified its %s:\nbefore %#v\nafter  %#v", what, want, got)
	}
}

// parallel runs fn(i) for i in [0, n) on n goroutines and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

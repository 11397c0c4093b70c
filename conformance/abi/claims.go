package abi

import (
	"reflect"
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
)

// ClaimsMapperCases are what a claim mapper under test must satisfy.
type ClaimsMapperCases struct {
	// Requests are mapped one by one; each answer must pass claims.Check.
	// At least one is required.
	Requests []latchabi.MapRequest
	// Want, when set, holds the claims each request must map to, by index
	// in Requests (a nil entry is not compared).
	Want []map[string]any
}

// RunClaimsMapper runs the claim mapper suite: every answer passes
// claims.Check (and equals Want when given), the request's claims are not
// modified (the answer may be them, unchanged, as claims.Mapper allows),
// concurrent calls agree, and a
// cancelled context is honoured within CancelWithin. newInstance is called
// once per subtest.
func RunClaimsMapper(t *testing.T, newInstance func(t *testing.T) claims.Mapper, cases ClaimsMapperCases) {
	t.Helper()
	if len(cases.Requests) == 0 {
		t.Fatal("ClaimsMapperCases.Requests must hold at least one request")
	}
	mapOne := func(t *testing.T, m claims.Mapper, i int) {
		t.Helper()
		req := cases.Requests[i]
		req.Claims = cloneClaims(req.Claims)
		before := cloneClaims(req.Claims)
		got, err := claims.Check(m.Map(t.Context(), req))
		sameRequest(t, "request's claims", before, req.Claims)
		if err != nil {
			t.Fatalf("Map(request %d): %v (every answer must pass claims.Check)", i, err)
		}
		if i < len(cases.Want) && cases.Want[i] != nil && !reflect.DeepEqual(got, cases.Want[i]) {
			t.Fatalf("Map(request %d) = %#v, want %#v", i, got, cases.Want[i])
		}
	}

	t.Run("maps", func(t *testing.T) {
		m := newInstance(t)
		for i := range cases.Requests {
			mapOne(t, m, i)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		m := newInstance(t)
		want := make([]map[string]any, len(cases.Requests))
		for i, req := range cases.Requests {
			req.Claims = cloneClaims(req.Claims)
			got, err := claims.Check(m.Map(t.Context(), req))
			if err != nil {
				t.Fatalf("Map(request %d): %v", i, err)
			}
			want[i] = got
		}
		parallel(concurrency, func(n int) {
			i := n % len(cases.Requests)
			req := cases.Requests[i]
			req.Claims = cloneClaims(req.Claims)
			got, err := claims.Check(m.Map(t.Context(), req))
			if err != nil {
				t.Errorf("concurrent Map(request %d): %v", i, err)
				return
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("concurrent Map(request %d) = %#v, alone it gave %#v", i, got, want[i])
			}
		})
	})
	t.Run("cancelled context", func(t *testing.T) {
		m := newInstance(t)
		ctx := cancelled(t)
		req := cases.Requests[0]
		req.Claims = cloneClaims(req.Claims)
		callWithin(t, CancelWithin, func() { _, _ = claims.Check(m.Map(ctx, req)) })
		mapOne(t, m, 0)
	})
}

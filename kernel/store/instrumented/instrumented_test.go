package instrumented_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/instrumented"
	"github.com/latchid/latch/kernel/store/sqlite"
)

func TestRecordsCallsAndFailures(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := instrumented.Wrap(raw, reg)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := s.CreateTenant(ctx, store.Tenant{Name: "t1", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	// A not-found answer is timed but is not a failure.
	if _, err := s.GetUser(ctx, tn.ID, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser: %v", err)
	}
	// A closed store fails for real.
	_ = raw.Close()
	if _, err := s.GetTenant(ctx, tn.ID); err == nil {
		t.Fatal("GetTenant on a closed store succeeded")
	}
	if n := testutil.CollectAndCount(reg, "latch_store_call_duration_seconds"); n != 3 {
		t.Errorf("%d method series timed, want 3 (CreateTenant, GetUser, GetTenant)", n)
	}
	failures := func(method string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "latch_store_errors_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == method {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	if failures("GetUser") != 0 || failures("GetTenant") != 1 {
		t.Errorf("failures: GetUser %v (want 0), GetTenant %v (want 1)", failures("GetUser"), failures("GetTenant"))
	}
	// Wrapping twice on one registry is refused rather than double-counted.
	if _, err := instrumented.Wrap(raw, reg); err == nil {
		t.Error("second Wrap on the same registry succeeded")
	}
}

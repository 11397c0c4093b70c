package extension_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// loadOne loads one instance with metrics on a fresh registry and a logger
// writing to the returned buffer.
func loadOne(t testing.TB, cfg extension.InstanceConfig) (*extension.Instance, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := extension.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := newTestRegistry(&journal{})
	set, err := r.Load(context.Background(), []extension.InstanceConfig{cfg}, extension.LoadOptions{
		Metrics: m,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, set)
	return set.All()[0], reg, &logs
}

func TestCall(t *testing.T) {
	tests := []struct {
		name      string
		instance  string // instance name; the module is userstore.fake
		fn        func(context.Context) error
		wantErr   string // prefix of the error text; empty: no error
		wantIs    []error
		wantCode  fault.Code
		wantPanic bool
	}{
		{
			name:     "success",
			instance: "userstore.fake",
			fn:       func(context.Context) error { return nil },
		},
		{
			name:     "error is prefixed and wrapped",
			instance: "userstore.fake",
			fn:       func(context.Context) error { return errFake },
			wantErr:  "plugin/userstore.fake: calling get_user: fake failure",
			wantIs:   []error{errFake},
			wantCode: fault.CodeInternal,
		},
		{
			name:     "instance name is added when it differs from the id",
			instance: "corp",
			fn:       func(context.Context) error { return errFake },
			wantErr:  `plugin/userstore.fake: calling get_user on "corp": fake failure`,
			wantIs:   []error{errFake},
		},
		{
			name:     "fault keeps its code through the prefix",
			instance: "userstore.fake",
			fn:       func(context.Context) error { return userstore.ErrNotFound },
			wantErr:  "plugin/userstore.fake: calling get_user: not_found: user not found",
			wantIs:   []error{userstore.ErrNotFound, fault.NotFound},
			wantCode: fault.CodeNotFound,
		},
		{
			name:      "panic becomes an internal fault",
			instance:  "userstore.fake",
			fn:        func(context.Context) error { panic("boom") },
			wantErr:   "plugin/userstore.fake: calling get_user: internal: internal error: extension panicked: boom",
			wantIs:    []error{extension.ErrPanicked, fault.Internal},
			wantCode:  fault.CodeInternal,
			wantPanic: true,
		},
		{
			name:      "panic with an error value",
			instance:  "userstore.fake",
			fn:        func(context.Context) error { var m map[string]int; m["x"]++; return nil }, //nolint:govet,staticcheck // nilness, SA5000: the nil map write is deliberate, so that the runtime panics with an error value
			wantErr:   "plugin/userstore.fake: calling get_user: internal: internal error: extension panicked: assignment to entry in nil map",
			wantIs:    []error{extension.ErrPanicked},
			wantPanic: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, reg, logs := loadOne(t, extension.InstanceConfig{Name: tt.instance, Module: "userstore.fake"})
			err := extension.Call(t.Context(), inst, abi.OpGetUser, tt.fn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Call error = %v, want prefix %q", err, tt.wantErr)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if tt.wantCode != "" && fault.CodeOf(err) != tt.wantCode {
				t.Errorf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
			}
			if tt.wantPanic {
				var pe *extension.PanicError
				if !errors.As(err, &pe) || len(pe.Stack) == 0 {
					t.Errorf("no PanicError with a stack in %v", err)
				}
				if !strings.Contains(logs.String(), "extension panicked") || !strings.Contains(logs.String(), "instance="+tt.instance) {
					t.Errorf("panic not logged with the instance: %s", logs.String())
				}
			}

			labels := []string{"userstore.fake", "userstore", "get_user"}
			wantErrs, wantPanics := 0.0, 0.0
			if tt.wantErr != "" {
				wantErrs = 1
			}
			if tt.wantPanic {
				wantPanics = 1
			}
			checkCounter(t, reg, "latch_extension_calls_total", labels, 1)
			checkCounter(t, reg, "latch_extension_errors_total", labels, wantErrs)
			checkCounter(t, reg, "latch_extension_panics_total", labels, wantPanics)
			if n := histogramCount(t, reg, "latch_extension_call_duration_seconds", labels); n != 1 {
				t.Errorf("duration samples = %d, want 1", n)
			}
		})
	}
}

func TestCallDoneContext(t *testing.T) {
	inst, _, _ := loadOne(t, extension.InstanceConfig{Module: "userstore.fake"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := extension.Call(ctx, inst, abi.OpGetUser, func(context.Context) error { called = true; return nil })
	if called {
		t.Fatal("fn called with a done context")
	}
	if !errors.Is(err, context.Canceled) || fault.CodeOf(err) != fault.CodeCanceled {
		t.Fatalf("Call error = %v (code %q), want canceled", err, fault.CodeOf(err))
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := extension.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := extension.NewMetrics(reg); err == nil {
		t.Fatal("second NewMetrics on the same registry did not fail")
	}
}

// checkCounter asserts the value of one labelled counter.
func checkCounter(t *testing.T, reg *prometheus.Registry, name string, labels []string, want float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m.GetLabel(), labels) {
				got = m.GetCounter().GetValue()
			}
		}
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string, labels []string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m.GetLabel(), labels) {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// labelsMatch compares label pairs (sorted by name: extension, kind, op)
// with the wanted values in that order.
func labelsMatch[L interface{ GetValue() string }](got []L, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].GetValue() != want[i] {
			return false
		}
	}
	return true
}

func TestCallMetricsText(t *testing.T) {
	inst, reg, _ := loadOne(t, extension.InstanceConfig{Module: "userstore.fake"})
	for range 3 {
		_ = extension.Call(t.Context(), inst, abi.OpFindUsers, func(context.Context) error { return nil })
	}
	_ = extension.Call(t.Context(), inst, abi.OpFindUsers, func(context.Context) error { return errFake })
	want := `
# HELP latch_extension_calls_total Calls into extensions.
# TYPE latch_extension_calls_total counter
latch_extension_calls_total{extension="userstore.fake",kind="userstore",op="configure"} 1
latch_extension_calls_total{extension="userstore.fake",kind="userstore",op="find_users"} 4
latch_extension_calls_total{extension="userstore.fake",kind="userstore",op="validate"} 1
# HELP latch_extension_errors_total Calls into extensions that returned an error or panicked.
# TYPE latch_extension_errors_total counter
latch_extension_errors_total{extension="userstore.fake",kind="userstore",op="configure"} 0
latch_extension_errors_total{extension="userstore.fake",kind="userstore",op="find_users"} 1
latch_extension_errors_total{extension="userstore.fake",kind="userstore",op="validate"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_extension_calls_total", "latch_extension_errors_total"); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCall(b *testing.B) {
	inst, _, _ := loadOne(b, extension.InstanceConfig{Module: "userstore.fake"})
	s := inst.Value().(userstore.Store)
	ctx := context.Background()
	req := abi.GetUserRequest{Tenant: "t", ID: "u-1"}
	b.Run("through Call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var u abi.User
			err := extension.Call(ctx, inst, abi.OpGetUser, func(ctx context.Context) (err error) {
				u, err = s.GetUser(ctx, req)
				return err
			})
			if err != nil || u.ID == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u, err := s.GetUser(ctx, req)
			if err != nil || u.ID == "" {
				b.Fatal(err)
			}
		}
	})
}

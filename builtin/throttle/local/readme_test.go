package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/throttle/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/throttle"
)

// load loads one throttle.local instance with cfg through a fresh registry.
func load(t testing.TB, cfg string) (*extension.Instances, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(local.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: local.ID, Config: json.RawMessage(cfg)},
	}, extension.LoadOptions{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := set.Close(context.Background()); err != nil {
			t.Errorf("closing: %v", err)
		}
	})
	return set, nil
}

// TestREADMEExamples loads every JSON example of the README, so that the
// documentation cannot drift from the schema, and serves a request with
// each.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			set, err := load(t, string(ex[1]))
			if err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
			inst, _ := set.Get(string(local.ID))
			th, _ := extension.As[throttle.Throttler](inst)
			var resp abi.AllowResponse
			err = extension.Call(t.Context(), inst, abi.OpAllow, func(ctx context.Context) error {
				var err error
				resp, err = throttle.Check(th.Allow(ctx, abi.AllowRequest{Tenant: "acme", Key: "k", Limit: abi.Limit{Rate: 1, PeriodMillis: 1000}}))
				return err
			})
			if err != nil || !resp.Allowed {
				t.Fatalf("Allow = %+v, %v", resp, err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "empty", config: `{}`},
		{name: "every field", config: `{"max_keys": 10, "sweep_interval_millis": 100, "when_full": "evict"}`},
		{name: "unknown field", config: `{"max_key": 10}`, wantErr: "config.max_key: unknown field"},
		{name: "zero keys", config: `{"max_keys": 0}`, wantErr: "config.max_keys: must be >= 1"},
		{name: "sweeping too often", config: `{"sweep_interval_millis": 1}`, wantErr: "config.sweep_interval_millis: must be >= 100"},
		{name: "unknown policy", config: `{"when_full": "block"}`, wantErr: `config.when_full: must be one of "evict", "fail"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.config)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *extension.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want a config error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCloseUnprovisioned checks that cleanup copes with a value whose
// Provision never ran (step 6 of the lifecycle).
func TestCloseUnprovisioned(t *testing.T) {
	th := local.Module().New().(*local.Throttler)
	if err := th.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "k", Limit: abi.Limit{Rate: 1, PeriodMillis: 1}}); err == nil {
		t.Fatal("an unprovisioned throttler allowed a request")
	}
}

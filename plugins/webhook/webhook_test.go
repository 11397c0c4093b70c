package main

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

var key = []byte("whsec-test-key-0123456789abcdef")

// receiver is a real HTTP endpoint that checks signatures.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []payload
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get(HeaderSignature)
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	var p payload
	_ = json.Unmarshal(body, &p)
	want := Sign(key, time.Unix(p.SentAt, 0), body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !hmac.Equal([]byte(sig), []byte(want)) || ts == "" || r.Header.Get(HeaderEventID) != p.ID {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.got = append(rc.got, p)
	if rc.status != 0 {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(rc.status)
		return
	}
	_, _ = w.Write([]byte(`{"id":"ext-` + p.ResourceID + `"}`))
}

func setup(t *testing.T, extra string) (*plugintest.Harness, *receiver) {
	t.Helper()
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	h := plugintest.New(t)
	h.SetHTTPHosts("http://" + strings.TrimPrefix(srv.URL, "http://"))
	h.HandleHTTP(plugintest.Forward(srv.Client()))
	h.SetSecret("", "hook_key", key)
	h.SetSecret("acme", "hook_key", key)
	h.SetNow(time.Unix(1_800_000_000, 0))
	cfg := `{"url":"` + srv.URL + `/hook","secret":"hook_key"` + extra + `}`
	if err := h.Configure("webhook", []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return h, rc
}

var userEvent = abi.ProvisionEvent{ID: "e-1", Tenant: "acme", Op: abi.ProvisionCreate, Resource: abi.ResourceUser,
	ResourceID: "u-42", User: &abi.User{ID: "u-42", Username: "alice", Enabled: true}}

func TestPushDelivers(t *testing.T) {
	h, rc := setup(t, "")
	resp, err := h.Provision("webhook", userEvent)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Outcome != abi.ProvisionDone || resp.ExternalID != "ext-u-42" {
		t.Fatalf("response = %+v", resp)
	}
	if rc.bad != 0 || len(rc.got) != 1 || rc.got[0].User.Username != "alice" || rc.got[0].SentAt != 1_800_000_000 {
		t.Fatalf("receiver got %+v (bad signatures: %d)", rc.got, rc.bad)
	}
}

func TestPushOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		extra       string
		ev          abi.ProvisionEvent
		wantOutcome string
		wantRetry   int64
		wantCode    string
	}{
		{name: "server error retries", status: 503, ev: userEvent, wantOutcome: abi.ProvisionRetry, wantRetry: 7000},
		{name: "rate limited retries", status: 429, ev: userEvent, wantOutcome: abi.ProvisionRetry, wantRetry: 7000},
		{name: "client error fails", status: 400, ev: userEvent, wantCode: abi.CodeInvalidRequest},
		{name: "filtered resource skipped", extra: `,"resources":["group"]`, ev: userEvent, wantOutcome: abi.ProvisionSkipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rc := setup(t, tt.extra)
			rc.status = tt.status
			resp, err := h.Provision("webhook", tt.ev)
			if tt.wantCode != "" {
				var pe *plugin.Error
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.wantOutcome || resp.RetryAfterMillis != tt.wantRetry {
				t.Fatalf("response = %+v", resp)
			}
		})
	}
}

func TestConfigureRefuses(t *testing.T) {
	for _, cfg := range []string{`{"url":"ftp://x/","secret":"s"}`, `{"url":"https://x/"}`, `{"url":"https://x/","secret":"s","resources":["role"]}`, `{"url":"https://x/","secret":"s","extra":1}`} {
		h := plugintest.New(t)
		if err := h.Configure("webhook", []byte(cfg)); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("Configure(%s) = %v, want invalid_request", cfg, err)
		}
	}
}

func TestSign(t *testing.T) {
	// A fixed vector, so that receivers in other languages can check theirs.
	got := Sign([]byte("k"), time.Unix(1700000000, 0), []byte(`{"id":"e-1"}`))
	if !strings.HasPrefix(got, "t=1700000000,v1=") || len(got) != len("t=1700000000,v1=")+64 {
		t.Fatalf("Sign = %q", got)
	}
}

package main

import (
	"crypto/sha1" //nolint:gosec // G505: the protocol's hash
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugintest"
)

// corpus is a real range server holding the hashes of a few passwords.
type corpus struct {
	counts  map[string]int // full upper-case hex hash -> count
	queries atomic.Int32
	fail    atomic.Bool
}

func newCorpus(passwords map[string]int) *corpus {
	c := &corpus{counts: map[string]int{}}
	for pw, n := range passwords {
		sum := sha1.Sum([]byte(pw)) //nolint:gosec // the protocol's hash
		c.counts[strings.ToUpper(hex.EncodeToString(sum[:]))] = n
	}
	return c
}

func (c *corpus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.queries.Add(1)
	prefix := strings.TrimPrefix(r.URL.Path, "/range/")
	if c.fail.Load() || len(prefix) != prefixLen {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "%s:0\r\n", strings.Repeat("0", 35)) // padding
	for h, n := range c.counts {
		if strings.HasPrefix(h, prefix) {
			fmt.Fprintf(w, "%s:%d\r\n", h[prefixLen:], n)
		}
	}
}

func setup(t *testing.T, c *corpus, extra string) *plugintest.Harness {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	h := plugintest.New(t)
	h.SetHTTPHosts("http://" + strings.TrimPrefix(srv.URL, "http://")) // granted explicitly
	h.HandleHTTP(plugintest.Forward(srv.Client()))
	if err := h.Configure("breachedpw", []byte(`{"range_url":"`+srv.URL+`/range/"`+extra+`}`)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return h
}

func TestAuthenticate(t *testing.T) {
	c := newCorpus(map[string]int{"password123": 250000, "rare-but-seen": 2})
	tests := []struct {
		name, extra, password, subject string
		fail                           bool
		wantOutcome, wantReason        string
	}{
		{name: "breached", password: "password123", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonBreached},
		{name: "clean", password: "correct horse battery staple", subject: "u-1", wantOutcome: abi.OutcomeAuthenticated},
		{name: "under min_count", extra: `,"min_count":3`, password: "rare-but-seen", subject: "u-1", wantOutcome: abi.OutcomeAuthenticated},
		{name: "at min_count", extra: `,"min_count":2`, password: "rare-but-seen", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonBreached},
		{name: "no password", subject: "u-1", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNoPassword},
		{name: "no subject", password: "x", wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonNoKnownSubject},
		{name: "service down, fail open", password: "password123", subject: "u-1", fail: true, wantOutcome: abi.OutcomeAuthenticated},
		{name: "service down, fail closed", extra: `,"on_error":"deny"`, password: "password123", subject: "u-1", fail: true, wantOutcome: abi.OutcomeNotAuthenticated, wantReason: ReasonCheckFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.fail.Store(tt.fail)
			h := setup(t, c, tt.extra)
			var params map[string][]string
			if tt.password != "" {
				params = map[string][]string{"password": {tt.password}}
			}
			resp, err := h.Authenticate("breachedpw", abi.AuthenticateRequest{Tenant: "acme", FlowID: "f", Step: 2, KnownSubject: tt.subject, Params: params})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.wantOutcome || resp.Reason != tt.wantReason {
				t.Fatalf("outcome %q reason %q, want %q %q", resp.Outcome, resp.Reason, tt.wantOutcome, tt.wantReason)
			}
		})
	}
}

func TestOnlyThePrefixLeaves(t *testing.T) {
	var seen []string
	h := plugintest.New(t)
	h.SetHTTPHosts("breach.example.com")
	h.HandleHTTP(func(r abi.HTTPRequest) (abi.HTTPResponse, error) {
		seen = append(seen, r.URL)
		return abi.HTTPResponse{Status: 200}, nil
	})
	if err := h.Configure("breachedpw", []byte(`{"range_url":"https://breach.example.com/range/"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Authenticate("breachedpw", abi.AuthenticateRequest{Tenant: "acme", KnownSubject: "u", Params: map[string][]string{"password": {"password123"}}}); err != nil {
		t.Fatal(err)
	}
	// SHA-1("password123") = CBFDAC6008F9CAB4083784CBD1874F76618D2A97.
	if len(seen) != 1 || seen[0] != "https://breach.example.com/range/CBFDA" {
		t.Fatalf("requests = %v", seen)
	}
}

func TestParseRange(t *testing.T) {
	body := []byte("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2\nBAD LINE\n011053FD0102E94D6AE2F8B83D76FAF94F6:x\n")
	tests := []struct {
		suffix string
		want   int64
	}{
		{"0018A45C4D1DEF81644B54AB7F969B88D65", 1},
		{"00d4f6e8fa6eecad2a3aa415eec418d38ec", 2},
		{"011053FD0102E94D6AE2F8B83D76FAF94F6", 0},
		{"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 0},
	}
	for _, tt := range tests {
		if got := ParseRange(body, tt.suffix); got != tt.want {
			t.Errorf("ParseRange(%s) = %d, want %d", tt.suffix, got, tt.want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add([]byte("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n"), "0018A45C4D1DEF81644B54AB7F969B88D65")
	f.Add([]byte(":::\n\n"), "")
	f.Fuzz(func(t *testing.T, body []byte, suffix string) {
		if n := ParseRange(body, suffix); n < 0 {
			t.Fatalf("negative count %d", n)
		}
	})
}

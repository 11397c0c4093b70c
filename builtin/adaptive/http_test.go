package adaptive

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// riskServer is a real HTTP server scoring logins: score 90 for the IP
// 198.51.100.7, else 10.
func riskServer(t *testing.T, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/score":
			var body struct {
				IP string `json:"ip"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Authorization") != "Bearer s3cr3t" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			score := 10
			if body.IP == "198.51.100.7" {
				score = 90
			}
			_ = json.NewEncoder(w).Encode(map[string]int{"score": score})
		case "/big":
			_, _ = io.Copy(w, io.LimitReader(zeros{}, DefaultMaxHTTPBody+10))
		case "/redirect":
			http.Redirect(w, r, "http://other.example.org/", http.StatusFound)
		default:
			_, _ = w.Write([]byte(`"plain"`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

func riskScript(url string) string {
	return `function onLoginRequest(context) {
		executeStep(1, {onSuccess: function (context) {
			httpPost('` + url + `/score', {ip: context.request.ip}, {Authorization: 'Bearer ' + getSecretByName('risk-api-key')}, {
				onSuccess: function (context, data) { Log.info('score ' + data.score); if (data.score > 50) { executeStep(2); } },
				onFail: function (context, data) { Log.info('failed ' + data.status + ' ' + data.error); fail({errorCode: 'risk_unavailable'}); }
			});
		}});
	}`
}

func TestHTTPCallsAreRecordedAndReplayed(t *testing.T) {
	var hits atomic.Int32
	srv := riskServer(t, &hits)
	e := newEngine(t, func(o *Options) { o.HTTPAllow = []string{"127.0.0.1"}; o.AllowPrivateNetworks = true })
	s := mustCompile(t, e, riskScript(srv.URL))
	in := Input{Steps: twoSteps(), Request: Request{IP: "198.51.100.7"}, History: []Entry{step(1, true, "u1")}}
	d := eval(t, e, s, in)
	if d.Kind != DecisionExecuteStep || d.Step.Number != 2 || len(d.Record) != 1 || d.Record[0].Status != 200 || logs(d) != "score 90" {
		t.Fatalf("first evaluation: %s", js(d))
	}
	if hits.Load() != 1 {
		t.Fatalf("server hits = %d", hits.Load())
	}
	// The caller appends the record, then the step's outcome.
	in.History = append(in.History, d.Record...)
	in.History = append(in.History, step(2, true, "u1"))
	d = eval(t, e, s, in)
	if d.Kind != DecisionComplete || len(d.Record) != 0 || logs(d) != "" {
		t.Fatalf("second evaluation: %s", js(d))
	}
	if hits.Load() != 1 {
		t.Fatalf("the replay called the server again: hits = %d", hits.Load())
	}
	// Low risk completes at once.
	in = Input{Steps: twoSteps(), Request: Request{IP: "192.0.2.1"}, History: []Entry{step(1, true, "u1")}}
	if d := eval(t, e, s, in); d.Kind != DecisionComplete || logs(d) != "score 10" {
		t.Fatalf("low risk: %s", js(d))
	}
}

func TestHTTPGuards(t *testing.T) {
	var hits atomic.Int32
	srv := riskServer(t, &hits)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	tests := []struct {
		name    string
		private bool
		allow   []string
		url     string
		wantLog string
	}{
		{name: "loopback refused by the SSRF guard", allow: []string{"127.0.0.1"}, url: srv.URL, wantLog: "not public"},
		{name: "a name resolving to loopback refused", allow: []string{"localhost"}, url: "http://localhost" + port, wantLog: "not public"},
		{name: "redirect off the allow-list refused", private: true, allow: []string{"127.0.0.1"}, url: srv.URL + "/redirect?", wantLog: "not in the allow-list"},
		{name: "body too large", private: true, allow: []string{"127.0.0.1"}, url: srv.URL + "/big?", wantLog: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, func(o *Options) { o.HTTPAllow = tt.allow; o.AllowPrivateNetworks = tt.private })
			s := mustCompile(t, e, `function onLoginRequest(context) {
				executeStep(1, {onSuccess: function (context) {
					httpGet('`+tt.url+`', {onSuccess: function () { Log.info('ok'); }, onFail: function (c, data) { Log.info(data.error); }});
				}});
			}`)
			d := eval(t, e, s, Input{Steps: twoSteps(), History: []Entry{step(1, true, "u1")}})
			if !strings.Contains(logs(d), tt.wantLog) || len(d.Record) != 1 || d.Record[0].Success {
				t.Fatalf("decision %s, want a failed call logging %q", js(d), tt.wantLog)
			}
		})
	}
}

func TestHTTPCallLimit(t *testing.T) {
	var hits atomic.Int32
	srv := riskServer(t, &hits)
	e := newEngine(t, func(o *Options) {
		o.HTTPAllow = []string{"127.0.0.1"}
		o.AllowPrivateNetworks = true
		o.MaxHTTPCalls = 2
	})
	s := mustCompile(t, e, `function onLoginRequest(context) {
		function call(n) {
			httpGet('`+srv.URL+`/x' + n, {onSuccess: function (c, data) { Log.info(n + ' ' + data); call(n + 1); }, onFail: function (c, data) { Log.info(data.error); }});
		}
		executeStep(1, {onSuccess: function () { call(1); }});
	}`)
	d := eval(t, e, s, Input{Steps: twoSteps(), History: []Entry{step(1, true, "u1")}})
	if got := logs(d); got != "1 plain|2 plain|more than 2 HTTP calls in one evaluation" || hits.Load() != 2 {
		t.Fatalf("logs %q, hits %d", got, hits.Load())
	}
}

func TestPublicAddr(t *testing.T) {
	tests := map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false,
		"fc00::1": false, "fe80::1": false, "::ffff:127.0.0.1": false, "224.0.0.1": false, "198.18.0.1": false,
	}
	for addr, want := range tests {
		if got := safehttp.PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("safehttp.PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	allow := []string{"risk.example.com", "*.corp.example.org"}
	tests := map[string]bool{
		"risk.example.com": true, "RISK.example.com.": true, "evil.risk.example.com": false, "example.com": false,
		"a.corp.example.org": true, "a.b.corp.example.org": true, "corp.example.org": false, "xcorp.example.org": false,
	}
	for host, want := range tests {
		if got := hostAllowed(allow, host); got != want {
			t.Errorf("hostAllowed(%s) = %v, want %v", host, got, want)
		}
	}
}

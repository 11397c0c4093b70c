package adaptive

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// testHost is the directory most tests use.
func testHost() *StaticHost {
	return &StaticHost{
		UsersByID: map[string]User{
			"u1": {Username: "alice", Roles: []string{"admin", "staff"}, Groups: []string{"employees", "ops"},
				Claims: map[string]string{"http://wso2.org/claims/emailaddress": "alice@example.com", "http://wso2.org/claims/country": "NL"}},
			"u2": {Username: "bob", Roles: []string{"staff"}, Groups: []string{"contractors"},
				Claims: map[string]string{"http://wso2.org/claims/emailaddress": "bob@example.com", "http://wso2.org/claims/country": "NL"}},
			"u3": {Username: "carol", Groups: []string{"visitors"}},
		},
		SessionsByUser: map[string][]Session{
			"u1": {
				{ID: "s1", IP: "10.1.1.1", LoginTime: time.Unix(1000, 0), LastAccessTime: time.Unix(2000, 0),
					UserAgent: "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0", Applications: []SessionApp{{Subject: "alice", AppName: "wiki", AppID: "a1"}}},
				{ID: "s2", IP: "10.1.1.2", LoginTime: time.Unix(1500, 0), LastAccessTime: time.Unix(1600, 0), UserAgent: "Mozilla/5.0 (iPhone) Mobile Safari/604.1"},
				{ID: "s3", IP: "10.1.1.3", LoginTime: time.Unix(1700, 0), LastAccessTime: time.Unix(3000, 0), UserAgent: "Firefox/118.0 Linux"},
			},
		},
		SecretsByAlias:  map[string]string{"risk-api-key": "s3cr3t"},
		LibrariesByName: map[string]string{"helpers.js": "module.exports = { double: function (n) { return n * 2; }, tag: 'lib' };"},
	}
}

// twoSteps is a flow with a password step and a second-factor step.
func twoSteps() []StepConfig {
	return []StepConfig{
		{Number: 1, Options: []AuthOption{{Authenticator: "password"}, {Authenticator: "identifier_first"}, {IDP: "google"}}},
		{Number: 2, Options: []AuthOption{{Authenticator: "totp"}, {Authenticator: "email_otp"}, {Authenticator: "webauthn"}}},
	}
}

func step(n int, ok bool, user string) Entry {
	en := Entry{Kind: EntryStep, Step: n, Success: ok}
	if user != "" {
		en.Subject = &Subject{ID: user, Username: map[string]string{"u1": "alice", "u2": "bob", "u3": "carol"}[user]}
	}
	return en
}

func newEngine(t testing.TB, mod func(*Options)) *Engine {
	t.Helper()
	opt := Options{Host: testHost(), CookieKey: []byte("0123456789abcdef0123456789abcdef")}
	if mod != nil {
		mod(&opt)
	}
	e, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustCompile(t testing.TB, e *Engine, src string) *Script {
	t.Helper()
	s, err := e.Compile(t.Name(), src)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

func eval(t testing.TB, e *Engine, s *Script, in Input) Decision {
	t.Helper()
	d, err := e.Evaluate(context.Background(), s, in)
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return d
}

// logs returns the messages of d's log lines, joined by "|".
func logs(d Decision) string {
	var ms []string
	for _, l := range d.Logs {
		ms = append(ms, l.Message)
	}
	return strings.Join(ms, "|")
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

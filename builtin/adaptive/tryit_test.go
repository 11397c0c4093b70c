package adaptive

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/fault"
)

func TestTryItJSON(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name     string
		body     string
		wantErr  string // a fault.InvalidRequest message substring
		wantFlow string
		wantKind ErrorKind
		line     int
	}{
		{name: "a failed step without onFail ends the login", body: `{
			"script": "function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) { if (hasRole(c.currentKnownSubject, 'admin')) { executeStep(2); } }}); }",
			"input": {"steps": [{"number": 1, "options": [{"authenticator": "password"}]}, {"number": 2, "options": [{"authenticator": "totp"}]}]},
			"directory": {"users": {"u9": {"username": "zoe", "roles": ["admin"]}}},
			"outcomes": {"steps": {"1": [{"success": false}, {"success": true, "subject": {"id": "u9"}}], "2": [{"success": true, "subject": {"id": "u9"}}]}}
		}`, wantFlow: "step1 fail:access_denied"},
		{name: "retry then success", body: `{
			"script": "function onLoginRequest(c) { executeStep(1, {onFail: function () { executeStep(1, {onSuccess: function (c) { executeStep(2); }}); }, onSuccess: function () { executeStep(2); }}); }",
			"input": {"steps": [{"number": 1, "options": [{"authenticator": "password"}]}, {"number": 2, "options": [{"authenticator": "totp"}]}]},
			"directory": {"users": {"u9": {"username": "zoe", "roles": ["admin"]}}},
			"outcomes": {"steps": {"1": [{"success": false}, {"success": true, "subject": {"id": "u9"}}], "2": [{"success": true, "subject": {"id": "u9"}}]}}
		}`, wantFlow: "step1 step1 step2 complete(u9)"},
		{name: "default flow", body: `{"input": {"steps": [{"number": 1, "options": [{"authenticator": "password"}]}]},
			"outcomes": {"steps": {"1": [{"success": true, "subject": {"id": "u1"}}]}}}`, wantFlow: "step1 complete(u1)"},
		{name: "syntax error with position", body: `{"script": "function onLoginRequest(c) {\n  executeStep(1,;\n}"}`, wantKind: KindSyntax, line: 2},
		{name: "runtime error with position", body: `{"script": "function onLoginRequest(c) {\n\n  executeStep(9);\n}", "input": {"steps": [{"number": 1, "options": [{"authenticator": "password"}]}]}}`, wantKind: KindRuntime, line: 3},
		{name: "missing outcome", body: `{"script": "function onLoginRequest(c) { executeStep(1); }", "input": {"steps": [{"number": 1, "options": [{"authenticator": "password"}]}]}}`,
			wantFlow: "step1 error:history", wantKind: KindHistory},
		{name: "unknown field", body: `{"scrpt": "x"}`, wantErr: "unknown field"},
		{name: "not JSON", body: `{"script": `, wantErr: "decoding the try-it request"},
		{name: "trailing data", body: `{} {}`, wantErr: "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.TryItJSON(context.Background(), []byte(tt.body))
			if tt.wantErr != "" {
				if !errors.Is(err, fault.InvalidRequest) || !strings.Contains(fault.From(err).Message, tt.wantErr) {
					t.Fatalf("err = %v, want invalid request %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res TryItResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			if tt.wantFlow != "" && flowOf(res) != tt.wantFlow {
				t.Errorf("flow = %q, want %q", flowOf(res), tt.wantFlow)
			}
			if tt.wantKind != "" {
				if res.Error == nil || res.Error.Kind != tt.wantKind || res.Error.Line != tt.line {
					t.Errorf("error = %+v, want kind %s line %d", res.Error, tt.wantKind, tt.line)
				}
			} else if res.Error != nil {
				t.Errorf("unexpected error %+v", res.Error)
			}
		})
	}
}

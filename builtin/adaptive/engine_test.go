package adaptive

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/fault"
)

func TestCompile(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name       string
		src        string
		wantKind   ErrorKind
		wantDetail string
		line, col  int
	}{
		{name: "ok", src: "var onLoginRequest = function (context) { executeStep(1); };"},
		{name: "onInitialRequest", src: "function onInitialRequest(context) { executeStep(1); }"},
		{name: "strict mode and const", src: "'use strict';\nconst roles = ['admin'];\nfunction onLoginRequest(c) { executeStep(1); }"},
		{name: "syntax error", src: "var onLoginRequest = function (context) {\n  executeStep(1;\n};", wantKind: KindSyntax, line: 2, col: 16},
		{name: "syntax error on line 1", src: "var x = ;", wantKind: KindSyntax, line: 1, col: 9},
		{name: "escape the wrapper", src: "}); (function(){", wantKind: KindSyntax},
		{name: "top-level return", src: "return 1;", wantKind: KindSyntax},
		{name: "no handler", src: "var x = 1;", wantKind: KindSyntax, wantDetail: "neither onLoginRequest nor onInitialRequest"},
		{name: "top-level throw", src: "throw new Error('boom');\nfunction onLoginRequest(c) {}", wantKind: KindRuntime, wantDetail: "boom"},
		{name: "top-level API call", src: "executeStep(1);\nfunction onLoginRequest(c) {}", wantKind: KindRuntime, wantDetail: "not in top-level code"},
		{name: "top-level endless loop", src: "while (true) {}\nfunction onLoginRequest(c) {}", wantKind: KindTimeout},
		{name: "source map comment is not loaded", src: "function onLoginRequest(c) {}\n//# sourceMappingURL=/etc/passwd"},
		{name: "require is refused", src: "var fs = require('fs');\nfunction onLoginRequest(c) {}", wantKind: KindRuntime, wantDetail: "require is not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := e.Compile("t.js", tt.src)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if s.Name() != "t.js" {
					t.Errorf("Name = %q", s.Name())
				}
				return
			}
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Compile error = %v, want a ScriptError", err)
			}
			if !errors.Is(err, fault.InvalidRequest) {
				t.Errorf("Compile error is not an invalid-request fault: %v", err)
			}
			if se.Kind != tt.wantKind {
				t.Errorf("kind = %s, want %s (%v)", se.Kind, tt.wantKind, se)
			}
			if !strings.Contains(se.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", se.Detail, tt.wantDetail)
			}
			if tt.line != 0 && (se.Line != tt.line || se.Column != tt.col) {
				t.Errorf("position = %d:%d, want %d:%d", se.Line, se.Column, tt.line, tt.col)
			}
		})
	}
}

func TestExecutionModel(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name    string
		src     string // "" runs the default flow
		steps   []StepConfig
		history []Entry
		acr     []string
		want    Decision // compared on Kind, Step.Number, Step.Options, Error, Subject.ID, SelectedACR
		wantLog string
		wantErr ErrorKind
	}{
		{name: "default flow starts at step 1", history: nil,
			want: Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 1, Options: twoSteps()[0].Options}}},
		{name: "default flow goes on to step 2", history: []Entry{step(1, true, "u1")},
			want: Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 2, Options: twoSteps()[1].Options}}},
		{name: "default flow completes", history: []Entry{step(1, true, "u1"), step(2, true, "u1")},
			want: Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u1"}}},
		{name: "default flow fails on a failed step", history: []Entry{step(1, false, "")},
			want: Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied", Message: "authentication failed"}}},
		{name: "steps queued at the top level run in order",
			src:     "function onLoginRequest(c) { executeStep(1); executeStep(2); }",
			history: []Entry{step(1, true, "u1")},
			want:    Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 2, Options: twoSteps()[1].Options}}},
		{name: "steps scheduled in a callback run before the outer queue",
			src: `function onLoginRequest(c) {
				executeStep(1, {onSuccess: function (c) { Log.info('s1'); executeStep(2, {onSuccess: function () { Log.info('inner 2'); }}); }});
				executeStep(2, {onSuccess: function () { Log.info('outer 2'); }});
			}`,
			history: []Entry{step(1, true, "u1"), step(2, true, "u1")},
			want:    Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 2, Options: twoSteps()[1].Options}},
			wantLog: "inner 2"},
		{name: "a failure without onFail fails the login",
			src:     "function onLoginRequest(c) { executeStep(1, {onSuccess: function () {}}); executeStep(2); }",
			history: []Entry{step(1, false, "u2")},
			want:    Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied", Message: "authentication failed"}}},
		{name: "onFail can retry; the outer queue is dropped",
			src: `function onLoginRequest(c) {
				executeStep(1, {onFail: function (c) { Log.info('failed user ' + c.lastLoginFailedUser.username); executeStep(1); }});
				executeStep(2);
			}`,
			history: []Entry{step(1, false, "u2"), step(1, true, "u1")},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u1"}}},
		{name: "fail with parameters",
			src:     "function onLoginRequest(c) { executeStep(1, {onSuccess: function () { fail({errorCode: 'login_required', errorMessage: 'no', errorURI: 'https://x/e'}); executeStep(2); }}); }",
			history: []Entry{step(1, true, "u1")},
			want:    Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "login_required", Message: "no", URI: "https://x/e"}}},
		{name: "fail without parameters",
			src:  "function onLoginRequest(c) { fail(); }",
			want: Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied"}}},
		{name: "sendError",
			src:  "function onLoginRequest(c) { sendError('https://errors.example.com/p', {i18nkey: 'denied', n: 3}); }",
			want: Decision{Kind: DecisionSendError, Error: &ErrorDecision{URL: "https://errors.example.com/p", Params: map[string]string{"i18nkey": "denied", "n": "3"}}}},
		{name: "no step means no login",
			src:  "function onLoginRequest(c) { }",
			want: Decision{Kind: DecisionFail, Error: &ErrorDecision{Code: "access_denied", Message: "no step authenticated the user"}}},
		{name: "authenticationOptions narrow the step, WSO2 names accepted",
			src:     "function onLoginRequest(c) { executeStep(1); executeStep(2, {authenticationOptions: [{authenticator: 'FIDOAuthenticator'}, {authenticator: 'totp'}]}, {}); }",
			history: []Entry{step(1, true, "u1")},
			want:    Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 2, Options: []AuthOption{{Authenticator: "webauthn"}, {Authenticator: "totp"}}}}},
		{name: "options with two arguments",
			src:  "function onLoginRequest(c) { executeStep(1, {authenticationOptions: [{idp: 'google'}]}); }",
			want: Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 1, Options: []AuthOption{{IDP: "google"}}}}},
		{name: "an option the step does not offer is an error",
			src:     "function onLoginRequest(c) { executeStep(1, {authenticationOptions: [{authenticator: 'totp'}]}, {}); }",
			wantErr: KindRuntime},
		{name: "an unknown step is an error",
			src:     "function onLoginRequest(c) { executeStep(7); }",
			wantErr: KindRuntime},
		{name: "History that does not match",
			src:     "function onLoginRequest(c) { executeStep(1); }",
			history: []Entry{step(2, true, "u1")},
			wantErr: KindHistory},
		{name: "History longer than the script",
			src:     "function onLoginRequest(c) { executeStep(1); }",
			history: []Entry{step(1, true, "u1"), step(2, true, "u1")},
			wantErr: KindHistory},
		{name: "step done with an authenticator the script did not offer",
			src:     "function onLoginRequest(c) { executeStep(1); executeStep(2, {authenticationOptions: [{authenticator: 'totp'}]}, {}); }",
			history: []Entry{step(1, true, "u1"), {Kind: EntryStep, Step: 2, Success: true, Subject: &Subject{ID: "u1"}, Authenticator: "email-otp-authenticator"}},
			wantErr: KindHistory},
		{name: "successful step without subject",
			src:     "function onLoginRequest(c) { executeStep(1); }",
			history: []Entry{{Kind: EntryStep, Step: 1, Success: true}},
			wantErr: KindHistory},
		{name: "subject step marked by stepOptions",
			src:     "function onLoginRequest(c) { executeStep(1); executeStep(2, {stepOptions: {markAsSubjectIdentifierStep: 'true'}}, {}); }",
			history: []Entry{step(1, true, "u1"), step(2, true, "u2")},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u2"}}},
		{name: "subject step from the configuration",
			steps:   []StepConfig{{Number: 1, Options: []AuthOption{{Authenticator: "password"}}}, {Number: 2, Options: []AuthOption{{Authenticator: "totp"}}, SubjectStep: true}},
			history: []Entry{step(1, true, "u1"), step(2, true, "u2")},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u2"}}},
		{name: "selectAcrFrom and selectedAcr",
			src:  "function onLoginRequest(c) { c.selectedAcr = selectAcrFrom(c, ['mfa', 'pwd']); executeStep(1); }",
			acr:  []string{"pwd", "mfa"},
			want: Decision{Kind: DecisionExecuteStep, Step: &StepDecision{Number: 1, Options: twoSteps()[0].Options}, SelectedACR: "mfa"}},
		{name: "context fields",
			src: `function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) {
				var s = c.steps[1];
				Log.info([c.serviceProviderName, c.tenantDomain, c.currentStep, s.authenticator, s.idp, s.subject.username,
					c.currentKnownSubject.uniqueId, c.lastAuthenticatedUser.username, c.steps[2].subject, c.requestedAcr.length].join(','));
			}}); }`,
			history: []Entry{{Kind: EntryStep, Step: 1, Success: true, Subject: &Subject{ID: "u1", Username: "alice"}, Authenticator: "BasicAuthenticator"}},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u1"}},
			wantLog: "wiki,carbon.super,1,password,LOCAL,alice,u1,alice,,0"},
		{name: "prompt, answers in params",
			src: `function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) {
				prompt('genericForm', {inputs: [{id: 'reason', label: 'Why?'}]}, {onSuccess: function (c, data) {
					Log.info(c.request.params.reason[0] + '/' + data.reason[0]);
				}});
			}}); }`,
			history: []Entry{step(1, true, "u1"), {Kind: EntryPrompt, Success: true, Values: map[string][]string{"reason": {"audit"}}}},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u1"}},
			wantLog: "audit/audit"},
		{name: "prompt shown",
			src:     "function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) { prompt('genericForm', {inputs: [{id: 'x'}]}, {onSuccess: function () {}}); }}); }",
			history: []Entry{step(1, true, "u1")},
			want:    Decision{Kind: DecisionPrompt, Prompt: &PromptDecision{Template: "genericForm"}}},
		{name: "prompt skipped goes to onSkip",
			src:     "function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) { prompt('t', {}, {onSuccess: function () {}, onSkip: function () { Log.info('skipped'); }}); }}); }",
			history: []Entry{step(1, true, "u1"), {Kind: EntryPrompt, Success: false}},
			want:    Decision{Kind: DecisionComplete, Subject: &Subject{ID: "u1"}},
			wantLog: "skipped"},
		{name: "a throw",
			src:     "function onLoginRequest(c) { executeStep(1, {onSuccess: function (c) { throw new Error('bad data'); }}); }",
			history: []Entry{step(1, true, "u1")},
			wantErr: KindRuntime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *Script
			if tt.src != "" {
				s = mustCompile(t, e, tt.src)
			}
			steps := tt.steps
			if steps == nil {
				steps = twoSteps()
			}
			in := Input{Steps: steps, History: tt.history, RequestedACRs: tt.acr, ServiceProvider: "wiki", TenantDomain: "carbon.super"}
			d, err := e.Evaluate(context.Background(), s, in)
			if tt.wantErr != "" {
				var se *ScriptError
				if !errors.As(err, &se) || se.Kind != tt.wantErr {
					t.Fatalf("err = %v, want a %s ScriptError", err, tt.wantErr)
				}
				if f := fault.From(err); f.Message != UserMessage {
					t.Errorf("user message = %q", f.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if d.Kind != tt.want.Kind {
				t.Fatalf("kind = %s, want %s (%s)", d.Kind, tt.want.Kind, js(d))
			}
			if tt.want.Step != nil && (d.Step.Number != tt.want.Step.Number || js(d.Step.Options) != js(tt.want.Step.Options)) {
				t.Errorf("step = %s, want %s", js(d.Step), js(tt.want.Step))
			}
			if tt.want.Error != nil && js(d.Error) != js(tt.want.Error) {
				t.Errorf("error = %s, want %s", js(d.Error), js(tt.want.Error))
			}
			if tt.want.Subject != nil && (d.Subject == nil || d.Subject.ID != tt.want.Subject.ID) {
				t.Errorf("subject = %s, want %s", js(d.Subject), tt.want.Subject.ID)
			}
			if tt.want.Prompt != nil && d.Prompt.Template != tt.want.Prompt.Template {
				t.Errorf("prompt = %s", js(d.Prompt))
			}
			if d.SelectedACR != tt.want.SelectedACR {
				t.Errorf("selectedAcr = %q, want %q", d.SelectedACR, tt.want.SelectedACR)
			}
			if got := logs(d); got != tt.wantLog {
				t.Errorf("logs = %q, want %q", got, tt.wantLog)
			}
		})
	}
}

package adaptive

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// flowOf summarises a try-it run: the steps asked for, prompts shown,
// effects and the end, e.g. "step1 step2 complete(u1)".
func flowOf(res TryItResult) string {
	var parts []string
	for _, d := range res.Decisions {
		switch d.Kind {
		case DecisionExecuteStep:
			parts = append(parts, "step"+strconv.Itoa(d.Step.Number))
		case DecisionPrompt:
			parts = append(parts, "prompt:"+d.Prompt.Template)
		case DecisionComplete:
			parts = append(parts, "complete("+d.Subject.ID+")")
		case DecisionFail:
			parts = append(parts, "fail:"+d.Error.Code)
		case DecisionSendError:
			parts = append(parts, "send_error:"+d.Error.Params["i18nkey"])
		}
		for _, ef := range d.Effects {
			parts = append(parts, "+"+string(ef.Kind))
		}
	}
	if res.Error != nil {
		parts = append(parts, "error:"+string(res.Error.Kind))
	}
	return strings.Join(parts, " ")
}

func okStep(user string) []Entry {
	return []Entry{{Success: true, Subject: &Subject{ID: user}}}
}

// TestTemplates runs every bundled template, unchanged, through synthetic
// logins.
func TestTemplates(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.HTTPAllow = []string{"risk.example.com"} })
	deviceCookie := e.signCookie("latch-known-device", "u1")
	both := func(user string) map[string][]Entry {
		return map[string][]Entry{"1": okStep(user), "2": okStep(user)}
	}
	tests := []struct {
		template string
		name     string
		req      Request
		outcomes TryItOutcomes
		want     string
	}{
		{"role-based", "admin gets a second factor", Request{}, TryItOutcomes{Steps: both("u1")}, "step1 step2 complete(u1)"},
		{"role-based", "staff does not", Request{}, TryItOutcomes{Steps: both("u2")}, "step1 complete(u2)"},
		{"role-based", "failed password", Request{}, TryItOutcomes{Steps: map[string][]Entry{"1": {{Success: false}}}}, "step1 fail:access_denied"},
		{"group-based", "ops member gets a second factor", Request{}, TryItOutcomes{Steps: both("u1")}, "step1 step2 complete(u1)"},
		{"group-based", "contractor goes straight in", Request{}, TryItOutcomes{Steps: both("u2")}, "step1 complete(u2)"},
		{"group-based", "visitor is refused", Request{}, TryItOutcomes{Steps: both("u3")}, "step1 send_error:login.group.denied"},
		{"ip-based", "office network", Request{IP: "10.20.30.40"}, TryItOutcomes{Steps: both("u2")}, "step1 complete(u2)"},
		{"ip-based", "home network", Request{IP: "198.51.100.7"}, TryItOutcomes{Steps: both("u2")}, "step1 step2 complete(u2)"},
		{"ip-based", "IPv6 is not trusted", Request{IP: "2001:db8::1"}, TryItOutcomes{Steps: both("u2")}, "step1 step2 complete(u2)"},
		{"new-device", "unknown device: second factor, then remembered", Request{}, TryItOutcomes{Steps: both("u1")}, "step1 step2 complete(u1) +set_cookie"},
		{"new-device", "known device", Request{Cookies: map[string]string{"latch-known-device": deviceCookie}}, TryItOutcomes{Steps: both("u1")}, "step1 complete(u1)"},
		{"new-device", "another user's device", Request{Cookies: map[string]string{"latch-known-device": deviceCookie}}, TryItOutcomes{Steps: both("u2")}, "step1 step2 complete(u2) +set_cookie"},
		{"new-device", "forged cookie", Request{Cookies: map[string]string{"latch-known-device": "u1.Zm9yZ2Vk"}}, TryItOutcomes{Steps: both("u1")}, "step1 step2 complete(u1) +set_cookie"},
		{"risk-based", "low risk", Request{IP: "198.51.100.7"}, TryItOutcomes{Steps: both("u1"),
			HTTP: map[string]Entry{"https://risk.example.com/v1/score": {Status: 200, Body: `{"score": 10}`}}}, "step1 complete(u1)"},
		{"risk-based", "high risk", Request{IP: "198.51.100.7"}, TryItOutcomes{Steps: both("u1"),
			HTTP: map[string]Entry{"https://risk.example.com/v1/score": {Status: 200, Body: `{"score": 90}`}}}, "step1 step2 complete(u1)"},
		{"risk-based", "risk service down fails closed", Request{}, TryItOutcomes{Steps: both("u1"),
			HTTP: map[string]Entry{"https://risk.example.com/v1/score": {Status: 503, Body: "busy"}}}, "step1 fail:temporarily_unavailable"},
		{"session-limit", "under the limit", Request{}, TryItOutcomes{Steps: both("u2")}, "step1 complete(u2)"},
		{"session-limit", "at the limit, ends one session", Request{}, TryItOutcomes{Steps: both("u1"),
			Prompts: map[string][]Entry{"sessionSelection": {{Success: true, Values: map[string][]string{"terminate": {"s2"}}}}}},
			"step1 prompt:sessionSelection complete(u1) +terminate_session"},
		{"session-limit", "at the limit, ends none", Request{}, TryItOutcomes{Steps: both("u1"),
			Prompts: map[string][]Entry{"sessionSelection": {{Success: true, Values: map[string][]string{}}}}},
			"step1 prompt:sessionSelection fail:access_denied"},
		{"session-limit", "at the limit, cancels", Request{}, TryItOutcomes{Steps: both("u1"),
			Prompts: map[string][]Entry{"sessionSelection": {{Success: false}}}},
			"step1 prompt:sessionSelection fail:access_denied"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.template+"/"+tt.name, func(t *testing.T) {
			tpl, ok := TemplateByName(tt.template)
			if !ok {
				t.Fatalf("no template %q", tt.template)
			}
			seen[tt.template] = true
			res, err := e.TryIt(context.Background(), TryItRequest{
				Script:    tpl.Source,
				Input:     Input{FlowID: "f", Steps: twoSteps(), Request: tt.req, ServiceProvider: "wiki"},
				Directory: *testHost(),
				Outcomes:  tt.outcomes,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := flowOf(res); got != tt.want {
				t.Errorf("flow = %q, want %q (error: %+v)", got, tt.want, res.Error)
			}
		})
	}
	for _, tpl := range Templates() {
		if !seen[tpl.Name] {
			t.Errorf("template %s has no test", tpl.Name)
		}
		if tpl.Title == "" || tpl.Description == "" {
			t.Errorf("template %s has no title or description", tpl.Name)
		}
	}
}

// TestWSO2ShapedScripts runs scripts written in the shape of the
// published WSO2 conditional-authentication templates (written for this
// project), with WSO2 authenticator names and API habits, unchanged.
func TestWSO2ShapedScripts(t *testing.T) {
	e := newEngine(t, nil)
	scripts := map[string]string{
		"role-based": `
var rolesToStepUp = ['admin', 'manager'];
var onLoginRequest = function(context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.steps[1].subject;
            var isAdmin = hasAnyOfTheRoles(user, rolesToStepUp);
            Log.info('--------------- Has Admin ' + isAdmin);
            if (isAdmin) {
                executeStep(2, {authenticationOptions: [{authenticator: 'totp'}]}, {});
            }
        }
    });
};`,
		"group-based": `
var groups = ['ops'];
var onLoginRequest = function(context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.steps[1].subject;
            var isMember = isMemberOfAnyOfGroups(user, groups);
            if (isMember) {
                executeStep(2);
            }
        }
    });
};`,
		"ip-based": `
var corpNetwork = ['10.'];
var onLoginRequest = function(context) {
    executeStep(1, {
        onSuccess: function (context) {
            var ip = context.request.ip;
            var inside = false;
            for (var i in corpNetwork) { if (ip.indexOf(corpNetwork[i]) === 0) { inside = true; } }
            if (!inside) {
                executeStep(2, {authenticationOptions: [{authenticator: 'email-otp-authenticator'}]}, {});
            }
        }
    });
};`,
		"new-device": `
var onLoginRequest = function(context) {
    executeStep(1, {
        onSuccess: function (context) {
            var subject = context.currentKnownSubject;
            var deviceId = getCookieValue(context.request, 'deviceid', {'decrypt': true});
            if (deviceId !== subject.uniqueId) {
                executeStep(2, {
                    onSuccess: function (context) {
                        setCookie(context.response, 'deviceid', subject.uniqueId, {'max-age': 31536000, 'path': '/', 'encrypt': true});
                        sendEmail(subject, 'new-device-login', {'ip': context.request.ip});
                    }
                });
            }
        }
    });
};`,
		"session-limit": `
var maxSessionCount = 2;
var onLoginRequest = function(context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            if (!isWithinSessionLimit(context, {'MaxSessionCount': maxSessionCount})) {
                var sessions = getUserSessions(user);
                for (var i = 0; i < sessions.length - maxSessionCount + 1; i++) {
                    terminateUserSession(user, sessions[i].id);
                }
            }
        }
    });
};`,
		"acr-based": `
var supportedAcrValues = ['acr1', 'acr2'];
var onLoginRequest = function(context) {
    var selectedAcr = selectAcrFrom(context, supportedAcrValues);
    Log.info('--------------- ACR selected: ' + selectedAcr);
    context.selectedAcr = selectedAcr;
    switch (selectedAcr) {
        case supportedAcrValues[0]:
            executeStep(1);
            break;
        case supportedAcrValues[1]:
            executeStep(1);
            executeStep(2);
            break;
        default:
            executeStep(1);
            executeStep(2);
    }
};`,
	}
	tests := []struct {
		script string
		name   string
		req    Request
		acr    []string
		user   string
		want   string
	}{
		{"role-based", "admin", Request{}, nil, "u1", "step1 step2 complete(u1)"},
		{"role-based", "staff", Request{}, nil, "u2", "step1 complete(u2)"},
		{"group-based", "ops", Request{}, nil, "u1", "step1 step2 complete(u1)"},
		{"group-based", "others", Request{}, nil, "u2", "step1 complete(u2)"},
		{"ip-based", "inside", Request{IP: "10.1.2.3"}, nil, "u2", "step1 complete(u2)"},
		{"ip-based", "outside", Request{IP: "192.0.2.1"}, nil, "u2", "step1 step2 complete(u2)"},
		{"new-device", "first time", Request{}, nil, "u1", "step1 step2 complete(u1) +set_cookie +send_email"},
		{"session-limit", "over the limit", Request{}, nil, "u1", "step1 complete(u1) +terminate_session +terminate_session"},
		{"session-limit", "under", Request{}, nil, "u2", "step1 complete(u2)"},
		{"acr-based", "acr1", Request{}, []string{"acr1"}, "u1", "step1 complete(u1)"},
		{"acr-based", "acr2", Request{}, []string{"acr2"}, "u1", "step1 step2 complete(u1)"},
	}
	for _, tt := range tests {
		t.Run(tt.script+"/"+tt.name, func(t *testing.T) {
			res, err := e.TryIt(context.Background(), TryItRequest{
				Script:    scripts[tt.script],
				Input:     Input{Steps: twoSteps(), Request: tt.req, RequestedACRs: tt.acr},
				Directory: *testHost(),
				Outcomes:  TryItOutcomes{Steps: map[string][]Entry{"1": okStep(tt.user), "2": okStep(tt.user)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := flowOf(res); got != tt.want {
				t.Errorf("flow = %q, want %q (error: %+v)", got, tt.want, res.Error)
			}
		})
	}
}

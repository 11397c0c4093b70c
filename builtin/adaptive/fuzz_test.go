package adaptive

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

const typicalScript = `var onLoginRequest = function (context) {
  executeStep(1, {
    onSuccess: function (context) {
      var who = context.steps[1].subject;
      var fromOffice = context.request.ip.indexOf('10.') === 0;
      if (hasAnyOfTheRoles(who, ['admin']) || !fromOffice) {
        executeStep(2, { authenticationOptions: [{ authenticator: 'totp' }] }, {});
      }
    },
    onFail: function (context) {
      sendError(null, { i18nkey: 'login.failed' });
    }
  });
};`

// FuzzEvaluate feeds arbitrary Input JSON (steps, request, history) to a
// typical script and to the default flow: Evaluate must return a decision
// or an error, never panic.
func FuzzEvaluate(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"steps":[{"number":1,"options":[{"authenticator":"password"}]},{"number":2,"options":[{"authenticator":"totp"}]}],"request":{"ip":"10.0.0.1"}}`,
		`{"steps":[{"number":1,"options":[{"authenticator":"password"}]},{"number":2,"options":[{"authenticator":"totp"}]}],"request":{"ip":"1.2.3.4","headers":{"User-Agent":"x"}},"history":[{"kind":"step","step":1,"success":true,"subject":{"id":"u1"}}]}`,
		`{"steps":[{"number":1,"options":[{"authenticator":"password"}]}],"history":[{"kind":"step","step":1,"success":false},{"kind":"http","url":"x"}]}`,
		`{"steps":[{"number":1,"options":[]}],"history":[{"kind":"prompt","values":{"a":["b"]}},{"kind":"step","step":1,"success":true,"subject":{"id":""}}]}`,
		`{"steps":[{"number":-1},{"number":1}],"requested_acr":["a"],"history":[{"kind":"step","step":1,"success":true,"subject":{"id":"u2","claims":{"a":"b"}},"authenticator":"BasicAuthenticator"}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := newEngine(f, func(o *Options) { o.TimeLimit = 100 * time.Millisecond })
	s := mustCompile(f, e, typicalScript)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Input
		if err := json.Unmarshal(data, &in); err != nil {
			return
		}
		for _, sc := range []*Script{s, nil} {
			d, err := e.Evaluate(context.Background(), sc, in)
			if err == nil && d.Kind == "" {
				t.Fatalf("no decision and no error for %s", data)
			}
		}
	})
}

// FuzzTryItJSON feeds arbitrary try-it requests, scripts included: the
// handler must answer a result or an error, never panic.
func FuzzTryItJSON(f *testing.F) {
	f.Add([]byte(`{"script":"function onLoginRequest(c){executeStep(1)}","input":{"steps":[{"number":1,"options":[{"authenticator":"password"}]}]},"outcomes":{"steps":{"1":[{"success":true,"subject":{"id":"u1"}}]}}}`))
	f.Add([]byte(`{"script":"function onLoginRequest(c){prompt('p',{a:1},{onSuccess:function(c,d){Log.info(d.x)}})}","outcomes":{"prompts":{"p":[{"success":true,"values":{"x":["1"]}}]}}}`))
	f.Add([]byte(`{"script":"function onLoginRequest(c){httpGet('https://a.example/x',{onSuccess:function(c,d){fail()}})}","outcomes":{"http":{"https://a.example/x":{"status":200,"body":"{}"}}}}`))
	f.Add([]byte(`{"script":"}{"}`))
	e := newEngine(f, func(o *Options) { o.TimeLimit = 50 * time.Millisecond; o.HTTPAllow = []string{"a.example"} })
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := e.TryItJSON(context.Background(), data)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
	})
}

package adaptive_test

import (
	"context"
	"fmt"

	"github.com/latchid/latch/builtin/adaptive"
)

// The lead's login flow calls Evaluate once per request, appending what
// happened to the History each time.
func ExampleEngine_Evaluate() {
	eng, err := adaptive.New(adaptive.Options{Host: &adaptive.StaticHost{
		UsersByID: map[string]adaptive.User{"u1": {Username: "alice", Roles: []string{"admin"}}},
	}})
	if err != nil {
		panic(err)
	}
	script, err := eng.Compile("admins-need-totp", `
		function onLoginRequest(context) {
			executeStep(1, {onSuccess: function (context) {
				if (hasRole(context.currentKnownSubject, 'admin')) { executeStep(2); }
			}});
		}`)
	if err != nil {
		panic(err)
	}
	in := adaptive.Input{Steps: []adaptive.StepConfig{
		{Number: 1, Options: []adaptive.AuthOption{{Authenticator: "password"}}},
		{Number: 2, Options: []adaptive.AuthOption{{Authenticator: "totp"}}},
	}}
	for _, outcome := range []adaptive.Entry{
		{Kind: adaptive.EntryStep, Step: 1, Success: true, Subject: &adaptive.Subject{ID: "u1", Username: "alice"}},
		{Kind: adaptive.EntryStep, Step: 2, Success: true, Subject: &adaptive.Subject{ID: "u1", Username: "alice"}},
		{},
	} {
		d, err := eng.Evaluate(context.Background(), script, in)
		if err != nil {
			panic(err)
		}
		switch d.Kind {
		case adaptive.DecisionExecuteStep:
			fmt.Println("run step", d.Step.Number, "with", d.Step.Options[0].Authenticator)
		case adaptive.DecisionComplete:
			fmt.Println("logged in as", d.Subject.Username)
		}
		in.History = append(in.History, d.Record...)
		in.History = append(in.History, outcome)
	}
	// Output:
	// run step 1 with password
	// run step 2 with totp
	// logged in as alice
}

package abi

import (
	"sync"
	"sync/atomic"
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/fault"
)

// Misbehaviour is one way a module breaks down, provoked by Request.
type Misbehaviour struct {
	// Name names the case ("endless loop").
	Name string
	// Request makes the module misbehave.
	Request latchabi.AuthenticateRequest
	// WantCode is the fault code the call must fail with; empty: any
	// error.
	WantCode fault.Code
	// Refusal accepts, instead of an error, an answer that is not
	// authenticated (a guest that is refused a host call and carries on);
	// WantReason, when set, is the reason it must give.
	Refusal    bool
	WantReason string
}

// RobustnessCases are a module's healthy request and the misbehaviours it
// can be made to show.
type RobustnessCases struct {
	// Healthy must authenticate as Subject, before, during and after every
	// misbehaviour.
	Healthy latchabi.AuthenticateRequest
	Subject string
	// Misbehaviours are provoked one at a time.
	Misbehaviours []Misbehaviour
}

// healthyWorkers is how many goroutines keep calling Healthy while a
// misbehaviour runs; the module needs one more instance than this to serve
// them beside the misbehaving call.
const healthyWorkers = 2

// RunRobustness checks that a module's failures stay its own: each
// misbehaviour fails its call with the expected fault (or, with Refusal,
// answers without authenticating), never panics the host, and leaves the
// module serving Healthy — on other instances while it runs, and on a
// fresh instance after. a is an instance of the module's authenticator
// loaded with room for healthyWorkers+1 concurrent calls (MaxInstances 3 or
// more).
func RunRobustness(t *testing.T, a authn.Authenticator, cases RobustnessCases) {
	t.Helper()
	healthy := func() error {
		resp, err := authn.Check(a.Authenticate(t.Context(), cloneAuthenticateRequest(cases.Healthy)))
		if err != nil {
			return err
		}
		if resp.Outcome != latchabi.OutcomeAuthenticated || (cases.Subject != "" && resp.Subject != cases.Subject) {
			return fault.Internal.WithMessagef("healthy request: outcome %q subject %q", resp.Outcome, resp.Subject)
		}
		return nil
	}
	if err := healthy(); err != nil {
		t.Fatalf("before any misbehaviour: %v", err)
	}
	for _, m := range cases.Misbehaviours {
		t.Run(m.Name, func(t *testing.T) {
			var (
				stop    atomic.Bool
				served  atomic.Int64
				wg      sync.WaitGroup
				mu      sync.Mutex
				failure error
			)
			for range healthyWorkers {
				wg.Go(func() {
					for !stop.Load() {
						if err := healthy(); err != nil {
							mu.Lock()
							failure = err
							mu.Unlock()
							return
						}
						served.Add(1)
					}
				})
			}
			resp, err := authn.Check(a.Authenticate(t.Context(), cloneAuthenticateRequest(m.Request)))
			stop.Store(true)
			wg.Wait()
			switch {
			case err == nil && !m.Refusal:
				t.Errorf("the call succeeded (outcome %q); want it to fail", resp.Outcome)
			case err == nil && resp.Outcome == latchabi.OutcomeAuthenticated:
				t.Errorf("the call authenticated as %q", resp.Subject)
			case err == nil && m.WantReason != "" && resp.Reason != m.WantReason:
				t.Errorf("reason %q, want %q", resp.Reason, m.WantReason)
			case err != nil && m.WantCode != "" && fault.CodeOf(err) != m.WantCode:
				t.Errorf("error %v: code %q, want %q", err, fault.CodeOf(err), m.WantCode)
			}
			if err != nil {
				t.Logf("failed as expected: %.200v", err)
			}
			if failure != nil {
				t.Errorf("a healthy call failed while it ran: %v", failure)
			}
			if err := healthy(); err != nil {
				t.Errorf("a healthy call after it failed: %v", err)
			}
			t.Logf("%d healthy calls served meanwhile", served.Load())
		})
	}
}

package totp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/store"
)

// TestCredentials: an enrolment is listed with its recovery codes left,
// a used recovery code counts down, and deleting it makes the next login
// enrol again.
func TestCredentials(t *testing.T) {
	ctx := context.Background()
	a, now := newAuthenticator(t)
	if cs, err := a.ListCredentials(ctx, "t1", "alice"); err != nil || len(cs) != 0 {
		t.Fatalf("before enrolment: %v %v", cs, err)
	}
	if err := a.DeleteCredential(ctx, "t1", "alice", CredentialID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting nothing: %v", err)
	}
	r := run(t, a, "alice", nil, nil)
	var data map[string]string
	_ = json.Unmarshal(r.Challenge.Data, &data)
	r = run(t, a, "alice", r.State, map[string][]string{"code": {code(t, data["secret"], *now)}})
	if r.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("enrolling: %+v", r)
	}
	cs, err := a.ListCredentials(ctx, "t1", "alice")
	if err != nil || len(cs) != 1 || cs[0].ID != CredentialID || cs[0].Type != "totp" || cs[0].CreatedAt.IsZero() ||
		cs[0].LastUsedAt.IsZero() || cs[0].Details["recovery_codes_left"] != 10 {
		t.Fatalf("credentials: %+v %v", cs, err)
	}
	if b, _ := json.Marshal(cs); strings.Contains(string(b), data["secret"]) {
		t.Fatal("the secret is listed")
	}
	if err := a.DeleteCredential(ctx, "t1", "alice", "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting an unknown id: %v", err)
	}
	if cs, _ := a.ListCredentials(ctx, "t1", "bob"); len(cs) != 0 {
		t.Fatalf("bob has alice's enrolment: %v", cs)
	}
	if err := a.DeleteCredential(ctx, "t1", "alice", CredentialID); err != nil {
		t.Fatal(err)
	}
	if cs, _ := a.ListCredentials(ctx, "t1", "alice"); len(cs) != 0 {
		t.Fatalf("after deleting: %v", cs)
	}
	if r := run(t, a, "alice", nil, nil); r.Outcome != abi.OutcomeChallenge || len(r.Challenge.Data) == 0 {
		t.Fatalf("after deleting, the next login should enrol: %+v", r)
	}
}

package login

import (
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/store"
)

func TestStepSubject(t *testing.T) {
	local := stepSubject(abi.AuthenticateResponse{Subject: "u-1", Claims: map[string]any{"email": "a@local"}}, "alice", "PRIMARY")
	if local.Federated || local.RemoteClaims != nil || local.ID != "u-1" || local.Username != "alice" || local.UserStoreDomain != "PRIMARY" {
		t.Errorf("local step subject %+v", local)
	}
	fed := stepSubject(abi.AuthenticateResponse{Subject: "u-1", Issuer: "https://op", Claims: map[string]any{
		"username": "alice", "idp": "corp", "email": "a@up", "email_verified": true, "groups": []any{"x"}, "age": 42.0,
	}}, "alice", "")
	want := map[string]string{"username": "alice", "idp": "corp", "email": "a@up", "email_verified": "true", "age": "42"}
	if !fed.Federated || !reflect.DeepEqual(fed.RemoteClaims, want) {
		t.Errorf("federated step subject %+v, want remote claims %v", fed, want)
	}
}

func TestAttributeSubject(t *testing.T) {
	pwd := &adaptive.Subject{ID: "u-1"}
	fed := &adaptive.Subject{ID: "u-1", Federated: true}
	other := &adaptive.Subject{ID: "u-2"}
	step := func(n int, s *adaptive.Subject, ok bool) adaptive.Entry {
		return adaptive.Entry{Kind: adaptive.EntryStep, Step: n, Success: ok, Subject: s}
	}
	tests := []struct {
		name    string
		history []adaptive.Entry
		steps   []stepConfig
		want    *adaptive.Subject
	}{
		{"no step", nil, nil, nil},
		{"the first step by default", []adaptive.Entry{step(1, pwd, true), step(2, fed, true)}, []stepConfig{{}, {}}, pwd},
		{"the marked attribute step", []adaptive.Entry{step(1, pwd, true), step(2, fed, true)}, []stepConfig{{}, {AttributeStep: true}}, fed},
		{"the subject step when none is marked", []adaptive.Entry{step(1, other, true), step(2, fed, true)}, []stepConfig{{}, {SubjectStep: true}}, fed},
		{"a failed step does not count", []adaptive.Entry{step(1, pwd, true), step(2, fed, false)}, []stepConfig{{}, {AttributeStep: true}}, pwd},
		{"prompts do not count", []adaptive.Entry{{Kind: adaptive.EntryPrompt, Success: true}, step(1, pwd, true)}, []stepConfig{{AttributeStep: true}}, pwd},
		{"a step beyond the configuration is not marked", []adaptive.Entry{step(1, pwd, true), step(3, fed, true)}, []stepConfig{{}}, pwd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := attributeSubject(tc.history, tc.steps); got != tc.want {
				t.Errorf("attributeSubject = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReleasedAttributes(t *testing.T) {
	if got := releasedAttributes(&adaptive.Subject{ID: "u-1", RemoteClaims: map[string]string{"email": "a@up"}}); got != nil {
		t.Errorf("a local subject released %v", got)
	}
	if got := releasedAttributes(nil); got != nil {
		t.Errorf("no subject released %v", got)
	}
	got := releasedAttributes(&adaptive.Subject{ID: "u-1", Federated: true, RemoteClaims: map[string]string{
		"username": "alice", "idp": "corp", "idp_subject": "s", "email": "a@up", "email_verified": "true", "department": "42",
	}})
	want := map[string]any{"email": "a@up", "email_verified": true, "department": "42"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("released %v, want %v", got, want)
	}
	if got := releasedAttributes(&adaptive.Subject{ID: "u-1", Federated: true}); got == nil || len(got) != 0 {
		t.Errorf("a federated step that asserted nothing released %v, want an empty set", got)
	}
}

func TestWithAttributes(t *testing.T) {
	u := store.User{
		ID: "u-1", Username: "alice", Email: "alice@local", EmailVerified: true, DisplayName: "Alice L", GivenName: "Alice",
		FamilyName: "Liddell", PhoneNumber: "+1", Attributes: map[string]any{"department": "local", "latch.failed_logins": 1.0},
	}
	if got := WithAttributes(u, nil); !reflect.DeepEqual(got, u) {
		t.Errorf("without attributes: %+v", got)
	}
	got := WithAttributes(u, map[string]any{"email": "alice@up", "given_name": "Alicia", "department": "up", "email_verified": false})
	want := store.User{ID: "u-1", Username: "alice", Email: "alice@up", GivenName: "Alicia", Attributes: map[string]any{"department": "up"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with attributes: %+v, want %+v", got, want)
	}
	if u.Email != "alice@local" || u.Attributes["department"] != "local" {
		t.Errorf("the account changed: %+v", u)
	}
}

func TestAttributes(t *testing.T) {
	if Attributes(nil) != nil || Attributes(&store.Session{Data: map[string]any{"username": "alice"}}) != nil {
		t.Error("a session without released attributes has some")
	}
	sess := &store.Session{Data: map[string]any{DataAttributes: map[string]any{"email": "a@up"}}}
	got := Attributes(sess)
	if !reflect.DeepEqual(got, map[string]any{"email": "a@up"}) {
		t.Fatalf("attributes %v", got)
	}
	got["email"] = "changed"
	if sess.Data[DataAttributes].(map[string]any)["email"] != "a@up" {
		t.Error("Attributes returned the session's own map")
	}
}

func TestSessionSubject(t *testing.T) {
	local := sessionSubject(&store.Session{UserID: "u-1", Data: map[string]any{"username": "alice"}}, "alice")
	if local.Federated || local.RemoteClaims != nil || local.ID != "u-1" || local.Username != "alice" {
		t.Errorf("a local session's subject %+v", local)
	}
	sess := &store.Session{UserID: "u-1", Data: map[string]any{DataAttributes: map[string]any{"email": "a@up", "email_verified": true}}}
	fed := sessionSubject(sess, "alice")
	if !fed.Federated || !reflect.DeepEqual(fed.RemoteClaims, map[string]string{"email": "a@up", "email_verified": "true"}) {
		t.Fatalf("a federated session's subject %+v", fed)
	}
	// Released again, the attributes are the session's.
	if got := releasedAttributes(fed); !reflect.DeepEqual(got, sess.Data[DataAttributes]) {
		t.Errorf("released again %v, want %v", got, sess.Data[DataAttributes])
	}
}

//go:build !wasip1

package userstore

import (
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
)

// lookupStore answers every user by id and records the requests it saw.
type lookupStore struct{ seen []string }

func (s *lookupStore) GetUser(req abi.GetUserRequest) (abi.User, error) {
	s.seen = append(s.seen, req.ID)
	return abi.User{ID: req.ID, Username: "u-" + req.ID}, nil
}

func (s *lookupStore) FindUsers(abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (s *lookupStore) AuthenticateUser(abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
}

// TestHandlerReusesAndClears checks that the handler answers call after
// call from its reused values, keeps no request after a call, and does not
// allocate for decoding into or answering from them.
func TestHandlerReusesAndClears(t *testing.T) {
	s := &lookupStore{}
	h := &storeHandler{s: s}
	for _, id := range []string{"a", "b"} {
		payload, err := (&abi.GetUserRequest{Tenant: "acme", ID: id}).AppendWire(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := h.handle(abi.OpCodeGetUser, payload)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := m.(*abi.UserResponse)
		if !ok || got.User.ID != id || got.User.Username != "u-"+id || got.Error != nil {
			t.Fatalf("GetUser(%s) = %#v", id, m)
		}
		if !reflect.DeepEqual(h.get, abi.GetUserRequest{}) {
			t.Errorf("request kept after the call: %+v", h.get)
		}
	}
	if !reflect.DeepEqual(s.seen, []string{"a", "b"}) {
		t.Errorf("store saw %v", s.seen)
	}

	payload, err := (&abi.AuthenticateUserRequest{Username: "alice", Password: "x"}).AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		m, err := h.handle(abi.OpCodeAuthenticateUser, payload)
		if err != nil || m.(*abi.AuthenticateUserResponse).Outcome != abi.UserInvalidCredentials {
			t.Fatalf("AuthenticateUser = %v, %v", m, err)
		}
	})
	if allocs > 1 { // the shared copy of the request's strings
		t.Errorf("AuthenticateUser allocates %v times, want at most 1", allocs)
	}
}

package abi_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
)

// wireTypes lists every request and response type of the contract.
var wireTypes = []any{
	abi.Error{},
	abi.AuthenticateRequest{}, abi.AuthenticateResponse{}, abi.Challenge{}, abi.Field{}, abi.Cookie{},
	abi.TokenRequest{}, abi.TokenResponse{},
	abi.User{}, abi.Group{},
	abi.FindUsersRequest{}, abi.FindUsersResponse{}, abi.GetUserRequest{}, abi.UserResponse{},
	abi.CreateUserRequest{}, abi.UpdateUserRequest{}, abi.DeleteUserRequest{}, abi.DeleteUserResponse{},
	abi.AuthenticateUserRequest{}, abi.AuthenticateUserResponse{},
	abi.ListGroupsRequest{}, abi.ListGroupsResponse{},
	abi.MapRequest{}, abi.MapResponse{},
	abi.Limit{}, abi.AllowRequest{}, abi.AllowResponse{},
	abi.ProvisionEvent{}, abi.ProvisionResponse{},
}

// TestWireTypesArePlainData keeps the contract carriable by any transport:
// every field has a snake_case JSON name, and holds strings, numbers,
// booleans, byte slices, raw JSON, slices, string-keyed maps, or other wire
// structs. Interfaces appear only as JSON values inside maps and slices
// (map[string]any), never as fields; funcs and channels never.
func TestWireTypesArePlainData(t *testing.T) {
	for _, v := range wireTypes {
		typ := reflect.TypeOf(v)
		t.Run(typ.Name(), func(t *testing.T) {
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "" || name == "-" || strings.ToLower(name) != name || strings.Contains(name, "-") {
					t.Errorf("field %s has JSON name %q, want snake_case", f.Name, name)
				}
				if f.Type.Kind() == reflect.Interface {
					t.Errorf("field %s is an interface", f.Name)
				}
				checkPlain(t, f.Name, f.Type, 0)
			}
		})
	}
}

func checkPlain(t *testing.T, path string, typ reflect.Type, depth int) {
	t.Helper()
	if depth > 8 {
		return
	}
	switch typ.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64, reflect.Uint8:
	case reflect.Interface:
		if typ.NumMethod() != 0 {
			t.Errorf("%s holds a non-empty interface %s", path, typ)
		}
	case reflect.Pointer, reflect.Slice:
		checkPlain(t, path, typ.Elem(), depth+1)
	case reflect.Map:
		if typ.Key().Kind() != reflect.String {
			t.Errorf("%s is a map with %s keys", path, typ.Key())
		}
		checkPlain(t, path, typ.Elem(), depth+1)
	case reflect.Struct:
		for i := range typ.NumField() {
			checkPlain(t, path+"."+typ.Field(i).Name, typ.Field(i).Type, depth+1)
		}
	default:
		t.Errorf("%s has kind %s, not plain data", path, typ.Kind())
	}
}

// TestRoundTrip checks that a value survives JSON encoding unchanged, as it
// must when a host hands it to a guest and back.
func TestRoundTrip(t *testing.T) {
	in := abi.AuthenticateResponse{
		Outcome:   abi.OutcomeChallenge,
		Challenge: &abi.Challenge{Kind: abi.ChallengeWebAuthn, Data: json.RawMessage(`{"challenge":"abc"}`)},
		State:     []byte{0, 1, 2, 255},
		AMR:       []string{"hwk"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out abi.AuthenticateResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the value:\n in %+v\nout %+v", in, out)
	}
}

func ExampleAuthenticateResponse() {
	resp := abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		Challenge: &abi.Challenge{
			Kind:   abi.ChallengeForm,
			Fields: []abi.Field{{Name: "otp", Type: abi.FieldOTP, Label: "Code", Required: true}},
		},
	}
	b, _ := json.Marshal(resp)
	fmt.Println(string(b))
	// Output: {"outcome":"challenge","challenge":{"kind":"form","fields":[{"name":"otp","type":"otp","label":"Code","required":true}]}}
}

func ExampleAllowResponse() {
	b, _ := json.Marshal(abi.AllowResponse{Allowed: false, RetryAfterMillis: 4200, ResetAfterMillis: 60000})
	fmt.Println(string(b))
	// Output: {"allowed":false,"remaining":0,"retry_after_millis":4200,"reset_after_millis":60000}
}

func ExampleError() {
	b, _ := json.Marshal(abi.Error{Code: abi.CodeNotFound, Message: "user not found"})
	fmt.Println(string(b))
	// Output: {"code":"not_found","message":"user not found"}
}

func ExampleTokenResponse() {
	b, _ := json.Marshal(abi.TokenResponse{Declined: true})
	fmt.Println(string(b))
	// Output: {"declined":true}
}

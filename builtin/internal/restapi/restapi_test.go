package restapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name  string   `json:"name"`
		Tags  []string `json:"tags"`
		Count int      `json:"count"`
	}
	for name, tc := range map[string]struct {
		in       string
		strict   bool
		wantMsg  string
		wantFld  string
		wantCode fault.Code
	}{
		"ok":             {in: `{"name":"a","tags":["x"],"count":2}`, strict: true},
		"unknown lax":    {in: `{"name":"a","admin":true}`},
		"unknown strict": {in: `{"name":"a","admin":true}`, strict: true, wantMsg: `unknown field "admin"`, wantFld: "admin"},
		"wrong string":   {in: `{"name":42}`, strict: true, wantMsg: "name: must be a string", wantFld: "name"},
		"wrong array":    {in: `{"tags":"x"}`, strict: true, wantMsg: "tags: must be an array", wantFld: "tags"},
		"wrong number":   {in: `{"count":"2"}`, strict: true, wantMsg: "count: must be a number", wantFld: "count"},
		"not an object":  {in: `[1]`, strict: true, wantMsg: "body must be a JSON object"},
		"syntax":         {in: `{"name": "a",}`, strict: true, wantMsg: "malformed JSON at byte"},
		"truncated":      {in: `{"name": "a"`, strict: true, wantMsg: "unexpected end of input"},
		"trailing":       {in: `{"name":"a"} {}`, strict: true, wantMsg: "unexpected data after the object"},
	} {
		t.Run(name, func(t *testing.T) {
			var v body
			err := restapi.DecodeJSON([]byte(tc.in), &v, tc.strict)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fault.CodeOf(err) != fault.CodeInvalidRequest {
				t.Fatalf("want an invalid_request fault, got %v", err)
			}
			if !strings.Contains(fe.Message, tc.wantMsg) || fe.Field != tc.wantFld {
				t.Fatalf("got %q (field %q), want %q (field %q)", fe.Message, fe.Field, tc.wantMsg, tc.wantFld)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{restapi.CheckText("f", "plain text", 20), ""},
		{restapi.CheckText("f", strings.Repeat("x", 21), 20), "f: must be at most 20 bytes"},
		{restapi.CheckText("f", "bad\xff", 20), "f: must be valid UTF-8"},
		{restapi.CheckText("f", " padded", 20), "f: must not start or end with white space"},
		{restapi.CheckText("f", "a\x00b", 20), "f: must not contain control characters"},
		{restapi.CheckEmail("e", ""), ""},
		{restapi.CheckEmail("e", "alice@example.com"), ""},
		{restapi.CheckEmail("e", "Alice <alice@example.com>"), "e: must be a plain email address"},
		{restapi.CheckEmail("e", "not an address"), "e: must be a plain email address"},
		{restapi.CheckEmail("e", strings.Repeat("a", 250)+"@x.io"), fmt.Sprintf("e: must be at most %d bytes", restapi.MaxEmailLen)},
	} {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("unexpected error %v", tc.err)
		case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)):
			t.Errorf("got %v, want %q", tc.err, tc.want)
		}
	}
}

func TestStoreError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code fault.Code
	}{
		{store.ErrNotFound, fault.CodeNotFound},
		{fmt.Errorf("wrapped: %w", store.ErrConflict), fault.CodeConflict},
		{store.ErrVersionMismatch, fault.CodePreconditionFailed},
		{store.ErrInvalid, fault.CodeInvalidRequest},
		{errors.New("disk on fire"), fault.CodeInternal},
	} {
		got := restapi.StoreError("user", tc.err)
		if fault.CodeOf(got) != tc.code {
			t.Errorf("StoreError(%v) = %v, want code %s", tc.err, got, tc.code)
		}
		if tc.code == fault.CodeInternal && !errors.Is(got, tc.err) {
			t.Errorf("the internal error's cause is lost: %v", got)
		}
	}
}

type tenants map[string]store.Tenant

func (ts tenants) GetTenantByName(_ context.Context, name string) (store.Tenant, error) {
	t, ok := ts[name]
	if !ok {
		return store.Tenant{}, store.ErrNotFound
	}
	return t, nil
}

func TestNamedTenant(t *testing.T) {
	ts := tenants{"acme": {ID: "1", Name: "acme", Enabled: true}, "off": {ID: "2", Name: "off"}, "-x": {ID: "3", Name: "-x", Enabled: true}}
	if got, err := restapi.NamedTenant(t.Context(), ts, "acme"); err != nil || got.ID != "1" {
		t.Fatalf("acme: %+v %v", got, err)
	}
	for _, name := range []string{"", "off", "nobody", "-x", "Acme", "a/b", strings.Repeat("a", 64)} {
		if _, err := restapi.NamedTenant(t.Context(), ts, name); fault.CodeOf(err) != fault.CodeNotFound {
			t.Errorf("%q: want not found, got %v", name, err)
		}
	}
}

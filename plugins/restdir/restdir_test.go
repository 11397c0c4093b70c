package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

const token = "dir-token-123"

// directoryServer is a real REST directory with two users.
func directoryServer(t *testing.T) *httptest.Server {
	t.Helper()
	users := map[string]abi.User{
		"u-1": {ID: "u-1", Username: "alice", Email: "alice@example.com", Enabled: true},
		"u-2": {ID: "u-2", Username: "bob", Enabled: false},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := users[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(u)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		var out []abi.User
		for _, id := range []string{"u-1", "u-2"} {
			if n := r.URL.Query().Get("username"); n == "" || n == users[id].Username {
				out = append(out, users[id])
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"users": out})
	})
	mux.HandleFunc("POST /authenticate", func(w http.ResponseWriter, r *http.Request) {
		var c struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&c)
		for _, u := range users {
			if u.Username == c.Username {
				if c.Password != "pw-"+u.Username {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_ = json.NewEncoder(w).Encode(u)
				return
			}
		}
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func setup(t *testing.T) *plugintest.Harness {
	t.Helper()
	srv := directoryServer(t)
	h := plugintest.New(t)
	h.SetHTTPHosts("http://" + strings.TrimPrefix(srv.URL, "http://"))
	h.HandleHTTP(plugintest.Forward(srv.Client()))
	h.SetSecret("acme", "dir_token", []byte(token))
	if err := h.Configure("restdir", []byte(`{"base_url":"`+srv.URL+`/","token_secret":"dir_token"}`)); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestGetAndFind(t *testing.T) {
	h := setup(t)
	u, err := h.GetUser("restdir", abi.GetUserRequest{Tenant: "acme", ID: "u-1"})
	if err != nil || u.Username != "alice" || u.Email != "alice@example.com" {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	if _, err := h.GetUser("restdir", abi.GetUserRequest{Tenant: "acme", ID: "nobody"}); !errors.Is(err, plugin.ErrNotFound) {
		t.Fatalf("GetUser(unknown) err = %v, want not_found", err)
	}
	page, err := h.FindUsers("restdir", abi.FindUsersRequest{Tenant: "acme", Username: "bob"})
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != "u-2" {
		t.Fatalf("FindUsers = %+v, %v", page, err)
	}
}

func TestAuthenticateUser(t *testing.T) {
	h := setup(t)
	tests := []struct{ user, pw, want string }{
		{"alice", "pw-alice", abi.UserAuthenticated},
		{"alice", "wrong", abi.UserInvalidCredentials},
		{"bob", "pw-bob", abi.UserDisabled},
		{"carol", "x", abi.UserUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.pw, func(t *testing.T) {
			resp, err := h.AuthenticateUser("restdir", abi.AuthenticateUserRequest{Tenant: "acme", Username: tt.user, Password: tt.pw})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != tt.want {
				t.Fatalf("outcome %q, want %q", resp.Outcome, tt.want)
			}
			if tt.want == abi.UserAuthenticated && (resp.User == nil || resp.User.ID != "u-1") {
				t.Fatalf("user = %+v", resp.User)
			}
		})
	}
}

func TestWithoutToken(t *testing.T) {
	srv := directoryServer(t)
	h := plugintest.New(t)
	h.SetHTTPHosts("http://" + strings.TrimPrefix(srv.URL, "http://"))
	h.HandleHTTP(plugintest.Forward(srv.Client()))
	if err := h.Configure("restdir", []byte(`{"base_url":"`+srv.URL+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetUser("restdir", abi.GetUserRequest{Tenant: "acme", ID: "u-1"}); !errors.Is(err, plugin.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestConfigureRefuses(t *testing.T) {
	for _, c := range []string{`{"base_url":"relative"}`, `{"base_url":"https://x/?q=1"}`, `{}`} {
		h := plugintest.New(t)
		if err := h.Configure("restdir", []byte(c)); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("Configure(%s) = %v", c, err)
		}
	}
}

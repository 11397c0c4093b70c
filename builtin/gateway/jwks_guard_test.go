package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSafeClientGuard: the key and introspection client refuses loopback,
// by address and by a name resolving to it, unless private networks are
// allowed, and follows no redirect.
func TestSafeClientGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/keys", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(c *http.Client, target string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		return nil
	}
	for _, target := range []string{srv.URL + "/keys", "http://localhost:" + u.Port() + "/keys"} {
		if err := get(safeClient(false), target); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s reached through the guard: %v", target, err)
		}
	}
	if err := get(safeClient(true), srv.URL+"/keys"); err != nil {
		t.Errorf("loopback with allow_private_network: %v", err)
	}
	if err := get(safeClient(true), srv.URL+"/redirect"); err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("a redirect was followed: %v", err)
	}
}

package saml

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// TestGuardedClient: the metadata client refuses loopback, by address and
// by a name resolving to it.
func TestGuardedClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<EntityDescriptor/>"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, target := range []string{srv.URL, "http://localhost:" + u.Port()} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := guardedClient().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		if !errors.Is(err, safehttp.ErrForbiddenAddress) {
			t.Errorf("%s reached through the guard: %v", target, err)
		}
	}
}

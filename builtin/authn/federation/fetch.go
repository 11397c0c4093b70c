package federation

import (
	"net/http"
	"time"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// Limits of what the federated authenticators fetch from an upstream
// (discovery documents, key sets, token responses, SAML metadata).
const (
	// FetchTimeout bounds one request, connection included.
	FetchTimeout = 10 * time.Second
	// MaxFetchBytes caps a fetched document.
	MaxFetchBytes = 1 << 20
)

// HTTPClient returns the client the federated authenticators reach an
// upstream with: the SSRF-guarded client of safehttp (public addresses
// only unless allowPrivate, no proxy, no redirect), giving up after
// timeout, with bodies capped at MaxFetchBytes.
func HTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return safehttp.NewClient(allowPrivate, timeout, MaxFetchBytes)
}

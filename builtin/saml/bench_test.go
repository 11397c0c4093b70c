package saml_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkSSO measures the IdP's side of SP-initiated SSO for a
// signed-in user: an HTTP-Redirect AuthnRequest in, the HTTP-POST form
// with a signed Response out, over a loopback HTTP server on SQLite. The
// SP's work (making the request, verifying the response) is left out but
// for making the request.
func BenchmarkSSO(b *testing.B) {
	e := newEnv(b)
	for _, tc := range []struct {
		name     string
		settings map[string]any
	}{
		{"response-signed", map[string]any{"want_assertions_signed": false, "encrypt_assertions": false}},
		{"signed-encrypted", nil},
	} {
		sp := e.newSP("https://"+tc.name+".example", false)
		e.register(sp, tc.settings)
		cookie := e.session(time.Now(), "pwd")
		b.Run(tc.name, func(b *testing.B) {
			var (
				mu        sync.Mutex
				latencies []time.Duration
			)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u, _ := sp.redirectRequest(b, nil)
					start := time.Now()
					status, _, body := e.do(http.MethodGet, u, nil, cookie)
					d := time.Since(start)
					if status != http.StatusOK || !strings.Contains(body, "SAMLResponse") {
						b.Errorf("status %d: %s", status, body)
						return
					}
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sso/s")
			if len(latencies) > 0 {
				slices.Sort(latencies)
				b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

package saml_test

import (
	"encoding/base64"
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
// for making the request; "+sp" adds the SP's verification of the
// Response (the library's ServiceProvider, in this process), so one
// profile shows the IdP's and the SP's share of a round trip.
//
// cpu-µs/op is the process's CPU time (IdP, HTTP client and, with "+sp",
// the SP) per round trip: unlike sso/s, it barely moves when other
// processes load the machine.
func BenchmarkSSO(b *testing.B) {
	e := newEnv(b)
	for _, tc := range []struct {
		name     string
		settings map[string]any
		verify   bool
	}{
		{"response-signed", map[string]any{"want_assertions_signed": false, "encrypt_assertions": false}, false},
		{"response-signed+sp", map[string]any{"want_assertions_signed": false, "encrypt_assertions": false}, true},
		{"signed-encrypted", nil, false},
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
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u, id := sp.redirectRequest(b, nil)
					start := time.Now()
					status, _, body := e.do(http.MethodGet, u, nil, cookie)
					if status != http.StatusOK || !strings.Contains(body, "SAMLResponse") {
						b.Errorf("status %d: %s", status, body)
						return
					}
					if tc.verify {
						_, f := postedForm(b, body)
						doc, err := base64.StdEncoding.DecodeString(f.Get("SAMLResponse"))
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := sp.ParseXMLResponse(doc, []string{id}, sp.AcsURL); err != nil {
							b.Errorf("sp refused the response: %v", err)
							return
						}
					}
					d := time.Since(start)
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}
			})
			b.StopTimer()
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sso/s")
			if len(latencies) > 0 {
				slices.Sort(latencies)
				b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

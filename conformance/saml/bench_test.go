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

// BenchmarkSSORoundTrip measures SP-initiated SSO for a signed-in user
// against a live server on SQLite: the SP (samlsp's ServiceProvider)
// makes an AuthnRequest, the browser carries it over the HTTP-Redirect
// binding with the session cookie, the IdP answers with the HTTP-POST
// binding's form holding a signed Response, and the SP verifies the
// Response and its assertion. Each iteration is one round trip; p50 and
// p99 of a round trip are reported.
//
// The SP of "response-signed" has the IdP sign the Response only (one
// RSA-2048 signature); "signed-encrypted" is samlsp's own metadata: the
// Response and the Assertion signed and the assertion encrypted
// (AES-128-GCM, RSA-OAEP).
//
// Eight round trips run at once (four per core), over a browser that keeps
// as many connections open: a round trip waits on the network and on the
// other process most of its time, and with one per core the cores idle.
func BenchmarkSSORoundTrip(b *testing.B) {
	i := setup(b)
	for _, tc := range []struct {
		name     string
		settings map[string]any
	}{
		{"response-signed", map[string]any{"want_assertions_signed": false, "encrypt_assertions": false}},
		{"signed-encrypted", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := i.newSP(b, spOptions{name: "bench-" + tc.name, settings: tc.settings})
			br := newBrowser(b)
			tr := &http.Transport{MaxIdleConnsPerHost: 16}
			b.Cleanup(tr.CloseIdleConnections)
			br.client.Transport = tr
			br.login(br.visit(http.MethodGet, s.URL+"/app", nil), alicePass)
			var (
				mu        sync.Mutex
				latencies []time.Duration
			)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					start := time.Now()
					u, err := s.ServiceProvider.MakeRedirectAuthenticationRequest("")
					if err != nil {
						b.Error(err)
						return
					}
					p, _ := br.do(http.MethodGet, u.String(), nil)
					if p.status != http.StatusOK || !strings.Contains(p.body, "SAMLResponse") {
						b.Errorf("sso: %d %s", p.status, p.body)
						return
					}
					_, fields := parseForm(b, p.body)
					raw, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := s.ServiceProvider.ParseXMLResponse(raw, []string{requestID(raw)}, s.ServiceProvider.AcsURL); err != nil {
						b.Errorf("sp refused the response: %v", err)
						return
					}
					d := time.Since(start)
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
			if len(latencies) > 0 {
				slices.Sort(latencies)
				b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// requestID is the InResponseTo of a Response document.
func requestID(doc []byte) string {
	_, rest, ok := strings.Cut(string(doc), `InResponseTo="`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

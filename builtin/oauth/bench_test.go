package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/builtin/oauth"
)

// BenchmarkClientCredentials measures the whole token endpoint over
// loopback HTTP: client_secret_basic authentication, a SQLite write of the
// token record, and an ES256 signature, with parallel clients.
func BenchmarkClientCredentials(b *testing.B) {
	e := newEnv(b)
	body := "grant_type=client_credentials&scope=read"
	auth := basic("svc-basic", secretA)
	b.ReportAllocs()
	// Many clients at once, as a loaded server sees them (16 per core).
	b.SetParallelism(16)
	var lat latencies
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		defer func() { lat.add(mine) }()
		for pb.Next() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, e.base+oauth.PathToken, strings.NewReader(body))
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", auth)
			resp, err := e.http.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
				b.Errorf("status %d, err %v", resp.StatusCode, err)
				return
			}
			mine = append(mine, time.Since(start))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	lat.report(b)
}

// BenchmarkIntrospect measures introspection of a valid token over
// loopback HTTP: client authentication, the record and client lookups, and
// an ES256 verification.
func BenchmarkIntrospect(b *testing.B) {
	e := newEnv(b)
	tok := e.fetch("", "svc-basic", secretA, oauth2.AuthStyleInHeader, nil, "read").AccessToken
	body := url.Values{"token": {tok}}.Encode()
	auth := basic("svc-other", secretB)
	b.ReportAllocs()
	var lat latencies
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		defer func() { lat.add(mine) }()
		for pb.Next() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, e.base+oauth.PathIntrospect, strings.NewReader(body))
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", auth)
			resp, err := e.http.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var m struct {
				Active bool `json:"active"`
			}
			err = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if err != nil || !m.Active {
				b.Errorf("status %d, err %v, active %v", resp.StatusCode, err, m.Active)
				return
			}
			mine = append(mine, time.Since(start))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "introspections/s")
	lat.report(b)
}

// latencies collects the request times of a parallel benchmark's
// goroutines, for its p50 and p99.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

// report adds p50-ms and p99-ms to b's results.
func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	ms := func(q int) float64 { return float64(l.all[len(l.all)*q/100].Microseconds()) / 1000 }
	b.ReportMetric(ms(50), "p50-ms")
	b.ReportMetric(ms(99), "p99-ms")
}

// BenchmarkSignES256 is the crypto limit of BenchmarkClientCredentials:
// the same at+jwt signature with the tenant's ES256 key, on the same
// number of parallel goroutines, with nothing else.
func BenchmarkSignES256(b *testing.B) {
	e := newEnv(b)
	s, err := e.keys.Signer(b.Context(), e.def.ID, "ES256")
	if err != nil {
		b.Fatal(err)
	}
	js, err := s.WithOptions((&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": e.base, "sub": "svc-basic", "client_id": "svc-basic", "aud": []string{e.base},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "0198c0de-0000-7000-8000-000000000000", "scope": "read",
	})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			jws, err := js.Sign(payload)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := jws.CompactSerialize(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signatures/s")
}

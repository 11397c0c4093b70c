package oidc_test

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// BenchmarkAuthCodeRoundTrip measures the whole authorization code flow
// with PKCE for a signed-in user against a live server on SQLite: the
// authorization request (session cookie, code issued, 303 to the client)
// and the code exchange with a client secret and a code verifier (ID
// token, access token and refresh token signed with ES256). Each
// iteration is one round trip; p50 and p99 of a round trip are reported.
func BenchmarkAuthCodeRoundTrip(b *testing.B) {
	o := setup(b)
	// One login; every iteration reuses the session.
	jarBrowser := newBrowser(b)
	cfg := o.web()
	codeFlow(b, jarBrowser, cfg, "nonce-bench-0001")

	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			v := oauth2.GenerateVerifier()
			p := jarBrowser.get(cfg.AuthCodeURL("state-bench-1234", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("nonce", "nonce-bench-1234")), cfg.RedirectURL)
			u, err := url.Parse(p.location)
			if err != nil || u.Query().Get("code") == "" {
				b.Errorf("authorize: %s", p)
				return
			}
			tok, err := cfg.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption(v))
			if err != nil || tok.Extra("id_token") == nil {
				b.Errorf("exchange: %v", err)
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
}

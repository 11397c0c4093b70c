package oidc_test

import (
	"context"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/password"
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
			p := jarBrowser.Get(cfg.AuthCodeURL("state-bench-1234", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("nonce", "nonce-bench-1234")), cfg.RedirectURL)
			u, err := url.Parse(p.Location)
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

// BenchmarkPasswordLogin measures complete password logins against a live
// server with the default argon2id parameters: each iteration starts a new
// browser, opens the authorization URL, posts the login form, and follows
// the redirects to the client with a code. The baseline, measured in the
// same run with the same parallelism, is argon2id verification alone with
// the server's default parameters: a login cannot beat the hash.
func BenchmarkPasswordLogin(b *testing.B) {
	o := setup(b)
	h := password.NewHasher(config.Default().Password.Params())
	hash, err := h.Hash(alicePass)
	if err != nil {
		b.Fatal(err)
	}
	// The baseline: one second of parallel verifications.
	var verified atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < time.Second {
				if ok, _, err := h.Verify(alicePass, hash); !ok || err != nil {
					b.Error("verify failed")
					return
				}
				verified.Add(1)
			}
		}()
	}
	wg.Wait()
	hashRate := float64(verified.Load()) / time.Since(start).Seconds()

	cfg := o.web()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br := newBrowser(b)
			p := br.Get(cfg.AuthCodeURL("state-login-bench", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
			p = br.Submit(p, map[string]string{"username": "alice", "password": alicePass}, cfg.RedirectURL)
			if u, err := url.Parse(p.Location); err != nil || u.Query().Get("code") == "" {
				b.Errorf("login: %s", p)
				return
			}
		}
	})
	b.StopTimer()
	logins := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(logins, "logins/s")
	b.ReportMetric(hashRate, "hashes/s")
	b.ReportMetric(logins/hashRate, "of-hash-bound")
}

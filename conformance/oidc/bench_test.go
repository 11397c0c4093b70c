package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
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
// browser (an empty cookie jar), opens the authorization URL, posts the
// login form, and follows the redirects to the client with a code.
//
// The bound a login cannot beat is cores ÷ argon2id hash time: every login
// verifies one password, and a hash keeps one core busy for its whole
// run. The baseline measures exactly that: one goroutine per core
// (GOMAXPROCS, which the server on the same machine runs with too)
// verifying back to back, with the same parameters, in this process while
// the server is idle. It is measured for a second before the logins and
// again after them, and the mean is reported as hashes/s (the machine may
// be shared, and its load may change while the logins run); of-hash-bound
// is logins/s over that mean.
//
// The logins are a closed loop of two browsers per core. With only one
// per core, a core would sit idle whenever its browser waits for an
// answer that is not the hash (the redirects, the login page), and the
// benchmark would measure the latency of one login rather than how many
// logins the server completes per second; the server caps concurrent
// hashes at one per core itself. The browsers share one keep-alive
// transport with a connection each, as real browsers keep theirs, so no
// login pays for new TCP connections. The browsers run in this process, on
// the same cores as the server, and their work counts against the server.
//
// Wall-clock rates mean little on a machine that other work shares; the
// processor times are disturbed less, though heavy load still inflates
// them unevenly (caches and hyperthreads are shared too). Where /proc is
// readable (Linux), the benchmark also reports processor time:
// cpu-ms/hash (of the baseline's verifications, before and after),
// cpu-ms/login (of the server and of this process, the browsers,
// together, while the logins run; server-cpu-ms/login and
// browser-cpu-ms/login split it), and cpu-of-hash-bound, the quotient of
// the first two, which is what of-hash-bound comes to on a quiet machine
// whose cores the logins keep busy.
func BenchmarkPasswordLogin(b *testing.B) {
	o := setup(b)
	h := password.NewHasher(config.Default().Password.Params())
	hash, err := h.Hash(alicePass)
	if err != nil {
		b.Fatal(err)
	}
	cores := runtime.GOMAXPROCS(0)
	self := os.Getpid()
	cpu := func(pid int) time.Duration {
		d, err := live.ProcessCPUTime(pid)
		if err != nil {
			return -1
		}
		return d
	}
	hashCPU0 := cpu(self)
	before, n1 := hashRate(b, h, hash, cores, time.Second)
	hashCPU := cpu(self) - hashCPU0

	const perCore = 2
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = perCore * cores
	b.Cleanup(tr.CloseIdleConnections)
	cfg := o.web()
	b.SetParallelism(perCore)
	serverCPU0, _ := o.CPUTime()
	loginCPU0 := cpu(self)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br := newBrowser(b)
			br.Client.Transport = tr
			p := br.Get(cfg.AuthCodeURL("state-login-bench", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
			p = br.Submit(p, map[string]string{"username": "alice", "password": alicePass}, cfg.RedirectURL)
			if u, err := url.Parse(p.Location); err != nil || u.Query().Get("code") == "" {
				b.Errorf("login: %s", p)
				return
			}
		}
	})
	b.StopTimer()
	loginCPU := cpu(self) - loginCPU0
	serverCPU1, serverErr := o.CPUTime()
	logins := float64(b.N) / b.Elapsed().Seconds()
	hashCPU1 := cpu(self)
	after, n2 := hashRate(b, h, hash, cores, time.Second)
	hashCPU += cpu(self) - hashCPU1
	bound := (before + after) / 2
	b.ReportMetric(logins, "logins/s")
	b.ReportMetric(bound, "hashes/s")
	b.ReportMetric(logins/bound, "of-hash-bound")
	if hashCPU > 0 && loginCPU >= 0 && serverErr == nil && n1+n2 > 0 {
		perHash := hashCPU.Seconds() * 1000 / float64(n1+n2)
		server := (serverCPU1 - serverCPU0).Seconds() * 1000 / float64(b.N)
		browsers := loginCPU.Seconds() * 1000 / float64(b.N)
		perLogin := server + browsers
		b.ReportMetric(perHash, "cpu-ms/hash")
		b.ReportMetric(server, "server-cpu-ms/login")
		b.ReportMetric(browsers, "browser-cpu-ms/login")
		b.ReportMetric(perLogin, "cpu-ms/login")
		b.ReportMetric(perHash/perLogin, "cpu-of-hash-bound")
	}
}

// hashRate returns how many argon2id verifications of hash per second n
// goroutines complete together in d, and how many they completed.
func hashRate(b *testing.B, h *password.Hasher, hash string, n int, d time.Duration) (float64, int64) {
	b.Helper()
	var verified atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Since(start) < d {
				if ok, _, err := h.Verify(alicePass, hash); !ok || err != nil {
					b.Error("verify failed")
					return
				}
				verified.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(verified.Load()) / time.Since(start).Seconds(), verified.Load()
}

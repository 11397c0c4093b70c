package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/kernel/password"
)

// BenchmarkCreateUserAPI measures user creates through the admin API over
// loopback HTTP on SQLite, with parallel clients. "cheap-hash" isolates the
// API and store path; "default-hash" is what a deployment sees, bounded by
// argon2id's cost.
func BenchmarkCreateUserAPI(b *testing.B) {
	for _, bc := range []struct {
		name string
		pp   password.Params
	}{
		{"cheap-hash", password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}},
		{"default-hash", password.DefaultParams},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnvWith(b, bc.pp)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"username":"bench-%d","password":"a long enough password"}`, i)
					req, _ := http.NewRequest("POST", e.url+"/api/admin/v1/users", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.SetBasicAuth(adminID, adminSecret)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 201 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkGetUserAPI measures reads of one user through the admin API.
func BenchmarkGetUserAPI(b *testing.B) {
	e := newEnv(b)
	r := e.call("POST", "/api/admin/v1/users", map[string]any{"username": "reader", "password": "a long enough password"})
	id := r.json(b)["id"].(string)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", e.url+"/api/admin/v1/users/"+id, nil)
			req.SetBasicAuth(adminID, adminSecret)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

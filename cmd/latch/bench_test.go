package main_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkServe is the load run: a real `latch serve` process on SQLite,
// driven over loopback HTTP by parallel clients. /healthz is the baseline
// measured in the same run (HTTP and process overhead only), so the other
// figures can be read as ratios to it on a noisy machine.
func BenchmarkServe(b *testing.B) {
	p := startLatch(b, b.TempDir())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	do := func(method, path, body string) {
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.SetBasicAuth("latch-admin", clientSecret)
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	do("POST", "/api/admin/v1/users", `{"username":"reader","password":"a long enough password"}`)
	var id struct{ Items []struct{ ID string } }
	getJSON(b, p.url+"/api/admin/v1/users?username=reader", &id)
	if len(id.Items) != 1 {
		b.Fatal("seed user missing")
	}
	var n atomic.Int64
	for _, bc := range []struct {
		name string
		run  func()
	}{
		{"healthz-baseline", func() { do("GET", "/healthz", "") }},
		{"get-user", func() { do("GET", "/api/admin/v1/users/"+id.Items[0].ID, "") }},
		{"list-users-by-name", func() { do("GET", "/api/admin/v1/users?username=reader", "") }},
		{"create-user-argon2id", func() {
			do("POST", "/api/admin/v1/users", fmt.Sprintf(`{"username":"load-%d","password":"a long enough password"}`, n.Add(1)))
		}},
		{"create-group", func() {
			do("POST", "/api/admin/v1/groups", fmt.Sprintf(`{"name":"group-%d"}`, n.Add(1)))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.run()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

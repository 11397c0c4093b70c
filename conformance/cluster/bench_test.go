package cluster_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkClientCredentials measures client_credentials tokens/s through
// the round-robin proxy with one, two and three nodes on PostgreSQL, and
// with one node on SQLite, in the same run so the figures compare. Every
// token is a signed JWT whose record is written to the store. Each
// configuration also measures GET /healthz through the proxy, the
// baseline of HTTP, proxy and process overhead without the store. Run it
// with a fixed count, e.g. -benchtime=2000x: on a small machine the
// curve over nodes shows the cost of the extra processes, not scale.
func BenchmarkClientCredentials(b *testing.B) {
	dsn := postgresDSN(b)
	for _, bc := range []struct {
		name  string
		nodes int
		pg    bool
	}{
		{"sqlite/nodes=1", 1, false},
		{"postgres/nodes=1", 1, true},
		{"postgres/nodes=2", 2, true},
		{"postgres/nodes=3", 3, true},
	} {
		var c *cluster
		if bc.pg {
			c = startNodes(b, bc.nodes, "LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN="+freshDatabase(b, dsn))
		} else {
			c = startNodes(b, bc.nodes)
		}
		fixtures(b, c.proxy.URL)
		b.Run(bc.name+"/healthz", func(b *testing.B) {
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := healthz(c.proxy.URL); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		b.Run(bc.name+"/client_credentials", func(b *testing.B) {
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := clientCredentials(c.proxy.URL); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		for _, n := range c.nodes {
			n.Kill() // free the cores before the next configuration
		}
	}
}

func healthz(base string) error {
	resp, err := httpClient.Get(base + "/healthz")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &apiError{status: resp.StatusCode}
	}
	return nil
}

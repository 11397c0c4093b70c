package scim_test

import (
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

// benchBackends lists the stores to benchmark; PostgreSQL only when
// LATCH_TEST_POSTGRES_DSN is set.
func benchBackends(b *testing.B) map[string]func(testing.TB) store.Store {
	out := map[string]func(testing.TB) store.Store{"sqlite": openSQLite}
	if os.Getenv("LATCH_TEST_POSTGRES_DSN") != "" {
		out["postgres"] = openPostgres
	} else {
		b.Log("LATCH_TEST_POSTGRES_DSN is not set: benchmarking SQLite only")
	}
	return out
}

func userBody(i int) map[string]any {
	return map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": fmt.Sprintf("user%06d", i),
		"name":     map[string]any{"givenName": "Given", "familyName": fmt.Sprintf("Family%d", i)},
		"emails":   []any{map[string]any{"value": fmt.Sprintf("user%06d@example.com", i), "type": "work", "primary": true}},
	}
}

// BenchmarkSCIM measures end-to-end SCIM throughput over loopback HTTP:
// create (POST /Users), read (GET /Users/{id}), and filtered listing over
// 1,000 users, narrowed by the username index (userName eq) and by a full
// scan (emails.value co).
func BenchmarkSCIM(b *testing.B) {
	for name, open := range benchBackends(b) {
		b.Run(name+"/create", func(b *testing.B) {
			e := newEnv(b, open)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := e.do("POST", "/Users", userBody(i)); r.status != 201 {
					b.Fatalf("create: %d %s", r.status, r.body)
				}
			}
		})
		b.Run(name+"/read", func(b *testing.B) {
			e := newEnv(b, open)
			id := str(e.createUser(userBody(1)), "id")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := e.do("GET", "/Users/"+id, nil); r.status != 200 {
					b.Fatalf("read: %d", r.status)
				}
			}
		})
		e := newEnv(b, open)
		for i := 0; i < 1000; i++ {
			e.createUser(userBody(i))
		}
		for _, f := range []struct{ name, filter string }{
			{"filter-userName-eq", `userName eq "user000500"`},
			{"filter-scan-co", `emails.value co "000500@"`},
		} {
			b.Run(name+"/"+f.name, func(b *testing.B) {
				q := "/Users?filter=" + url.QueryEscape(f.filter)
				for i := 0; i < b.N; i++ {
					r := e.do("GET", q, nil)
					if r.status != 200 || r.obj(b)["totalResults"] != float64(1) {
						b.Fatalf("filter: %d %s", r.status, r.body)
					}
				}
			})
		}
	}
}

package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

// benchUsers is how many users the read benchmarks look up.
const benchUsers = 500

// seedUsers creates a tenant with n users and returns them.
func seedUsers(b *testing.B, s store.Store, n int) (string, []store.User) {
	b.Helper()
	tn, err := s.CreateTenant(b.Context(), store.Tenant{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	users := make([]store.User, n)
	for i := range users {
		users[i], err = s.CreateUser(b.Context(), benchUser(tn.ID, i))
		if err != nil {
			b.Fatal(err)
		}
	}
	return tn.ID, users
}

// benchUser is a user with every column filled, as a real one would be.
func benchUser(tenantID string, i int) store.User {
	return store.User{
		TenantID: tenantID, Username: fmt.Sprintf("user-%08d", i), PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Email: fmt.Sprintf("user-%08d@example.com", i), EmailVerified: true, DisplayName: "Bench User", Enabled: true,
		Attributes: map[string]any{"department": "engineering", "employee_id": i},
	}
}

// BenchCreateUser measures CreateUser, one caller at a time ("serial") and
// from GOMAXPROCS goroutines ("parallel").
func BenchCreateUser(b *testing.B, s store.Store) {
	tn, err := s.CreateTenant(b.Context(), store.Tenant{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.CreateUser(b.Context(), benchUser(tn.ID, int(seq.Add(1)))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.CreateUser(b.Context(), benchUser(tn.ID, int(seq.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchGetUser measures GetUser by id, serially and in parallel.
func BenchGetUser(b *testing.B, s store.Store) {
	tid, users := seedUsers(b, s, benchUsers)
	get := func(i int) error {
		_, err := s.GetUser(b.Context(), tid, users[i%len(users)].ID)
		return err
	}
	benchReads(b, get)
}

// BenchGetUserByUsername measures GetUserByUsername, with the username in
// another case than stored, serially and in parallel.
func BenchGetUserByUsername(b *testing.B, s store.Store) {
	tid, users := seedUsers(b, s, benchUsers)
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = "USER-" + u.Username[len("user-"):]
	}
	get := func(i int) error {
		_, err := s.GetUserByUsername(b.Context(), tid, names[i%len(names)])
		return err
	}
	benchReads(b, get)
}

// BenchListUsers measures ListUsers pages of 100, walking the listing with
// its cursors.
func BenchListUsers(b *testing.B, s store.Store) {
	tid, _ := seedUsers(b, s, benchUsers)
	after := ""
	for b.Loop() {
		us, next, err := s.ListUsers(b.Context(), tid, store.UserQuery{Page: store.Page{Limit: 100, After: after}})
		if err != nil {
			b.Fatal(err)
		}
		if len(us) == 0 {
			b.Fatal("empty page")
		}
		after = next
	}
}

// BenchAppendAudit measures AppendAudit of one event per call, serially and
// in parallel, and of batches of 100 events.
func BenchAppendAudit(b *testing.B, s store.Store) {
	event := store.AuditEvent{TenantID: "bench", RequestID: "req", Actor: "user:1", Action: "login.password",
		Target: "user:1", Outcome: store.OutcomeSuccess, Detail: map[string]any{"ip": "192.0.2.1", "amr": []string{"pwd"}}}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := s.AppendAudit(b.Context(), event); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.AppendAudit(b.Context(), event); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("batch100", func(b *testing.B) {
		batch := make([]store.AuditEvent, 100)
		for i := range batch {
			batch[i] = event
		}
		for b.Loop() {
			if err := s.AppendAudit(b.Context(), batch...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchReads runs get serially and in parallel.
func benchReads(b *testing.B, get func(i int) error) {
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := get(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := get(int(seq.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

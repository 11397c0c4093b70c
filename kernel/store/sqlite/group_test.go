package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// TestGroupCommitIsolatesFailures writes concurrently so that writes share
// transactions: each write that conflicts fails alone, every other write
// is stored, and a cancelled caller neither stores its write half-way nor
// spoils the others.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	tn, err := s.CreateTenant(ctx, store.Tenant{Name: "group", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, dup   int
		cancelled int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every fourth username repeats the one before it.
			name := fmt.Sprintf("user-%d", i-i%4/3)
			wctx := ctx
			if i%10 == 9 {
				c, cancel := context.WithCancel(ctx)
				cancel()
				wctx = c
			}
			err := s.CreateToken(wctx, store.Token{Kind: "k", Key: name, TenantID: tn.ID, Active: true, ExpiresAt: time.Now().Add(time.Hour)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrConflict):
				dup++
			case errors.Is(err, context.Canceled):
				cancelled++
			default:
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	stored := 0
	for i := range n {
		if _, err := s.GetToken(ctx, tn.ID, "k", fmt.Sprintf("user-%d", i)); err == nil {
			stored++
		}
	}
	if stored != ok {
		t.Errorf("%d writes acknowledged, %d stored", ok, stored)
	}
	if ok+dup+cancelled != n || dup == 0 || cancelled == 0 {
		t.Errorf("ok %d, conflicts %d, cancelled %d of %d", ok, dup, cancelled, n)
	}
}

// TestWritesAfterCloseFail checks that a write after Close fails instead
// of blocking.
func TestWritesAfterCloseFail(t *testing.T) {
	s := open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.CreateToken(context.Background(), store.Token{Kind: "k", Key: "x", TenantID: "t", Active: true})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a write after Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after Close blocked")
	}
}

// BenchmarkCreateTokenParallel writes token records from 32 goroutines
// per core, the write pattern of a busy token endpoint, where group commit
// shares transactions between writers.
func BenchmarkCreateTokenParallel(b *testing.B) {
	s := open(b)
	tn, err := s.CreateTenant(b.Context(), store.Tenant{Name: "bench", Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	var seq sync.Mutex
	next := 0
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			next++
			key := fmt.Sprintf("tok-%d", next)
			seq.Unlock()
			if err := s.CreateToken(context.Background(), store.Token{Kind: "access", Key: key, TenantID: tn.ID, Active: true, Data: []byte(`{"v":1}`), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

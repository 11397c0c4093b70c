package node

import (
	"runtime"

	"github.com/latchid/latch/kernel/password"
)

// boundedHasher caps how many argon2id hashes run at once. Each hash holds
// its memory cost (19 MiB by default) for its whole run; without a cap, a
// burst of 200 user creates would ask for gigabytes at once. Waiting callers
// queue instead, and throughput stays at what the cores can do.
//
// The cap is one hash per core (GOMAXPROCS). A hash is pure computation
// that never waits, so one per core already keeps every core busy; more
// at once only time-slice the same cores, each holding its memory for
// longer, which grows the heap and the work of the garbage collector and
// of the page faults that refill the freed memory, and every login
// finishes later (BenchmarkPasswordLogin in conformance/oidc measures
// logins against this bound).
type boundedHasher struct {
	h   *password.Hasher
	sem chan struct{}
}

func newBoundedHasher(h *password.Hasher) *boundedHasher {
	return &boundedHasher{h: h, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// Hash hashes pw once a slot is free.
func (b *boundedHasher) Hash(pw string) (string, error) {
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	return b.h.Hash(pw)
}

// Verify checks pw against encoded once a slot is free.
func (b *boundedHasher) Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	return b.h.Verify(pw, encoded)
}

// SimulateVerify spends the work of a failed Verify once a slot is free, so
// that an unknown username costs the same time as a wrong password.
func (b *boundedHasher) SimulateVerify(pw string) {
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	b.h.SimulateVerify(pw)
}

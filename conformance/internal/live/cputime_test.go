package live

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

func TestProcessCPUTime(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, err := ProcessCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn processor time until it shows, or fail after a while: a
	// shared machine may give this process little of it.
	sum := sha256.Sum256(nil)
	for deadline := time.Now().Add(30 * time.Second); ; {
		for range 10000 {
			sum = sha256.Sum256(sum[:])
		}
		after, err := ProcessCPUTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 3*clockTick {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor time stayed near %v (from %v) over 30 s of hashing", after, before)
		}
	}
	if _, err := ProcessCPUTime(-1); err == nil {
		t.Error("no error for a process that cannot exist")
	}
}

package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// crashChildEnv, when set, makes TestKillDurability the writer process: it
// names the database file.
const crashChildEnv = "LATCH_SQLITE_CRASH_CHILD"

// TestKillDurability starts a process that creates users as fast as it can
// and reports each acknowledged id, kills it with SIGKILL mid-stream, and
// checks that every acknowledged user is in the database.
func TestKillDurability(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "latch.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDurability$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var tenantID string
	var acked []string
	lines := bufio.NewScanner(out)
	for lines.Scan() && len(acked) < 300 {
		kind, id, _ := strings.Cut(lines.Text(), " ")
		switch kind {
		case "tenant":
			tenantID = id
		case "user":
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if tenantID == "" || len(acked) < 300 {
		t.Fatalf("the child acknowledged %d users of tenant %q before it stopped, want 300", len(acked), tenantID)
	}

	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if _, err := s.GetUser(t.Context(), tenantID, id); err != nil {
			t.Errorf("acknowledged user %s after kill -9: %v", id, err)
		}
	}
}

// crashChild writes users to path until it is killed.
func crashChild(path string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		panic(err)
	}
	if err := s.Migrate(ctx); err != nil {
		panic(err)
	}
	tn, err := s.CreateTenant(ctx, store.Tenant{Name: "crash"})
	if err != nil {
		panic(err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "tenant", tn.ID)
	for i := 0; ; i++ {
		u, err := s.CreateUser(ctx, store.User{TenantID: tn.ID, Username: fmt.Sprint("user-", i)})
		if err != nil {
			panic(err)
		}
		fmt.Fprintln(w, "user", u.ID)
		_ = w.Flush()
	}
}

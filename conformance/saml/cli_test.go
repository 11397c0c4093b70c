package saml_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestAdminSAMLCommands drives `latch admin saml` against the live server:
// an SP registered from its metadata file signs in; its attribute release
// changed from the command line is what its next assertion carries;
// list and show find it; a metadata URL on a loopback address is refused
// by the SSRF guard; deleted, the SP is unknown to the IdP.
func TestAdminSAMLCommands(t *testing.T) {
	i := setup(t)
	bin := live.Binary(t)
	latch := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"admin", "saml"}, args...)...)
		cmd.Env = append(os.Environ(), "LATCH_URL="+i.URL, "LATCH_ADMIN_CLIENT_SECRET="+live.AdminSecret)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	s := i.newSP(t, spOptions{name: "cli-sp", unregistered: true})
	entity := s.ServiceProvider.EntityID
	file := filepath.Join(t.TempDir(), "sp.xml")
	if err := os.WriteFile(file, s.metadata, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := latch("register", "--metadata-file", file, "--name", "CLI SP", "--attribute", "email=email")
	var reg map[string]any
	if err != nil || json.Unmarshal([]byte(out), &reg) != nil || reg["entity_id"] != entity || reg["metadata"] != "inline" {
		t.Fatalf("register: %v\n%s\n%s", err, out, stderr)
	}
	// Release the email as "mail" instead, before the first sign-in.
	if out, stderr, err := latch("attributes", entity, "--unset", "email", "--set", "mail=email", "--set", "name=name"); err != nil ||
		!strings.Contains(out, `"mail=email"`) || strings.Contains(out, `"email=email"`) {
		t.Fatalf("attributes: %v\n%s\n%s", err, out, stderr)
	}
	b := newBrowser(t)
	p := b.login(b.visit(http.MethodGet, s.URL+"/app", nil), alicePass)
	// The SP prints its "email" attribute, which the IdP no longer sends.
	if p.status != http.StatusOK || !strings.HasPrefix(p.body, "hello ") || strings.Contains(p.body, "alice@example.com") {
		t.Fatalf("after the attribute change: %d %s", p.status, p.body)
	}
	out, _, err = latch("list")
	if err != nil || !strings.Contains(out, entity) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, _, err = latch("show", entity)
	if err != nil || !strings.Contains(out, `"mail": "email"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, stderr, err := latch("register", "--metadata-url", s.URL+"/saml/metadata"); err == nil || !strings.Contains(stderr, "not allowed") {
		t.Fatalf("a loopback metadata URL was not refused: %v\n%s", err, stderr)
	}
	if _, stderr, err := latch("register", "--metadata-file", file); err == nil {
		t.Fatalf("registering twice succeeded: %s", stderr)
	}
	if out, stderr, err := latch("delete", entity); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %v\n%s\n%s", err, out, stderr)
	}
	if out, _, _ := latch("list"); strings.Contains(out, entity) {
		t.Fatalf("still listed after delete:\n%s", out)
	}
}

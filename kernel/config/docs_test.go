package config

import (
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocIsCurrent keeps docs/configuration.md in step with
// the code: it must show the example file verbatim and list every
// environment variable.
func TestConfigurationDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/latch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(example)+"```") {
		t.Error("docs/configuration.md does not show testdata/latch.example.yaml verbatim; copy it in")
	}
	for _, v := range EnvVars() {
		if !strings.Contains(string(doc), "| `"+v+"` |") {
			t.Errorf("docs/configuration.md does not list %s", v)
		}
	}
}

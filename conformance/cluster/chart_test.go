package cluster_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/kernel/config"
)

// renderChart runs helm template on deploy/helm/latch with the values
// file ci/<values> and returns the rendered objects, skipping when helm
// is not installed (.ci/deploy-check installs it).
func renderChart(t *testing.T, values string) []map[string]any {
	t.Helper()
	helm := findHelm()
	if helm == "" {
		t.Skip("helm is not installed (PATH, $GOBIN, ~/go/bin): run .ci/deploy-check to install it")
	}
	_, file, _, _ := runtime.Caller(0)
	chart := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "helm", "latch")
	cmd := exec.Command(helm, "template", "latch", chart, "--kube-version", "1.31.0", "-f", filepath.Join(chart, "ci", values))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	var objs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding rendered chart: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// findHelm returns the helm binary on PATH, or where .ci/deploy-check
// installs it ($GOBIN, else ~/go/bin), or "".
func findHelm() string {
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "helm")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() { //nolint:gosec // G703: a fixed file name in the tool folders of this machine.
			return p
		}
	}
	return ""
}

// find returns the first object of kind.
func find(t *testing.T, objs []map[string]any, kind string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind {
			return o
		}
	}
	t.Fatalf("the chart renders no %s", kind)
	return nil
}

// dig walks nested maps and lists (ints index lists).
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a map: %v", p, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list of %d: %v", p, k+1, v)
			}
			v = l[k]
		}
	}
	return v
}

// TestChartConfigLoads renders the chart and loads the latch.yaml it
// writes with Latch's own configuration loader, with the environment the
// Deployment gives the container, so the chart cannot drift from the
// configuration schema. It also checks the pod's hardening and probes.
func TestChartConfigLoads(t *testing.T) {
	for _, tc := range []struct {
		values, driver string
		replicas       bool // a fixed replica count (no HPA)
		objects        []string
	}{
		{"postgres-values.yaml", "postgres", false, []string{"HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "Secret", "Service", "ServiceAccount"}},
		{"sqlite-values.yaml", "sqlite", true, []string{"PersistentVolumeClaim", "Service"}},
	} {
		t.Run(tc.values, func(t *testing.T) {
			objs := renderChart(t, tc.values)
			for _, kind := range tc.objects {
				find(t, objs, kind)
			}
			cm := find(t, objs, "ConfigMap")
			text, _ := dig(t, cm, "data", "latch.yaml").(string)
			path := filepath.Join(t.TempDir(), "latch.yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"LATCH_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
				"LATCH_STORE_DSN":  "postgres://latch@postgres:5432/latch",
			}
			if tc.driver == "sqlite" {
				delete(env, "LATCH_STORE_DSN")
			}
			cfg, err := config.Load(path, nil, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("loading the chart's latch.yaml: %v\n%s", err, text)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the chart's latch.yaml is invalid: %v\n%s", err, text)
			}
			if tc.driver == "postgres" && (cfg.Cache.Driver != "redis" || cfg.Cache.Addr != "redis:6379") {
				t.Errorf("cache driver %q addr %q, want the values' redis:6379", cfg.Cache.Driver, cfg.Cache.Addr)
			}
			if cfg.Store.Driver != tc.driver || cfg.Listen != "0.0.0.0:8080" || cfg.PublicURL != "https://id.example.com" || cfg.DataDir != "/data" {
				t.Errorf("store %q listen %q public_url %q data_dir %q", cfg.Store.Driver, cfg.Listen, cfg.PublicURL, cfg.DataDir)
			}

			dep := find(t, objs, "Deployment")
			if _, fixed := dig(t, dep, "spec").(map[string]any)["replicas"]; fixed != tc.replicas {
				t.Errorf("replicas set = %v, want %v", fixed, tc.replicas)
			}
			pod := dig(t, dep, "spec", "template", "spec")
			if dig(t, pod, "securityContext", "runAsNonRoot") != true {
				t.Error("pod does not run as non-root")
			}
			c := dig(t, pod, "containers", 0)
			for path, want := range map[string]any{
				"readOnlyRootFilesystem":   true,
				"allowPrivilegeEscalation": false,
			} {
				if got := dig(t, c, "securityContext", path); got != want {
					t.Errorf("securityContext.%s = %v, want %v", path, got, want)
				}
			}
			for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
				if got := dig(t, c, probe, "httpGet", "path"); got != want {
					t.Errorf("%s path = %v, want %s", probe, got, want)
				}
			}
		})
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeYAML(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("latch", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func printed(t *testing.T, c Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.PublicURL != "http://127.0.0.1:8080" || c.Store.DSN.Value() != filepath.Join("data", "latch.db") {
		t.Errorf("derived defaults: public_url %q, store.dsn %q", c.PublicURL, c.Store.DSN.Value())
	}
	if c.HTTP.ShutdownTimeout != 30*time.Second || c.HTTP.BodyLimit != 1<<20 || c.Keys.Overlap != 24*time.Hour {
		t.Errorf("defaults: %+v %+v", c.HTTP, c.Keys)
	}
}

// TestExampleFile keeps testdata/latch.example.yaml loadable, and equal to
// the defaults it claims to list.
func TestExampleFile(t *testing.T) {
	c, err := Load("testdata/latch.example.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := printed(t, c), printed(t, Default()); got != want {
		t.Errorf("example file differs from the defaults:\n got: %s\nwant: %s", got, want)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeYAML(t, `
listen: 127.0.0.1:1111
log_level: debug
data_dir: /from/file
store:
  driver: postgres
  dsn: postgres://file@db/latch
http:
  body_limit: 2MiB
`)
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c Config)
	}{
		{
			name: "file over defaults",
			check: func(t *testing.T, c Config) {
				want := Config{Listen: "127.0.0.1:1111", LogLevel: "debug", DataDir: "/from/file", LogFormat: "text"}
				if c.Listen != want.Listen || c.LogLevel != want.LogLevel || c.DataDir != want.DataDir || c.LogFormat != want.LogFormat {
					t.Errorf("got listen %q log_level %q data_dir %q log_format %q", c.Listen, c.LogLevel, c.DataDir, c.LogFormat)
				}
				if c.HTTP.BodyLimit != 2<<20 || c.HTTP.ReadTimeout != 30*time.Second {
					t.Errorf("http = %+v; want body_limit from the file, read_timeout default", c.HTTP)
				}
			},
		},
		{
			name: "env over file",
			env:  map[string]string{"LATCH_LISTEN": "127.0.0.1:2222", "LATCH_STORE_DSN": "postgres://env@db/latch", "LATCH_HTTP_BODY_LIMIT": "3MiB"},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:2222" || c.Store.DSN != "postgres://env@db/latch" || c.HTTP.BodyLimit != 3<<20 {
					t.Errorf("got listen %q dsn %q body_limit %d", c.Listen, c.Store.DSN.Value(), c.HTTP.BodyLimit)
				}
				if c.LogLevel != "debug" {
					t.Errorf("log_level %q: the file's value was lost", c.LogLevel)
				}
			},
		},
		{
			name:  "flag over env",
			env:   map[string]string{"LATCH_LISTEN": "127.0.0.1:2222", "LATCH_LOG_LEVEL": "warn", "LATCH_STORE_DRIVER": "sqlite"},
			flags: []string{"--listen=127.0.0.1:3333", "--store-dsn", "postgres://flag@db/latch", "--data=/from/flag"},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:3333" || c.Store.DSN != "postgres://flag@db/latch" || c.DataDir != "/from/flag" {
					t.Errorf("got listen %q dsn %q data_dir %q", c.Listen, c.Store.DSN.Value(), c.DataDir)
				}
				if c.LogLevel != "warn" || c.Store.Driver != "sqlite" {
					t.Errorf("got log_level %q driver %q; env values without a flag must stay", c.LogLevel, c.Store.Driver)
				}
			},
		},
		{
			name:  "unset flags do not override, even with defaults",
			env:   map[string]string{"LATCH_LOG_LEVEL": "error"},
			flags: []string{},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:1111" || c.LogLevel != "error" || c.Store.Driver != "postgres" {
					t.Errorf("got listen %q log_level %q driver %q", c.Listen, c.LogLevel, c.Store.Driver)
				}
			},
		},
		{
			name: "empty env var is unset",
			env:  map[string]string{"LATCH_LISTEN": ""},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:1111" {
					t.Errorf("listen = %q", c.Listen)
				}
			},
		},
		{
			name:  "public_url derived from the final listen",
			flags: []string{"--listen=:4444"},
			check: func(t *testing.T, c Config) {
				if c.PublicURL != "http://localhost:4444" {
					t.Errorf("public_url = %q", c.PublicURL)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs *pflag.FlagSet
			if tt.flags != nil {
				fs = newFlags(t, tt.flags...)
			}
			c, err := Load(file, fs, mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestExtensionsSection(t *testing.T) {
	path := writeYAML(t, `extensions:
  instances:
    - name: corp
      module: userstore.local
      config: {read_only: true, nested: {a: [1, 2]}}
    - module: authn.password
  default: {userstore: [corp]}
  tenants:
    acme: {userstore: []}
`)
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Extensions
	if len(e.Instances) != 2 || e.Instances[0].Name != "corp" || e.Instances[0].Module != "userstore.local" ||
		e.Instances[0].Config["read_only"] != true || e.Instances[1].Name != "" || e.Instances[1].Module != "authn.password" {
		t.Fatalf("instances: %+v", e.Instances)
	}
	if !slices.Equal(e.Default["userstore"], []string{"corp"}) {
		t.Errorf("default: %v", e.Default)
	}
	if l, ok := e.Tenants["acme"]["userstore"]; !ok || len(l) != 0 {
		t.Errorf("an explicitly empty tenant list must survive: %v", e.Tenants)
	}
}

func TestPluginsSection(t *testing.T) {
	path := writeYAML(t, `data_dir: /var/lib/latch
plugins:
  - id: acme-otp
    path: /etc/latch/acme-otp.wasm
    grants: [log, http]
    max_instances: 3
    call_timeout: 250ms
  - id: breached
    path: breached.wasm
    min_instances: 2
    memory_limit_pages: 256
`)
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.WASM.CacheDir != filepath.Join("/var/lib/latch", "wasm-cache") {
		t.Errorf("wasm.cache_dir = %q, want it under data_dir", c.WASM.CacheDir)
	}
	if len(c.Plugins) != 2 {
		t.Fatalf("plugins: %+v", c.Plugins)
	}
	a, b := c.Plugins[0], c.Plugins[1]
	if a.ID != "acme-otp" || a.Path != "/etc/latch/acme-otp.wasm" || !slices.Equal(a.Grants, []string{"log", "http"}) ||
		a.MinInstances != 1 || a.MaxInstances != 3 || a.MemoryLimitPages != 1024 || a.CallTimeout != 250*time.Millisecond {
		t.Errorf("plugins[0] = %+v", a)
	}
	if b.MinInstances != 2 || b.MaxInstances < 2 || b.MemoryLimitPages != 256 || b.CallTimeout != time.Second || b.Grants != nil {
		t.Errorf("plugins[1] = %+v, want the defaults filled in", b)
	}
	if !strings.Contains(printed(t, c), "memory_limit_pages: 1024") {
		t.Errorf("Print does not show the filled-in defaults:\n%s", printed(t, c))
	}

	c, err = Load("", nil, mapEnv(map[string]string{"LATCH_WASM_CACHE_DIR": "/cache"}))
	if err != nil || c.WASM.CacheDir != "/cache" {
		t.Errorf("LATCH_WASM_CACHE_DIR: cache_dir %q, %v", c.WASM.CacheDir, err)
	}
}

func TestLoadDefaultFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatalf("Load without ./latch.yaml: %v", err)
	}
	if c.Listen != DefaultListen {
		t.Errorf("listen = %q", c.Listen)
	}
	if err := os.WriteFile(DefaultFile, []byte("listen: 127.0.0.1:5555\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load("", nil, nil)
	if err != nil || c.Listen != "127.0.0.1:5555" {
		t.Errorf("Load with ./latch.yaml: listen %q, %v", c.Listen, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil, nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("explicit missing file: error = %v, want it named", err)
	}
}

func TestStrictYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // all must appear in the error
	}{
		{"top-level typo", "listn: 127.0.0.1:1\n", []string{`line 1, column 1: unknown key "listn" (did you mean "listen"?)`}},
		{"nested typo", "http:\n  body_limt: 1MiB\n", []string{`line 2, column 3: unknown key "http.body_limt" (did you mean "http.body_limit"?)`}},
		{"camelCase", "http:\n  bodyLimit: 1MiB\n", []string{`unknown key "http.bodyLimit" (did you mean "http.body_limit"?)`}},
		{"unrelated key, no suggestion", "frobnicate: true\n", []string{`line 1, column 1: unknown key "frobnicate"`}},
		{"every unknown key reported", "a: 1\nstore:\n  b: 2\n", []string{`line 1, column 1: unknown key "a"`, `line 3, column 3: unknown key "store.b"`}},
		{"unknown key inside a merged anchor", "base: &b\n  x: 1\n", []string{`unknown key "base"`}},
		{"unknown key through merge", "tls: &t\n  insecure: true\nhttp:\n  <<: *t\n", []string{`unknown key "http.insecure"`}},
		{"Go field name is not a key", "LogLevel: debug\n", []string{`unknown key "LogLevel" (did you mean "log_level"?)`}},
		{"duration without unit", "http:\n  read_timeout: 30\n", []string{"line 2", "time.Duration"}},
		{"number for a section", "store: 5\n", []string{"line 1"}},
		{"bad size", "http:\n  body_limit: lots\n", []string{"line 2", `parsing size "lots"`}},
		{"size as a list", "http:\n  body_limit: [1]\n", []string{"line 2", "a size must be"}},
		{"syntax error", "listen: [\n", []string{"parsing YAML", "line"}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", []string{"more than one document"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"line 2", "already defined"}},
		{"unknown key in an extension instance", "extensions:\n  instances:\n    - name: a\n      modul: userstore.local\n", []string{"line 4", "modul"}},
		{"unknown key in a plugin", "plugins:\n  - id: a\n    path: a.wasm\n    grant: [log]\n", []string{"line 4", "grant"}},
		{"plugins as a map", "plugins:\n  a: {path: a.wasm}\n", []string{"line 2"}},
		{"unknown extensions key", "extensions:\n  instance: []\n", []string{`unknown key "extensions.instance" (did you mean "extensions.instances"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeYAML(t, tt.yaml)
			_, err := Load(path, nil, nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestMergeBomb: merge keys through a chain of anchors reference 4^12
// mappings; checking keys must visit each once, not expand them.
func TestMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &a0 {listen: 1}\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("http:\n  <<: *a11\n")
	start := time.Now()
	c := defaults()
	err := decodeYAML([]byte(b.String()), &c)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("decoding took %v", d)
	}
	if err == nil || strings.Count(err.Error(), `unknown key "http.listen"`) != 1 {
		t.Errorf("error = %.300v; want http.listen reported once", err)
	}
}

func TestYAMLFeatures(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(c Config) bool
	}{
		{"empty file", "", func(c Config) bool { return c.Listen == DefaultListen }},
		{"comments only", "# nothing\n", func(c Config) bool { return c.Listen == DefaultListen }},
		{"null section keeps defaults", "http:\n", func(c Config) bool { return c.HTTP.ShutdownTimeout == 30*time.Second }},
		{"merge key", "tls: &t\n  cert_file: a\n  key_file: b\n", func(c Config) bool { return c.TLS.KeyFile == "b" }},
		{"size in bytes", "http:\n  body_limit: 2048\n", func(c Config) bool { return c.HTTP.BodyLimit == 2048 }},
		{"size with space and unit", "http:\n  body_limit: 512 KiB\n", func(c Config) bool { return c.HTTP.BodyLimit == 512<<10 }},
		{"list", "http:\n  trusted_proxies: [10.0.0.0/8, 127.0.0.1]\n", func(c Config) bool {
			return slices.Equal(c.HTTP.TrustedProxies, []string{"10.0.0.0/8", "127.0.0.1"})
		}},
		{"uint8", "password:\n  parallelism: 4\n", func(c Config) bool { return c.Password.Parallelism == 4 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeYAML(t, tt.yaml), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config:\n%s", printed(t, c))
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	const secretish = "hunter2-is-not-a-number"
	_, err := Load("", nil, mapEnv(map[string]string{
		"LATCH_HTTP_READ_TIMEOUT": "30",
		"LATCH_PASSWORD_MEMORY":   secretish,
		"LATCH_TLS_INSECURE":      "maybe",
		"LATCH_HTTP_BODY_LIMIT":   "1 parsec",
	}))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, want := range []string{
		"LATCH_HTTP_READ_TIMEOUT (http.read_timeout): not a duration",
		"LATCH_PASSWORD_MEMORY (password.memory): not a non-negative integer of 32 bits",
		"LATCH_TLS_INSECURE (tls.insecure): not a boolean",
		"LATCH_HTTP_BODY_LIMIT (http.body_limit)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), secretish) {
		t.Error("the error repeats an environment value")
	}
}

func TestEnvList(t *testing.T) {
	env := strings.Join(EnvVars(), "\n") + "\n"
	golden := filepath.Join("testdata", "envvars.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(env), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if env != string(want) {
		t.Errorf("EnvVars() changed; if intended, run go test -update and update doc.go\n got:\n%s\nwant:\n%s", env, want)
	}
	if !slices.IsSorted(EnvVars()) {
		t.Error("EnvVars() is not sorted")
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range EnvVars() {
		if !bytes.Contains(doc, []byte("//\t"+v+" ")) {
			t.Errorf("doc.go does not list %s", v)
		}
	}
}

// TestEnvVarsCoverEveryLeaf derives the leaves independently, from the
// YAML that Print writes, and checks each has a variable that really sets
// it.
func TestEnvVarsCoverEveryLeaf(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(printed(t, Default())), &doc); err != nil {
		t.Fatal(err)
	}
	var fromYAML []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if prefix == "" && (k == "extensions" || k == "plugins") {
				continue // file-only sections (env:"-"): lists and maps
			}
			if v.Kind == yaml.MappingNode {
				walk(v, prefix+k+"_")
				continue
			}
			fromYAML = append(fromYAML, "LATCH_"+strings.ToUpper(prefix+k))
		}
	}
	walk(doc.Content[0], "")
	slices.Sort(fromYAML)
	if !slices.Equal(fromYAML, EnvVars()) {
		t.Fatalf("EnvVars() = %v\nleaves in printed YAML = %v", EnvVars(), fromYAML)
	}

	// Sample values by variable suffix; every variable must change the
	// loaded config when set.
	sample := func(name string) string {
		switch {
		case strings.HasSuffix(name, "TIMEOUT"), strings.HasSuffix(name, "LIFETIME"), strings.HasSuffix(name, "OVERLAP"):
			return "7s"
		case strings.HasSuffix(name, "LIMIT"):
			return "7KiB"
		case strings.HasSuffix(name, "CONNS"), strings.HasSuffix(name, "_DB"), strings.HasSuffix(name, "MEMORY"), strings.HasSuffix(name, "ITERATIONS"), strings.HasSuffix(name, "PARALLELISM"):
			return "7"
		case strings.HasSuffix(name, "INSECURE"), strings.HasSuffix(name, "UNSIGNED"), strings.HasSuffix(name, "_TLS"),
			strings.HasSuffix(name, "_CERTS"), strings.HasSuffix(name, "_REQUIRED"):
			return "true"
		case strings.HasSuffix(name, "TRUSTED_KEYS"):
			return "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		case strings.HasSuffix(name, "PROXIES"):
			return "10.0.0.0/8, 10.1.0.1"
		default:
			return "sample-value"
		}
	}
	base, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range EnvVars() {
		t.Run(name, func(t *testing.T) {
			c, err := Load("", nil, mapEnv(map[string]string{name: sample(name)}))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", revealed(c)) == fmt.Sprintf("%#v", revealed(base)) {
				t.Errorf("setting %s=%q changed nothing", name, sample(name))
			}
		})
	}
}

// revealed renders c with secrets visible, for comparisons.
func revealed(c Config) string {
	return fmt.Sprint(c.MasterKey.Value(), c.Store.DSN.Value(), c.Bootstrap.AdminPassword.Value(),
		c.Bootstrap.ClientSecret.Value(), c.Cache.Password.Value(), printedNoErr(c))
}

func printedNoErr(c Config) string {
	var b bytes.Buffer
	_ = c.Print(&b)
	return b.String()
}

func TestFlags(t *testing.T) {
	fs := pflag.NewFlagSet("latch", pflag.ContinueOnError)
	RegisterFlags(fs)
	for _, name := range []string{"listen", "data", "config", "log-level", "public-url", "store-driver", "store-dsn"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s not registered", name)
		}
	}
	if err := fs.Parse([]string{"--config=/etc/latch.yaml", "--public-url=https://id.example.com/", "--log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://id.example.com" || c.LogLevel != "debug" {
		t.Errorf("public_url %q log_level %q", c.PublicURL, c.LogLevel)
	}
	if fs.Lookup("store-dsn").DefValue != "" {
		t.Error("--store-dsn shows a default value")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // each must appear; none: valid
	}{
		{"defaults", func(c *Config) {}, nil},
		{"body limit zero", func(c *Config) { c.HTTP.BodyLimit = 0 }, []string{"http.body_limit: must be > 0"}},
		{"shutdown timeout negative", func(c *Config) { c.HTTP.ShutdownTimeout = -time.Second }, []string{"http.shutdown_timeout: must be > 0"}},
		{"empty listen", func(c *Config) { c.Listen = "" }, []string{"listen: must not be empty"}},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, []string{"listen: must be host:port"}},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:http" }, []string{`listen: port "http" is not a number`}},
		{"listen port too large", func(c *Config) { c.Listen = "127.0.0.1:70000" }, []string{`listen: port "70000"`}},
		{"plain HTTP on all interfaces", func(c *Config) { c.Listen = ":8080" }, []string{`tls.cert_file: plain HTTP on the non-loopback address ":8080" is refused`, "tls.insecure: true"}},
		{"plain HTTP on a public IP", func(c *Config) { c.Listen = "192.0.2.1:80" }, []string{"tls.cert_file: plain HTTP"}},
		{"plain HTTP on a host name", func(c *Config) { c.Listen = "id.example.com:80" }, []string{"tls.cert_file: plain HTTP"}},
		{"plain HTTP allowed explicitly", func(c *Config) { c.Listen = "0.0.0.0:8080"; c.TLS.Insecure = true }, nil},
		{"TLS on all interfaces", func(c *Config) { c.Listen = ":8443"; c.TLS.CertFile, c.TLS.KeyFile = "c.pem", "k.pem" }, nil},
		{"loopback IPv6", func(c *Config) { c.Listen = "[::1]:8080" }, nil},
		{"localhost", func(c *Config) { c.Listen = "localhost:8080" }, nil},
		{"loopback 127.0.0.2", func(c *Config) { c.Listen = "127.0.0.2:8080" }, nil},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, []string{"tls.key_file: must be set when tls.cert_file is set"}},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "k.pem" }, []string{"tls.cert_file: must be set when tls.key_file is set"}},
		{"self-signed client certs without TLS", func(c *Config) { c.TLS.SelfSignedClientCerts = true }, []string{"tls.self_signed_client_certs: needs tls.cert_file"}},
		{"self-signed client certs with TLS", func(c *Config) {
			c.TLS.SelfSignedClientCerts, c.TLS.CertFile, c.TLS.KeyFile = true, "c.pem", "k.pem"
		}, nil},
		{"public url relative", func(c *Config) { c.PublicURL = "/latch" }, []string{"public_url: must start with http:// or https://"}},
		{"public url with query", func(c *Config) { c.PublicURL = "https://x.example/?a=b" }, []string{"public_url: must not have user info, a query or a fragment"}},
		{"public url without host", func(c *Config) { c.PublicURL = "https://" }, []string{"public_url: must have a host"}},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, []string{`log_level: must be one of [debug info warn error], got "verbose"`}},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, []string{`log_format: must be one of [text json], got "xml"`}},
		{"master key too short", func(c *Config) { c.MasterKey = "c2hvcnQ=" }, []string{"master_key: must be the base64 of 32 random bytes"}},
		{"master key valid", func(c *Config) { c.MasterKey = Secret(strings.Repeat("A", 43) + "=") }, nil},
		{"driver", func(c *Config) { c.Store.Driver = "mysql" }, []string{`store.driver: must be one of [sqlite postgres], got "mysql"`}},
		{"postgres without dsn", func(c *Config) { c.Store.Driver, c.Store.DSN = "postgres", "" }, []string{"store.dsn: must not be empty (required for the postgres driver)"}},
		{"negative conns", func(c *Config) { c.Store.MaxOpenConns = -1 }, []string{"store.max_open_conns: must be >= 0"}},
		{"cache driver", func(c *Config) { c.Cache.Driver = "memcached" }, []string{`cache.driver: must be one of [none redis], got "memcached"`}},
		{"cache redis", func(c *Config) { c.Cache.Driver = "redis" }, nil},
		{"cache addr", func(c *Config) { c.Cache.Driver, c.Cache.Addr = "redis", "redis.internal" }, []string{`cache.addr: must be host:port`}},
		{"cache ca without tls", func(c *Config) { c.Cache.Driver, c.Cache.CAFile = "redis", "ca.pem" }, []string{"cache.ca_file: needs cache.tls: true"}},
		{"cache timeout", func(c *Config) { c.Cache.Driver, c.Cache.Timeout = "redis", 0 }, []string{"cache.timeout: must be > 0"}},
		{"trusted proxy", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, []string{`http.trusted_proxies[1]: "proxy.local" is not an IP address or CIDR prefix`}},
		{"key algorithm", func(c *Config) { c.Keys.Algorithm = "HS256" }, []string{`keys.algorithm: must be one of [ES256 EdDSA RS256], got "HS256"`}},
		{"key overlap", func(c *Config) { c.Keys.Overlap = 0 }, []string{"keys.overlap: must be > 0"}},
		{"password parallelism", func(c *Config) { c.Password.Parallelism = 0 }, []string{"password.parallelism: must be >= 1"}},
		{"password memory", func(c *Config) { c.Password.Memory = 4 }, []string{"password.memory: must be between 8 KiB per lane (8)"}},
		{"password iterations", func(c *Config) { c.Password.Iterations = 1000 }, []string{"password.iterations: must be between 1 and 64"}},
		{"weak bootstrap client secret", func(c *Config) { c.Bootstrap.ClientSecret = "short-secret" }, []string{"bootstrap.client_secret: must be at least 32 characters"}},
		{"strong bootstrap client secret", func(c *Config) { c.Bootstrap.ClientSecret = Secret(strings.Repeat("s", 32)) }, nil},
		{"short bootstrap password", func(c *Config) { c.Bootstrap.AdminPassword = "1234567" }, []string{"bootstrap.admin_password: must be 8 to 1024 characters"}},
		{"plugin", func(c *Config) { c.Plugins = []PluginConfig{validPlugin("a")} }, nil},
		{"plugin without id and path", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a"), validPlugin("")}
			c.Plugins[1].Path = ""
		}, []string{"plugins[1].id: must not be empty", "plugins[1].path: must not be empty"}},
		{"plugin id", func(c *Config) { c.Plugins = []PluginConfig{validPlugin("Acme OTP")} }, []string{`plugins[0].id: "Acme OTP" must be 1 to 128 of a-z 0-9 _ - .`}},
		{"duplicate plugin ids", func(c *Config) { c.Plugins = []PluginConfig{validPlugin("a"), validPlugin("b"), validPlugin("a")} },
			[]string{`plugins[2].id: "a" is already the id of plugins[0]`}},
		{"plugin path not wasm", func(c *Config) { c.Plugins = []PluginConfig{validPlugin("a")}; c.Plugins[0].Path = "a.so" },
			[]string{`plugins[0].path: must name a .wasm file, got "a.so"`}},
		{"plugin grant", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].Grants = []string{"log", "teleport"}
		},
			[]string{`plugins[0].grants[1]: unknown capability "teleport"`}},
		{"plugin pool", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].MinInstances, c.Plugins[0].MaxInstances = 4, 2
		}, []string{"plugins[0].max_instances: must be >= min_instances (4)"}},
		{"plugin limits", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].MinInstances, c.Plugins[0].MemoryLimitPages, c.Plugins[0].CallTimeout = -1, 70000, -time.Second
		}, []string{"plugins[0].min_instances: must be >= 1", "plugins[0].memory_limit_pages: must be between 1 and 65536", "plugins[0].call_timeout: must be > 0"}},
		{"native plugin", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].Path, c.Plugins[0].Command, c.Plugins[0].Processes = "", "/usr/lib/latch/a", 2
			c.Plugins[0].SHA256 = strings.Repeat("ab", 32)
		}, nil},
		{"native plugin beside path", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].Command, c.Plugins[0].Processes = "/usr/lib/latch/a", 1
		}, []string{"plugins[0].command: must not be set beside path"}},
		{"native plugin limits", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].Path, c.Plugins[0].Command, c.Plugins[0].Processes, c.Plugins[0].SHA256 = "", "/usr/lib/latch/a", 65, "abc"
		}, []string{"plugins[0].processes: must be between 1 and 64", `plugins[0].sha256: must be 64 hex digits, got "abc"`}},
		{"native fields on a wasm plugin", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].Args, c.Plugins[0].SHA256, c.Plugins[0].Processes = []string{"-v"}, strings.Repeat("ab", 32), 2
		}, []string{"plugins[0].args: needs command", "plugins[0].sha256: needs command", "plugins[0].processes: needs command"}},
		{"plugin http_hosts and secrets need their grants", func(c *Config) {
			c.Plugins = []PluginConfig{validPlugin("a")}
			c.Plugins[0].HTTPHosts = []string{"api.example.com", "https://x/path"}
			c.Plugins[0].Secrets = map[string]Secret{"k": "v"}
		}, []string{`plugins[0].http_hosts: needs grant "http"`, `plugins[0].secrets: needs grant "secrets"`, `plugins[0].http_hosts[1]: "https://x/path" must be host`}},
		{"every error reported", func(c *Config) {
			c.HTTP.BodyLimit, c.LogLevel, c.Keys.Overlap = 0, "loud", 0
		}, []string{"http.body_limit:", "log_level:", "keys.overlap:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not a joined error", err)
			}
			for _, e := range joined.Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) || fe.Field == "" {
					t.Errorf("error %q is not a FieldError naming its field", e)
				}
			}
			if tt.name == "every error reported" && len(joined.Unwrap()) != 3 {
				t.Errorf("%d errors, want 3", len(joined.Unwrap()))
			}
		})
	}
}

// validPlugin is a plugin entry with its defaults filled in, as Load
// leaves it.
func validPlugin(id string) PluginConfig {
	return PluginConfig{ID: id, Path: id + ".wasm", MinInstances: 1, MaxInstances: 2, MemoryLimitPages: 1024, CallTimeout: time.Second}
}

func TestValidateNeverShowsSecrets(t *testing.T) {
	c := Default()
	c.MasterKey = "not-a-key-but-secret-anyway"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "not-a-key") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestSecretsMasked(t *testing.T) {
	const (
		masterKey = "bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk="
		adminPW   = "admin-pw-Zq81!"
		clientSec = "client-secret-Xy7"
		dbPW      = "db-pass-Wv3"
	)
	dsns := []struct {
		name string
		dsn  string
		keep []string // visible parts
	}{
		{"url user info", "postgres://latch:" + dbPW + "@db.internal:5432/latch?sslmode=verify-full", []string{"latch:", "db.internal:5432/latch", "sslmode=verify-full"}},
		{"url query password", "postgres://db.internal/latch?user=latch&password=" + dbPW, []string{"user=latch", "db.internal"}},
		{"key value", "host=db.internal user=latch password=" + dbPW + " dbname=latch", []string{"host=db.internal", "dbname=latch"}},
		{"key value quoted", "host=db password='" + dbPW + " with space' dbname=latch", []string{"dbname=latch"}},
		{"key value spaces around =", "host=db password = " + dbPW + " dbname=latch", []string{"dbname=latch"}},
		{"upper case key", "host=db PASSWORD=" + dbPW, []string{"host=db"}},
		{"unparsable url", "postgres://latch:" + dbPW + "@db:%zz/latch", nil},
	}
	for _, tt := range dsns {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.MasterKey = masterKey
			c.Bootstrap.AdminPassword = adminPW
			c.Bootstrap.ClientSecret = clientSec
			c.Store.Driver, c.Store.DSN = "postgres", DSN(tt.dsn)

			var logBuf bytes.Buffer
			slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config",
				"master_key", c.MasterKey, "dsn", c.Store.DSN, "bootstrap", c.Bootstrap)
			js, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			out := printed(t, c)
			renders := map[string]string{
				"Print":      out,
				"%v":         fmt.Sprintf("%v", c),
				"%+v":        fmt.Sprintf("%+v", c),
				"%#v":        fmt.Sprintf("%#v", c),
				"%s secret":  fmt.Sprintf("%s %s %s", c.MasterKey, c.Bootstrap.AdminPassword, c.Store.DSN),
				"json":       string(js),
				"slog":       logBuf.String(),
				"DSN.String": c.Store.DSN.String(),
			}
			for name, r := range renders {
				for _, s := range []string{masterKey, adminPW, clientSec, dbPW} {
					if strings.Contains(r, s) {
						t.Errorf("%s output contains the secret %q:\n%s", name, s, r)
					}
				}
			}
			if !strings.Contains(out, "master_key: '********'") && !strings.Contains(out, `master_key: "********"`) {
				t.Errorf("Print does not show the masked master key:\n%s", out)
			}
			for _, k := range tt.keep {
				if !strings.Contains(c.Store.DSN.String(), k) {
					t.Errorf("masked DSN %q lost %q", c.Store.DSN.String(), k)
				}
			}
			if c.Store.DSN.Value() != tt.dsn || c.MasterKey.Value() != masterKey {
				t.Error("Value() does not return the secret")
			}
		})
	}
	var empty Secret
	if empty.String() != "" {
		t.Errorf("empty Secret prints %q", empty.String())
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"1MiB", 1 << 20, false},
		{"1mib", 1 << 20, false},
		{"512 KiB", 512 << 10, false},
		{"10MB", 10_000_000, false},
		{"2GiB", 2 << 30, false},
		{"100B", 100, false},
		{"-1", -1, false}, // Validate refuses it with the field's name
		{"", 0, true},
		{"MiB", 0, true},
		{"1.5MiB", 0, true},
		{"1TiB", 0, true},
		{"99999999999999GiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseByteSize(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
	for in, want := range map[ByteSize]string{1 << 20: "1MiB", 1536: "3KiB" /* 1.5KiB */, 1000: "1000", 0: "0"} {
		if in == 1536 {
			want = "1536"
		}
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", in, got, want)
		}
	}
}

func TestDerivedPublicURL(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		tls    bool
		set    string
		want   string
	}{
		{"loopback", "127.0.0.1:8080", false, "", "http://127.0.0.1:8080"},
		{"all interfaces", ":9000", false, "", "http://localhost:9000"},
		{"unspecified IPv4", "0.0.0.0:9000", false, "", "http://localhost:9000"},
		{"unspecified IPv6", "[::]:9000", false, "", "http://localhost:9000"},
		{"IPv6 loopback", "[::1]:9000", false, "", "http://[::1]:9000"},
		{"TLS", "id.example.com:443", true, "", "https://id.example.com:443"},
		{"explicit, trailing slash trimmed", "127.0.0.1:8080", false, "https://id.example.com/latch/", "https://id.example.com/latch"},
		{"listen unparsable", "nonsense", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"LATCH_LISTEN": tt.listen, "LATCH_PUBLIC_URL": tt.set}
			if tt.tls {
				env["LATCH_TLS_CERT_FILE"], env["LATCH_TLS_KEY_FILE"] = "c", "k"
			}
			c, err := Load("", nil, mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.PublicURL != tt.want {
				t.Errorf("public_url = %q, want %q", c.PublicURL, tt.want)
			}
		})
	}
}

func TestPasswordParams(t *testing.T) {
	p := Default().Password.Params()
	if err := p.Validate(); err != nil || p.Memory != 19456 || p.Iterations != 2 || p.Parallelism != 1 || p.KeyLength != 32 {
		t.Errorf("Params() = %+v, %v", p, err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	seeds := []string{
		"",
		"listen: 127.0.0.1:1\n",
		"http:\n  body_limit: 1MiB\n  trusted_proxies: [a, b]\n",
		"a: &x {b: *x}\n",
		"store: &s\n  driver: sqlite\nhttp:\n  <<: *s\n",
		"<<: [*a, *b]\n",
		"- 1\n- 2\n",
		"password:\n  parallelism: 300\n",
		"---\n---\n",
		"http: {read_timeout: 1h, write_timeout: !!str 5}\n",
	}
	if data, err := os.ReadFile("testdata/latch.example.yaml"); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaults()
		if err := decodeYAML(data, &c); err != nil {
			return
		}
		c.derive()
		_ = c.Validate()
		var b bytes.Buffer
		if err := c.Print(&b); err != nil {
			t.Fatalf("Print after a successful decode: %v", err)
		}
	})
}

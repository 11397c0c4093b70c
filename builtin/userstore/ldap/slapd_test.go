package ldap_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// The test directory: its suffix, its administrator (the rootdn, used only
// to seed) and the service account the store binds as.
const (
	suffix      = "dc=example,dc=org"
	adminDN     = "cn=admin," + suffix
	adminPW     = "admin-secret"
	serviceDN   = "cn=latch," + suffix
	servicePW   = "service-secret"
	peopleDN    = "ou=people," + suffix
	groupsDN    = "ou=groups," + suffix
	bulkUsers   = 2100
	slapdBinary = "/usr/sbin/slapd"
)

// slapd is a real OpenLDAP server run by a test: an mdb database in a
// temporary folder, listening on loopback for ldap:// (with StartTLS) and
// ldaps://, with a certificate from a CA made by the test.
type slapd struct {
	dir     string
	conf    string
	port    int
	tlsPort int
	caFile  string
	logFile string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// slapdPath returns the slapd binary, or skips the test when it is not
// installed.
func slapdPath(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat(slapdBinary); err == nil {
		return slapdBinary
	}
	tb.Skip("slapd is not installed: install the Debian packages slapd and ldap-utils to run the LDAP user store tests")
	return ""
}

// newSlapd writes a configuration into dir and starts the server. The
// caller stops it.
func newSlapd(tb testing.TB, dir string) (*slapd, error) {
	tb.Helper()
	s := &slapd{dir: dir, conf: filepath.Join(dir, "slapd.conf"), logFile: filepath.Join(dir, "slapd.log")}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	if err := s.writeCerts(); err != nil {
		return nil, fmt.Errorf("writing certificates: %w", err)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if s.tlsPort, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.writeConfig(); err != nil {
			return nil, err
		}
		if err = s.start(slapdPath(tb)); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func (s *slapd) url() string    { return fmt.Sprintf("ldap://127.0.0.1:%d", s.port) }
func (s *slapd) tlsURL() string { return fmt.Sprintf("ldaps://127.0.0.1:%d", s.tlsPort) }

func (s *slapd) writeConfig() error {
	conf := fmt.Sprintf(`# written by the userstore.ldap tests
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
password-hash {SSHA}
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
sizelimit 500
# Like many directories, accept a DN without a password as an anonymous
# bind: the store must refuse empty passwords itself.
allow bind_anon_dn

database mdb
maxsize 268435456
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
dbnosync
index objectClass,uid,mail,member,entryUUID,employeeType eq
limits dn.exact="%[5]s" size.soft=500 size.hard=500 size.pr=500 size.prtotal=unlimited
access to attrs=userPassword by dn.exact="%[5]s" write by self write by anonymous auth by * none
access to * by dn.exact="%[5]s" write by * read
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
overlay ppolicy
`, s.dir, suffix, adminDN, adminPW, serviceDN)
	return os.WriteFile(s.conf, []byte(conf), 0o600)
}

// start runs slapd in the foreground and waits until it answers.
func (s *slapd) start(bin string) error {
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-d", "0", "-h", s.url()+"/ "+s.tlsURL()+"/", "-f", s.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting slapd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			out, _ := os.ReadFile(s.logFile)
			return fmt.Errorf("slapd exited at start: %s", bytes.TrimSpace(out))
		default:
		}
		c, err := goldap.DialURL(s.url())
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return errors.New("slapd did not answer within 15s")
}

// stop ends slapd (SIGTERM, then SIGKILL after 10s) and waits for it.
func (s *slapd) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// signal sends sig to slapd.
func (s *slapd) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		tb.Fatal("slapd is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signalling slapd: %v", err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	// A signal is delivered asynchronously: wait until the kernel
	// reports the process stopped, so the next request cannot be
	// answered in between.
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for range 200 {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no procfs: nothing to wait on
		}
		if _, rest, ok := strings.Cut(string(b), ") "); ok && strings.HasPrefix(rest, "T") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatal("slapd did not stop after SIGSTOP")
}

// restart stops slapd and starts it again on the same ports and data.
func (s *slapd) restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(slapdPath(tb)); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("restarting slapd: %v", err)
}

// admin returns a connection bound as the rootdn.
func (s *slapd) admin() (*goldap.Conn, error) {
	c, err := goldap.DialURL(s.url())
	if err != nil {
		return nil, err
	}
	if err := c.Bind(adminDN, adminPW); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// seed adds the base entries, the service account, the named users and
// groups below, and n bulk users.
func (s *slapd) seed(n int) error {
	c, err := s.admin()
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	add := func(dn string, attrs map[string][]string) error {
		req := goldap.NewAddRequest(dn, nil)
		for _, k := range sortedMapKeys(attrs) {
			req.Attribute(k, attrs[k])
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("adding %s: %w", dn, err)
		}
		return nil
	}
	base := []struct {
		dn    string
		attrs map[string][]string
	}{
		{suffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		{serviceDN, map[string][]string{"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"latch"}, "userPassword": {servicePW}}},
		{peopleDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		{groupsDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
	}
	for _, b := range base {
		if err := add(b.dn, b.attrs); err != nil {
			return err
		}
	}
	for _, u := range namedUsers {
		attrs := map[string][]string{
			"objectClass":      {"inetOrgPerson"},
			"uid":              {u.uid},
			"cn":               {u.cn},
			"sn":               {u.sn},
			"givenName":        {u.given},
			"mail":             {u.mail},
			"userPassword":     {u.password},
			"departmentNumber": {"engineering"},
			"telephoneNumber":  {"+15551230000"},
		}
		if u.employeeType != "" {
			attrs["employeeType"] = []string{u.employeeType}
		}
		if u.locked {
			attrs["pwdAccountLockedTime"] = []string{"000001010000Z"}
		}
		if err := add("uid="+goldap.EscapeDN(u.uid)+","+peopleDN, attrs); err != nil {
			return err
		}
	}
	for _, g := range namedGroups {
		members := make([]string, len(g.members))
		for i, m := range g.members {
			members[i] = "uid=" + m + "," + peopleDN
		}
		if err := add("cn="+g.cn+","+groupsDN, map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {g.cn}, "description": {g.description}, "member": members,
		}); err != nil {
			return err
		}
	}
	for i := range n {
		uid := fmt.Sprintf("bulk%05d", i)
		if err := add("uid="+uid+","+peopleDN, map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {"Bulk " + strconv.Itoa(i)}, "sn": {"Bulk"},
			"mail": {uid + "@example.org"}, "userPassword": {"bulk-password"},
		}); err != nil {
			return err
		}
	}
	return nil
}

type testUser struct {
	uid, cn, sn, given, mail, password string
	employeeType                       string
	locked                             bool
}

// The named users: alice and erin are ordinary, bob is disabled, carol
// is locked, and the last one has filter syntax in its uid.
var namedUsers = []testUser{
	{uid: "alice", cn: "Alice Liddell", sn: "Liddell", given: "Alice", mail: "alice@example.org", password: "alice-password"},
	{uid: "bob", cn: "Bob Builder", sn: "Builder", given: "Bob", mail: "bob@example.org", password: "bob-password", employeeType: "disabled"},
	{uid: "carol", cn: "Carol Locked", sn: "Locked", given: "Carol", mail: "carol@example.org", password: "carol-password", locked: true},
	{uid: "erin", cn: "Erin Other", sn: "Other", given: "Erin", mail: "erin@example.org", password: "erin-password"},
	{uid: "star*(x)", cn: "Star Paren", sn: "Paren", given: "Star", mail: "star@example.org", password: "star-password"},
}

var namedGroups = []struct {
	cn, description string
	members         []string
}{
	{"staff", "Everyone employed", []string{"alice", "bob", "erin"}},
	{"admins", "Administrators", []string{"alice"}},
	{"auditors", "Read the logs", []string{"erin"}},
}

func sortedMapKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost.
func (s *slapd) writeCerts() error {
	caCert, caKey, caPEM, err := newCA("latch test CA")
	if err != nil {
		return err
	}
	s.caFile = filepath.Join(s.dir, "ca.pem")
	if err := os.WriteFile(s.caFile, caPEM, 0o600); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "server.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// newCA returns a self-signed CA certificate, its key and its PEM.
func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// The shared, seeded server of the package's read tests, started once by
// the first test that needs it and stopped by TestMain.
var (
	sharedOnce sync.Once
	shared     *slapd
	sharedErr  error
	sharedDir  string
)

// sharedSlapd returns the shared server, seeded with the named users and
// groups and bulkUsers more users.
func sharedSlapd(tb testing.TB) *slapd {
	tb.Helper()
	slapdPath(tb)
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "latch-slapd-")
		if sharedErr != nil {
			return
		}
		shared, sharedErr = newSlapd(tb, sharedDir)
		if sharedErr != nil {
			return
		}
		sharedErr = shared.seed(bulkUsers)
	})
	if sharedErr != nil {
		tb.Fatalf("starting the shared slapd: %v", sharedErr)
	}
	return shared
}

// ownSlapd starts a server for one test (which may stop or restart it),
// seeded with the named users and groups.
func ownSlapd(tb testing.TB) *slapd {
	tb.Helper()
	slapdPath(tb)
	s, err := newSlapd(tb, tb.TempDir())
	if err != nil {
		tb.Fatalf("starting slapd: %v", err)
	}
	tb.Cleanup(s.stop)
	if err := s.seed(0); err != nil {
		tb.Fatalf("seeding slapd: %v", err)
	}
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

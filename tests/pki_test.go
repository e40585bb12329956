package tests

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testCA is a certificate authority made by a test, as a user's own PKI.
type testCA struct {
	dir  string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{dir: t.TempDir(), key: key, cert: cert}
	ca.file = filepath.Join(ca.dir, "ca.pem")
	os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return ca
}

// issue writes a node certificate and key signed by the CA, valid for the
// given IP addresses too.
func (ca *testCA) issue(t *testing.T, name string, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func (ca *testCA) flags(t *testing.T, name string) []string {
	cert, key := ca.issue(t, name)
	return []string{"--cluster-cert", cert, "--cluster-key", key, "--cluster-ca", ca.file}
}

// Nodes with certificates from the user's own CA form a cluster (calls go
// both ways, the CLI tools join with a certificate of their own); a node
// whose certificate another CA signed is refused though its cookie is right.
func TestOwnPKIJoinsNodes(t *testing.T) {
	const cookie = "sec8-pki"
	ca := newTestCA(t, "test cluster CA")
	a := startNode(t, "a@127.0.0.1", cookie, append(ca.flags(t, "a"), "--cluster-host", "127.0.0.1")...)
	startNode(t, "b@127.0.0.1", cookie, append(ca.flags(t, "b"), "--cluster-host", "127.0.0.1", "--join", a.addr)...)
	var got []any
	dir := t.TempDir()
	path := writeFile(t, dir, "pki.py", waitPeers+`
import json
from hornbeam_erlang import rpc_call
wait_peers(["a@127.0.0.1", "b@127.0.0.1"])
print(json.dumps([rpc_call("b@127.0.0.1", "cltest", "whoami", []),
                  rpc_call("a@127.0.0.1", "cltest", "relay", ["b@127.0.0.1", "cltest", "add", [1, 2]])]))
`)
	pydir, _ := filepath.Abs("testdata/cluster")
	r := run(t, dir, nil, 60*time.Second, append(append([]string{"run", "--name", "t@127.0.0.1", "--cookie", cookie,
		"--join", a.addr, "--pythonpath", pydir}, ca.flags(t, "t")...), path)...)
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got); err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	if len(got) != 2 || got[0] != "b@127.0.0.1" || got[1] != float64(3) {
		t.Fatalf("calls in a cluster with its own PKI: %v", got)
	}
	r = run(t, t.TempDir(), nil, 30*time.Second, append([]string{"call", "b@127.0.0.1", "cltest", "add", "[2, 40]",
		"--join", a.addr, "--cookie", cookie}, ca.flags(t, "cli")...)...)
	if r.code != 0 || r.stdout != "42\n" {
		t.Errorf("hornbeam call with a certificate: %+v", r)
	}

	other := newTestCA(t, "someone else's CA")
	_, err := tryStartNode(t, "x@127.0.0.1", cookie, append(other.flags(t, "x"), "--cluster-host", "127.0.0.1", "--join", a.addr)...)
	if err == nil || !strings.Contains(err.Error(), "cookie") {
		t.Fatalf("a node with another CA's certificate: %v", err)
	}
	// The cookie alone (its derived CA) does not get in either.
	r = run(t, t.TempDir(), nil, 30*time.Second, "call", "b@127.0.0.1", "cltest", "add", "[2, 40]", "--join", a.addr, "--cookie", cookie)
	if r.code == 0 {
		t.Errorf("a cookie-only tool joined a cluster with its own PKI: %+v", r)
	}
	// The flags go together.
	r = run(t, t.TempDir(), nil, 30*time.Second, "nodes", "--join", a.addr, "--cookie", cookie, "--cluster-ca", ca.file)
	if r.code == 0 || !strings.Contains(r.stderr, "go together") {
		t.Errorf("--cluster-ca alone: %+v", r)
	}
}

var natsListenRe = regexp.MustCompile(`Listening for client connections on (\S+)`)

// With --nats, nodes reach Debian's nats-server over TLS (verified with
// --cluster-ca) and sign in with the nkey derived from their cookie: nodes
// with the cookie form a cluster through it; a node with another cookie, or
// one that cannot verify the server, is refused.
func TestExternalNATSWithTLSAndCookieNKey(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not installed (make deps)")
	}
	const cookie = "sec8-ext"
	r := run(t, t.TempDir(), nil, 30*time.Second, "nkey", "--cookie", cookie)
	nkey := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(nkey, "U") {
		t.Fatalf("hornbeam nkey: %+v", r)
	}
	ca := newTestCA(t, "nats CA")
	cert, key := ca.issue(t, "nats", net.ParseIP("127.0.0.1"))
	conf := writeFile(t, ca.dir, "nats.conf", fmt.Sprintf(`
listen: "127.0.0.1:-1"
tls { cert_file: %q, key_file: %q, timeout: 5 }
authorization { users = [ { nkey: %q } ] }
`, cert, key, nkey))
	srv := exec.Command(bin, "-c", conf)
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log syncBuffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); srv.Wait() })
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := natsListenRe.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("nats-server did not start:\n%s", log.String())
	}
	url := "tls://" + addr
	startNode(t, "x@127.0.0.1", cookie, "--nats", url, "--cluster-ca", ca.file)
	startNode(t, "y@127.0.0.1", cookie, "--nats", url, "--cluster-ca", ca.file)
	r = run(t, t.TempDir(), nil, 30*time.Second, "call", "y@127.0.0.1", "cltest", "relay", `["x@127.0.0.1", "cltest", "add", [1, 2]]`,
		"--nats", url, "--cluster-ca", ca.file, "--cookie", cookie)
	if r.code != 0 || r.stdout != "3\n" {
		t.Fatalf("a call through the external NATS: %+v", r)
	}
	if _, err := tryStartNode(t, "w@127.0.0.1", "another", "--nats", url, "--cluster-ca", ca.file); err == nil ||
		!strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("a node with another cookie: %v", err)
	}
	if _, err := tryStartNode(t, "v@127.0.0.1", cookie, "--nats", url); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a node that cannot verify the server: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

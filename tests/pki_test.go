package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
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

// issue writes a node certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, name string) (certFile, keyFile string) {
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

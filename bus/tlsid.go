package bus

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"
)

// Cluster TLS. Every connection between nodes (routes) and every connection a
// worker makes to its node's server runs mutual TLS 1.3. With only a cookie,
// every node derives the same cluster CA key from it (HKDF-SHA256 -> Ed25519
// seed) and issues itself a short-lived leaf certificate signed by that CA,
// so the cookie proves membership without ever being sent: a peer shows it
// holds the cookie by presenting a certificate only the cookie could sign.
// Users with their own PKI give the certificate, key and CA files instead.

// Leaf certificates are valid for leafLifetime from leafBackdate before they
// are made (clocks of the cluster's machines may disagree by up to that much)
// and are replaced after leafRenew, at the next handshake.
const (
	leafLifetime = 24 * time.Hour
	leafBackdate = time.Hour
	leafRenew    = 12 * time.Hour
)

// TLSFiles names a user-provided PKI: this node's certificate chain and key
// (PEM) and the CA bundle that signs every node's certificate.
type TLSFiles struct {
	Cert, Key, CA string
}

func (f TLSFiles) set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// identity is a node's TLS identity in its cluster: the CAs it trusts and the
// certificate it shows.
type identity struct {
	pool *x509.CertPool

	// With a cookie-derived CA: the CA's key and certificate, to issue leaves.
	caKey  ed25519.PrivateKey
	caCert *x509.Certificate
	name   string

	mu      sync.Mutex
	leaf    *tls.Certificate
	renewAt time.Time
	now     func() time.Time
}

// deriveKey derives a purpose-bound 32-byte key from the cookie.
func deriveKey(cookie, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(cookie), []byte("hornbeam cluster v1"), purpose, 32)
	if err != nil { // only for lengths hkdf cannot produce
		panic(err)
	}
	return k
}

// newIdentity makes the TLS identity of node name: from files when given,
// else derived from the cookie.
// now is the node's wall clock, for certificate validity.
func newIdentity(name, cookie string, files TLSFiles, now func() time.Time) (*identity, error) {
	id := &identity{name: name, now: now}
	if files.set() {
		if files.Cert == "" || files.Key == "" || files.CA == "" {
			return nil, errors.New("bus: --cluster-cert, --cluster-key and --cluster-ca go together")
		}
		cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return nil, fmt.Errorf("bus: cluster certificate: %w", err)
		}
		pool, err := loadPool(files.CA)
		if err != nil {
			return nil, err
		}
		id.pool, id.leaf, id.renewAt = pool, &cert, time.Time{}.AddDate(9000, 0, 0)
		return id, nil
	}
	if cookie == "" {
		return nil, errors.New("bus: empty cookie")
	}
	id.caKey = ed25519.NewKeyFromSeed(deriveKey(cookie, "cluster CA key"))
	pub := id.caKey.Public().(ed25519.PublicKey)
	fp := sha256.Sum256(pub)
	// Every field is fixed, so every node makes the same CA certificate.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hornbeam cluster CA " + hex.EncodeToString(fp[:8])},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          fp[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, id.caKey)
	if err != nil {
		return nil, fmt.Errorf("bus: cluster CA: %w", err)
	}
	if id.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("bus: cluster CA: %w", err)
	}
	id.pool = x509.NewCertPool()
	id.pool.AddCert(id.caCert)
	if _, err := id.current(); err != nil {
		return nil, err
	}
	return id, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bus: cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("bus: cluster CA %s holds no PEM certificate", file)
	}
	return pool, nil
}

// current returns the certificate to show, issuing a new leaf when the one
// held is due for renewal.
func (id *identity) current() (*tls.Certificate, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	now := id.now()
	if id.leaf != nil && now.Before(id.renewAt) {
		return id.leaf, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bus: leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("bus: leaf serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.name},
		NotBefore:    now.Add(-leafBackdate),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, id.caCert, &key.PublicKey, id.caKey)
	if err != nil {
		return nil, fmt.Errorf("bus: issuing the node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("bus: issuing the node certificate: %w", err)
	}
	id.leaf = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: crypto.Signer(key), Leaf: leaf}
	id.renewAt = now.Add(leafRenew)
	return id.leaf, nil
}

// verify accepts a peer whose certificate chains to the cluster's CA. Host
// names are not checked: routes are gossiped as addresses, and the cluster
// trusts every holder of its CA (the cookie) alike.
func (id *identity) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("bus: the peer showed no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: id.pool, Intermediates: inter, CurrentTime: id.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("bus: peer certificate not signed by this cluster's CA (another cookie?): %w", err)
	}
	return nil
}

// config returns the TLS configuration for both ends of a connection: as a
// server it asks for and verifies the client's certificate, as a client it
// verifies the server's the same way (in VerifyConnection, hence the skipped
// default check, which would also match host names).
func (id *identity) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return id.current()
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.current()
		},
		ClientAuth:         tls.RequireAndVerifyClientCert,
		ClientCAs:          id.pool,
		InsecureSkipVerify: true,
		VerifyConnection:   id.verify,
	}
}

// caPEM returns the cluster CA certificate in PEM, when derived from a cookie.
func (id *identity) caPEM() []byte {
	if id.caCert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.caCert.Raw})
}

package web

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServe serves a handler that reports what the server knows of each
// request (TLS, protocol, the framer's note) behind a tlsListener wired as
// Server.start wires it.
func tlsServe(t *testing.T, timeout time.Duration, inFlight int) (*tlsListener, *http.Server) {
	t.Helper()
	conf := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newTLSListener(raw, conf.Clone(), timeout, inFlight, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tr := newConnTracker(timeout, 64<<10)
	hs := &http.Server{TLSConfig: conf.Clone(), ConnState: tr.connState, ConnContext: withClock,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			note := headersRead(r)
			if note != "" {
				w.Header().Set("Connection", "close")
				w.WriteHeader(400)
				return
			}
			fmt.Fprintf(w, "%s tls=%v secure=%v", r.Proto, r.TLS != nil && r.TLS.HandshakeComplete, secure(r))
		})}
	done := make(chan struct{})
	go func() { hs.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ln.abort()
		hs.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ln, hs
}

func tlsGet(t *testing.T, addr string, h2 bool) (string, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTLSListenerProtocols(t *testing.T) {
	ln, _ := tlsServe(t, 5*time.Second, 8)
	for _, c := range []struct {
		h2   bool
		want string
	}{{false, "HTTP/1.1 tls=true secure=true"}, {true, "HTTP/2.0 tls=true secure=true"}} {
		got, err := tlsGet(t, ln.Addr().String(), c.h2)
		if err != nil || got != c.want {
			t.Fatalf("h2=%v: %q, %v; want %q", c.h2, got, err, c.want)
		}
	}
	// The framer sees HTTP/1.1 over TLS: both Content-Length and
	// Transfer-Encoding are refused and the connection closed.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") || strings.Count(string(b), "HTTP/1.1 ") != 1 {
		t.Fatalf("CL+TE over TLS: %q, %v", b, err)
	}
}

// A client that connects and says nothing holds a handshake slot for the
// timeout at most, and holds up no one else while slots are free; with all
// slots taken, a new client waits for one.
func TestTLSListenerStalledHandshakes(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	ln, _ := tlsServe(t, timeout, 2)
	addr := ln.Addr().String()
	silent := func() (net.Conn, chan time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cut := make(chan time.Duration, 1)
		t0 := time.Now()
		go func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			cut <- time.Since(t0)
		}()
		return c, cut
	}
	_, cut1 := silent()
	t0 := time.Now()
	if got, err := tlsGet(t, addr, false); err != nil || !strings.HasPrefix(got, "HTTP/1.1 ") {
		t.Fatalf("beside a silent client: %q, %v", got, err)
	}
	if d := time.Since(t0); d > timeout/2 {
		t.Fatalf("a silent client held up another for %v", d)
	}
	if d := <-cut1; d < timeout-100*time.Millisecond || d > timeout+2*time.Second {
		t.Fatalf("silent client cut after %v, want about %v", d, timeout)
	}
	// Both slots taken: the next client is served once one frees.
	_, cutA := silent()
	_, cutB := silent()
	inFlight(t, ln, 2)
	t0 = time.Now()
	got, err := tlsGet(t, addr, true)
	d := time.Since(t0)
	<-cutA
	<-cutB
	if err != nil || !strings.HasPrefix(got, "HTTP/2.0 ") {
		t.Fatalf("after the slots freed: %q, %v", got, err)
	}
	if d < timeout/2 {
		t.Fatalf("served in %v with every handshake slot taken", d)
	}
}

// Close lets a handshake in flight finish and hands its connection on;
// abort ends it.
func TestTLSListenerCloseAndAbort(t *testing.T) {
	ln, _ := tlsServe(t, 5*time.Second, 8)
	addr := ln.Addr().String()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	inFlight(t, ln, 1) // accepted, its handshake waiting for the hello
	ln.Close()
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("a handshake in flight at Close: %q, %v", line, err)
	}

	ln2, _ := tlsServe(t, 5*time.Second, 8)
	raw2, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw2.Close()
	inFlight(t, ln2, 1)
	t0 := time.Now()
	ln2.abort()
	raw2.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = raw2.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() || time.Since(t0) > 2*time.Second {
		t.Fatalf("abort left a handshake in flight: %v after %v", err, time.Since(t0))
	}
}

// inFlight waits until ln has n handshakes in flight.
func inFlight(t *testing.T, ln *tlsListener, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); int(ln.shaking.Load()) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes in flight, want %d", ln.shaking.Load(), n)
		}
	}
}

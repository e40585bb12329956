package tests

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, made for this test.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hornbeam test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestTLSAndHTTP2WithFactory(t *testing.T) {
	cert, key := selfSigned(t)
	base := startApp(t, "asgiapp:make_app", "-k", "asgi", "--factory", "--certfile", cert, "--keyfile", key)
	httpsURL := "https" + base[len("http"):]
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	for _, want := range []struct{ proto, body string }{{"HTTP/2.0", "made 2 https"}} {
		resp, err := c.Get(httpsURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != want.proto || string(b) != want.body {
			t.Fatalf("got %s %q, want %s %q", resp.Proto, b, want.proto, want.body)
		}
	}
	// HTTP/1.1 over TLS too.
	c1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	resp, err := c1.Get(httpsURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || string(b) != "made 1.1 https" {
		t.Fatalf("HTTP/1.1 over TLS: %s %q", resp.Proto, b)
	}
}

// startTLSApp serves app with --certfile/--keyfile and returns its https URL.
func startTLSApp(t *testing.T, app string, args ...string) *proc {
	t.Helper()
	cert, key := selfSigned(t)
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", append([]string{app, "-b", "127.0.0.1:0", "--pythonpath", pydir,
		"--certfile", cert, "--keyfile", key}, args...)...)
	p.base = "https" + strings.TrimPrefix(p.base, "http")
	return p
}

// tlsClient speaks HTTP/2 when h2, else HTTP/1.1 only.
func tlsClient(h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: tr}
}

// dialTLS1 opens a TLS connection that negotiates HTTP/1.1.
func dialTLS1(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// rawExchangeTLS is rawExchange over TLS (HTTP/1.1 by ALPN).
func rawExchangeTLS(t *testing.T, addr, raw string, within time.Duration) (got string, closed bool) {
	t.Helper()
	return exchangeOn(t, dialTLS1(t, addr), raw, within)
}

func tlsGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// HTTP/1.1 over TLS is framed as plain HTTP/1 is: each smuggling attempt is
// answered and the connection closed, so the request after it is never read.
func TestTLSSmuggling(t *testing.T) {
	p := startTLSApp(t, "hostileapp:wsgi")
	addr := strings.TrimPrefix(p.base, "https://")
	checkSmuggling(t, func(t *testing.T, raw string) (string, bool) { return rawExchangeTLS(t, addr, raw, 5*time.Second) })
	for _, h2 := range []bool{false, true} {
		if resp, body := tlsGet(t, tlsClient(h2), p.base+"/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the smuggling attempts (h2 %v): %d %q", h2, resp.StatusCode, body)
		}
	}
}

func TestTLSMalformedRequests(t *testing.T) {
	p := startTLSApp(t, "wsgiapp:application", "--body-timeout", "1")
	addr := strings.TrimPrefix(p.base, "https://")
	for _, tc := range malformedRequests {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialTLS1(t, addr)
			defer conn.Close()
			go io.WriteString(conn, tc.raw) // the server may answer before reading it all
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			if !strings.HasPrefix(line, "HTTP/1.1 "+tc.code+" ") {
				t.Errorf("got %q, want %s", line, tc.code)
			}
		})
	}
	// Plain HTTP to the TLS port is told so, as net/http tells it.
	if got, closed := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second); !strings.HasPrefix(got, "HTTP/1.0 400 ") || !closed {
		t.Errorf("plain HTTP to the TLS port: %q, closed %v", got, closed)
	}
	if resp, body := tlsGet(t, tlsClient(false), p.base+"/"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("after malformed requests: %d %q", resp.StatusCode, body)
	}
}

// The app sees https (and wss) over TLS, whether HTTP/1.1 or HTTP/2 was
// negotiated, and the protocol net/http served.
func TestTLSSchemeForApps(t *testing.T) {
	wsgi := startTLSApp(t, "wsgiapp:application")
	asgi := startTLSApp(t, "asgiapp:ws_app", "-k", "asgi")
	for _, h2 := range []bool{false, true} {
		proto, version := "HTTP/1.1", "'1.1'"
		if h2 {
			proto, version = "HTTP/2.0", "'2'"
		}
		c := tlsClient(h2)
		resp, body := tlsGet(t, c, wsgi.base+"/environ")
		if resp.Proto != proto || !strings.Contains(body, "SERVER_PROTOCOL="+proto) || !strings.Contains(body, "wsgi.url_scheme=https") {
			t.Errorf("WSGI over %s: %s %q", proto, resp.Proto, body)
		}
		resp, body = tlsGet(t, c, asgi.base+"/scope")
		if resp.Proto != proto || !strings.Contains(body, "'scheme': 'https'") || !strings.Contains(body, "'http_version': "+version) {
			t.Errorf("ASGI over %s: %s %q", proto, resp.Proto, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(asgi.base, "https")+"/ws",
		&websocket.DialOptions{HTTPClient: tlsClient(false)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("scheme please")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "wss" {
		t.Fatalf("websocket scheme: %q, %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// A client that connects and never starts its handshake holds up no one and
// is cut within --header-timeout; one that is slow with its headers after
// the handshake gets 408, as over plain HTTP.
func TestTLSSlowHandshakeAndHeaders(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	p := startTLSApp(t, "wsgiapp:application", "--header-timeout", "1.5")
	addr := strings.TrimPrefix(p.base, "https://")
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	t0 := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		silent.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, silent)
		cut <- time.Since(t0)
	}()
	for _, h2 := range []bool{false, true} {
		if resp, body := tlsGet(t, tlsClient(h2), p.base+"/"); resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("beside a silent client (h2 %v): %d %q", h2, resp.StatusCode, body)
		}
	}
	select {
	case d := <-cut:
		t.Fatalf("the silent client was cut after %v, before the others were served", d)
	default:
	}
	d := <-cut
	if d < timeout-200*time.Millisecond || d > timeout+2*time.Second {
		t.Fatalf("silent client cut after %v, want about %v", d, timeout)
	}
	t.Logf("silent client cut after %v", d.Round(time.Millisecond))

	slow := dialTLS1(t, addr)
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(slow)
	if !strings.HasPrefix(string(b), "HTTP/1.1 408 ") {
		t.Fatalf("slow headers over TLS: %q, %v", b, err)
	}
}

// SIGTERM drains: a request in flight over TLS is answered, over HTTP/1.1
// (drained as plain HTTP/1) and HTTP/2 (net/http's Shutdown).
func TestTLSGracefulStop(t *testing.T) {
	for _, c := range []struct {
		name    string
		h2      bool
		workers string
	}{{"http1.1", false, "0"}, {"http2", true, "0"}, {"http1.1 workers", false, "2"}, {"http2 workers", true, "2"}} {
		h2 := c.h2
		t.Run(c.name, func(t *testing.T) {
			p := startTLSApp(t, "hostileapp:slow_asgi", "-k", "asgi", "-w", c.workers)
			if c.workers != "0" {
				p.waitLog(t, "worker ready", 2, 30*time.Second)
			}
			res := make(chan string, 1)
			go func() {
				resp, err := tlsClient(h2).Get(p.base + "/slow")
				if err != nil {
					res <- err.Error()
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				res <- fmt.Sprint(resp.StatusCode, " ", resp.Proto, " ", string(b))
			}()
			p.waitLog(t, "slow request started", 1, 10*time.Second)
			syscall.Kill(p.pid(), syscall.SIGTERM)
			want := map[bool]string{false: "200 HTTP/1.1 done", true: "200 HTTP/2.0 done"}[h2]
			select {
			case got := <-res:
				if got != want {
					t.Fatalf("request in flight during SIGTERM: %s, want %s", got, want)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("request in flight never finished")
			}
			waitCleanExit(t, p)
			if p.count("lifespan shutdown ran") < 1 {
				t.Fatalf("no lifespan shutdown:\n%s", p.logs())
			}
		})
	}
}

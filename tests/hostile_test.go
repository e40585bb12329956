package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw on a fresh connection and reads until the server
// closes it or within has passed; closed says which.
func rawExchange(t *testing.T, addr, raw string, within time.Duration) (got string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return exchangeOn(t, conn, raw, within)
}

// exchangeOn is rawExchange on a connection made by the caller; it closes conn.
func exchangeOn(t *testing.T, conn net.Conn, raw string, within time.Duration) (got string, closed bool) {
	t.Helper()
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(conn)
	var ne net.Error
	return string(b), err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

func hostOf(base string) string { return strings.TrimPrefix(base, "http://") }

// Stalled request bodies cost no pool thread while they stall, and are cut
// with 408 after --body-timeout; everyone else is answered meanwhile.
func TestSlowBodies(t *testing.T) {
	for _, kind := range []struct{ name, app string }{{"wsgi", "hostileapp:wsgi"}, {"asgi", "hostileapp:asgi"}} {
		t.Run(kind.name, func(t *testing.T) {
			base := startApp(t, kind.app, "--threads", "4", "--body-timeout", "2")
			addr := hostOf(base)
			type cut struct {
				line string
				took time.Duration
				err  error
			}
			stalled := make(chan cut, 8)
			var conns []net.Conn
			t0 := time.Now()
			for i := range 7 {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
				// Six send 10 bytes of a megabyte; one sends more than Go buffers
				// (so the app reads it as a stream) and then stalls.
				sent := "0123456789"
				if i == 6 {
					sent = strings.Repeat("x", 100<<10)
				}
				fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n%s", sent)
				go func() {
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					line, err := bufio.NewReader(conn).ReadString('\n')
					stalled <- cut{line, time.Since(t0), err}
				}()
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			var slowest time.Duration
			for time.Since(t0) < 1500*time.Millisecond {
				t1 := time.Now()
				code, _, body := get(t, "GET", base+"/", nil)
				d := time.Since(t1)
				if code != 200 || body != "ok" || d > time.Second {
					t.Fatalf("probe while bodies stall: %d %q in %v (at %v)", code, body, d, t1.Sub(t0))
				}
				slowest = max(slowest, d)
			}
			t.Logf("slowest probe while 7 bodies stall: %v", slowest)
			for range conns {
				c := <-stalled
				if !strings.HasPrefix(c.line, "HTTP/1.1 408 ") || c.took > 4*time.Second {
					t.Errorf("stalled client: %q after %v (%v), want 408 within the 2 s body timeout", c.line, c.took, c.err)
				}
			}
		})
	}
}

// Request smuggling: a framing that two parsers could read differently is
// refused and the connection closed, so that nothing pipelined after it is
// served.
func TestSmuggling(t *testing.T) {
	base := startApp(t, "hostileapp:wsgi")
	addr := hostOf(base)
	checkSmuggling(t, func(t *testing.T, raw string) (string, bool) { return rawExchange(t, addr, raw, 5*time.Second) })
	if code, _, body := get(t, "GET", base+"/", nil); code != 200 || body != "ok" {
		t.Fatalf("after the smuggling attempts: %d %q", code, body)
	}
}

// checkSmuggling sends each smuggling attempt, with a request pipelined after
// it, through exchange (which reads until the server closes or a bound).
func checkSmuggling(t *testing.T, exchange func(t *testing.T, raw string) (got string, closed bool)) {
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct{ name, raw, code string }{
		{"CL and TE", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"TE and CL", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n", "400"},
		{"CL and TE identity", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: identity\r\n\r\n", "501"},
		{"two differing CL", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", "400"},
		{"CL list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 5\r\n\r\n", "400"},
		{"CL with sign", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n", "400"},
		{"TE not chunked last", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", "501"},
		{"TE twice", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"},
		{"TE obs-fold", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "400"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", "400"},
		{"space before colon", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
		{"TE on HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n", "400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := exchange(t, tc.raw+next)
			if !strings.HasPrefix(got, "HTTP/1.") || !strings.HasPrefix(got[min(len(got), 9):], tc.code+" ") {
				t.Errorf("got %q, want %s", firstLine(got), tc.code)
			}
			if n := strings.Count(got, "HTTP/1."); n != 1 || !closed {
				t.Errorf("%d responses, closed %v: the request after it was read:\n%s", n, closed, got)
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

// The WSGI environ is PEP 3333's: a chunked body reads to its end (Werkzeug
// reads nothing without wsgi.input_terminated), and multiprocess is true
// under --workers.
func TestWSGIEnvironPEP3333(t *testing.T) {
	p := serveApp(t, webdir(), "hostileapp:wsgi", "-b", "127.0.0.1:0", "-w", "2")
	p.waitLog(t, "worker ready", 2, 30*time.Second)
	got, _ := rawExchange(t, hostOf(p.base), "POST /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 5*time.Second)
	for _, want := range []string{`"wsgi.input_terminated": true`, `"wsgi.multiprocess": true`, `"wsgi.multithread": true`} {
		if !strings.Contains(got, want) {
			t.Errorf("environ lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "CONTENT_LENGTH") {
		t.Errorf("a chunked request has a CONTENT_LENGTH: %s", got)
	}
	// As gunicorn: no CONTENT_LENGTH the client did not send, and RAW_URI.
	got, _ = rawExchange(t, hostOf(p.base), "GET /environ?a=%20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
	if strings.Contains(got, "CONTENT_LENGTH") || !strings.Contains(got, `"RAW_URI": "/environ?a=%20"`) {
		t.Errorf("GET without a body: %s", got)
	}
}

// Flask (Werkzeug) reads a chunked upload whole.
func TestFlaskChunkedUpload(t *testing.T) {
	if _, err := os.Stat("/usr/lib/python3/dist-packages/flask"); err != nil {
		t.Skip("python3-flask is not installed (make deps)")
	}
	base := startApp(t, "flaskapp:app", "-k", "wsgi")
	body := strings.Repeat("z", 100)
	raw := "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"40\r\n" + body[:64] + "\r\n24\r\n" + body[64:] + "\r\n0\r\n\r\n"
	got, _ := rawExchange(t, hostOf(base), raw, 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\n100") {
		t.Fatalf("chunked upload of 100 bytes:\n%s", got)
	}
}

// A header name with an underscore could pass for one with a dash
// (X_Remote_User for X-Remote-User): it is dropped, under WSGI and ASGI.
func TestUnderscoreHeadersDropped(t *testing.T) {
	wp := serveApp(t, "", "hostileapp:wsgi", "-b", "127.0.0.1:0", "--pythonpath", webdir(), "--log-level", "debug")
	wbase := wp.base
	for range 10 {
		_, _, got := get(t, "GET", wbase+"/environ", nil, "X-Remote-User", "alice", "X_Remote_User", "admin")
		if !strings.Contains(got, `"HTTP_X_REMOTE_USER": "alice"`) || strings.Contains(got, "admin") {
			t.Fatalf("WSGI environ: %s", got)
		}
	}
	wp.waitLog(t, "header with an underscore dropped", 10, 5*time.Second)
	abase := startApp(t, "hostileapp:asgi", "-k", "asgi")
	if _, _, got := get(t, "GET", abase+"/headers", nil, "X-Remote-User", "alice", "X_Remote_User", "admin"); strings.Contains(got, "x_remote_user") || !strings.Contains(got, "x-remote-user") {
		t.Fatalf("ASGI headers: %s", got)
	}
}

// The server adds no header the app did not set, besides Date, Server and
// the framing (Content-Length or chunked).
func TestNoInventedHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"asgi", []string{"hostileapp:asgi", "-k", "asgi"}},
		{"wsgi", []string{"hostileapp:wsgi", "-k", "wsgi"}},
		{"no server header", []string{"hostileapp:asgi", "-k", "asgi", "--no-server-header"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := startApp(t, tc.args[0], tc.args[1:]...)
			got, _ := rawExchange(t, hostOf(base), "GET /bare HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
			head, body, _ := strings.Cut(got, "\r\n\r\n")
			var names []string
			for _, l := range strings.Split(head, "\r\n")[1:] {
				k, _, _ := strings.Cut(l, ":")
				names = append(names, strings.ToLower(k))
			}
			want := "connection content-length date server"
			if tc.name == "no server header" {
				want = "connection content-length date"
			}
			slices.Sort(names)
			if strings.Join(names, " ") != want || body != "<html>no type given</html>" {
				t.Fatalf("headers %v (want %s), body %q", names, want, body)
			}
		})
	}
}

// Framing headers from the app that contradict each other or the body, and
// an interim status outside an upgrade, are answered 500 and logged.
func TestAppFramingValidated(t *testing.T) {
	wp := serveApp(t, "", "hostileapp:wsgi", "-b", "127.0.0.1:0", "--pythonpath", webdir())
	ap := serveApp(t, "", "hostileapp:asgi", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", webdir())
	for _, tc := range []struct {
		name string
		p    *proc
		path string
	}{
		{"wsgi two lengths", wp, "/two-lengths"},
		{"wsgi wrong length", wp, "/wrong-length"},
		{"wsgi 101 on a GET", wp, "/switching"},
		{"asgi two lengths", ap, "/two-lengths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.p.count("bad response from the app")
			got, _ := rawExchange(t, hostOf(tc.p.base), "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
			if !strings.HasPrefix(got, "HTTP/1.1 500 ") || strings.Count(got, "Content-Length") != 1 {
				t.Fatalf("got:\n%s", got)
			}
			tc.p.waitLog(t, "bad response from the app", before+1, 5*time.Second)
		})
	}
}

// receive() for a request without a body gives one http.request (empty,
// no more_body) before it waits for the disconnect, as the ASGI spec says.
func TestASGIReceiveWithoutBody(t *testing.T) {
	base := startApp(t, "hostileapp:asgi", "-k", "asgi", "-t", "5")
	code, _, got := get(t, "GET", base+"/receive", nil)
	if want := "[('body', b''), ('more_body', False), ('type', 'http.request')]"; code != 200 || got != want {
		t.Fatalf("got %d %q, want %q", code, got, want)
	}
}

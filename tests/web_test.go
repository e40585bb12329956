package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startApp serves an app from testdata/web with `hornbeam start APP` and
// returns its base URL; the process is stopped by PID when the test ends.
func startApp(t *testing.T, app string, args ...string) string {
	t.Helper()
	pydir, _ := filepath.Abs("testdata/web")
	return serveApp(t, "", append([]string{app, "-b", "127.0.0.1:0", "--pythonpath", pydir}, args...)...).base
}

func get(t *testing.T, method, url string, body io.Reader, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// httpCase is one request and the answer expected: the exact body, or one that
// contains want when contains is set.
type httpCase struct {
	name, method, path string
	body               []byte
	hdr                []string
	code               int
	want               string
	contains           bool
}

// checkHTTP runs each case against base as a subtest.
func checkHTTP(t *testing.T, base string, cases []httpCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			code, _, got := get(t, tt.method, base+tt.path, body, tt.hdr...)
			ok := got == tt.want
			if tt.contains {
				ok = strings.Contains(got, tt.want)
			}
			if code != tt.code || !ok {
				if len(got) > 200 {
					got = got[:200] + "..."
				}
				t.Fatalf("%s %s: got %d %q, want %d %q", tt.method, tt.path, code, got, tt.code, tt.want)
			}
		})
	}
}

func TestWSGI(t *testing.T) {
	base := startApp(t, "wsgiapp:validated", "--root-path", "/mnt", "-t", "0.5")
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	checkHTTP(t, base, []httpCase{
		{"hello", "GET", "/mnt/", nil, nil, 200, "hello", false},
		{"environ", "POST", "/mnt/environ?a=1&b=%20", []byte("x"), []string{"Content-Type", "text/x", "X-Twice", "1", "X-Twice", "2"}, 200,
			"REQUEST_METHOD=POST|SCRIPT_NAME=/mnt|PATH_INFO=/environ|QUERY_STRING=a=1&b=%20|SERVER_PROTOCOL=HTTP/1.1|CONTENT_TYPE=text/x|HTTP_X_TWICE=1,2|wsgi.url_scheme=http", false},
		{"echo 1 MiB", "POST", "/mnt/echo", big, nil, 200, string(big), false},
		{"streamed", "GET", "/mnt/stream", nil, nil, 200, "line 0\nline 1\nline 2\n", false},
		{"write()", "GET", "/mnt/write", nil, nil, 201, "via write; then the iterable", false},
		{"app raises", "GET", "/mnt/boom", nil, nil, 500, "internal server error\n", false},
		{"app too slow", "GET", "/mnt/slow", nil, nil, 504, "the app did not answer in time\n", false},
		{"still serving", "GET", "/mnt/", nil, nil, 200, "hello", false},
	})
}

func TestWSGICloseAndLimits(t *testing.T) {
	base := startApp(t, "wsgiapp:closing_app")
	for range 3 {
		get(t, "GET", base+"/", nil)
	}
	if _, _, got := get(t, "GET", base+"/closed", nil); got != "3" {
		t.Fatalf("close() called %s times, want 3", got)
	}

	slow := startApp(t, "wsgiapp:application", "--limit-concurrency", "1")
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		get(t, "GET", slow+"/slow", nil)
	}()
	<-started
	time.Sleep(300 * time.Millisecond)
	if code, _, _ := get(t, "GET", slow+"/", nil); code != 503 {
		t.Errorf("beyond --limit-concurrency: %d, want 503", code)
	}
	wg.Wait()

	// A malformed request gets 400 from Go without reaching Python, and the
	// server goes on serving.
	conn, err := net.Dial("tcp", strings.TrimPrefix(slow, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "THIS IS NOT HTTP\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(line, "400") {
		t.Errorf("malformed request: %q", line)
	}
	if code, _, got := get(t, "GET", slow+"/", nil); code != 200 || got != "hello" {
		t.Errorf("after a malformed request: %d %q", code, got)
	}
}

// SIGTERM lets requests in flight finish before the node exits.
func TestWSGIGracefulStop(t *testing.T) {
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", "wsgiapp:application", "-b", "127.0.0.1:0", "--pythonpath", pydir)
	base := p.base
	res := make(chan string, 1)
	go func() {
		code, _, body := get(t, "GET", base+"/slow", nil)
		res <- fmt.Sprint(code, " ", body)
	}()
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case got := <-res:
		if got != "200 hello" {
			t.Fatalf("request in flight during SIGTERM: %s", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("request in flight never finished")
	}
	waitCleanExit(t, p)
}

// waitCleanExit waits for p, stopped by SIGTERM, to exit with status 0.
func waitCleanExit(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("node exit: %v", p.cmd.ProcessState)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node did not exit after SIGTERM")
	}
}

func TestASGI(t *testing.T) {
	base := startApp(t, "asgiapp:app", "-k", "asgi", "--root-path", "/r", "-t", "0.5")
	big := bytes.Repeat([]byte("abcdefgh"), 1<<17) // 1 MiB
	t.Run("scope", func(t *testing.T) {
		_, _, got := get(t, "GET", base+"/r/scope?q=%201", nil, "X-A", "1", "X-A", "2")
		for _, want := range []string{"'type': 'http'", "'version': '3.0'", "'spec_version': '2.3'",
			"'http_version': '1.1'", "'method': 'GET'", "'scheme': 'http'", "'path': '/r/scope'",
			"'raw_path': b'/r/scope'", "'query_string': b'q=%201'", "'root_path': '/r'", "'client': ['127.0.0.1',",
			"'server': ['127.0.0.1',", "[(b'x-a', b'1'), (b'x-a', b'2')]", "|hi from lifespan"} {
			if !strings.Contains(got, want) {
				t.Errorf("scope lacks %s:\n%s", want, got)
			}
		}
	})
	checkHTTP(t, base, []httpCase{
		{"hello", "GET", "/r/", nil, nil, 201, "hello asgi", false},
		{"echo 1 MiB", "POST", "/r/echo", big, nil, 200, string(big), false},
		{"streamed", "GET", "/r/stream", nil, nil, 200, "part 0\npart 1\npart 2\nend\n", false},
		{"app raises", "GET", "/r/boom", nil, nil, 500, "internal server error\n", false},
		{"app too slow", "GET", "/r/sleep", nil, nil, 504, "the app did not answer in time\n", false},
		{"headers not pairs of bytes", "GET", "/r/bad-headers", nil, nil, 500, "internal server error\n", false},
		{"still serving", "GET", "/r/", nil, nil, 201, "hello asgi", false},
	})
	for _, path := range []string{"/r/headers", "/r/headers-stream"} {
		t.Run("header bytes as sent "+path, func(t *testing.T) {
			got, _ := rawExchange(t, hostOf(base), "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10*time.Second)
			for _, want := range []string{"\r\nX-Utf8: caf\xc3\xa9\r\n", "\r\nX-Latin: caf\xe9\r\n", "\r\nX-Bytearray: ba\r\n"} {
				if !strings.Contains(got, want) {
					t.Errorf("response lacks %q:\n%q", want, got)
				}
			}
		})
	}
}

func TestASGIWithoutLifespan(t *testing.T) {
	base := startApp(t, "asgiapp:no_lifespan", "-k", "asgi")
	if code, _, got := get(t, "GET", base+"/", nil); code != 200 || got != "ok" {
		t.Fatalf("got %d %q", code, got)
	}
}

// A client that leaves mid-response is seen by the app as http.disconnect.
func TestASGIClientDisconnect(t *testing.T) {
	base := startApp(t, "asgiapp:disconnect_app", "-k", "asgi", "-t", "30")
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("no response started: %q %v", line, err)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, got := get(t, "GET", base+"/seen", nil); got == "1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never saw http.disconnect")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveAndDial serves app (an ASGI or WSGI app, as kind says) from
// testdata/web with debug logs, and opens a connection to it.
func serveAndDial(t *testing.T, app, kind string) (*proc, net.Conn) {
	t.Helper()
	p := serveApp(t, webdir(), app, "-k", kind, "-b", "127.0.0.1:0", "--pythonpath", webdir(), "--log-level", "debug")
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return p, conn
}

// A client that leaves in the middle of a streamed response (or of a
// websocket's messages): the app's next send or write raises
// ClientDisconnected, an OSError (a WSGI iterable is closed instead); the
// node logs the cut at debug level, not as the app's failure, and goes on
// serving.
func TestClientLeavesMidResponse(t *testing.T) {
	tests := []struct {
		name, app, kind, path, want string
	}{
		{"ASGI send", "asgiapp:leaving_client_app", "asgi", "/stream", "ClientDisconnected:True"},
		{"WSGI write", "wsgiapp:leaving_client_app", "wsgi", "/write", "ClientDisconnected:True"},
		{"WSGI iterable", "wsgiapp:leaving_client_app", "wsgi", "/yield", "GeneratorExit"},
		{"websocket send", "asgiapp:leaving_client_app", "asgi", "/ws", "ClientDisconnected:True"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, conn := serveAndDial(t, tt.app, tt.kind)
			status := "200"
			if tt.path == "/ws" {
				status = "101"
				fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			} else {
				fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", tt.path)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.Contains(line, status) {
				t.Fatalf("no response started: %q %v", line, err)
			}
			conn.Close() // with the response unread: the node's writes fail
			p.waitLog(t, `msg="the client left during the response"`, 1, 20*time.Second)
			if _, _, got := get(t, "GET", p.base+"/left", nil); got != tt.want {
				t.Errorf("the app saw %q, want %q", got, tt.want)
			}
			if logs := p.logs(); strings.Contains(logs, "app raised") {
				t.Errorf("the cut was logged as an error:\n%s", logs)
			}
		})
	}
}

// A client that leaves in the middle of its request body: an ASGI app's
// receive returns http.disconnect, a WSGI app's read raises
// ClientDisconnected, and the node does not log the cut as the app's failure.
func TestClientLeavesMidUpload(t *testing.T) {
	tests := []struct{ name, app, kind, want string }{
		{"ASGI", "asgiapp:leaving_client_app", "asgi", "http.disconnect"},
		{"WSGI", "wsgiapp:leaving_client_app", "wsgi", "ClientDisconnected:True"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, conn := serveAndDial(t, tt.app, tt.kind)
			// More than the node reads ahead, so the app reads the rest.
			fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 8<<20)
			if _, err := conn.Write(bytes.Repeat([]byte("u"), 1<<20)); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, _, got := get(t, "GET", p.base+"/left", nil)
				if got == tt.want {
					break
				}
				if got != "" || time.Now().After(deadline) {
					t.Fatalf("the app saw %q, want %q", got, tt.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if tt.kind == "wsgi" { // the app re-raised what its read raised
				p.waitLog(t, `msg="the client left during the response"`, 1, 20*time.Second)
			}
			if logs := p.logs(); strings.Contains(logs, "app raised") {
				t.Errorf("the cut was logged as the app's failure:\n%s", logs)
			}
		})
	}
}

// An app that streams more than the Content-Length it declared made a
// mistake: its send raises RuntimeError, not ClientDisconnected, and the
// node logs it as the app's failure.
func TestStreamedBodyOverContentLength(t *testing.T) {
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", "asgiapp:leaving_client_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", pydir)
	resp, err := http.Get(p.base + "/overshoot")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	p.waitLog(t, "app raised", 1, 20*time.Second)
	if _, _, got := get(t, "GET", p.base+"/left", nil); got != "RuntimeError:False" {
		t.Errorf("the app saw %q, want RuntimeError:False", got)
	}
	if !strings.Contains(p.logs(), "Content-Length") {
		t.Errorf("the log does not say what was wrong:\n%s", p.logs())
	}
}

// Spinning (--spin-us), off by default, changes only how threads wait for
// work: a node that spins serves WSGI and ASGI requests, whole and
// streamed, one at a time and many at once.
func TestSpinningNodeServes(t *testing.T) {
	for _, tc := range []struct{ app, kind, path, want string }{
		{"wsgiapp:application", "wsgi", "/stream", "line 0\nline 1\nline 2\n"},
		{"asgiapp:app", "asgi", "/stream", "part 0\npart 1\npart 2\nend\n"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			base := startApp(t, tc.app, "-k", tc.kind, "--spin-us", "150")
			for range 50 { // one at a time: where a spinning thread takes the next call
				if got := mustFetch(t, base+tc.path); got != tc.want {
					t.Fatalf("%q", got)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 25 {
						if got, err := fetch(base + tc.path); err != nil || got != tc.want {
							errs <- fmt.Errorf("%q %v", got, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// 100 MiB up and 100 MiB down stream through the node with bounded memory.
func TestASGIBulkBoundedMemory(t *testing.T) {
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", "asgiapp:bulk_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", pydir, "-t", "120")
	base := p.base
	before := rssKiB(t, p.pid())

	const size = 100 << 20
	pr, pw := io.Pipe()
	go func() {
		block := bytes.Repeat([]byte("u"), 1<<20)
		for range size >> 20 {
			pw.Write(block)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/up", pr)
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(got), fmt.Sprint(size, " ")) {
		t.Fatalf("upload: %s", got)
	}
	resp, err = (&http.Client{Timeout: 120 * time.Second}).Get(base + "/down?100")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != size {
		t.Fatalf("download: %d bytes", n)
	}
	after := rssKiB(t, p.pid())
	t.Logf("100 MiB up and down; node RSS %d -> %d MiB", before>>10, after>>10)
	if after-before > 64<<10 {
		t.Errorf("node RSS grew %d MiB moving 200 MiB", (after-before)>>10)
	}
}

// Two tasks of one request stream at once, one in pieces as large as the
// body's queue bound, the other in small ones between other work: every piece
// arrives whole, each task's in the order it sent them, none lost.
func TestASGIConcurrentSendsKeepOrder(t *testing.T) {
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", "asgiapp:bulk_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", pydir)
	want := map[byte]int{'A': 64, 'b': 640}
	for round := range 10 {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(p.base + "/together")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		next := map[byte]int{}
		for len(body) > 0 {
			tag := body[0]
			size, fill := 65536, byte('.')
			if tag == 'b' {
				size, fill = 64, ','
			}
			if want[tag] == 0 || len(body) < 3 {
				t.Fatalf("round %d: %d bytes of no piece (%q)", round, len(body), body[:min(len(body), 8)])
			}
			if len(body) < size {
				t.Fatalf("round %d: a piece of %d bytes cut to %d", round, size, len(body))
			}
			piece := body[:size]
			body = body[size:]
			if n := int(piece[1])<<8 | int(piece[2]); n != next[tag] {
				t.Fatalf("round %d: piece %c %d came when %d was due", round, tag, n, next[tag])
			}
			next[tag]++
			if bytes.IndexFunc(piece[3:], func(r rune) bool { return r != rune(fill) }) >= 0 {
				t.Fatalf("round %d: piece %c %d mixed with another", round, tag, next[tag]-1)
			}
		}
		for tag, n := range want {
			if next[tag] != n {
				t.Fatalf("round %d: %d pieces %c of %d", round, next[tag], tag, n)
			}
		}
	}
}

// A streamed body whose pieces the event loop's thread writes itself, to a
// client that reads nothing until the node's socket is full: the pieces a
// full socket took part of, or none of, go through Go, and the client gets
// every byte, in order and framed (chunked, or with the app's
// Content-Length), and then its next answer on the same connection.
func TestASGIStreamToSlowReader(t *testing.T) {
	pydir, _ := filepath.Abs("testdata/web")
	p := serveApp(t, "", "asgiapp:bulk_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", pydir)
	addr := strings.TrimPrefix(p.base, "http://")
	client := &http.Client{Timeout: 10 * time.Second}
	progress := func() int {
		resp, err := client.Get(p.base + "/paced-progress")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, _ := strconv.Atoi(string(b))
		return n
	}
	const pieces = 80
	total := 0
	for i := range pieces {
		total += 100_003 + i
	}
	for _, query := range []string{"80", "80&length"} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(conn, "GET /paced?%s HTTP/1.1\r\nHost: x\r\n\r\n", query)
		// The app is held back once the socket is full: its count stops.
		last, still := -1, 0
		for deadline := time.Now().Add(30 * time.Second); still < 5; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the app never waited for the client (%d of %d bytes sent)", query, last, total)
			}
			n := progress()
			if n == last && n > 0 {
				still++
			} else {
				last, still = n, 0
			}
		}
		if last >= total {
			t.Fatalf("%s: all %d bytes went out before the client read any: the socket never filled", query, total)
		}
		br := bufio.NewReader(conn)
		for _, want := range []int{pieces, 3} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: reading the body: %v", query, err)
			}
			if want == pieces && query == "80&length" && resp.ContentLength != int64(total) {
				t.Errorf("%s: Content-Length %d, want %d", query, resp.ContentLength, total)
			}
			if want == pieces && query == "80" && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
				t.Errorf("%s: Transfer-Encoding %v, want chunked", query, resp.TransferEncoding)
			}
			for i := range want {
				size := 100_003 + i
				if len(body) < size || bytes.Count(body[:size], []byte{byte('a' + i%26)}) != size {
					t.Fatalf("%s: piece %d of %d bytes is not whole (%d bytes left)", query, i, size, len(body))
				}
				body = body[size:]
			}
			if len(body) != 0 {
				t.Fatalf("%s: %d bytes after the last piece", query, len(body))
			}
			if want == pieces {
				// The connection is kept: the next request on it.
				fmt.Fprintf(conn, "GET /paced?3 HTTP/1.1\r\nHost: x\r\n\r\n")
			}
		}
		conn.Close()
	}
}

// malformedRequests are answered by Go (run against wsgiapp:application
// with --body-timeout 1).
var malformedRequests = []struct {
	name, raw string
	code      string
}{
	{"bad request line", "THIS IS NOT HTTP\r\n\r\n", "400"},
	{"bad version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "505"},
	{"oversized headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", "431"},
	{"bad chunking", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n", "400"},
	{"bad content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "400"},
	{"two content-lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400"},
	{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
	{"content-length and chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	{"folded header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", "400"},
	{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "501"},
	{"stalled body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", "408"},
}

// Malformed requests are answered by Go, never reach Python, and the node
// keeps serving everyone else.
func TestMalformedRequests(t *testing.T) {
	base := startApp(t, "wsgiapp:application", "--body-timeout", "1")
	addr := strings.TrimPrefix(base, "http://")
	for _, tc := range malformedRequests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, tc.raw)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			if !strings.HasPrefix(line, "HTTP/1.1 "+tc.code+" ") {
				t.Errorf("got %q, want %s", line, tc.code)
			}
		})
	}
	if code, _, got := get(t, "GET", base+"/", nil); code != 200 || got != "hello" {
		t.Fatalf("after malformed requests: %d %q", code, got)
	}
	// An ASGI app whose receive() meets the bad chunk: 400 too.
	abase := startApp(t, "asgiapp:app", "-k", "asgi")
	conn, err := net.Dial("tcp", strings.TrimPrefix(abase, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 400 ") {
		t.Errorf("ASGI, bad chunking: %q", line)
	}
}

// An ASGI request's receive and send still answer, with an error, when
// Python code calls them while the interpreter ends (an atexit handler).
func TestASGICycleAtExit(t *testing.T) {
	r := run(t, t.TempDir(), nil, 60*time.Second, "run", "-c", `
import atexit
from _hornbeam_web.asgi import _HTTPCycle

c = _HTTPCycle(1, b"", False)

def late():
    for call in (lambda: c.send({"type": "http.response.start", "status": 200}), c.receive):
        try:
            call()
            print("answered")
        except RuntimeError as e:
            print("refused:", e)

atexit.register(late)
print("registered")
`)
	if r.code != 0 || !strings.Contains(r.stdout, "registered") || strings.Count(r.stdout, "\n") != 3 {
		t.Fatalf("code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// With --inline-steps, while the event loop sleeps, a lone request's first
// step runs on the thread that read it (by default: on the loop's). Either
// way it runs in a
// task of the one loop, work it leaves to the loop (a callback, a timer, a
// task, a timer in place of one it cancelled) runs without another request to
// wake the loop, and a sleep after the loop idled lasts as long as asked.
func TestRequestsWhileTheLoopIdles(t *testing.T) {
	for _, tt := range []struct {
		name     string
		args     []string
		loopOnly bool
	}{
		{"default", nil, true},
		{"inline-steps", []string{"--inline-steps"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"asgiapp:idle_loop_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", webdir()}, tt.args...)
			p := serveApp(t, webdir(), args...)
			// The first call of a function finds out that it is a coroutine
			// function, on a pool thread, and hands it to the loop.
			mustFetch(t, p.base+"/where")
			// Each answer starts with the thread the first step ran on.
			answer := func(path string) (first string, rest []string) {
				f := strings.Fields(mustFetch(t, p.base+path))
				if len(f) < 2 {
					t.Fatalf("%s: %q", path, f)
				}
				return f[0], f[1:]
			}
			var loopThread, loopID string
			callers := 0 // first steps run on another thread than the loop's
			for i := range 10 {
				first, f := answer("/where")
				if len(f) != 3 || f[2] != "True" {
					t.Fatalf("/where: %q, want the loop's thread, its id and True", f)
				}
				if i == 0 {
					loopThread, loopID = f[0], f[1]
				} else if f[0] != loopThread || f[1] != loopID {
					t.Fatalf("request %d went on on %s, loop %s; the first on %s, loop %s", i, f[0], f[1], loopThread, loopID)
				}
				if first != loopThread {
					callers++
				}
			}
			if tt.loopOnly && callers > 0 || !tt.loopOnly && callers == 0 {
				t.Fatalf("%d of 10 lone requests ran their first step off the loop's thread", callers)
			}

			// untilOffLoop asks path with a fresh file name, after before,
			// until the request ran its first step off the loop's thread
			// (once, where the loop runs every step), and returns the name.
			untilOffLoop := func(before func(), path, want string) string {
				for i := 0; ; i++ {
					if before != nil {
						before()
					}
					base := filepath.Join(t.TempDir(), "work")
					first, f := answer(path + "?file=" + url.QueryEscape(base))
					if f[0] != want {
						t.Fatalf("%s: %q", path, f)
					}
					if tt.loopOnly || first != loopThread {
						return base
					}
					if i == 20 {
						t.Fatalf("20 lone %s requests all ran on the loop's thread", path)
					}
				}
			}
			base := untilOffLoop(nil, "/later", "scheduled")
			swapBase := untilOffLoop(func() {
				if _, f := answer("/arm"); f[0] != "armed" {
					t.Fatalf("/arm: %q", f)
				}
			}, "/swap", "swapped")
			deadline := time.Now().Add(10 * time.Second)
			for _, name := range []string{base + ".soon", base + ".later", base + ".task", swapBase + ".swap"} {
				for {
					if _, err := os.Stat(name); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the loop never ran the work left it (%s)", filepath.Base(name))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}

			time.Sleep(500 * time.Millisecond) // the loop idles; its clock must not stay behind
			t0 := time.Now()
			_, f := answer("/sleep?s=0.3")
			slept, err := strconv.ParseFloat(f[0], 64)
			if err != nil || slept < 0.29 || time.Since(t0) < 290*time.Millisecond {
				t.Fatalf("asyncio.sleep(0.3) after an idle loop slept %q s (%v round trip)", f[0], time.Since(t0))
			}
		})
	}
}

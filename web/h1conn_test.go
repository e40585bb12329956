package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// Behaviour of the plain HTTP/1.1 server (h1conn.go, h1body.go,
// h1response.go): a real Server on a loopback listener, its "Python" a Go
// function, and the client raw bytes on a net.Conn.

// h1Env is what the WSGI app gets: the environ.
type h1Env map[string]any

func (e h1Env) str(k string) string { s, _ := e[k].(string); return s }

// h1Py stands in for the interpreter. Like pybridge, the app runs on a
// goroutine of its own (a Python thread), and Call returns when ctx ends.
type h1Py struct {
	s   *Server
	app func(p *h1Py, id uint64, env h1Env) ([]byte, error)
	wg  sync.WaitGroup
}

func (p *h1Py) CallOn(ctx context.Context, _ pybridge.Lane, module, fn string, args []byte) ([]byte, error) {
	return p.Call(ctx, module, fn, args)
}

func (p *h1Py) Call(ctx context.Context, module, fn string, args []byte) ([]byte, error) {
	if fn != "handle" && fn != "handle_ws" {
		return cborNil, nil // loading the app, and the like
	}
	var raw []cbor.RawMessage
	if err := cbor.Unmarshal(args, &raw); err != nil || len(raw) < 3 {
		return nil, fmt.Errorf("bad handle arguments: %v", err)
	}
	var id uint64
	cbor.Unmarshal(raw[0], &id)
	m, err := decodeEnv(raw[2])
	if err != nil {
		return nil, err
	}
	env := h1Env(m)
	if path, ok := env["path"].(string); ok && fn == "handle_ws" { // [id, app, scope]
		env["PATH_INFO"] = path
	} else if ok && len(raw) == 5 { // ASGI: [id, app, scope, body, more]
		env["PATH_INFO"], env["REQUEST_METHOD"] = path, env["method"]
		env["SERVER_PROTOCOL"] = "HTTP/" + env.str("http_version")
		if q, ok := env["query_string"].([]byte); ok {
			env["QUERY_STRING"] = string(q)
		}
		var body []byte
		var more bool
		cbor.Unmarshal(raw[3], &body)
		cbor.Unmarshal(raw[4], &more)
		env["hornbeam.body"], env["hornbeam.more"] = body, more
	}
	return runApp(ctx, &p.wg, func() ([]byte, error) { return p.app(p, id, env) })
}

// cb calls the server's Go function name with [id, args...].
func (p *h1Py) cb(name string, id uint64, args ...any) ([]byte, error) {
	return callback(p.s, name, id, args...)
}

// body reads the whole request body as a WSGI app does: what was read
// ahead, then http_read until no more.
func (p *h1Py) body(id uint64, env h1Env) ([]byte, error) {
	b, _ := env["hornbeam.body"].([]byte)
	b = bytes.Clone(b)
	more, _ := env["hornbeam.more"].(bool)
	for more {
		out, err := p.cb("http_read", id, 1+rand.IntN(100000))
		if err != nil {
			return b, err
		}
		var res []any
		if err := cbor.Unmarshal(out, &res); err != nil || len(res) != 2 {
			return b, fmt.Errorf("http_read returned %x", out)
		}
		piece, _ := res[0].([]byte)
		b = append(b, piece...)
		more, _ = res[1].(bool)
	}
	return b, nil
}

// h1Response is handle's result: [status, headers, body, streamed].
func h1Response(status string, headers [][2]string, body []byte) []byte {
	if headers == nil {
		headers = [][2]string{}
	}
	out, _ := cbor.Marshal([]any{status, headers, body, false})
	return out
}

var h1Streamed, _ = cbor.Marshal([]any{"200 OK", [][2]string{}, []byte{}, true})

// h1Echo answers "METHOD PATH?QUERY PROTOCOL length sha256" of the request
// and its body, which it reads whole.
func h1Echo(p *h1Py, id uint64, env h1Env) ([]byte, error) {
	body, err := p.body(id, env)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	uri := env.str("PATH_INFO")
	if q := env.str("QUERY_STRING"); q != "" {
		uri += "?" + q
	}
	text := fmt.Sprintf("%s %s %s %d %s", env.str("REQUEST_METHOD"), uri, env.str("SERVER_PROTOCOL"),
		len(body), hex.EncodeToString(sum[:8]))
	return h1Response("200 OK", [][2]string{{"Content-Type", "text/plain"}, {"X-Remote-Port", env.str("REMOTE_PORT")}}, []byte(text)), nil
}

func h1EchoOf(method, uri, proto string, body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf("%s %s %s %d %s", method, uri, proto, len(body), hex.EncodeToString(sum[:8]))
}

// newH1 serves app on a loopback listener; it returns the server and its address.
func newH1(t *testing.T, cfg Config, app func(p *h1Py, id uint64, env h1Env) ([]byte, error)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.App = "fake:app"
	cfg.Listeners = []net.Listener{ln}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &h1Py{s: s, app: app}
	if err := s.start(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		p.wg.Wait()
	})
	return s, ln.Addr().String()
}

// h1Client is one raw connection, bounded by a deadline.
type h1Client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialH1(t *testing.T, addr string) *h1Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &h1Client{t: t, c: c, br: bufio.NewReader(c)}
}

func (h *h1Client) send(s string) {
	h.t.Helper()
	if _, err := io.WriteString(h.c, s); err != nil {
		h.t.Fatalf("writing %q: %v", s[:min(len(s), 60)], err)
	}
}

// response reads a response to a request of method, and its whole body.
func (h *h1Client) response(method string) (*http.Response, string) {
	h.t.Helper()
	resp, err := http.ReadResponse(h.br, &http.Request{Method: method})
	if err != nil {
		h.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(body)
}

// closed asserts that the server closes the connection with nothing more
// sent, within d.
func (h *h1Client) closed(d time.Duration) {
	h.t.Helper()
	h.c.SetReadDeadline(time.Now().Add(d))
	b, err := h.br.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		rest, _ := h.br.Peek(h.br.Buffered())
		h.t.Fatalf("want the connection closed, got %q", append([]byte{b}, rest...))
	case errors.As(err, &ne) && ne.Timeout():
		h.t.Fatalf("the connection is still open after %v", d)
	case !errors.Is(err, io.EOF):
		h.t.Logf("closed with %v (not a FIN)", err)
	}
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n" }

func post(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func wantEcho(t *testing.T, resp *http.Response, body, want string) {
	t.Helper()
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

// Several requests on one connection, with bodies read ahead whole and
// read by the app past the read-ahead.
func TestH1KeepAlive(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	h := dialH1(t, addr)
	port := ""
	for i, body := range []string{"", "x", strings.Repeat("abc", 1000), "", strings.Repeat("0123456789", 20000), "tail"} {
		method, path := "GET", "/get/"+strconv.Itoa(i)
		if body != "" {
			method, path = "POST", "/post/"+strconv.Itoa(i)
			h.send(post(path+"?q=1", body))
		} else {
			h.send(get(path + "?q=1"))
		}
		resp, got := h.response(method)
		wantEcho(t, resp, got, h1EchoOf(method, path+"?q=1", "HTTP/1.1", []byte(body)))
		if resp.Close || resp.Header.Get("Connection") != "" {
			t.Fatalf("request %d: Connection %q, close %v", i, resp.Header.Get("Connection"), resp.Close)
		}
		if resp.ContentLength != int64(len(got)) {
			t.Fatalf("Content-Length %d for %d bytes", resp.ContentLength, len(got))
		}
		if p := resp.Header.Get("X-Remote-Port"); port != "" && p != port {
			t.Fatalf("request %d came on port %s, not %s", i, p, port)
		} else {
			port = p
		}
	}
}

// Requests sent together are answered in order, whatever their sizes.
func TestH1Pipelining(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	for _, tc := range []struct {
		name string
		reqs []string // the bodies: "" for a GET
	}{
		{"two GETs", []string{"", ""}},
		{"GET POST GET", []string{"", "abc", ""}},
		{"with empty lines between", []string{"", "\r\n", ""}},
		{"large then small", []string{strings.Repeat("L", 100000), "s", ""}},
		{"many", []string{"", "1", "", "22", "", "333", "", "4444", "", "55555", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			var all strings.Builder
			var want []string
			for i, body := range tc.reqs {
				path := "/" + strconv.Itoa(i)
				switch body {
				case "":
					all.WriteString(get(path))
					want = append(want, h1EchoOf("GET", path, "HTTP/1.1", nil))
				case "\r\n": // not a body: an empty line before the next request (RFC 9112 2.2)
					all.WriteString("\r\n\n")
				default:
					all.WriteString(post(path, body))
					want = append(want, h1EchoOf("POST", path, "HTTP/1.1", []byte(body)))
				}
			}
			go io.WriteString(h.c, all.String()) // large: the server answers as it reads
			for _, w := range want {
				resp, got := h.response(strings.Fields(w)[0])
				wantEcho(t, resp, got, w)
			}
		})
	}
}

// chunked encodes body in chunks of the sizes given (cycled), with
// extensions on some and the trailer given.
func chunked(body string, sizes []int, trailer string) string {
	var b strings.Builder
	for i := 0; len(body) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(body))
		if i%3 == 1 {
			fmt.Fprintf(&b, "%X;ext=%d\r\n", n, i)
		} else {
			fmt.Fprintf(&b, "%x\r\n", n)
		}
		b.WriteString(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n" + trailer + "\r\n")
	return b.String()
}

// A chunked request body reaches the app whole, and the connection goes on
// after it.
func TestH1ChunkedBody(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	big := strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000) // past the read-ahead
	for _, tc := range []struct {
		name, body, wire string
	}{
		{"one chunk", "hello", chunked("hello", []int{5}, "")},
		{"empty", "", "0\r\n\r\n"},
		{"bytes", "hello world", chunked("hello world", []int{1}, "")},
		{"extensions and trailers", "hello world", chunked("hello world", []int{3, 4}, "X-Sum: 1\r\nX-Other: 2\r\n")},
		{"bare LF", "abcdef", "3\nabc\n3;x\ndef\n0\n\n"},
		{"leading zeros and whitespace", "abcdef", "003 \r\nabc\r\n0003\t;x=y\r\ndef\r\n000\r\n\r\n"},
		{"large, small chunks", big, chunked(big, []int{1, 100, 7, 4096, 3, 5000}, "")},
		{"large, large chunks", big, chunked(big, []int{70000, 100000}, "X-T: 1\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			go io.WriteString(h.c, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.wire+get("/next"))
			resp, got := h.response("POST")
			wantEcho(t, resp, got, h1EchoOf("POST", "/up", "HTTP/1.1", []byte(tc.body)))
			resp, got = h.response("GET")
			wantEcho(t, resp, got, h1EchoOf("GET", "/next", "HTTP/1.1", nil))
		})
	}
}

// A malformed chunked body: 400, and the connection closes.
func TestH1ChunkedBodyMalformed(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	for _, tc := range []struct{ name, wire string }{
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"no CRLF after data", "5\r\nhelloXX\r\n0\r\n\r\n"},
		{"too large", "1000000000000000\r\n"},
		{"size line too long", "1;" + strings.Repeat("x", 20000) + "\r\n"},
		{"empty size", "\r\nhello\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.wire)
			resp, _ := h.response("POST")
			if resp.StatusCode != 400 || !resp.Close {
				t.Fatalf("got %d, close %v; want 400 and close", resp.StatusCode, resp.Close)
			}
			h.closed(5 * time.Second)
		})
	}
}

const continue100 = "HTTP/1.1 100 Continue\r\n\r\n"

// Expect: 100-continue: the client hears 100 before it sends the body, and
// the connection goes on.
func TestH1ExpectContinue(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	for _, tc := range []struct {
		name, head, body string
		wire             string // the body as sent
	}{
		{"length", "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n", "hello world", "hello world"},
		{"chunked", "PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n", "hello world",
			chunked("hello world", []int{4}, "")},
		{"large", "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\nExpect: 100-continue\r\n\r\n",
			strings.Repeat("z", 200000), strings.Repeat("z", 200000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send(tc.head)
			got := make([]byte, len(continue100))
			if _, err := io.ReadFull(h.br, got); err != nil || string(got) != continue100 {
				t.Fatalf("want %q, got %q, %v", continue100, got, err)
			}
			go io.WriteString(h.c, tc.wire)
			resp, body := h.response("PUT")
			wantEcho(t, resp, body, h1EchoOf("PUT", "/f", "HTTP/1.1", []byte(tc.body)))
			h.send(get("/again"))
			resp, body = h.response("GET")
			wantEcho(t, resp, body, h1EchoOf("GET", "/again", "HTTP/1.1", nil))
		})
	}
	t.Run("no body", func(t *testing.T) { // nothing to continue: the answer straight away
		h := dialH1(t, addr)
		h.send("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n")
		resp, body := h.response("POST")
		wantEcho(t, resp, body, h1EchoOf("POST", "/f", "HTTP/1.1", nil))
	})
	t.Run("HTTP/1.0", func(t *testing.T) { // RFC 9110 10.1.1: ignored
		h := dialH1(t, addr)
		h.send("POST /f HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
		resp, body := h.response("POST")
		wantEcho(t, resp, body, h1EchoOf("POST", "/f", "HTTP/1.0", []byte("hi")))
		h.closed(5 * time.Second)
	})
}

// A request with Expect: 100-continue answered without its body being
// read (here 503: the concurrency limit): no 100 is sent, the connection
// closes after the answer, and the answer says so.
func TestH1ExpectContinueUnread(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	_, addr := newH1(t, Config{LimitConcurrency: 1}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		if env.str("PATH_INFO") == "/block" {
			close(entered)
			<-release
		}
		return h1Echo(p, id, env)
	})
	blocker := dialH1(t, addr)
	blocker.send(get("/block"))
	<-entered
	defer func() {
		close(release)
		resp, body := blocker.response("GET")
		wantEcho(t, resp, body, h1EchoOf("GET", "/block", "HTTP/1.1", nil))
	}()

	h := dialH1(t, addr)
	h.send("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
	resp, _ := h.response("PUT") // a 100 first would be read as the response
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", resp.StatusCode)
	}
	closeSaid := resp.Close
	h.closed(5 * time.Second)
	if !closeSaid {
		t.Errorf("the connection closed after a response without Connection: close (%q)", resp.Header)
	}
}

// HEAD: the headers a GET would have, no body bytes, and the connection
// goes on.
func TestH1Head(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		switch env.str("PATH_INFO") {
		case "/stream": // a body of unknown length, streamed
			if _, err := p.cb("http_start", id, "200 OK", [][2]string{{"Content-Type", "text/plain"}}); err != nil {
				return nil, err
			}
			for range 3 {
				if _, err := p.cb("http_write", id, []byte(strings.Repeat("s", 5000))); err != nil {
					return nil, err
				}
			}
			return h1Streamed, nil
		case "/declared":
			return h1Response("200 OK", [][2]string{{"Content-Length", "5"}}, []byte("hello")), nil
		}
		return h1Response("200 OK", [][2]string{{"Content-Type", "text/plain"}}, []byte("hello")), nil
	})
	for _, path := range []string{"/", "/declared", "/stream"} {
		t.Run(path, func(t *testing.T) {
			h := dialH1(t, addr)
			// Both at once: body bytes after the HEAD's head would be read
			// as the GET's response.
			h.send("HEAD " + path + " HTTP/1.1\r\nHost: a\r\n\r\n" + get(path))
			resp, body := h.response("HEAD")
			if resp.StatusCode != 200 || body != "" || resp.Close {
				t.Fatalf("HEAD: %d %q close %v", resp.StatusCode, body, resp.Close)
			}
			if path != "/stream" && resp.ContentLength != 5 {
				t.Errorf("HEAD: Content-Length %d, want 5 (as a GET's)", resp.ContentLength)
			}
			if resp.TransferEncoding != nil {
				t.Errorf("HEAD: Transfer-Encoding %q", resp.TransferEncoding)
			}
			resp, body = h.response("GET")
			want := "hello"
			if path == "/stream" {
				want = strings.Repeat("s", 15000)
			}
			if resp.StatusCode != 200 || body != want {
				t.Fatalf("GET after HEAD: %d %q", resp.StatusCode, body[:min(len(body), 40)])
			}
		})
	}
}

// HTTP/1.0: the connection closes after each response unless the client
// asks for keep-alive; a body of unknown length ends with the connection.
func TestH1HTTP10(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		if env.str("PATH_INFO") == "/stream" {
			if _, err := p.cb("http_start", id, "200 OK", [][2]string{}); err != nil {
				return nil, err
			}
			for range 3 {
				if _, err := p.cb("http_write", id, []byte(strings.Repeat("s", 5000))); err != nil {
					return nil, err
				}
			}
			return h1Streamed, nil
		}
		return h1Echo(p, id, env)
	})
	for _, tc := range []struct {
		name, req, path string
		keep            bool // the connection goes on
	}{
		{"default close", "GET / HTTP/1.0\r\n\r\n", "/", false},
		{"with Host", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", "/", false},
		{"keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "/", true},
		{"Keep-Alive, in a list", "GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n", "/", true},
		{"keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "/", false},
		{"keep-alive, streamed", "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "/stream", false},
		{"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send(tc.req)
			resp, body := h.response("GET")
			// (ReadResponse reads "Connection: close" into resp.Close.)
			if conn := resp.Header.Get("Connection"); resp.StatusCode != 200 || resp.Close != !tc.keep || tc.keep && conn != "keep-alive" {
				t.Fatalf("got %d, Connection %q, close %v; want 200, keep-alive %v", resp.StatusCode, conn, resp.Close, tc.keep)
			}
			if resp.TransferEncoding != nil {
				t.Fatalf("Transfer-Encoding %q to %s", resp.TransferEncoding, resp.Proto)
			}
			if tc.path == "/stream" && body != strings.Repeat("s", 15000) {
				t.Fatalf("streamed body of %d bytes", len(body))
			}
			if !tc.keep {
				h.closed(5 * time.Second)
				return
			}
			if resp.ContentLength < 0 {
				t.Fatal("a kept-alive response without Content-Length")
			}
			h.send("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			resp, body = h.response("GET")
			wantEcho(t, resp, body, h1EchoOf("GET", "/again", "HTTP/1.0", nil))
		})
	}
}

// The header clock: a client that does not send a whole head within the
// header timeout gets 408 and the connection closes; it runs from accept,
// and on a kept-alive connection from a request's first byte.
func TestH1HeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, addr := newH1(t, Config{HeaderTimeout: timeout, KeepAlive: 5 * time.Second}, h1Echo)
	want408 := func(t *testing.T, h *h1Client, since time.Time) {
		t.Helper()
		resp, _ := h.response("GET")
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("got %d close %v, want 408 and close", resp.StatusCode, resp.Close)
		}
		if d := time.Since(since); d < timeout-50*time.Millisecond {
			t.Fatalf("408 after %v, before the header timeout", d)
		}
		h.closed(5 * time.Second)
	}
	t.Run("silent", func(t *testing.T) {
		t0 := time.Now()
		want408(t, dialH1(t, addr), t0)
	})
	t.Run("partial head", func(t *testing.T) {
		t0 := time.Now()
		h := dialH1(t, addr)
		h.send("GET / HTTP/1.1\r\nHost: a\r\n")
		want408(t, h, t0)
	})
	t.Run("dribbled", func(t *testing.T) { // slowloris: each byte in time, the head not
		t0 := time.Now()
		h := dialH1(t, addr)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			head := "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("s", 1000)
			for i := 0; i < len(head); i++ {
				select {
				case <-stop:
					return
				case <-time.After(timeout / 10):
				}
				if _, err := h.c.Write([]byte{head[i]}); err != nil {
					return
				}
			}
		}()
		want408(t, h, t0)
	})
	t.Run("partial head after a request", func(t *testing.T) {
		h := dialH1(t, addr)
		h.send(get("/1"))
		resp, body := h.response("GET")
		wantEcho(t, resp, body, h1EchoOf("GET", "/1", "HTTP/1.1", nil))
		t0 := time.Now()
		h.send("GET /2 HTTP/1.1\r\n")
		want408(t, h, t0)
	})
	t.Run("idle past it between requests", func(t *testing.T) { // the idle time is --keep-alive's
		h := dialH1(t, addr)
		h.send(get("/1"))
		resp, body := h.response("GET")
		wantEcho(t, resp, body, h1EchoOf("GET", "/1", "HTTP/1.1", nil))
		time.Sleep(2 * timeout)
		h.send(get("/2"))
		resp, body = h.response("GET")
		wantEcho(t, resp, body, h1EchoOf("GET", "/2", "HTTP/1.1", nil))
	})
	t.Run("whole head in time", func(t *testing.T) { // the clock stops for the app
		h := dialH1(t, addr)
		h.send("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
		time.Sleep(2 * timeout) // the body is the body timeout's
		h.send("cd")
		resp, body := h.response("POST")
		wantEcho(t, resp, body, h1EchoOf("POST", "/slow", "HTTP/1.1", []byte("abcd")))
	})
}

// An idle kept-alive connection is closed after --keep-alive, without a 408.
func TestH1KeepAliveIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	_, addr := newH1(t, Config{KeepAlive: idle}, h1Echo)
	// One request, then many at once: the idle deadline of the first of
	// them is kept for the next ones, and when it fires the server waits out
	// the rest of the last one's keep-alive time.
	for _, n := range []int{1, 50} {
		h := dialH1(t, addr)
		for range n {
			h.send(get("/"))
			resp, body := h.response("GET")
			wantEcho(t, resp, body, h1EchoOf("GET", "/", "HTTP/1.1", nil))
		}
		t0 := time.Now()
		h.closed(5 * time.Second)
		if d := time.Since(t0); d < idle/2 { // t0 is when the client read the response, a little after the clock started
			t.Fatalf("%d requests: closed after %v, before the keep-alive time", n, d)
		}
	}
}

// A head past the size limit: 431, and the connection closes.
func TestH1HeadTooLarge(t *testing.T) {
	_, addr := newH1(t, Config{MaxHeaderBytes: 1024}, h1Echo)
	for _, tc := range []struct{ name, req string }{
		{"whole", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 90)+"\r\n", 100) + "\r\n"},
		{"endless line", "GET /" + strings.Repeat("a", 20000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			go io.WriteString(h.c, tc.req)
			resp, _ := h.response("GET")
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
				t.Fatalf("got %d close %v, want 431 and close", resp.StatusCode, resp.Close)
			}
			h.closed(5 * time.Second)
		})
	}
	t.Run("just under", func(t *testing.T) {
		h := dialH1(t, addr)
		h.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 900) + "\r\n\r\n")
		resp, body := h.response("GET")
		wantEcho(t, resp, body, h1EchoOf("GET", "/", "HTTP/1.1", nil))
	})
}

// A head refused before the app: its status, Connection: close, and the
// connection closes.
func TestH1Refused(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	for _, tc := range []struct {
		name, req string
		code      int
	}{
		{"malformed", "GET /\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"folded", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"Expect", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: x\r\n\r\n", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send(tc.req)
			resp, body := h.response("GET")
			if resp.StatusCode != tc.code || !resp.Close || !strings.HasPrefix(body, strconv.Itoa(tc.code)) {
				t.Fatalf("got %d close %v %q, want %d and close", resp.StatusCode, resp.Close, body, tc.code)
			}
			h.closed(5 * time.Second)
		})
	}
}

// The answer to the last request on a connection reaches the client even
// when the client has sent more that the server will not read (a request
// pipelined after "Connection: close", or the body of a refused request):
// closing a socket with unread bytes sends a reset, which can destroy the
// answer in the client's buffer. net/http closes the write side and drains
// for a while first (closeWriteAndWait), as lingeringClose does. (Linux on
// loopback mostly keeps data already received through a reset, so this
// guards more than it proves.)
func TestH1LastAnswerSurvivesUnreadBytes(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	big := strings.Repeat("u", 256<<10)
	for _, tc := range []struct {
		name, req string
		code      int
	}{
		{"pipelined after close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + post("/next", big), 200},
		{"body of a refused request", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + big, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 5 {
				h := dialH1(t, addr)
				go io.WriteString(h.c, tc.req)
				time.Sleep(20 * time.Millisecond) // the reset comes before the client reads
				resp, err := http.ReadResponse(h.br, nil)
				if err != nil {
					t.Fatalf("try %d: the answer was lost: %v", i, err)
				}
				if resp.StatusCode != tc.code {
					t.Fatalf("got %d, want %d", resp.StatusCode, tc.code)
				}
				h.c.Close()
			}
		})
	}
}

// Server.Close: an idle kept-alive connection is closed at once, one that
// never sent a byte soon after, and a request in flight is answered (with
// Connection: close) before Close returns.
func TestH1CloseDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		if env.str("PATH_INFO") == "/block" {
			close(entered)
			<-release
		}
		return h1Echo(p, id, env)
	})
	idle := dialH1(t, addr)
	idle.send(get("/idle"))
	resp, body := idle.response("GET")
	wantEcho(t, resp, body, h1EchoOf("GET", "/idle", "HTTP/1.1", nil))
	silent := dialH1(t, addr)
	busy := dialH1(t, addr)
	busy.send(get("/block"))
	<-entered

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	idle.closed(2 * time.Second)
	silent.closed(4 * time.Second)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	resp, body = busy.response("GET")
	wantEcho(t, resp, body, h1EchoOf("GET", "/block", "HTTP/1.1", nil))
	if !resp.Close {
		t.Errorf("the last answer of a draining server without Connection: close")
	}
	busy.closed(2 * time.Second)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after Close")
	}
}

// A body the app does not read: what is left is read and dropped to keep
// the connection when small; past maxUnreadBody the connection closes
// after the answer, which then says so and reaches the client whole.
func TestH1UnreadBody(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		return h1Response("200 OK", nil, []byte("ignored "+env.str("CONTENT_LENGTH"))), nil
	})
	t.Run("small: dropped", func(t *testing.T) {
		h := dialH1(t, addr)
		for _, n := range []int{10, readAheadBytes + 1000, readAheadBytes + maxUnreadBody - 1} {
			go io.WriteString(h.c, post("/", strings.Repeat("d", n)))
			resp, body := h.response("POST")
			if resp.StatusCode != 200 || body != "ignored "+strconv.Itoa(n) || resp.Close {
				t.Fatalf("%d bytes: got %d %q close %v", n, resp.StatusCode, body, resp.Close)
			}
		}
		h.send(get("/"))
		resp, body := h.response("GET")
		if resp.StatusCode != 200 || body != "ignored " {
			t.Fatalf("after: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("chunked, small: dropped", func(t *testing.T) {
		h := dialH1(t, addr)
		body := strings.Repeat("c", readAheadBytes+5000)
		go io.WriteString(h.c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked(body, []int{3000}, "")+get("/"))
		for _, method := range []string{"POST", "GET"} {
			if resp, body := h.response(method); resp.StatusCode != 200 || resp.Close || body != "ignored " {
				t.Fatalf("%s: %d %q close %v", method, resp.StatusCode, body, resp.Close)
			}
		}
	})
	t.Run("large: closed", func(t *testing.T) {
		h := dialH1(t, addr)
		n := 4 << 20
		go io.WriteString(h.c, post("/", strings.Repeat("D", n)))
		resp, err := http.ReadResponse(h.br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("the answer was lost: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "ignored "+strconv.Itoa(n) {
			t.Fatalf("got %d %q %v", resp.StatusCode, body, err)
		}
		closeSaid := resp.Close
		h.closed(5 * time.Second)
		if !closeSaid {
			t.Errorf("the connection closed after a response without Connection: close")
		}
	})
}

// A streamed response: each http_write is flushed, so the body goes
// chunked on HTTP/1.1 (with a Content-Length when nothing was written);
// the connection goes on.
func TestH1StreamedResponse(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		n, _ := strconv.Atoi(env.str("QUERY_STRING"))
		if _, err := p.cb("http_start", id, "200 OK", [][2]string{{"Content-Type", "text/plain"}}); err != nil {
			return nil, err
		}
		for i := 0; i < n; i += 1000 {
			if _, err := p.cb("http_write", id, []byte(strings.Repeat(string(rune('a'+i/1000%26)), min(1000, n-i)))); err != nil {
				return nil, err
			}
		}
		return h1Streamed, nil
	})
	h := dialH1(t, addr)
	for _, n := range []int{0, 1, 1000, smallResponse, smallResponse + 1, 50000, 100, 200000} {
		var want strings.Builder
		for i := 0; i < n; i += 1000 {
			want.WriteString(strings.Repeat(string(rune('a'+i/1000%26)), min(1000, n-i)))
		}
		h.send(get("/?" + strconv.Itoa(n)))
		resp, body := h.response("GET")
		if resp.StatusCode != 200 || body != want.String() || resp.Close {
			t.Fatalf("%d bytes: got %d, %d bytes, close %v", n, resp.StatusCode, len(body), resp.Close)
		}
		if chunked := resp.TransferEncoding != nil; chunked != (n > 0) {
			t.Errorf("%d bytes: Transfer-Encoding %q, Content-Length %d", n, resp.TransferEncoding, resp.ContentLength)
		}
	}
}

// A request body that stalls past the body timeout: 408, and the
// connection closes.
func TestH1BodyTimeout(t *testing.T) {
	_, addr := newH1(t, Config{BodyTimeout: 300 * time.Millisecond}, h1Echo)
	for _, tc := range []struct{ name, req string }{
		{"length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab"},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"},
		{"chunked, between chunks", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send(tc.req)
			resp, _ := h.response("POST")
			if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
				t.Fatalf("got %d close %v, want 408 and close", resp.StatusCode, resp.Close)
			}
			h.closed(5 * time.Second)
		})
	}
}

// The disconnect watch (an ASGI app waiting for http.disconnect): a client
// that leaves is seen; one that pipelines its next request meanwhile has
// not left, and that request is served from the bytes the watch read.
func TestH1DisconnectWatch(t *testing.T) {
	gone := make(chan string, 4)   // paths whose wait for the disconnect returned before their answer
	waiting := make(chan struct{}) // /wait is waiting, with its body read
	sent := make(chan struct{})    // the test has sent what it sends while /wait waits
	_, addr := newH1(t, Config{ASGI: true}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		path := env.str("PATH_INFO")
		if path != "/wait" && path != "/leave" {
			return h1Echo(p, id, env)
		}
		if _, err := p.body(id, env); err != nil {
			return nil, err
		}
		answered := make(chan struct{})
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			p.cb("http_wait_disconnect", id)
			select {
			case <-answered:
			default:
				gone <- path
			}
		}()
		time.Sleep(50 * time.Millisecond) // for the wait to start watching
		waiting <- struct{}{}
		if path == "/leave" {
			select {
			case <-returned:
			case <-time.After(5 * time.Second):
				gone <- "/leave not seen"
			}
		} else {
			<-sent
			time.Sleep(50 * time.Millisecond) // for the watch to read it
		}
		close(answered)
		return h1Response("200 OK", nil, []byte("answered "+path)), nil
	})
	t.Run("pipelined while waiting", func(t *testing.T) {
		h := dialH1(t, addr)
		h.send("POST /wait HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
		<-waiting
		h.send(post("/next", "pipelined body"))
		close(sent)
		resp, body := h.response("POST")
		if resp.StatusCode != 200 || body != "answered /wait" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		resp, body = h.response("POST")
		wantEcho(t, resp, body, h1EchoOf("POST", "/next", "HTTP/1.1", []byte("pipelined body")))
		select {
		case p := <-gone:
			t.Fatalf("%s: the client was taken for gone", p)
		default:
		}
	})
	t.Run("client leaves", func(t *testing.T) {
		h := dialH1(t, addr)
		h.send("POST /leave HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
		<-waiting
		h.c.Close()
		if p := <-gone; p != "/leave" {
			t.Fatalf("%s", p)
		}
	})
}

// wsFrame is a final client frame (masked) of opcode op.
func wsFrame(op byte, payload []byte) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{0x80 | op, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// wsRead reads one small server frame: its opcode and payload.
func (h *h1Client) wsRead() (byte, []byte) {
	h.t.Helper()
	var hd [2]byte
	if _, err := io.ReadFull(h.br, hd[:]); err != nil {
		h.t.Fatalf("reading a frame: %v", err)
	}
	if hd[1]&0x80 != 0 || hd[1]&0x7f >= 126 {
		h.t.Fatalf("frame header %x", hd)
	}
	p := make([]byte, hd[1]&0x7f)
	if _, err := io.ReadFull(h.br, p); err != nil {
		h.t.Fatalf("reading a frame: %v", err)
	}
	return hd[0] & 0x0f, p
}

// A websocket over a hijacked connection: the 101 goes out, and the bytes
// the server read past the handshake's head (a first frame sent with it)
// reach the websocket.
func TestH1WebSocket(t *testing.T) {
	_, addr := newH1(t, Config{ASGI: true}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		if _, err := p.cb("ws_accept", id, nil, [][2]string{{"X-Accepted", "yes"}}); err != nil {
			return nil, err
		}
		for {
			out, err := p.cb("ws_receive", id)
			var msg []any
			if err != nil || cbor.Unmarshal(out, &msg) != nil || msg[0] == "close" {
				return cborNil, nil
			}
			text, _ := msg[1].(string)
			if _, err := p.cb("ws_send_many", id, [][]any{{"echo:" + text, nil}}); err != nil {
				return nil, err
			}
		}
	})
	for _, tc := range []struct {
		name  string
		split bool // the first frame after the 101, not with the head
	}{{"frame with the head", false}, {"frame after the 101", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			head := "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
			first := string(wsFrame(1, []byte("one")))
			if tc.split {
				h.send(head)
			} else {
				h.send(head + first)
			}
			resp, err := http.ReadResponse(h.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
				resp.Header.Get("X-Accepted") != "yes" || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
				t.Fatalf("handshake: %d %q", resp.StatusCode, resp.Header)
			}
			if tc.split {
				h.send(first)
			}
			for _, m := range []string{"one", "two", "three"} {
				if m != "one" {
					h.send(string(wsFrame(1, []byte(m))))
				}
				if op, p := h.wsRead(); op != 1 || string(p) != "echo:"+m {
					t.Fatalf("got op %d %q, want echo:%s", op, p, m)
				}
			}
			h.send(string(wsFrame(8, []byte{0x03, 0xe8}))) // close, 1000
			if op, p := h.wsRead(); op != 8 || len(p) < 2 || p[0] != 0x03 || p[1] != 0xe8 {
				t.Fatalf("got op %d %x, want a close 1000", op, p)
			}
			h.closed(5 * time.Second)
		})
	}
}

// rawHead reads a response head as bytes, to the empty line.
func (h *h1Client) rawHead() string {
	h.t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), "\r\n\r\n") {
		line, err := h.br.ReadString('\n')
		if err != nil {
			h.t.Fatalf("reading a head: %v (%q)", err, b.String()+line)
		}
		b.WriteString(line)
	}
	return b.String()
}

// Header names and values from the app cannot add lines to the response
// head (response splitting): net/http drops a header whose name is not a
// token, and writes line breaks in a value as spaces.
func TestH1AppHeadersCannotSplit(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		return h1Response("200 OK", [][2]string{
			{"X-Evil\r\nSet-Cookie", "name=pwned"},
			{"X-Bad Name", "v"},
			{"X-Colon:Name", "v"},
			{"X-Value", "a\r\nSet-Cookie: value=pwned"},
			{"X-Lf", "b\nSet-Cookie: lf=pwned"},
			{"X-Ok", "fine"},
		}, []byte("body")), nil
	})
	h := dialH1(t, addr)
	h.send(get("/"))
	head := h.rawHead()
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for _, l := range lines[1:] {
		name, _, ok := strings.Cut(l, ": ")
		if !ok || !validToken(name) || strings.ContainsAny(l, "\r\n") {
			t.Errorf("a malformed header line %q", l)
		}
		if strings.EqualFold(name, "Set-Cookie") {
			t.Errorf("the app's header made a line of its own: %q", l)
		}
	}
	if !strings.Contains(head, "\r\nX-Ok: fine\r\n") {
		t.Errorf("X-Ok lost: %q", head)
	}
}

// The app's own Connection header does not hide that the server closes
// the connection after the response (net/http then writes "Connection:
// close" over it, or on HTTP/1.0 drops the app's header).
func TestH1AppConnectionHeader(t *testing.T) {
	_, addr := newH1(t, Config{}, func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		return h1Response("200 OK", [][2]string{{"Connection", "keep-alive"}}, []byte("body")), nil
	})
	for _, tc := range []struct{ name, req string }{
		{"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, addr)
			h.send(tc.req)
			head := h.rawHead()
			if b := make([]byte, 4); !strings.Contains(head, "Content-Length: 4\r\n") {
				t.Fatalf("head %q", head)
			} else if _, err := io.ReadFull(h.br, b); err != nil || string(b) != "body" {
				t.Fatalf("body %q, %v", b, err)
			}
			h.closed(5 * time.Second)
			lower := strings.ToLower(head)
			// HTTP/1.0 closes unless the response says keep-alive (RFC
			// 9112 9.3); net/http, too, says nothing more to a 1.0 client.
			if strings.Contains(lower, "connection: keep-alive") ||
				strings.HasPrefix(head, "HTTP/1.1") && !strings.Contains(lower, "\r\nconnection: close\r\n") {
				t.Errorf("closed after a response that says %q", head)
			}
		})
	}
}

// A kept-alive connection whose client sent an empty line after its last
// request (RFC 9112 2.2 lets old clients do so after a POST body) is idle
// like any other: Server.Close closes it at once.
func TestH1CloseDrainsAfterEmptyLine(t *testing.T) {
	s, addr := newH1(t, Config{HeaderTimeout: 3 * time.Second, KeepAlive: 10 * time.Second}, h1Echo)
	h := dialH1(t, addr)
	h.send(post("/", "abc") + "\r\n")
	resp, body := h.response("POST")
	wantEcho(t, resp, body, h1EchoOf("POST", "/", "HTTP/1.1", []byte("abc")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h.closed(5 * time.Second)
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("the idle connection was closed after %v", d)
	}
}

// OPTIONS * is answered by the server, and the connection goes on.
func TestH1OptionsStar(t *testing.T) {
	_, addr := newH1(t, Config{}, h1Echo)
	h := dialH1(t, addr)
	h.send("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" + get("/"))
	resp, body := h.response("OPTIONS")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 0 || resp.Close {
		t.Fatalf("got %d %q length %d close %v", resp.StatusCode, body, resp.ContentLength, resp.Close)
	}
	resp, body = h.response("GET")
	wantEcho(t, resp, body, h1EchoOf("GET", "/", "HTTP/1.1", nil))
}

// The app's headers go out in its order, each name spelled as net/http
// spells it, with the server's own framing, Date and Server only where the
// app has none; an access log that reads response headers still sees them.
func TestH1AppHeadersAsGiven(t *testing.T) {
	var logged bytes.Buffer
	var logMu sync.Mutex
	af, err := ParseAccessFormat("%(s)s %({x-a}o)s %({server}o)s")
	if err != nil {
		t.Fatal(err)
	}
	app := func(p *h1Py, id uint64, env h1Env) ([]byte, error) {
		if env.str("PATH_INFO") == "/own" {
			return h1Response("200 OK", [][2]string{{"x-b", "2"}, {"content-TYPE", "text/plain"}, {"x-a", "1"},
				{"X-A", "3"}, {"server", "app-server"}, {"date", "Thu, 01 Jan 1970 00:00:00 GMT"},
				{"CONTENT-length", "4"}}, []byte("body")), nil
		}
		return h1Response("200 OK", [][2]string{{"x-a", "1"}}, []byte("body")), nil
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		path string
		want []string // the header lines, in order
	}{
		{"the app's own", Config{}, "/own", []string{"X-B: 2", "Content-Type: text/plain", "X-A: 1", "X-A: 3",
			"Server: app-server", "Date: Thu, 01 Jan 1970 00:00:00 GMT", "Content-Length: 4"}},
		{"the server's Server and Date", Config{}, "/", []string{"X-A: 1", "Server: hornbeam", "Content-Length: 4", "Date: *"}},
		{"logged", Config{AccessLog: syncWriter{&logMu, &logged}, AccessFormat: af}, "/", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := newH1(t, tc.cfg, app)
			h := dialH1(t, addr)
			h.send(get(tc.path))
			head := h.rawHead()
			lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")[1:]
			if tc.want == nil {
				// The access log line is written before the response is.
				logMu.Lock()
				got := logged.String()
				logMu.Unlock()
				if got != "200 1 hornbeam\n" {
					t.Fatalf("access log %q, want 200 1 hornbeam", got)
				}
				return
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("head %q, want the lines %q", head, tc.want)
			}
			for i, l := range lines {
				if w := tc.want[i]; l != w && !(strings.HasSuffix(w, "*") && strings.HasPrefix(l, strings.TrimSuffix(w, "*"))) {
					t.Fatalf("line %d is %q, want %q (head %q)", i, l, w, head)
				}
			}
		})
	}
}

// syncWriter serialises writes to a buffer the test reads meanwhile.
type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

package tests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// The compat tests walk real apps (Flask, Starlette, FastAPI, Django, as
// Debian ships them) through their usual flows under hornbeam and under the
// server their users would otherwise run (gunicorn gthread for WSGI, uvicorn
// for ASGI), with the same raw requests, and compare the answers once what
// legitimately differs (Date, Server, session and CSRF token values) is
// normalised. A difference is either fixed in hornbeam or written in the row
// with its reason.

// compatHost is the Host every request names, so that URLs the apps build
// are the same under both servers.
const compatHost = "compat.test"

// compatServer is one server of an app: hornbeam or its peer.
type compatServer struct {
	name string
	addr string
	logs func() string
	jar  *cookiejar.Jar    // cookies the flow has been given, sent back as a browser does
	vars map[string]string // values grabbed from earlier answers (CSRF tokens), by name
}

func newCompatServer(name, addr string, logs func() string) *compatServer {
	jar, _ := cookiejar.New(nil)
	return &compatServer{name: name, addr: addr, logs: logs, jar: jar, vars: map[string]string{}}
}

// startHornbeam serves app from dir under hornbeam.
func startHornbeam(t *testing.T, dir string, env []string, args ...string) *compatServer {
	t.Helper()
	p, err := startProc(t, dir, env, append(args, "-b", "127.0.0.1:0")...)
	if err != nil {
		t.Fatal(err)
	}
	return newCompatServer("hornbeam", hostOf(p.base), p.logs)
}

// startPeer runs Debian's python3 with args (PORT replaced by a free port)
// and waits until the port accepts connections; it is killed by PID (with
// its workers: its process group) when the test ends. It may run on any
// goroutine: it reports failure as an error.
func startPeer(t *testing.T, name, dir string, env []string, args ...string) (*compatServer, error) {
	var lastErr error
	for try := 0; try < 3; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		a := make([]string, len(args))
		for i, s := range args {
			a[i] = strings.ReplaceAll(s, "PORT", port)
		}
		cmd := exec.Command(debianPython, a...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out := &syncBuf{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		})
		addr := "127.0.0.1:" + port
		deadline := time.Now().Add(30 * time.Second)
		for lastErr = nil; lastErr == nil; {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return newCompatServer(name, addr, out.String), nil
			}
			select {
			case <-done:
				lastErr = fmt.Errorf("%s exited before it served: %v\n%s", name, cmd.ProcessState, out.String())
			case <-time.After(20 * time.Millisecond):
				if time.Now().After(deadline) {
					lastErr = fmt.Errorf("%s did not serve in 30s:\n%s", name, out.String())
				}
			}
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

// syncBuf collects a process's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// compatRow is one step of a flow: a request, sent as raw bytes to both
// servers, and how to compare the answers.
type compatRow struct {
	name   string
	method string
	proto  string   // HTTP/1.1 unless set
	only   string   // run the row under this worker class alone (wsgi, asgi)
	noHost bool     // send no Host header (HTTP/1.0)
	target string   // the request target as sent: {name} is replaced by a grabbed value
	hdr    []string // "Name: value" lines; {name} replaced as in target
	body   []byte
	// expect100 sends Expect: 100-continue and the body only once 100 Continue came.
	expect100 bool
	// then: requests sent after this one on the same connection (keep-alive).
	then []compatRow
	// pipeline sends this request and those of then at once, before any answer.
	pipeline bool
	// chunks sends the body with Transfer-Encoding: chunked, in pieces of this size.
	chunks int
	// grab stores, under each name, the first group of the regexp in the
	// answer's headers (as "Name: value" lines) and body.
	grab map[string]string
	// ignore lists the lines (by prefix of the normalised answer: "header x-y:",
	// "framing:", "body:") that legitimately differ, for the reason in why.
	ignore []string
	why    string
	// skipPeer skips the comparison because the peer is at fault or follows
	// an older spec (why says how); hornbeam's answer must then contain every
	// line of want.
	skipPeer bool
	// want: lines (substrings of the normalised answer) hornbeam's must hold
	// whatever the peer does.
	want []string
	// ws: a websocket conversation instead of a request (non-nil, maybe empty).
	ws []wsStep
}

// wsStep is one client frame of a websocket conversation, or (wsRead) a
// wait for the server's next frame, so that what follows does not race it.
type wsStep struct {
	op      byte // 0 continuation, 1 text, 2 binary, 8 close, 9 ping; wsReadOp
	payload []byte
}

// wsRead waits for the server's next frame.
var wsRead = wsStep{op: wsReadOp}

const wsReadOp = 0xff

// wsNotFinal, or'ed into op, sends a frame without FIN: a fragment.
const wsNotFinal = 0x40

// compatApp is one app served by hornbeam and by its peer.
type compatApp struct {
	// norm replaces, in bodies and header values, what differs from run to
	// run or server to server (tokens, ports) by a fixed text.
	norm []*regexp.Regexp
	// volatileCookies are cookies whose value is a signed or random token.
	volatileCookies []string
}

// runCompat sends each row to both servers in turn and compares.
func runCompat(t *testing.T, app compatApp, hb, peer *compatServer, rows []compatRow) {
	t.Helper()
	for _, r := range rows {
		if r.why == "" && (len(r.ignore) > 0 || r.skipPeer) {
			t.Fatalf("row %s: an expected difference needs its reason", r.name)
		}
		ok := t.Run(r.name, func(t *testing.T) {
			got := map[string]string{}
			took := map[string]time.Duration{}
			for _, s := range []*compatServer{hb, peer} {
				var ans string
				var err error
				t0 := time.Now()
				if r.ws != nil {
					ans, err = s.websocket(app, r)
				} else {
					ans, err = s.exchange(app, r)
				}
				took[s.name] = time.Since(t0)
				if err != nil && s == peer && r.skipPeer {
					ans = "error: " + err.Error()
				} else if err != nil {
					t.Fatalf("%s: %v\nlogs:\n%s", s.name, err, tail(s.logs()))
				}
				got[s.name] = ans
			}
			h := got[hb.name]
			if os.Getenv("COMPAT_SHOW") != "" { // to read what both answered
				t.Logf("hornbeam (%v):\n%s\n%s (%v):\n%s", took[hb.name], h, peer.name, took[peer.name], got[peer.name])
			}
			for _, w := range r.want {
				if !strings.Contains(h, w) {
					t.Errorf("hornbeam's answer lacks %q:\n%s", w, h)
				}
			}
			if r.skipPeer {
				t.Logf("%s not compared (%s); hornbeam:\n%s\n%s:\n%s", peer.name, r.why, h, peer.name, got[peer.name])
				return
			}
			a, b := dropLines(h, r.ignore), dropLines(got[peer.name], r.ignore)
			if a != b {
				t.Errorf("hornbeam and %s differ:\n%s\n--- hornbeam:\n%s\n--- %s:\n%s\nhornbeam logs:\n%s",
					peer.name, lineDiff(a, b), h, peer.name, got[peer.name], tail(hb.logs()))
			}
		})
		if !ok && r.grab != nil {
			t.FailNow() // later rows need what this one grabs
		}
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func dropLines(s string, prefixes []string) string {
	if slices.Contains(prefixes, "body:") { // the body comes last and may span lines
		s, _, _ = strings.Cut(s, "\nbody: ")
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(l, p) }) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// lineDiff lists the lines one side has and the other lacks.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var d []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			d = append(d, "hornbeam only: "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			d = append(d, "peer only:     "+l)
		}
	}
	return strings.Join(d, "\n")
}

func (s *compatServer) subst(v string) string {
	for k, x := range s.vars {
		v = strings.ReplaceAll(v, "{"+k+"}", x)
	}
	return v
}

// request renders r as the bytes sent, with the cookies of the server's
// jar: the head (request line and headers) and the body (framed).
func (s *compatServer) request(r compatRow, keepAlive bool) (head, body []byte) {
	var b bytes.Buffer
	target := s.subst(r.target)
	proto := r.proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, target, proto)
	if !r.noHost {
		fmt.Fprintf(&b, "Host: %s\r\n", compatHost)
	}
	if !keepAlive {
		b.WriteString("Connection: close\r\n")
	}
	if u, err := url.Parse("http://" + compatHost + target); err == nil {
		var cs []string
		for _, c := range s.jar.Cookies(u) {
			cs = append(cs, c.Name+"="+c.Value)
		}
		if len(cs) > 0 {
			fmt.Fprintf(&b, "Cookie: %s\r\n", strings.Join(cs, "; "))
		}
	}
	for _, h := range r.hdr {
		fmt.Fprintf(&b, "%s\r\n", s.subst(h))
	}
	if r.expect100 {
		b.WriteString("Expect: 100-continue\r\n")
	}
	raw := []byte(s.subst(string(r.body)))
	var bb bytes.Buffer
	switch {
	case r.chunks > 0:
		b.WriteString("Transfer-Encoding: chunked\r\n")
		for len(raw) > 0 {
			n := min(r.chunks, len(raw))
			fmt.Fprintf(&bb, "%x\r\n%s\r\n", n, raw[:n])
			raw = raw[n:]
		}
		bb.WriteString("0\r\n\r\n")
	case r.body != nil:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(raw))
		bb.Write(raw)
	}
	b.WriteString("\r\n")
	return b.Bytes(), bb.Bytes()
}

// exchange sends the row's request (then the rows of r.then, on the same
// connection) and renders the answers normalised: status, framing, headers
// sorted by name, body.
func (s *compatServer) exchange(app compatApp, r compatRow) (string, error) {
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	reqs := append([]compatRow{r}, r.then...)
	var answers []string
	if r.pipeline {
		// All requests at once, before any answer (HTTP/1.1 pipelining):
		// the answers must come back whole and in order.
		var all []byte
		for i, q := range reqs {
			head, body := s.request(q, i < len(reqs)-1)
			all = append(append(all, head...), body...)
		}
		if _, err := conn.Write(all); err != nil {
			return "", err
		}
		for i, q := range reqs {
			ans, err := s.readAnswer(app, br, q, i == len(reqs)-1, nil)
			if err != nil {
				return "", err
			}
			answers = append(answers, ans)
		}
		return strings.Join(answers, "\n--- next request on the connection\n"), nil
	}
	for i, q := range reqs {
		last := i == len(reqs)-1
		ans, err := s.roundTrip(app, conn, br, q, last)
		if err != nil && i > 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			answers = append(answers, "no answer: the connection was closed")
			break
		}
		if err != nil {
			return "", err
		}
		answers = append(answers, ans)
	}
	return strings.Join(answers, "\n--- next request on the connection\n"), nil
}

// roundTrip sends one request on conn and reads its answer; after the last
// (Connection: close) nothing may follow.
func (s *compatServer) roundTrip(app compatApp, conn net.Conn, br *bufio.Reader, r compatRow, last bool) (string, error) {
	head, reqBody := s.request(r, !last)
	if _, err := conn.Write(head); err != nil {
		return "", err
	}
	var out []string
	if r.expect100 {
		// As curl: the body waits for 100 Continue (or the final answer).
		resp, err := http.ReadResponse(br, &http.Request{Method: r.method})
		if err != nil {
			return "", fmt.Errorf("waiting for 100 Continue: %w", err)
		}
		if resp.StatusCode != 100 {
			return "", fmt.Errorf("%d instead of 100 Continue", resp.StatusCode)
		}
		out = append(out, "interim 100")
	}
	if _, err := conn.Write(reqBody); err != nil {
		return "", err
	}
	return s.readAnswer(app, br, r, last, out)
}

// readAnswer reads the answer to r, after the lines of out (interim answers).
func (s *compatServer) readAnswer(app compatApp, br *bufio.Reader, r compatRow, last bool, out []string) (string, error) {
	var resp *http.Response
	var err error
	for {
		resp, err = http.ReadResponse(br, &http.Request{Method: r.method})
		if err != nil {
			return "", fmt.Errorf("reading the answer: %w", err)
		}
		if resp.StatusCode >= 200 {
			break
		}
		out = append(out, fmt.Sprintf("interim %d", resp.StatusCode))
	}
	body, err := io.ReadAll(resp.Body)
	cut := ""
	if err != nil {
		// A response cut short must read as cut (no last chunk, or fewer
		// bytes than Content-Length), never as a whole one.
		cut = "\nbody cut: " + err.Error()
		last = false
	}
	if last {
		// Connection: close was asked for: nothing may follow the answer.
		if extra, _ := io.ReadAll(br); len(extra) > 0 {
			return "", fmt.Errorf("%d bytes after the answer: %q", len(extra), extra)
		}
	}
	u, _ := url.Parse("http://" + compatHost + s.subst(r.target))
	s.jar.SetCookies(u, resp.Cookies())
	var hd bytes.Buffer
	resp.Header.Write(&hd)
	for name, re := range r.grab {
		m := regexp.MustCompile(re).FindSubmatch(append(hd.Bytes(), body...))
		if m == nil {
			return "", fmt.Errorf("nothing to grab as %s (%s) in %q", name, re, body)
		}
		s.vars[name] = string(m[1])
	}
	out = append(out, fmt.Sprintf("status %d", resp.StatusCode))
	switch {
	case len(resp.TransferEncoding) > 0:
		out = append(out, "framing: "+strings.Join(resp.TransferEncoding, ","))
	case resp.Header.Get("Content-Length") != "":
		out = append(out, "framing: length")
	default:
		out = append(out, "framing: none")
	}
	var hs []string
	for k, vs := range resp.Header {
		k = strings.ToLower(k)
		if k == "date" || k == "server" {
			continue
		}
		for _, v := range vs {
			if k == "connection" && strings.EqualFold(v, "keep-alive") && resp.ProtoAtLeast(1, 1) {
				continue // HTTP/1.1's default (RFC 9112 9.3): gunicorn says it, others not
			}
			switch k {
			case "set-cookie":
				v = app.cookie(v)
			case "allow":
				// Flask builds it from a set: its order changes with the
				// process's hash seed.
				ms := strings.Split(v, ", ")
				slices.Sort(ms)
				v = strings.Join(ms, ", ")
			}
			hs = append(hs, "header "+k+": "+s.normalise(app, asciiBytes(v)))
		}
	}
	slices.Sort(hs)
	out = append(out, hs...)
	return strings.Join(append(out, renderBody(s.normalise(app, string(body)))), "\n") + cut, nil
}

// asciiBytes shows the bytes of a header value above 0x7e as \xNN, so that
// latin-1 and UTF-8 on the wire read differently.
func asciiBytes(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x7f {
			fmt.Fprintf(&b, "\\x%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cookie normalises a Set-Cookie line: volatile values and expiry dates.
func (a compatApp) cookie(v string) string {
	name, rest, _ := strings.Cut(v, "=")
	val, attrs, _ := strings.Cut(rest, ";")
	if slices.Contains(a.volatileCookies, name) && val != "" && val != `""` {
		val = "<token>"
	}
	attrs = expiresRe.ReplaceAllString(attrs, "expires=<date>")
	return name + "=" + val + ";" + attrs
}

var expiresRe = regexp.MustCompile(`(?i)expires=[^;]*`)

// normalise replaces the server's own port, then what app.norm matches.
func (s *compatServer) normalise(app compatApp, v string) string {
	_, port, _ := net.SplitHostPort(s.addr)
	// After ':' (HOST:PORT, JSON) or '"' (a quoted port) only: a body's
	// other numbers stay as they are.
	return app.normalise(regexp.MustCompile(`([:"])`+port+`\b`).ReplaceAllString(v, "$1<port>"))
}

func (a compatApp) normalise(s string) string {
	for _, re := range a.norm {
		s = re.ReplaceAllString(s, "<"+re.SubexpNames()[len(re.SubexpNames())-1]+">")
	}
	return s
}

// renderBody shows a short text body as is, anything else by size and hash.
func renderBody(b string) string {
	if len(b) <= 2048 && utf8.ValidString(b) {
		return "body: " + b
	}
	sum := sha256.Sum256([]byte(b))
	return fmt.Sprintf("body: %d bytes sha256 %s", len(b), hex.EncodeToString(sum[:8]))
}

// websocket opens r.target as a websocket, sends r.ws's frames, and renders
// the handshake's answer and every frame the server sends until it closes.
func (s *compatServer) websocket(app compatApp, r compatRow) (string, error) {
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", s.subst(r.target), compatHost)
	for _, h := range r.hdr {
		fmt.Fprintf(conn, "%s\r\n", h)
	}
	io.WriteString(conn, "\r\n")
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return "", err
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return "", err
	}
	// The status code alone: the reason phrase is free text (RFC 9112 4).
	code, _, _ := strings.Cut(line[strings.IndexByte(line, ' ')+1:], " ")
	out := []string{"status " + code}
	var hs []string
	for k, vs := range mh {
		k = strings.ToLower(k)
		if k == "date" || k == "server" {
			continue
		}
		for _, v := range vs {
			if k == "upgrade" || k == "connection" {
				v = strings.ToLower(v) // case-insensitive tokens (RFC 9110 7.8)
			}
			hs = append(hs, "header "+k+": "+s.normalise(app, v))
		}
	}
	slices.Sort(hs)
	out = append(out, hs...)
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		// A refused handshake: the answer's body, as an HTTP answer.
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line+"\r\n"+headerText(mh)+"\r\n"), br)), nil)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			out = append(out, renderBody(s.normalise(app, string(b))))
		}
		return strings.Join(out, "\n"), nil
	}
	steps := r.ws
	for {
		for len(steps) > 0 && steps[0].op != wsReadOp {
			if f := wsFrameAny(steps[0].op&0x0f, steps[0].payload); steps[0].op&wsNotFinal != 0 {
				f[0] &^= 0x80
				conn.Write(f)
			} else {
				conn.Write(f)
			}
			steps = steps[1:]
		}
		if len(steps) > 0 {
			steps = steps[1:] // the frame read now is the one waited for
		}
		op, p, err := readWSFrame(br)
		if err != nil {
			out = append(out, "end: "+strings.TrimPrefix(err.Error(), "unexpected "))
			break
		}
		switch op {
		case 1:
			out = append(out, "text: "+s.normalise(app, string(p)))
		case 2:
			if len(p) > 64 {
				sum := sha256.Sum256(p)
				out = append(out, fmt.Sprintf("binary: %d bytes sha256 %s", len(p), hex.EncodeToString(sum[:8])))
			} else {
				out = append(out, "binary: "+hex.EncodeToString(p))
			}
		case 8:
			if len(p) >= 2 {
				out = append(out, fmt.Sprintf("close: %d %q", binary.BigEndian.Uint16(p), p[2:]))
			} else {
				out = append(out, "close: none")
			}
			conn.Write(wsFrameAny(8, p[:min(2, len(p))]))
			return strings.Join(out, "\n"), nil
		case 9:
			conn.Write(wsFrameAny(10, p))
		case 10:
			out = append(out, fmt.Sprintf("pong: %q", p))
		}
	}
	return strings.Join(out, "\n"), nil
}

func headerText(h textproto.MIMEHeader) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return b.String()
}

// wsFrameAny encodes a masked client frame of any size.
func wsFrameAny(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := []byte{7, 1, 9, 3}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readWSFrame reads one unmasked server frame.
func readWSFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<24 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, p, nil
}

// multipartBody builds a multipart/form-data body with fixed boundary.
func multipartBody(fields map[string]string, files map[string][2]any) []byte {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.SetBoundary("compat-boundary-7d3")
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.WriteField(k, fields[k])
	}
	fkeys := make([]string, 0, len(files))
	for k := range files {
		fkeys = append(fkeys, k)
	}
	slices.Sort(fkeys)
	for _, k := range fkeys {
		fw, _ := w.CreateFormFile(k, files[k][0].(string))
		fw.Write(files[k][1].([]byte))
	}
	w.Close()
	return b.Bytes()
}

const multipartCT = "Content-Type: multipart/form-data; boundary=compat-boundary-7d3"

// compatData writes the file the apps serve (300 KiB, fixed bytes and
// mtime, so that both servers' ETags agree) and returns its directory.
func compatData(t *testing.T) (dir string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	data = make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	p := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func compatTestdata() string { d, _ := filepath.Abs("testdata/compat"); return d }

func needPy(t *testing.T, modules ...string) {
	t.Helper()
	for _, m := range modules {
		if err := exec.Command(debianPython, "-c", "import "+m).Run(); err != nil {
			t.Skipf("Debian's python3 lacks %s (make deps)", m)
		}
	}
}

// startBoth starts the peer (on another goroutine) and hornbeam at once.
func startBoth(t *testing.T, hb func() *compatServer, peer func() (*compatServer, error)) (*compatServer, *compatServer) {
	t.Helper()
	type res struct {
		s   *compatServer
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := peer(); ch <- res{s, err} }()
	h := hb()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return h, r.s
}

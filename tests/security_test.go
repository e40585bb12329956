package tests

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingProxy forwards TCP connections to target and keeps, per
// connection, every byte the connecting side sent: what a sniffer on the
// path between two nodes would see.
type recordingProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	captured []*bytes.Buffer
	conns    []net.Conn
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *recordingProxy) addr() string { return p.ln.Addr().String() }

func (p *recordingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		buf := &bytes.Buffer{}
		p.mu.Lock()
		p.captured = append(p.captured, buf)
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(c, up); c.Close() }()
		go func() {
			b := make([]byte, 32<<10)
			for {
				n, err := c.Read(b)
				if n > 0 {
					p.mu.Lock()
					buf.Write(b[:n])
					p.mu.Unlock()
					up.Write(b[:n])
				}
				if err != nil {
					up.Close()
					return
				}
			}
		}()
	}
}

func (p *recordingProxy) streams() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, b := range p.captured {
		out = append(out, append([]byte(nil), b.Bytes()...))
	}
	return out
}

func (p *recordingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// readINFO reads the server's first line (NATS INFO, sent in clear before
// TLS starts) and returns it.
func readINFO(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 64<<10)).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from %s: %q %v", c.RemoteAddr(), line, err)
	}
	return line
}

// drain reads until the server closes the connection (or 10 s pass) and
// returns what it sent.
func drain(c net.Conn) ([]byte, bool) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	_, err := io.Copy(&out, io.LimitReader(c, 1<<20))
	var ne net.Error
	timedOut := err != nil && errorsAs(err, &ne) && ne.Timeout()
	return out.Bytes(), !timedOut
}

func errorsAs(err error, ne *net.Error) bool {
	for err != nil {
		if e, ok := err.(net.Error); ok {
			*ne = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// waitFile reports whether path appears within d.
func waitFile(path string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

var handshakeErrRe = regexp.MustCompile(`TLS route handshake error`)

// The replay attack: a proxy between a joining node and its seed records the
// joiner's bytes while it runs os.system on the seed. Replayed to the seed,
// or to another node with the same cookie, they never complete a TLS
// handshake and run nothing; nor does a route that sends the password
// older versions derived from the cookie.
func TestSecurityReplayedJoinRunsNothing(t *testing.T) {
	const cookie = "sec8-replay"
	dir := t.TempDir()
	a := startNode(t, "a@127.0.0.1", cookie, "--cluster-host", "127.0.0.1")
	c := startNode(t, "c@127.0.0.1", cookie, "--cluster-host", "127.0.0.1")
	proxy := newRecordingProxy(t, a.addr)

	marker := filepath.Join(dir, "ran")
	r := run(t, dir, nil, 60*time.Second, "call", "a@127.0.0.1", "os", "system",
		fmt.Sprintf(`["touch %s"]`, marker), "--join", proxy.addr(), "--cookie", cookie)
	if r.code != 0 || !waitFile(marker, 5*time.Second) {
		t.Fatalf("the legitimate call through the proxy did not run: %+v", r)
	}
	streams := proxy.streams()
	var total int
	for _, s := range streams {
		total += len(s)
		if len(s) > 0 && s[0] != 0x16 { // a TLS handshake record, not NATS text
			t.Errorf("a route stream starts in clear: %q", s[:min(len(s), 64)])
		}
		if bytes.Contains(s, []byte("CONNECT")) || bytes.Contains(s, []byte("touch")) || bytes.Contains(s, []byte(cookie)) {
			t.Errorf("the route carries readable protocol, commands or the cookie")
		}
	}
	if total == 0 {
		t.Fatal("the proxy captured nothing: the call did not go through it")
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}

	for _, target := range []*node{a, c} {
		before := len(handshakeErrRe.FindAllString(target.logs(), -1))
		for _, s := range streams {
			if len(s) == 0 {
				continue
			}
			conn, err := net.DialTimeout("tcp", target.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write(s)
			got, closed := drain(conn)
			conn.Close()
			if !closed {
				t.Errorf("%s kept a replayed connection open", target.name)
			}
			if bytes.Contains(got, []byte("PING")) || bytes.Contains(got, []byte("INFO")) {
				t.Errorf("%s answered a replay in clear: %q", target.name, got)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(handshakeErrRe.FindAllString(target.logs(), -1)) == before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if len(handshakeErrRe.FindAllString(target.logs(), -1)) == before {
			t.Errorf("%s did not log the failed handshakes:\n%s", target.name, target.logs())
		}
	}

	// Older versions sent HMAC-SHA256(cookie, "hornbeam/route") as the route
	// password in clear; it must open nothing now.
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("hornbeam/route"))
	pass := hex.EncodeToString(m.Sum(nil))
	conn, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Routes start with the TLS handshake: the listener says nothing in clear,
	// not even INFO.
	fmt.Fprintf(conn, `CONNECT {"verbose":false,"pedantic":false,"user":"hornbeam","pass":%q,"tls_required":false,"name":"x","cluster":"hornbeam"}`+"\r\nPING\r\n", pass)
	fmt.Fprintf(conn, "RS+ $G hb.>\r\nRMSG $G hb.x 10\r\n0123456789\r\n")
	got, closed := drain(conn)
	conn.Close()
	if !closed || bytes.Contains(got, []byte("PONG")) || bytes.Contains(got, []byte("INFO")) {
		t.Errorf("a route with the old password was served: closed=%v %q", closed, got)
	}
	if waitFile(marker, 3*time.Second) {
		t.Fatal("a replayed or forged route ran code")
	}
}

var clientURLRe = regexp.MustCompile(`msg="joined cluster".* client=(?:nats|tls)://(\S+)`)

// The node's client listener (for its worker processes) refuses clear text
// and TLS without a certificate from the cluster's CA.
func TestSecurityClientPortNeedsMutualTLS(t *testing.T) {
	a := startNode(t, "a@127.0.0.1", "sec8-client", "--cluster-host", "127.0.0.1")
	m := clientURLRe.FindStringSubmatch(a.logs())
	if m == nil {
		t.Fatalf("no client URL logged:\n%s", a.logs())
	}
	addr := m[1]

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	info := readINFO(t, conn)
	if !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("client listener does not require TLS: %s", info)
	}
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false}\r\nPING\r\nSUB > 1\r\n")
	got, closed := drain(conn)
	conn.Close()
	if !closed || bytes.Contains(got, []byte("PONG")) || bytes.Contains(got, []byte("MSG")) {
		t.Errorf("a clear-text client was served: closed=%v %q", closed, got)
	}

	// TLS without a client certificate: the server refuses it.
	conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	readINFO(t, conn)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	hsErr := tc.Handshake()
	if hsErr == nil {
		fmt.Fprintf(tc, "CONNECT {\"verbose\":false}\r\nPING\r\n")
		b, err := io.ReadAll(io.LimitReader(tc, 1<<16))
		if bytes.Contains(b, []byte("PONG")) {
			t.Errorf("a TLS client without a certificate was served: %q", b)
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Logf("read after handshake: %v", err)
		}
	}
	tc.Close()
}

// --allow-module: allowed modules answer; os.system and modules no rule names
// get BadRPC naming the rules, and run nothing; the CLI tools keep working;
// the same holds for a node whose calls run in worker processes.
func TestSecurityAllowModule(t *testing.T) {
	const cookie = "sec8-allow"
	dir := t.TempDir()
	a := startNode(t, "a@127.0.0.1", cookie, "--cluster-host", "127.0.0.1", "--allow-module", "cltest", "--allow-module", "ml_*")
	marker := filepath.Join(dir, "ran")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"ping", "a@127.0.0.1"}, 0, "pong\n", ""},
		{[]string{"nodes"}, 0, "a@127.0.0.1\n", ""},
		{[]string{"call", "a@127.0.0.1", "cltest", "add", "[2, 40]"}, 0, "42\n", ""},
		{[]string{"call", "a@127.0.0.1", "os", "system", fmt.Sprintf(`["touch %s"]`, marker)}, 1, "", "--allow-module"},
		{[]string{"call", "a@127.0.0.1", "subprocess", "run", fmt.Sprintf(`[["touch", %q]]`, marker)}, 1, "", "bad rpc"},
		{[]string{"call", "a@127.0.0.1", "builtins", "exec", `["open('x','w')"]`}, 1, "", "bad rpc"},
		{[]string{"call", "a@127.0.0.1", "json", "dumps", "[1]"}, 1, "", "cltest, ml_*"},
	}
	for _, tt := range tests {
		r := run(t, dir, nil, 30*time.Second, append(tt.args, "--join", a.addr, "--cookie", cookie)...)
		if r.code != tt.code || (tt.stdout != "" && r.stdout != tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%v: got %+v", tt.args, r)
		}
	}
	var got map[string]any
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json
from hornbeam_erlang import rpc_call, rpc_cast, BadRPC
wait_peers(["a@127.0.0.1"])
out = {"whoami": rpc_call("a@127.0.0.1", "cltest", "whoami", [])}
try:
    rpc_call("a@127.0.0.1", "os", "system", ["touch `+marker+`"])
except BadRPC as e:
    out["os"] = str(e)
try:
    rpc_cast("a@127.0.0.1", "os", "system", ["touch `+marker+`"])
except BadRPC as e:  # the target refuses the cast when it is queued
    out["cast"] = str(e)
print(json.dumps(out))
`, 30*time.Second, &got)
	if got["whoami"] != "a@127.0.0.1" || !strings.Contains(fmt.Sprint(got["os"]), "--allow-module") ||
		!strings.Contains(fmt.Sprint(got["cast"]), "--allow-module") {
		t.Errorf("from Python: %v", got)
	}
	if waitFile(marker, 2*time.Second) {
		t.Fatal("a module outside --allow-module ran")
	}
	if !strings.Contains(a.logs(), "remote call refused") {
		t.Errorf("the refusals are not logged:\n%s", a.logs())
	}

	// Spawns, remote tasks, DAG functions and routed requests run code on a
	// too: the same rules hold for each, and allowed modules still run.
	var other map[string]any
	script(t, "t2@127.0.0.1", cookie, a.addr, waitPeers+`
import json
from hornbeam_erlang import BadRPC, RemoteError, spawn
from hornbeam_dist import Router, async_call
from hornbeam_dag import DAG, DAGFailed, Function, execute_distributed
wait_peers(["a@127.0.0.1"])
A = "a@127.0.0.1"
out = {}
def refused(f):
    try:
        f()
    except (BadRPC, DAGFailed, RemoteError) as e:
        return str(e)
    return "ran"
out["spawn"] = refused(lambda: spawn(A, "os", "system", ["touch `+marker+`"]))
out["task"] = refused(lambda: async_call(A, "os", "system", ["touch `+marker+`"]).result(10))
out["task_ok"] = async_call(A, "cltest", "add", [1, 2]).result(10)
dag = DAG().add_function(Function("ok", [], ("cltest", "add"), extra_args=(2, 3), node=A))
out["dag_ok"] = execute_distributed(dag, max_retries=0)["ok"]
bad = DAG().add_function(Function("bad", [], ("os", "system"), extra_args=("touch `+marker+`",), node=A))
out["dag"] = refused(lambda: execute_distributed(bad, max_retries=0))
r = Router([("a-z", A)], "sec")
out["route"] = refused(lambda: r.route("key", "os", "system", ["touch `+marker+`"]))
print(json.dumps(out))
`, 60*time.Second, &other)
	for _, k := range []string{"spawn", "task", "dag", "route"} {
		if !strings.Contains(fmt.Sprint(other[k]), "allow-module") {
			t.Errorf("%s of os.system on a: %v", k, other[k])
		}
	}
	if other["task_ok"] != float64(3) || other["dag_ok"] != float64(5) {
		t.Errorf("allowed modules through tasks and DAGs: %v", other)
	}
	if waitFile(marker, 2*time.Second) {
		t.Fatal("a module outside --allow-module ran")
	}

	// A node serving its calls in worker processes applies the same rules.
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0",
		"--name", "multi@127.0.0.1", "--cookie", cookie, "--join", a.addr, "--allow-module", "workerapp")
	s.waitLog(t, "worker ready", 2, 20*time.Second)
	r := run(t, dir, nil, 30*time.Second, "call", "multi@127.0.0.1", "os", "getpid", "--join", a.addr, "--cookie", cookie)
	if r.code != 1 || !strings.Contains(r.stderr, "--allow-module workerapp") {
		t.Errorf("os.getpid on a worker node: %+v", r)
	}
	r = run(t, dir, nil, 30*time.Second, "call", "multi@127.0.0.1", "workerapp", "nosuch", "--join", a.addr, "--cookie", cookie)
	if r.code != 1 || strings.Contains(r.stderr, "--allow-module") || !strings.Contains(r.stderr, "bad rpc") {
		t.Errorf("an allowed module on a worker node: %+v", r)
	}
}

package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func opsdir() string { d, _ := filepath.Abs("testdata/metrics"); return d }

func TestVersionFlags(t *testing.T) {
	var first string
	for _, args := range [][]string{{"--version"}, {"-V"}, {"version"}} {
		r := run(t, "", nil, 10*time.Second, args...)
		if r.code != 0 || !regexp.MustCompile(`^hornbeam \S+ \(Python 3\.\d+`).MatchString(r.stdout) {
			t.Fatalf("hornbeam %v: exit %d, %q %q", args, r.code, r.stdout, r.stderr)
		}
		if first == "" {
			first = r.stdout
		} else if r.stdout != first {
			t.Errorf("hornbeam %v printed %q, --version %q", args, r.stdout, first)
		}
	}
}

// jsonNode is a node started with --log-format json; every stderr line is kept.
type jsonNode struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func startJSONNode(t *testing.T, args ...string) (*jsonNode, map[string]any, []string) {
	t.Helper()
	cmd := exec.Command(hornbeam, append([]string{"start", "--log-format", "json"}, args...)...)
	cmd.Dir = opsdir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &jsonNode{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		close(n.lines)
		cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	})
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-n.lines:
			if !ok {
				t.Fatalf("node exited before it started:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "node started" {
				return n, m, seen
			}
		case <-timeout:
			t.Fatalf("node did not start:\n%s", strings.Join(seen, "\n"))
		}
	}
}

func TestLogFormatJSON(t *testing.T) {
	n, started, lines := startJSONNode(t, "opsapp", "-b", "127.0.0.1:0", "--name", "json-obs13@127.0.0.1",
		"--cookie", "json-obs13", "--log-level", "debug")
	base := "http://" + strings.Split(started["http"].(string), ",")[0]
	mustFetch(t, base+"/log?q=1")
	syscall.Kill(n.cmd.Process.Pid, syscall.SIGTERM)
	for l := range n.lines {
		lines = append(lines, l)
	}
	var sawInfo, sawTrace bool
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not a JSON line: %q", l)
			continue
		}
		for _, k := range []string{"time", "level", "msg", "node"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line without %q: %s", k, l)
			}
		}
		if m["node"] != nil && m["node"] != "json-obs13@127.0.0.1" {
			t.Errorf("node = %v: %s", m["node"], l)
		}
		if m["logger"] == "opsapp" {
			if m["pid"] == nil {
				t.Errorf("Python log line without pid: %s", l)
			}
			switch m["msg"] {
			case "request seen q=1":
				sawInfo = m["level"] == "INFO"
			case "with a traceback":
				tb, _ := m["traceback"].(string)
				sawTrace = m["level"] == "ERROR" && strings.Contains(tb, "Traceback") && strings.Contains(tb, "ValueError: logged on purpose")
			}
		}
	}
	if !sawInfo || !sawTrace {
		t.Errorf("Python logging not routed (info %v, traceback %v):\n%s", sawInfo, sawTrace, strings.Join(lines, "\n"))
	}
}

// getWith sends a GET with headers and returns the body.
func getWith(t *testing.T, url string, headers map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestProxyHeadersOnlyFromAllowedPeers(t *testing.T) {
	hdr := map[string]string{"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "https"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"trusted", []string{"--forwarded-allow-ips", "127.0.0.1"}, "203.0.113.7|https"},
		{"trusted-cidr", []string{"--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.0/8"}, "203.0.113.7|https"},
		{"untrusted", []string{"--forwarded-allow-ips", "10.1.2.3"}, "127.0.0.1|http"},
		{"off", []string{"--proxy-headers=false"}, "127.0.0.1|http"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := serveApp(t, opsdir(), append([]string{"opsapp", "-b", "127.0.0.1:0"}, c.args...)...)
			if got := getWith(t, p.base+"/", hdr); got != c.want {
				t.Errorf("with forwarding headers: %q, want %q", got, c.want)
			}
			if got := getWith(t, p.base+"/", nil); got != "127.0.0.1|http" {
				t.Errorf("without: %q", got)
			}
		})
	}
}

func TestAccessLogFormatAndPIDFile(t *testing.T) {
	dir := t.TempDir()
	logf, pidf := filepath.Join(dir, "access.log"), filepath.Join(dir, "node.pid")
	p := serveApp(t, opsdir(), "opsapp", "-b", "127.0.0.1:0", "--access-logfile", logf, "--pid", pidf,
		"--access-logformat", `%(h)s %(l)s "%(r)s" %(s)s %(b)s "%({X-Test}i)s" "%({X-Out}o)s" "%(a)s" %(L)s`)
	b, err := os.ReadFile(pidf)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.pid()) {
		t.Fatalf("--pid file: %q, %v; want %d", b, err, p.pid())
	}
	getWith(t, p.base+"/x?y=1", map[string]string{"X-Test": "hello", "User-Agent": "ua/1"})
	re := regexp.MustCompile(`^127\.0\.0\.1 - "GET /x\?y=1 HTTP/1\.1" 200 14 "hello" "o1" "ua/1" \d+\.\d{6}\n$`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logf)
		if re.Match(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log %q does not match %v", b, re)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop()
	if _, err := os.Stat(pidf); !os.IsNotExist(err) {
		t.Errorf("--pid file left behind after a clean stop: %v", err)
	}
}

// freeTCPPort returns a port nobody listens on now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestNodeStartedBeforeItsSeedJoins(t *testing.T) {
	cookie := "early-obs13"
	port := freeTCPPort(t)
	seedAddr := fmt.Sprintf("127.0.0.1:%d", port)
	type res struct {
		n   *node
		err error
	}
	early := make(chan res, 1)
	go func() {
		n, err := tryStartNode(t, "early-obs13@127.0.0.1", cookie, "--join", seedAddr, "--join-timeout", "25")
		early <- res{n, err}
	}()
	// The early node is trying; its seed comes up two seconds later.
	time.Sleep(2 * time.Second)
	seed := startNode(t, "seed-obs13@127.0.0.1", cookie, "--cluster-port", strconv.Itoa(port))
	select {
	case r := <-early:
		if r.err != nil {
			t.Fatalf("the early node gave up: %v", r.err)
		}
		r.n.waitLog(t, "msg=nodeup", 1, 10*time.Second)
	case <-time.After(40 * time.Second):
		t.Fatal("the early node did not join")
	}
	r := run(t, "", nil, 20*time.Second, "nodes", "--join", seed.addr, "--cookie", cookie)
	if !strings.Contains(r.stdout, "early-obs13@127.0.0.1") {
		t.Errorf("nodes: %q %q", r.stdout, r.stderr)
	}
}

func TestJoinTimeoutGivesUp(t *testing.T) {
	port := freeTCPPort(t)
	t0 := time.Now()
	_, err := tryStartNode(t, "lonely-obs13@127.0.0.1", "lonely-obs13", "--join", fmt.Sprintf("127.0.0.1:%d", port), "--join-timeout", "1.5")
	if err == nil || !strings.Contains(err.Error(), "could not join") {
		t.Fatalf("want a node that gives up, got %v", err)
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

func TestStatusTextAndJSON(t *testing.T) {
	cookie := "status-obs13"
	a := startNode(t, "sa-obs13@127.0.0.1", cookie, "--role", "web")
	b := startNode(t, "sb-obs13@127.0.0.1", cookie, "--join", a.addr, "--role", "gpu", "--role", "batch")
	c := startNode(t, "sc-obs13@127.0.0.1", cookie, "--join", a.addr)
	a.waitLog(t, "msg=nodeup", 2, 15*time.Second)
	c.kill()
	a.waitLog(t, "msg=nodedown", 1, 15*time.Second)

	r := run(t, "", nil, 30*time.Second, "status", "--join", a.addr, "--cookie", cookie)
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(lines[0], "NODE") || !strings.Contains(lines[0], "CAPABILITIES") || !strings.Contains(lines[0], "UPTIME") {
		t.Errorf("header: %q", lines[0])
	}
	row := func(name string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("no row for %s:\n%s", name, r.stdout)
		return nil
	}
	if f := row(a.name); f[1] != "up" || f[2] != "web" || !strings.Contains(f[3], "gpu=") {
		t.Errorf("row %v", f)
	}
	if f := row(b.name); f[1] != "up" || f[2] != "gpu,batch" {
		t.Errorf("row %v", f)
	}
	if f := row(c.name); f[1] != "down" {
		t.Errorf("killed node: row %v", f)
	}
	if !strings.Contains(r.stdout, "3 nodes: 2 up, 1 down") {
		t.Errorf("summary missing:\n%s", r.stdout)
	}

	r = run(t, "", nil, 30*time.Second, "status", "--json", "--join", b.addr, "--cookie", cookie)
	var view struct {
		Nodes []struct {
			Name  string
			Up    bool
			Roles []string
			Info  map[string]any
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &view); err != nil {
		t.Fatalf("status --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	got := map[string]bool{}
	for _, n := range view.Nodes {
		got[n.Name] = n.Up
		if n.Up && (n.Info["uptime_s"] == nil || n.Info["memory_total"] == nil || n.Info["load1"] == nil) {
			t.Errorf("%s: info %v", n.Name, n.Info)
		}
	}
	if len(view.Nodes) != 3 || !got[a.name] || !got[b.name] || got[c.name] {
		t.Errorf("status --json nodes: %v\n%s", got, r.stdout)
	}

	r = run(t, "", nil, 30*time.Second, "nodes", "--long", "--join", a.addr, "--cookie", cookie)
	if !strings.HasPrefix(r.stdout, "NODE") || !strings.Contains(r.stdout, b.name) || !strings.Contains(r.stdout, "down") {
		t.Errorf("nodes --long:\n%s\n%s", r.stdout, r.stderr)
	}
}

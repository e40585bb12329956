package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// node is a `hornbeam start` process of a test cluster.
type node struct {
	*proc
	name string
	addr string // cluster HOST:PORT
}

// startNode starts a node and waits for its "node started" line; it is killed
// by PID when the test ends.
func startNode(t *testing.T, name, cookie string, args ...string) *node {
	t.Helper()
	n, err := tryStartNode(t, name, cookie, args...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tryStartNode(t *testing.T, name, cookie string, args ...string) (*node, error) {
	t.Helper()
	pydir, _ := filepath.Abs("testdata/cluster")
	p, err := startProc(t, "", nil, append([]string{"--name", name, "--cookie", cookie, "--pythonpath", pydir}, args...)...)
	if err != nil {
		return nil, err
	}
	return &node{proc: p, name: name, addr: p.cluster}, nil
}

// script runs Python as a cluster node for its lifetime and decodes the JSON
// its last stdout line holds.
func script(t *testing.T, name, cookie, join, src string, timeout time.Duration, out any, args ...string) {
	t.Helper()
	dir := t.TempDir()
	path := writeFile(t, dir, "check.py", src)
	pydir, _ := filepath.Abs("testdata/cluster")
	all := append([]string{"run", "--name", name, "--cookie", cookie, "--join", join, "--pythonpath", pydir, path}, args...)
	r := run(t, dir, nil, timeout, all...)
	if r.code != 0 {
		t.Fatalf("script %s exited %d\nstdout:\n%s\nstderr:\n%s", name, r.code, r.stdout, r.stderr)
	}
	if out != nil {
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
			t.Fatalf("script output %q: %v\nstderr:\n%s", r.stdout, err, r.stderr)
		}
	}
}

const waitPeers = `
import time
from hornbeam_erlang import nodes
def wait_peers(want, timeout=10):
    deadline = time.time() + timeout
    while set(want) - set(nodes()):
        if time.time() > deadline:
            raise SystemExit(f"peers {sorted(set(want) - set(nodes()))} not seen; nodes()={nodes()}")
        time.sleep(0.02)
`

func TestClusterCallsInEveryDirection(t *testing.T) {
	const cookie = "c1"
	a := startNode(t, "a@127.0.0.1", cookie)
	b := startNode(t, "b@127.0.0.1", cookie, "--join", a.addr)
	startNode(t, "c@127.0.0.1", cookie, "--join", b.addr) // joins b only: gossip must complete the mesh
	var got map[string]any
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, sys
from hornbeam_erlang import rpc_call, nodes, node
names = ["a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"]
wait_peers(names)
out = {}
for src in names:
    for dst in names:
        out[src + ">" + dst] = rpc_call(src, "cltest", "relay", [dst, "cltest", "whoami", []])
out["views"] = {n: rpc_call(n, "hornbeam_erlang", "nodes", []) for n in names}
out["self"] = rpc_call(node(), "cltest", "add", [1, 2])
print(json.dumps(out))
`, 60*time.Second, &got)
	names := []string{"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"}
	for _, src := range names {
		for _, dst := range names {
			if got[src+">"+dst] != dst {
				t.Errorf("%s -> %s answered by %v", src, dst, got[src+">"+dst])
			}
		}
	}
	views := got["views"].(map[string]any)
	for _, n := range names {
		seen := fmt.Sprint(views[n])
		for _, o := range names {
			if o != n && !strings.Contains(seen, o) {
				t.Errorf("%s does not see %s: %s", n, o, seen)
			}
		}
		if strings.Contains(seen, n) {
			t.Errorf("%s lists itself: %s", n, seen)
		}
	}
	if got["self"] != 3.0 {
		t.Errorf("call to self: %v", got["self"])
	}
}

func TestClusterErrors(t *testing.T) {
	const cookie = "c2"
	a := startNode(t, "a@127.0.0.1", cookie)
	startNode(t, "b@127.0.0.1", cookie, "--join", a.addr)
	var got map[string]any
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, time
from hornbeam_erlang import *
wait_peers(["a@127.0.0.1", "b@127.0.0.1"])
out = {}
def expect(name, fn, cls, *also):
    t0 = time.monotonic()
    try:
        fn()
        out[name] = "no error"
    except cls as e:
        ok = all(isinstance(e, c) for c in also) and isinstance(e, RPCError) and isinstance(e, RuntimeError)
        out[name] = {"ok": ok, "msg": str(e), "s": time.monotonic() - t0}
        if isinstance(e, RemoteError):
            out[name].update(type=e.type, message=e.message, node=e.node, tb="boom" in e.traceback and "cltest.py" in e.traceback)
    except BaseException as e:
        out[name] = f"wrong class {type(e).__name__}: {e}"
expect("timeout", lambda: rpc_call("b@127.0.0.1", "cltest", "sleep", [2], timeout_ms=200), RPCTimeout, TimeoutError)
expect("unknown node", lambda: rpc_call("nobody@127.0.0.1", "cltest", "add", [1, 2]), NodeDown, ConnectionError)
expect("bad name", lambda: rpc_call("not-a-node", "cltest", "add", [1, 2]), NodeDown, ConnectionError)
expect("no module", lambda: rpc_call("b@127.0.0.1", "no_such_mod", "f", []), BadRPC)
expect("no function", lambda: rpc_call("b@127.0.0.1", "cltest", "nope", []), BadRPC)
expect("remote", lambda: rpc_call("b@127.0.0.1", "cltest", "boom", ["boom!"]), RemoteError)
expect("too big", lambda: rpc_call("b@127.0.0.1", "cltest", "add", [b"x" * (9 << 20), b""]), PayloadTooLarge, ValueError)
expect("reply too big", lambda: rpc_call("b@127.0.0.1", "cltest", "big", [9 << 20]), PayloadTooLarge)
expect("bad args", lambda: rpc_call("b@127.0.0.1", "cltest", "add", 5), TypeError)
expect("unconvertible", lambda: rpc_call("b@127.0.0.1", "cltest", "add", [{1, 2}, 1]), TypeError)
out["after"] = rpc_call("b@127.0.0.1", "cltest", "add", [2, 3])
out["cast"] = rpc_cast("b@127.0.0.1", "cltest", "remember", ["k", 42])
time.sleep(0.2)
out["cast_seen"] = rpc_call("b@127.0.0.1", "cltest", "recall", ["k"])
out["ping"] = [ping("b@127.0.0.1"), ping("nobody@127.0.0.1")]
info = node_info("b@127.0.0.1")
out["info"] = [info["name"], info["cpu_count"] > 0, info["memory_total"] > 0, info["gpu_count"]]
print(json.dumps(out))
`, 60*time.Second, &got)
	for _, k := range []string{"timeout", "unknown node", "bad name", "no module", "no function", "remote", "too big", "reply too big"} {
		r, ok := got[k].(map[string]any)
		if !ok || r["ok"] != true {
			t.Errorf("%s: %v", k, got[k])
		}
	}
	if r := got["timeout"].(map[string]any); r["s"].(float64) > 1.5 {
		t.Errorf("timeout took %vs", r["s"])
	}
	if r := got["unknown node"].(map[string]any); r["s"].(float64) > 0.5 {
		t.Errorf("NodeDown for an unknown node took %vs (should not wait for the timeout)", r["s"])
	}
	if r := got["remote"].(map[string]any); r["type"] != "ValueError" || r["message"] != "boom!" || r["node"] != "b@127.0.0.1" || r["tb"] != true {
		t.Errorf("remote error: %v", r)
	}
	for _, k := range []string{"too big", "reply too big"} {
		if r := got[k].(map[string]any); !strings.Contains(r["msg"].(string), "limit") {
			t.Errorf("%s does not name the limit: %v", k, r["msg"])
		}
	}
	for _, k := range []string{"bad args", "unconvertible"} {
		if r, ok := got[k].(map[string]any); !ok {
			t.Errorf("%s: %v", k, got[k])
		} else if k == "unconvertible" && !strings.Contains(r["msg"].(string), "set") {
			t.Errorf("unconvertible: %v", r)
		}
	}
	if got["after"] != 5.0 || got["cast"] != nil || got["cast_seen"] != 42.0 {
		t.Errorf("after errors: %v, cast %v, seen %v", got["after"], got["cast"], got["cast_seen"])
	}
	if fmt.Sprint(got["ping"]) != "[pong pang]" || fmt.Sprint(got["info"]) != "[b@127.0.0.1 true true 0]" {
		t.Errorf("ping %v info %v", got["ping"], got["info"])
	}
}

// A node killed with 100 calls in flight: each call ends with NodeDown soon
// after (none waits for its 30 s timeout), the others are undisturbed, and the
// node rejoins under the same name when restarted.
func TestClusterKillDuringCalls(t *testing.T) {
	const cookie = "c3"
	a := startNode(t, "a@127.0.0.1", cookie)
	victim := startNode(t, "v@127.0.0.1", cookie, "--join", a.addr)
	startNode(t, "c@127.0.0.1", cookie, "--join", a.addr)
	dir := t.TempDir()
	killedAt := filepath.Join(dir, "killed")
	src := waitPeers + `
import json, os, sys, threading, time
from hornbeam_erlang import *
wait_peers(["a@127.0.0.1", "v@127.0.0.1", "c@127.0.0.1"])
events = []
monitor_node("v@127.0.0.1", lambda ev, n: events.append((ev, time.time())))
results = []
lock = threading.Lock()
def one():
    t0 = time.time()
    try:
        r = rpc_call("v@127.0.0.1", "cltest", "sleep", [20], timeout_ms=30000)
    except NodeDown as e:
        r = "NodeDown"
    except Exception as e:
        r = f"{type(e).__name__}: {e}"
    with lock:
        results.append((r, time.time()))
threads = [threading.Thread(target=one) for _ in range(100)]
for th in threads: th.start()
time.sleep(0.5)
print("inflight", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
for th in threads: th.join(40)
killed = float(open(sys.argv[1]).read())
deadline = time.time() + 5  # monitor callbacks run on their own thread
while not any(ev == "nodedown" for ev, _ in events) and time.time() < deadline:
    time.sleep(0.01)
down = [t for ev, t in events if ev == "nodedown"]
print(json.dumps({
  "outcomes": sorted(set(r for r, _ in results)),
  "n": len(results),
  "slowest": max(t for _, t in results) - killed,
  "nodedown_after": (down[0] - killed) if down else None,
  "others": rpc_call("c@127.0.0.1", "cltest", "add", [1, 1]),
  "nodes": nodes(),
}))
`
	path := writeFile(t, dir, "kill.py", src)
	pydir, _ := filepath.Abs("testdata/cluster")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hornbeam, "run", "--name", "t@127.0.0.1", "--cookie", cookie, "--join", a.addr, "--pythonpath", pydir, path, killedAt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "inflight" {
		t.Fatalf("script did not start its calls: %q\n%s", sc.Text(), stderr.String())
	}
	victim.kill()
	os.WriteFile(killedAt, []byte(strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)), 0o644)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("script: %v\n%s", err, stderr.String())
	}
	var got struct {
		Outcomes      []string
		N             int
		Slowest       float64
		NodedownAfter *float64 `json:"nodedown_after"`
		Others        float64
		Nodes         []string
	}
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v", last, err)
	}
	t.Logf("kill -9 with 100 calls in flight: nodedown after %.3fs, slowest call ended %.3fs after the kill", *got.NodedownAfter, got.Slowest)
	if got.N != 100 || fmt.Sprint(got.Outcomes) != "[NodeDown]" {
		t.Errorf("outcomes %v of %d calls", got.Outcomes, got.N)
	}
	if got.NodedownAfter == nil || *got.NodedownAfter > 1.0 {
		t.Errorf("nodedown reported %v s after kill -9, want within 1 s", got.NodedownAfter)
	}
	if got.Slowest > 2 {
		t.Errorf("a call waited %.1fs after the kill", got.Slowest)
	}
	if got.Others != 2 || strings.Contains(fmt.Sprint(got.Nodes), "v@") {
		t.Errorf("others %v nodes %v", got.Others, got.Nodes)
	}

	// The same name comes back.
	startNode(t, "v@127.0.0.1", cookie, "--join", a.addr)
	var back string
	script(t, "t2@127.0.0.1", cookie, a.addr, waitPeers+`
import json
from hornbeam_erlang import rpc_call
wait_peers(["v@127.0.0.1"])
print(json.dumps(rpc_call("v@127.0.0.1", "cltest", "whoami", [])))
`, 60*time.Second, &back)
	if back != "v@127.0.0.1" {
		t.Fatalf("restarted node answered %q", back)
	}
}

// A stopped (hung) node is reported down within 5 s, and up again when it resumes.
func TestClusterHungNode(t *testing.T) {
	const cookie = "c4"
	a := startNode(t, "a@127.0.0.1", cookie)
	h := startNode(t, "h@127.0.0.1", cookie, "--join", a.addr)
	dir := t.TempDir()
	stoppedAt := filepath.Join(dir, "stopped")
	src := waitPeers + `
import json, os, sys, time
from hornbeam_erlang import *
wait_peers(["h@127.0.0.1"])
events = []
monitor_node("h@127.0.0.1", lambda ev, n: events.append((ev, time.time())))
print("ready", flush=True)
deadline = time.time() + 30
while len(events) < 2 and time.time() < deadline:
    time.sleep(0.01)
stopped = float(open(sys.argv[1]).read())
print(json.dumps({"events": [(ev, t - stopped) for ev, t in events]}))
`
	path := writeFile(t, dir, "hung.py", src)
	pydir, _ := filepath.Abs("testdata/cluster")
	cmd := exec.Command(hornbeam, "run", "--name", "t@127.0.0.1", "--cookie", cookie, "--join", a.addr, "--pythonpath", pydir, path, stoppedAt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("no ready: %s", stderr.String())
	}
	stopProcess(t, h.pid())
	os.WriteFile(stoppedAt, []byte(strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)), 0o644)
	time.Sleep(6 * time.Second)
	syscall.Kill(h.pid(), syscall.SIGCONT)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	cmd.Wait()
	var got struct{ Events [][2]any }
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v\n%s", last, err, stderr.String())
	}
	if len(got.Events) != 2 || got.Events[0][0] != "nodedown" || got.Events[1][0] != "nodeup" {
		t.Fatalf("events %v", got.Events)
	}
	down := got.Events[0][1].(float64)
	t.Logf("SIGSTOP: nodedown after %.3fs; nodeup %.3fs after SIGCONT", down, got.Events[1][1].(float64)-6)
	if down > 5 {
		t.Errorf("hung node reported down after %.1fs, want within 5 s", down)
	}
}

func TestClusterWrongCookieRefused(t *testing.T) {
	a := startNode(t, "a@127.0.0.1", "right")
	_, err := tryStartNode(t, "w@127.0.0.1", "wrong", "--join", a.addr)
	if err == nil || !strings.Contains(err.Error(), "cookie") {
		t.Fatalf("node with the wrong cookie: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.logs(), "wrong cookie") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(a.logs(), "wrong cookie") || !strings.Contains(a.logs(), "TLS route handshake error") {
		t.Errorf("the refusing node did not log a failed handshake:\n%s", a.logs())
	}
	r := run(t, t.TempDir(), nil, 30*time.Second, "call", "a@127.0.0.1", "cltest", "remember", `["pwned", 1]`, "--join", a.addr, "--cookie", "wrong")
	if r.code == 0 {
		t.Fatalf("a call with the wrong cookie succeeded: %+v", r)
	}
	r = run(t, t.TempDir(), nil, 30*time.Second, "call", "a@127.0.0.1", "cltest", "recall", `["pwned"]`, "--join", a.addr, "--cookie", "right")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "null" {
		t.Fatalf("the wrong-cookie call executed: %+v", r)
	}
}

func TestClusterDuplicateName(t *testing.T) {
	a := startNode(t, "a@127.0.0.1", "c5")
	_, err := tryStartNode(t, "a@127.0.0.1", "c5", "--join", a.addr)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second node with the same name: %v", err)
	}
}

func TestClusterCLITools(t *testing.T) {
	const cookie = "c6"
	a := startNode(t, "a@127.0.0.1", cookie)
	startNode(t, "b@127.0.0.1", cookie, "--join", a.addr)
	startNode(t, "s@127.0.0.1", cookie, "--join", a.addr, "--hidden")
	deadline := time.Now().Add(10 * time.Second)
	var r result
	for time.Now().Before(deadline) {
		r = run(t, t.TempDir(), nil, 30*time.Second, "nodes", "--join", a.addr, "--cookie", cookie)
		if r.stdout == "a@127.0.0.1\nb@127.0.0.1\n" {
			break
		}
	}
	if r.code != 0 || r.stdout != "a@127.0.0.1\nb@127.0.0.1\n" {
		t.Fatalf("nodes: %+v", r)
	}
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"ping", "b@127.0.0.1"}, 0, "pong\n", ""},
		{[]string{"ping", "zz@127.0.0.1"}, 1, "pang\n", ""},
		{[]string{"call", "b@127.0.0.1", "cltest", "add", "[2, 40]"}, 0, "42\n", ""},
		{[]string{"call", "b@127.0.0.1", "cltest", "whoami"}, 0, "\"b@127.0.0.1\"\n", ""},
		{[]string{"call", "b@127.0.0.1", "cltest", "boom", `["bad"]`}, 1, "", "ValueError: bad"},
		{[]string{"call", "b@127.0.0.1", "cltest", "sleep", "[3]", "--timeout", "200"}, 1, "", "timeout"},
		{[]string{"call", "b@127.0.0.1", "nomod", "f"}, 1, "", "bad rpc"},
		{[]string{"call", "b@127.0.0.1", "cltest", "add", "not json"}, 2, "", "JSON"},
	}
	for _, tt := range tests {
		r := run(t, t.TempDir(), nil, 30*time.Second, append(tt.args, "--join", a.addr, "--cookie", cookie)...)
		if r.code != tt.code || (tt.stdout != "" && r.stdout != tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%v: got %+v", tt.args, r)
		}
	}
	r = run(t, t.TempDir(), nil, 30*time.Second, "nodes")
	if r.code != 2 || !strings.Contains(r.stderr, "--join") {
		t.Errorf("nodes without --join: %+v", r)
	}
}

// 10,000 calls in flight at once from one node: all answered correctly, and
// the serving node's memory stays bounded.
func TestCluster10kConcurrentCalls(t *testing.T) {
	const cookie = "c7"
	a := startNode(t, "a@127.0.0.1", cookie)
	b := startNode(t, "b@127.0.0.1", cookie, "--join", a.addr)
	before := rssKiB(t, b.pid())
	var got map[string]any
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import asyncio, json, time
from hornbeam_erlang import aio
wait_peers(["b@127.0.0.1"])
async def main():
    t0 = time.monotonic()
    rs = await asyncio.gather(*(aio.rpc_call("b@127.0.0.1", "cltest", "async_echo", [i, 0.2], timeout_ms=60000) for i in range(10000)))
    return {"ok": rs == list(range(10000)), "s": time.monotonic() - t0}
print(json.dumps(asyncio.run(main())))
`, 120*time.Second, &got)
	after := rssKiB(t, b.pid())
	t.Logf("10,000 concurrent calls in %.2fs; serving node RSS %d -> %d MiB", got["s"], before>>10, after>>10)
	if got["ok"] != true {
		t.Fatalf("results wrong: %v", got)
	}
	if after-before > 256<<10 {
		t.Errorf("serving node grew %d MiB for 10,000 calls", (after-before)>>10)
	}
}

func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// With --nats, nodes use an existing NATS deployment instead of embedded servers.
func TestClusterExternalNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Username: "app", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	natsURL := fmt.Sprintf("nats://app:pw@127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)
	startNode(t, "x@127.0.0.1", "c8", "--nats", natsURL)
	startNode(t, "y@127.0.0.1", "c8", "--nats", natsURL)
	var got []any
	dir := t.TempDir()
	path := writeFile(t, dir, "ext.py", waitPeers+`
import json
from hornbeam_erlang import rpc_call, nodes
wait_peers(["x@127.0.0.1", "y@127.0.0.1"])
print(json.dumps([rpc_call("x@127.0.0.1", "cltest", "whoami", []), rpc_call("y@127.0.0.1", "cltest", "relay", ["x@127.0.0.1", "cltest", "add", [1, 2]])]))
`)
	pydir, _ := filepath.Abs("testdata/cluster")
	r := run(t, dir, nil, 60*time.Second, "run", "--name", "t@127.0.0.1", "--cookie", "c8", "--nats", natsURL, "--pythonpath", pydir, path)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got)
	if fmt.Sprint(got) != "[x@127.0.0.1 3]" {
		t.Fatalf("got %v (%+v)", got, r)
	}
}

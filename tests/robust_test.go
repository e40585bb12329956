package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Robustness under stuck, flooding and oversized work: each test drives a
// node past one of its bounds and checks that it keeps serving.

// Stuck Python (time.sleep cannot be interrupted) must not take the node's
// capacity: 6 calls that time out and 4 casts past --cast-timeout, all in
// time.sleep(40), on a node with --threads 4; then 10 fast calls each answer
// in under a second.
func TestStuckThreadsDoNotHoldTheNode(t *testing.T) {
	const cookie = "robust8-stuck"
	a := startNode(t, "a@127.0.0.1", cookie, "--threads", "4", "--cast-timeout", "2")
	var got struct {
		Errs   []string
		Lat    []float64
		Before map[string]map[string]int
	}
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, threading, time
from hornbeam_erlang import rpc_call, rpc_cast, node_info, RPCTimeout
A = "a@127.0.0.1"
wait_peers([A])
errs = []
def slow():
    try:
        rpc_call(A, "robust", "sleep", [40], timeout_ms=1000)
        errs.append("answered")
    except RPCTimeout:
        errs.append("timeout")
    except Exception as e:
        errs.append(repr(e))
ts = [threading.Thread(target=slow) for _ in range(6)]
for t in ts:
    t.start()
for _ in range(4):
    rpc_cast(A, "robust", "sleep", [40])
for t in ts:
    t.join()
# The casts pass --cast-timeout (2 s): then they hold no capacity either.
deadline = time.monotonic() + 20
while True:
    info = node_info(A)["python_threads"]
    if info["rpc"]["stuck"] >= 8 or time.monotonic() > deadline:
        break
    time.sleep(0.05)
lat = []
for i in range(10):
    t0 = time.monotonic()
    assert rpc_call(A, "robust", "fast", [i], timeout_ms=10000) == i
    lat.append(time.monotonic() - t0)
print(json.dumps({"errs": errs, "lat": lat, "before": info}))
`, 90*time.Second, &got)
	t.Logf("pool while stuck: %v; fast call latencies: %v", got.Before, got.Lat)
	if len(got.Errs) != 6 || strings.Count(strings.Join(got.Errs, ","), "timeout") != 6 {
		t.Errorf("the 6 stuck calls: %v, want 6 RPCTimeout", got.Errs)
	}
	if got.Before["rpc"]["stuck"] < 8 {
		t.Errorf("stuck threads %v: want the 4 running calls and 4 casts counted", got.Before)
	}
	for i, l := range got.Lat {
		if l >= 1 {
			t.Errorf("fast call %d took %.2fs with stuck threads", i, l)
		}
	}
	a.waitLog(t, "cast failed", 1, 10*time.Second)
	if !strings.Contains(a.logs(), "--cast-timeout") {
		t.Errorf("a cast past --cast-timeout is not logged as such:\n%s", a.logs())
	}
}

// A batched function's callers hold pool threads while they wait; the batch
// must not need one of them. --threads 4, 64 concurrent calls of a function
// that calls the host-batched hornbeam_ml.encode (all cache misses).
func TestBatchedEncodeUnderFewThreads(t *testing.T) {
	const cookie = "robust8-batch"
	w := startNode(t, "w@127.0.0.1", cookie, "--threads", "4", "--ml-fallback", "hash")
	var got struct {
		OK   int
		Errs []string
		S    float64
	}
	script(t, "t@127.0.0.1", cookie, w.addr, waitPeers+`
import json, threading, time
from hornbeam_erlang import rpc_call
W = "w@127.0.0.1"
wait_peers([W])
ok, errs = [], []
def one(i):
    try:
        v = rpc_call(W, "robust", "encode", [[f"text {i} a", f"text {i} b"]], timeout_ms=30000)
        ok.append(len(v) == 2)
    except Exception as e:
        errs.append(repr(e))
t0 = time.monotonic()
ts = [threading.Thread(target=one, args=(i,)) for i in range(64)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps({"ok": sum(ok), "errs": errs, "s": time.monotonic() - t0}))
`, 90*time.Second, &got)
	t.Logf("64 concurrent batched calls in %.2fs", got.S)
	if got.OK != 64 || len(got.Errs) > 0 {
		t.Fatalf("%d of 64 calls answered; errors: %v\nnode log:\n%s", got.OK, got.Errs, w.logs())
	}
}

// 25,000 casts to a busy node: each one runs, or its caller got Busy. The
// node may hold 64 KiB of requests (about 800 casts), so that 16 callers
// outpace it.
func TestCastsRunOrRaiseBusy(t *testing.T) {
	const cookie = "robust8-casts"
	b := startNode(t, "b@127.0.0.1", cookie, "--threads", "4", "--max-inflight-bytes", "65536")
	var got struct {
		Busy, Ran, Other int
		Stats            map[string]int
		S                float64
	}
	script(t, "t@127.0.0.1", cookie, b.addr, waitPeers+`
import json, threading, time
from hornbeam_erlang import rpc_call, rpc_cast, node_info, Busy, RPCError
B = "b@127.0.0.1"
wait_peers([B])
busy, other = [0] * 16, []
def flood(k):
    for i in range(25000 // 16 + (1 if k < 25000 % 16 else 0)):
        try:
            rpc_cast(B, "robust", "count", ["ran", 0.002])
        except Busy:
            busy[k] += 1
        except Exception as e:
            other.append(repr(e))
for _ in range(8):  # every thread of the node busy for 3 s: the casts pile up
    rpc_cast(B, "robust", "sleep", [3])
t0 = time.monotonic()
ts = [threading.Thread(target=flood, args=(k,)) for k in range(16)]
for t in ts:
    t.start()
for t in ts:
    t.join()
nbusy = sum(busy)
def counted():
    # The node is still full of casts: a call may itself be refused as Busy.
    while True:
        try:
            return rpc_call(B, "robust", "counted", ["ran"])
        except Busy:
            time.sleep(0.05)
deadline = time.monotonic() + 120
while True:
    ran = counted()
    if ran + nbusy + len(other) >= 25000 or time.monotonic() > deadline:
        break
    time.sleep(0.1)
time.sleep(0.5)  # a cast run twice would show now
ran = counted()
print(json.dumps({"busy": nbusy, "ran": ran, "other": len(other), "stats": node_info(B)["casts"], "s": time.monotonic() - t0}))
`, 240*time.Second, &got)
	t.Logf("25,000 casts in %.1fs: %d ran, %d Busy, %d other errors; target counts %v", got.S, got.Ran, got.Busy, got.Other, got.Stats)
	if got.Ran+got.Busy != 25000 || got.Other != 0 {
		t.Errorf("ran %d + Busy %d + other %d != 25000", got.Ran, got.Busy, got.Other)
	}
	if got.Stats["refused"] < got.Busy/50 { // a Busy caller retried: several refusals each
		t.Errorf("target refused %d casts, callers saw %d Busy", got.Stats["refused"], got.Busy)
	}
	if got.Stats["failed"] != 0 {
		t.Errorf("target counts %d failed casts", got.Stats["failed"])
	}
}

// A cast that fails on its target is logged there with the caller's name,
// and counted.
func TestFailedCastsAreLoggedAndCounted(t *testing.T) {
	const cookie = "robust8-castfail"
	b := startNode(t, "b@127.0.0.1", cookie)
	var got map[string]int
	script(t, "caster@127.0.0.1", cookie, b.addr, waitPeers+`
import json, time
from hornbeam_erlang import rpc_cast, node_info
B = "b@127.0.0.1"
wait_peers([B])
rpc_cast(B, "robust", "boom", [])
rpc_cast(B, "no_such_module", "f", [])
deadline = time.monotonic() + 10
while node_info(B)["casts"]["failed"] < 2 and time.monotonic() < deadline:
    time.sleep(0.02)
print(json.dumps(node_info(B)["casts"]))
`, 60*time.Second, &got)
	if got["failed"] != 2 {
		t.Errorf("cast counts %v: want 2 failed", got)
	}
	b.waitLog(t, "cast failed", 2, 5*time.Second)
	for _, want := range []string{"from=caster@127.0.0.1", "cast boom", "no_such_module"} {
		if !strings.Contains(b.logs(), want) {
			t.Errorf("the target's log does not name %q:\n%s", want, b.logs())
		}
	}
}

// A reply over --max-payload is refused as soon as its encoding passes it,
// without the callee building (and keeping) the whole encoding.
func TestHugeRepliesRefusedFast(t *testing.T) {
	const cookie = "robust8-huge"
	a := startNode(t, "a@127.0.0.1", cookie)
	b := startNode(t, "b@127.0.0.1", cookie, "--join", a.addr)
	var got struct {
		S    []float64
		Errs []string
		Down []string
	}
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, time
from hornbeam_erlang import rpc_call, monitor_node, PayloadTooLarge
B = "b@127.0.0.1"
wait_peers(["a@127.0.0.1", B])
down = []
monitor_node(B, lambda ev, n: ev == "nodedown" and down.append(time.monotonic()))
s, errs = [], []
try:
    rpc_call(B, "robust", "big", [400 << 20], timeout_ms=60000)  # builds the value once
except PayloadTooLarge:
    pass
for _ in range(5):
    t0 = time.monotonic()
    try:
        rpc_call(B, "robust", "big", [400 << 20], timeout_ms=30000)
        errs.append("answered")
    except PayloadTooLarge:
        pass
    except Exception as e:
        errs.append(repr(e))
    s.append(time.monotonic() - t0)
assert rpc_call(B, "robust", "fast", [1]) == 1
print(json.dumps({"s": s, "errs": errs, "down": down}))
`, 120*time.Second, &got)
	peak := peakRSSKiB(t, b.pid())
	t.Logf("400 MiB replies refused in %v s; callee peak RSS %d MiB", got.S, peak>>10)
	if len(got.Errs) > 0 {
		t.Errorf("want PayloadTooLarge each time: %v", got.Errs)
	}
	for i, s := range got.S {
		if s >= 3 {
			t.Errorf("refusal %d took %.2fs", i, s)
		}
	}
	if peak > 1200<<10 {
		t.Errorf("callee peak RSS %d MiB, want under 1200", peak>>10)
	}
	if len(got.Down) > 0 || a.count("nodedown peer=b@") > 0 {
		t.Errorf("false nodedown: %v\n%s", got.Down, a.logs())
	}
}

// A flood of 8 MiB casts to a busy node: its memory stays within the bytes
// it may hold, and no peer declares it down.
func TestCastFloodBoundedNoFalseNodedown(t *testing.T) {
	const cookie = "robust8-flood"
	a := startNode(t, "a@127.0.0.1", cookie)
	b := startNode(t, "b@127.0.0.1", cookie, "--join", a.addr, "--threads", "4")
	base := rssKiB(t, b.pid())
	var got struct {
		Sent, Busy int
		Down       []string
		Ran        int
	}
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, threading, time
from hornbeam_erlang import rpc_call, rpc_cast, monitor_node, Busy
B = "b@127.0.0.1"
wait_peers(["a@127.0.0.1", B])
down = []
monitor_node(B, lambda ev, n: ev == "nodedown" and down.append(time.monotonic()))
payload = b"p" * ((8 << 20) - 4096)  # with its envelope, just under --max-payload
sent, busy = [0] * 6, [0] * 6
def flood(k):
    for _ in range(50):
        try:
            rpc_cast(B, "robust", "count", ["flood", 0.2, payload])
            sent[k] += 1
        except Busy:
            busy[k] += 1
ts = [threading.Thread(target=flood, args=(k,)) for k in range(6)]
for t in ts:
    t.start()
for t in ts:
    t.join()
deadline = time.monotonic() + 120
while rpc_call(B, "robust", "counted", ["flood"]) < sum(sent) and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps({"sent": sum(sent), "busy": sum(busy), "down": down, "ran": rpc_call(B, "robust", "counted", ["flood"])}))
`, 240*time.Second, &got)
	peak := peakRSSKiB(t, b.pid())
	t.Logf("300 casts of 8 MiB: %d queued, %d Busy, %d ran; callee RSS %d MiB at start, peak %d MiB", got.Sent, got.Busy, got.Ran, base>>10, peak>>10)
	if got.Sent+got.Busy != 300 || got.Ran != got.Sent {
		t.Errorf("sent %d + Busy %d != 300, or ran %d != sent", got.Sent, got.Busy, got.Ran)
	}
	// Documented: 256 MiB of requests held, plus their copies in flight
	// through NATS and Python (see docs/ARCHITECTURE.md, "Bounds").
	if peak-base > 1024<<10 {
		t.Errorf("callee grew %d MiB under the flood, want under 1024", (peak-base)>>10)
	}
	if len(got.Down) > 0 || a.count("nodedown peer=b@") > 0 {
		t.Errorf("false nodedown under the flood: %v\n%s", got.Down, a.logs())
	}
}

// peakRSSKiB is a process's peak resident set (VmHWM).
func peakRSSKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// An event loop that cannot start (here: a uvloop that raises on import) stops
// the interpreter from starting, with the reason, instead of leaving every
// coroutine call to hang.
func TestEventLoopFailureStopsStart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "broken/uvloop.py", "raise RuntimeError('this uvloop is broken')\n")
	r := run(t, dir, nil, 60*time.Second, "run", "--pythonpath", dir+"/broken", "-c", "print('ran')")
	if r.code == 0 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, "event loop did not start") ||
		!strings.Contains(r.stderr, "this uvloop is broken") {
		t.Fatalf("code %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// With --workers, state_* reaches the node's state over a socket. A stopped
// supervisor (SIGSTOP) must not freeze the worker's Python: other threads
// keep running while state_get waits, and it raises after its deadline.
func TestStoppedSupervisorDoesNotFreezeWorkers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "stateapp.py", `
import time
from hornbeam_erlang import state_get

def application(environ, start_response):
    body = "tick"
    if environ["PATH_INFO"] == "/state":
        t0 = time.monotonic()
        try:
            state_get("k")
            body = "answered"
        except Exception as e:
            body = type(e).__name__ + ": " + str(e)
        body += " after %.2f" % (time.monotonic() - t0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
`)
	s := serveApp(t, dir, "stateapp:application", "-w", "1", "--threads", "4", "-b", "127.0.0.1:0", "--timeout", "30")
	s.waitLog(t, "worker ready", 1, 30*time.Second)
	if got := mustFetch(t, s.base+"/state"); !strings.HasPrefix(got, "answered") {
		t.Fatalf("state_get with the supervisor running: %q", got)
	}
	stopProcess(t, s.pid())
	t.Cleanup(func() { syscall.Kill(s.pid(), syscall.SIGCONT) }) // runs before the harness stops it
	stateDone := make(chan string, 1)
	go func() {
		b, err := fetch(s.base + "/state")
		if err != nil {
			b = err.Error()
		}
		stateDone <- b
	}()
	time.Sleep(300 * time.Millisecond) // let state_get start waiting
	for i := range 5 {
		start := time.Now()
		if got := mustFetch(t, s.base+"/tick"); got != "tick" {
			t.Fatalf("tick: %q", got)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("request %d took %v while state_get waited on the stopped supervisor", i, el)
		}
	}
	select {
	case got := <-stateDone:
		if !strings.Contains(got, "RuntimeError") || !strings.Contains(got, "unavailable") {
			t.Errorf("state_get with the supervisor stopped: %q, want RuntimeError (unavailable)", got)
		}
		t.Logf("state_get with the supervisor stopped: %s", got)
	case <-time.After(20 * time.Second):
		t.Fatal("state_get did not raise within 20 s of the supervisor stopping")
	}
}

// With --workers, a worker whose threads are all stuck past --timeout is
// replaced, as gunicorn does: here one thread, capped at one, stuck in
// time.sleep after its request timed out.
func TestWorkerStuckPastTimeoutIsRecycled(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "stuckapp.py", `
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(120)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`)
	s := serveApp(t, dir, "stuckapp:application", "-w", "1", "--threads", "1", "--max-threads", "1", "--timeout", "1", "-b", "127.0.0.1:0")
	s.waitLog(t, "worker ready", 1, 30*time.Second)
	first := mustFetch(t, s.base+"/pid")
	if _, err := fetch(s.base + "/sleep"); err == nil || !strings.Contains(err.Error(), "504") {
		t.Fatalf("stuck request: %v, want 504 at --timeout", err)
	}
	s.waitLog(t, "recycling the worker", 1, 20*time.Second)
	s.waitLog(t, "worker ready", 2, 30*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := fetch(s.base + "/pid")
		if err == nil && got != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh worker answered (last: %q, %v)\n%s", got, err, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Casts to the node itself are bounded as others' are (here: 64 KiB of
// requests held): each runs or its caller gets Busy.
func TestSelfCastsAreBounded(t *testing.T) {
	const cookie = "robust8-self"
	a := startNode(t, "a@127.0.0.1", cookie, "--threads", "4", "--max-inflight-bytes", "65536")
	var got struct{ Busy, Ran int }
	script(t, "t@127.0.0.1", cookie, a.addr, waitPeers+`
import json, time
from hornbeam_erlang import rpc_call, Busy
A = "a@127.0.0.1"
wait_peers([A])
busy = rpc_call(A, "robust", "self_casts", [5000, 0.002, 3], timeout_ms=120000)
def counted():
    # The node is still full of casts: a call may itself be refused as Busy.
    while True:
        try:
            return rpc_call(A, "robust", "counted", ["self"], timeout_ms=60000)
        except Busy:
            time.sleep(0.05)
deadline = time.monotonic() + 120
while counted() + busy < 5000 and time.monotonic() < deadline:
    time.sleep(0.1)
time.sleep(0.3)
print(json.dumps({"busy": busy, "ran": counted()}))
`, 240*time.Second, &got)
	t.Logf("5,000 casts to itself: %d ran, %d Busy", got.Ran, got.Busy)
	if got.Ran+got.Busy != 5000 {
		t.Errorf("ran %d + Busy %d != 5000", got.Ran, got.Busy)
	}
	if got.Busy == 0 {
		t.Errorf("no cast to itself was refused: 5,000 held at once under a 64 KiB bound?")
	}
}

// state_set refuses a value over --state-max-value as soon as encoding
// passes it, not after encoding all of it.
func TestStateMaxValue(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, nil, 60*time.Second, "run", "-c", `
import time
from hornbeam_erlang import state_set, state_get
big = b"x" * (200 << 20)
t0 = time.monotonic()
try:
    state_set("k", big)
    print("stored")
except ValueError as e:
    print("refused", "--state-max-value" in str(e), round(time.monotonic() - t0, 3))
state_set("small", b"x" * (1 << 20))
print("small", len(state_get("small")))
`)
	if r.code != 0 || !strings.Contains(r.stdout, "refused True") || !strings.Contains(r.stdout, "small 1048576") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	var secs float64
	fmt.Sscanf(r.stdout[strings.Index(r.stdout, "refused True")+len("refused True"):], "%g", &secs)
	if secs > 0.5 {
		t.Errorf("a 200 MiB value took %.3fs to refuse", secs)
	}
}

// RPC work and HTTP requests have threads of their own: a node whose RPC
// threads are all busy still answers HTTP at once.
func TestRPCLoadDoesNotStarveHTTP(t *testing.T) {
	const cookie = "robust8-lanes"
	dir := t.TempDir()
	writeFile(t, dir, "tickapp.py", `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"tick"]
`)
	pydir, _ := filepath.Abs("testdata/cluster")
	s := serveApp(t, dir, "tickapp:application", "-b", "127.0.0.1:0", "--threads", "4",
		"--name", "web@127.0.0.1", "--cookie", cookie, "--pythonpath", pydir)
	script(t, "t@127.0.0.1", cookie, s.cluster, waitPeers+`
from hornbeam_erlang import rpc_cast
wait_peers(["web@127.0.0.1"])
for _ in range(8):  # twice the RPC threads, each busy for 5 s
    rpc_cast("web@127.0.0.1", "robust", "sleep", [5])
`, 60*time.Second, nil)
	for i := range 5 {
		start := time.Now()
		if got := mustFetch(t, s.base+"/"); got != "tick" {
			t.Fatalf("GET: %q", got)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("request %d took %v while the RPC threads were busy", i, el)
		}
	}
}

package tests

// Tests of examples/rpc: the patterns of the Distributed RPC guide, each run by a
// checker script as a node (`hornbeam run --name ...`) of a real cluster of
// `hornbeam start` processes on loopback. Every process is bounded in time and
// killed by PID when its test ends.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	exHost       = "127.0.0.1"
	exRunTimeout = 30 * time.Second // bound on every checker script
)

// exNode is one `hornbeam start` process.
type exNode struct {
	*proc
	name, addr string // node name; its cluster listener HOST:PORT
}

// exExamplesDir is the absolute path of examples/rpc.
func exExamplesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "examples", "rpc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "patterns.py")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func exCookie(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "ex-" + hex.EncodeToString(b[:])
}

// exCluster is a cluster of nodes started by one test.
type exCluster struct {
	t      *testing.T
	cookie string
	join   string // the first node's cluster address
	nodes  map[string]*exNode
	order  []*exNode
}

// exStartCluster starts a node per short name (gpu1 -> gpu1@127.0.0.1), the
// first listening on a free port and the others joining it, all serving
// examples/rpc. They are stopped when the test ends.
func exStartCluster(t *testing.T, names ...string) *exCluster {
	t.Helper()
	c := &exCluster{t: t, cookie: exCookie(t), nodes: map[string]*exNode{}}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range c.order {
			wg.Add(1)
			go func(n *exNode) { defer wg.Done(); n.stop() }(n)
		}
		wg.Wait()
		if t.Failed() {
			for _, n := range c.order {
				t.Logf("--- log of %s (pid %d):\n%s", n.name, n.pid(), n.logs())
			}
		}
	})
	for _, short := range names {
		n := c.exStartNode(short)
		if c.join == "" {
			c.join = n.addr
		}
	}
	return c
}

func (c *exCluster) exStartNode(short string) *exNode {
	t := c.t
	t.Helper()
	name := short + "@" + exHost
	args := []string{"--name", name, "--cluster-port", "0",
		"--pythonpath", exExamplesDir(t), "--cookie", c.cookie}
	if c.join != "" {
		args = append(args, "--join", c.join)
	}
	p, err := startProc(t, "", []string{"HORNBEAM_LOG_LEVEL=info"}, args...)
	if err != nil {
		t.Fatal(err)
	}
	n := &exNode{proc: p, name: name, addr: p.cluster}
	c.nodes[short] = n
	c.order = append(c.order, n)
	return n
}

// pid returns the PID of the node with this short name, as a script argument.
func (c *exCluster) pid(short string) string {
	return strconv.Itoa(c.nodes[short].pid())
}

type exResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// exRunScript runs src (exPrelude + src) as the node client@127.0.0.1 of the
// cluster, with examples/rpc on its path, bounded by exRunTimeout; the script's
// process group is killed if it overstays.
func (c *exCluster) exRunScript(src string, args ...string) exResult {
	t := c.t
	t.Helper()
	script := filepath.Join(t.TempDir(), "check.py")
	if err := os.WriteFile(script, []byte(exPrelude+src), 0o644); err != nil {
		t.Fatal(err)
	}
	return c.exRun(append([]string{script}, args...)...)
}

// exRun runs `hornbeam run` as client@127.0.0.1 joined to the cluster.
func (c *exCluster) exRun(args ...string) exResult {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exRunTimeout)
	defer cancel()
	full := append([]string{"run", "--name", "client@" + exHost, "--join", c.join,
		"--cookie", c.cookie, "--pythonpath", exExamplesDir(t)}, args...)
	cmd := exec.CommandContext(ctx, hornbeam, full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := exResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("hornbeam %v did not finish in %v\nstdout:\n%s\nstderr:\n%s", full, exRunTimeout, r.stdout, r.stderr)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("hornbeam %v: %v", full, err)
		}
		r.code = ee.ExitCode()
	}
	t.Logf("script ran in %v", r.elapsed.Round(time.Millisecond))
	return r
}

// exExpectOK fails the test unless the script exited 0 and printed every want line.
func exExpectOK(t *testing.T, r exResult, want ...string) {
	t.Helper()
	ok := r.code == 0
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			ok = false
		}
	}
	if !ok {
		t.Fatalf("checker exited %d, want 0 and stdout containing %q\nstdout:\n%s\nstderr:\n%s",
			r.code, want, r.stdout, r.stderr)
	}
}

// exPrelude starts every checker script: names, assertions, and a recorder of
// the calls the patterns make (patterns looks rpc_call and ping up at call time,
// so replacing them in its namespace sees every call).
const exPrelude = `
import os, random, signal, sys, time
from hornbeam_erlang import (node, nodes, ping, rpc_call, rpc_cast, state_get,
                             BadRPC, NodeDown, RemoteError, RPCError, RPCTimeout)
import embedding_model, inference, patterns

H = "127.0.0.1"
GPU1, GPU2, W1, W2, LOGGER = (f"{n}@{H}" for n in ("gpu1", "gpu2", "worker1", "worker2", "logger"))
ME = node()


def expect(cond, *what):
    if not cond:
        raise AssertionError(" ".join(repr(w) for w in what))


def kill(pid):
    os.kill(int(pid), signal.SIGKILL)


def wait_until(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; nodes() = {nodes()}")
        time.sleep(0.05)


def fault(n, target, spec):
    rpc_call(n, "faults", "inject", [target, spec])


def calls(n, target):
    return rpc_call(n, "faults", "calls", [target])


CALLS = []   # (function, node, module, function, outcome) per rpc_call the patterns made
PINGS = []   # (node, answer) per ping the patterns made
_rpc_call, _ping = patterns.rpc_call, patterns.ping


def _recording_rpc_call(n, module, function, *args, **kw):
    try:
        r = _rpc_call(n, module, function, *args, **kw)
    except BaseException as e:
        CALLS.append((n, f"{module}.{function}", type(e).__name__))
        raise
    CALLS.append((n, f"{module}.{function}", "ok"))
    return r


def _recording_ping(n):
    r = _ping(n)
    PINGS.append((n, r))
    return r


patterns.rpc_call, patterns.ping = _recording_rpc_call, _recording_ping


def recorded():
    out = list(CALLS)
    CALLS.clear()
    return out


def timed(f, *args, **kw):
    t0 = time.monotonic()
    try:
        return f(*args, **kw), None, time.monotonic() - t0
    except Exception as e:
        return None, e, time.monotonic() - t0

`

func TestExampleRPCGetEmbedding(t *testing.T) {
	c := exStartCluster(t, "gpu1", "worker1")
	r := c.exRunScript(`
patterns.wait_for_nodes(GPU1, W1)

r = patterns.get_embedding("hello world")
expect(r["node"] == GPU1, "served by", r)
expect(r["vector"] == embedding_model.encode("hello world"), r)
expect(len(r["vector"]) == embedding_model.DIM, r)
expect(recorded() == [(GPU1, "embedding_service.encode", "ok")])
print("get_embedding served by", r["node"])

batch = rpc_call(GPU1, "ml", "batch_encode", [["a", "b", "c"]], 30000)
expect([b["node"] for b in batch] == [GPU1] * 3 and [b["text"] for b in batch] == ["a", "b", "c"], batch)
expect(patterns.get_embedding_with_fallback("x")["node"] == GPU1)

# The gpu node dies while still listed: the fallback version computes locally.
kill(sys.argv[1])
r = patterns.get_embedding_with_fallback("after kill")
expect(r["node"] == ME and r["vector"] == embedding_model.encode("after kill"), r)
expect(recorded() == [(GPU1, "ml.encode", "ok"), (GPU1, "ml.encode", "NodeDown")], CALLS)
print("fallback computed locally on", r["node"])

# Once the cluster has noticed, get_embedding has no gpu node to call.
wait_until(lambda: GPU1 not in nodes(), "gpu1 to leave nodes()")
_, err, _ = timed(patterns.get_embedding, "x")
expect(type(err) is RuntimeError and str(err) == "No GPU nodes available", err)
expect(recorded() == [])
print("no gpu nodes:", err)
`, c.pid("gpu1"))
	exExpectOK(t, r, "get_embedding served by gpu1@127.0.0.1", "fallback computed locally on client@127.0.0.1",
		"no gpu nodes: No GPU nodes available")
}

func TestExampleRPCBalancedInference(t *testing.T) {
	c := exStartCluster(t, "gpu1", "worker1", "worker2")
	r := c.exRunScript(`
patterns.wait_for_nodes(GPU1, W1, W2)

served = [patterns.balanced_inference(f"req-{i}") for i in range(20)]
expect({s["node"] for s in served} == {W1, W2}, "both workers serve", served)
expect(all(s["prediction"] == inference.predict(s["input"]) for s in served), served)
expect(all(c[0] in (W1, W2) and c[2] == "ok" for c in recorded()))
print("20 requests served by both workers")

# worker1 dies; the next request picks it (seeded choice) and fails over to worker2.
kill(sys.argv[1])
seed = next(s for s in range(1000) if random.Random(s).choice([W1, W2]) == W1)
random.seed(seed)
r, err, dt = timed(patterns.balanced_inference, "after-kill")
expect(err is None and r["node"] == W2, r, err)
expect(recorded() == [(W1, "inference.run", "NodeDown"), (W2, "inference.run", "ok")], CALLS)
expect(dt < 5, dt)
print(f"failed over from the killed worker1 to {r['node']} in {dt:.2f}s")

# No workers left: local inference.
kill(sys.argv[2])
wait_until(lambda: not [n for n in nodes() if "worker" in n], "the workers to leave nodes()")
r = patterns.balanced_inference("alone")
expect(r["node"] == ME and r["prediction"] == inference.predict("alone"), r)
expect(recorded() == [], CALLS)
print("no workers: served locally by", r["node"])
`, c.pid("worker1"), c.pid("worker2"))
	exExpectOK(t, r, "failed over from the killed worker1 to worker2@127.0.0.1", "no workers: served locally by client@127.0.0.1")
}

func TestExampleRPCParallelInference(t *testing.T) {
	c := exStartCluster(t, "gpu1", "worker1", "worker2")
	r := c.exRunScript(`
patterns.wait_for_nodes(GPU1, W1, W2)

for n in (0, 1, 2, 5, 11):
    for k in (1, 2, 3):
        chunks = patterns.split_list(list(range(n)), k)
        sizes = [len(x) for x in chunks]
        expect(len(chunks) == k and sum(chunks, []) == list(range(n)) and max(sizes) - min(sizes) <= 1, n, k, chunks)

items = list(range(11))
results = patterns.parallel_inference(items)
expect(sorted(r["item"] for r in results) == items, results)
expect(all(r["prediction"] == inference.predict(r["item"]) for r in results), results)
by_node = {}
for r in results:
    by_node.setdefault(r["node"], []).append(r["item"])
expect({n: sorted(v) for n, v in by_node.items()} == {W1: [0, 1, 2, 3, 4, 5], W2: [6, 7, 8, 9, 10]}, by_node)
expect(sorted(recorded()) == [(W1, "batch_processor.process_batch", "ok"), (W2, "batch_processor.process_batch", "ok")])
print("11 items:", {n: len(v) for n, v in sorted(by_node.items())})

# The chunks run at the same time: two 1 s batches take about 1 s.
for w in (W1, W2):
    fault(w, "batch_processor.process_batch", {"sleep": 1.0})
results, err, dt = timed(patterns.parallel_inference, list(range(4)))
expect(err is None and len(results) == 4 and 1.0 <= dt < 1.9, err, dt)  # serial would be >= 2 s
print(f"two 1 s batches in parallel took {dt:.2f}s")

# A failing worker loses its chunk; the other chunk still comes back.
fault(W1, "batch_processor.process_batch", None)
fault(W2, "batch_processor.process_batch", {"raise": "out of memory"})
results = patterns.parallel_inference(list(range(4)))
expect(sorted((r["node"], r["item"]) for r in results) == [(W1, 0), (W1, 1)], results)
`)
	exExpectOK(t, r, "11 items: {'worker1@127.0.0.1': 6, 'worker2@127.0.0.1': 5}",
		"two 1 s batches in parallel took", "Node worker2@127.0.0.1 failed:", "out of memory")
}

func TestExampleRPCSafeRPC(t *testing.T) {
	c := exStartCluster(t, "worker1", "worker2")
	r := c.exRunScript(`
patterns.wait_for_nodes(W1, W2)

# Slow but not too slow: timeouts 200, 300, 450 ms fail, the 4th (675 ms) gets the 0.5 s answer.
fault(W1, "inference.run", {"sleep": 0.5})
r, err, dt = timed(patterns.safe_rpc, W1, "inference", "run", ["x"], timeout=200, retries=4)
expect(err is None and r["node"] == W1, r, err)
expect(recorded() == [(W1, "inference.run", "RPCTimeout")] * 3 + [(W1, "inference.run", "ok")], CALLS)
expect(calls(W1, "inference.run") == 4)
print(f"succeeded on attempt 4 after {dt:.2f}s")

# Too slow: three timeouts, then the last error, a TimeoutError naming the last timeout.
rpc_call(W1, "faults", "reset", [])
fault(W1, "inference.run", {"sleep": 1.0})
_, err, dt = timed(patterns.safe_rpc, W1, "inference", "run", ["x"], timeout=200, retries=3)
expect(type(err) is TimeoutError and str(err) == "Timeout after 450ms", err)
expect(recorded() == [(W1, "inference.run", "RPCTimeout")] * 3, CALLS)
expect(0.9 <= dt < 2.5, dt)
wait_until(lambda: calls(W1, "inference.run") == 3, "3 calls on worker1")
print(f"3 timeouts in {dt:.2f}s:", err)

# An unknown node: NodeDown, a ConnectionError, after 3 attempts and 0.1 + 0.2 + 0.3 s of sleep.
_, err, dt = timed(patterns.safe_rpc, "ghost@127.0.0.1", "inference", "run", ["x"])
expect(isinstance(err, NodeDown) and isinstance(err, ConnectionError), err)
expect(recorded() == [("ghost@127.0.0.1", "inference.run", "NodeDown")] * 3, CALLS)
expect(0.6 <= dt < 2.5, dt)
print("unknown node:", type(err).__name__)

# A node killed under it: NodeDown too.
kill(sys.argv[1])
_, err, dt = timed(patterns.safe_rpc, W2, "inference", "run", ["x"])
expect(isinstance(err, NodeDown), err)
expect(recorded() == [(W2, "inference.run", "NodeDown")] * 3, CALLS)
expect(dt < 5, dt)
print(f"killed node: NodeDown after {dt:.2f}s")

# An exception raised remotely is not retried.
rpc_call(W1, "faults", "reset", [])
fault(W1, "inference.run", {"raise": "bad input"})
_, err, dt = timed(patterns.safe_rpc, W1, "inference", "run", ["x"])
expect(isinstance(err, RemoteError) and err.message == "bad input", err)
expect(recorded() == [(W1, "inference.run", "RemoteError")], CALLS)
print("remote error not retried")
`, c.pid("worker2"))
	exExpectOK(t, r, "succeeded on attempt 4", "3 timeouts in", "Timeout after 450ms", "unknown node: NodeDown",
		"killed node: NodeDown", "remote error not retried")
}

func TestExampleRPCResilientCall(t *testing.T) {
	c := exStartCluster(t, "gpu1", "gpu2")
	r := c.exRunScript(`
patterns.wait_for_nodes(GPU1, GPU2)

r = patterns.resilient_call("gpu", "encode", ["a"])
expect(r["node"] == GPU1 and r["vector"] == embedding_model.encode("a"), r)
expect(recorded() == [(GPU1, "gpu.encode", "ok")] and PINGS == [(GPU1, "pong")], CALLS, PINGS)

# gpu1 answers pings but its call fails: the next node serves.
fault(GPU1, "gpu.encode", {"raise": "CUDA error"})
r = patterns.resilient_call("gpu", "encode", ["b"])
expect(r["node"] == GPU2, r)
expect(recorded() == [(GPU1, "gpu.encode", "RemoteError"), (GPU2, "gpu.encode", "ok")], CALLS)
fault(GPU1, "gpu.encode", None)

# gpu1 is killed but still listed: its ping fails and it is skipped without a call.
PINGS.clear()
kill(sys.argv[1])
r, err, dt = timed(patterns.resilient_call, "gpu", "encode", ["c"])
expect(err is None and r["node"] == GPU2, r, err)
expect(PINGS == [(GPU1, "pang"), (GPU2, "pong")], PINGS)
expect(recorded() == [(GPU2, "gpu.encode", "ok")], CALLS)
print(f"skipped the dead gpu1, served by {r['node']} in {dt:.2f}s")

kill(sys.argv[2])
wait_until(lambda: not [n for n in nodes() if "gpu" in n], "the gpu nodes to leave nodes()")
_, err, _ = timed(patterns.resilient_call, "gpu", "encode", ["d"])
expect(type(err) is RuntimeError and str(err) == "All gpu nodes unavailable", err)
print(err)
`, c.pid("gpu1"), c.pid("gpu2"))
	exExpectOK(t, r, "Node gpu1@127.0.0.1 failed:", "CUDA error", "skipped the dead gpu1, served by gpu2@127.0.0.1",
		"All gpu nodes unavailable")
}

func TestExampleRPCCircuitBreaker(t *testing.T) {
	c := exStartCluster(t, "worker1")
	r := c.exRunScript(`
patterns.wait_for_nodes(W1)
b = patterns.CircuitBreaker(W1, threshold=3, reset_timeout=1)
expect(b.key == f"circuit:{W1}" and not b.is_open())

r = b.call("inference", "run", ["ok"])
expect(r["node"] == W1 and state_get(b.key) == {"failures": 0, "open": False}, r, state_get(b.key))

rpc_call(W1, "faults", "reset", [])
fault(W1, "inference.run", {"raise": "model crashed"})
for i in range(3):
    expect(not b.is_open(), "open before the threshold", i)
    _, err, _ = timed(b.call, "inference", "run", [i])
    expect(isinstance(err, RemoteError) and err.message == "model crashed", err)
expect(state_get(f"circuit:{W1}:failures") == 3, state_get(f"circuit:{W1}:failures"))
st = state_get(b.key)
expect(st["open"] is True and st["failures"] == 3 and abs(st["opened_at"] - time.time()) < 5, st)
expect(b.is_open())
print("open after 3 failures")

# Open: raises at once without calling the node.
recorded()
_, err, dt = timed(b.call, "inference", "run", ["rejected"])
expect(type(err) is RuntimeError and str(err) == f"Circuit open for {W1}", err)
expect(recorded() == [] and calls(W1, "inference.run") == 3 and dt < 0.5, CALLS, dt)
print("rejected:", err)

# After reset_timeout it lets a call through again.
fault(W1, "inference.run", None)
time.sleep(1.1)
r = b.call("inference", "run", ["after reset"])
expect(r["node"] == W1 and calls(W1, "inference.run") == 4, r)
expect(state_get(b.key) == {"failures": 0, "open": False}, state_get(b.key))
print("closed again after reset_timeout")
`)
	exExpectOK(t, r, "open after 3 failures", "rejected: Circuit open for worker1@127.0.0.1", "closed again after reset_timeout")
}

func TestExampleRPCClusterHealth(t *testing.T) {
	c := exStartCluster(t, "gpu1", "worker1", "worker2")
	r := c.exRunScript(`
patterns.wait_for_nodes(GPU1, W1, W2)

health = patterns.cluster_health()
expect(set(health) == {GPU1, W1, W2}, health)
for n, h in health.items():
    expect(h["status"] == "healthy" and h["node"] == n and h["pid"] > 0, h)

fault(GPU1, "health.check", {"raise": "disk full"})
fault(W2, "health.check", {"sleep": 5.6})   # past cluster_health's 5 s timeout
health, err, dt = timed(patterns.cluster_health)
expect(err is None, err)
expect(health[W1]["status"] == "healthy" and health[W1]["node"] == W1, health)
expect(health[W2] == {"status": "timeout"}, health)
expect(health[GPU1]["status"] == "error" and "disk full" in health[GPU1]["error"], health)
expect(5.0 <= dt < 8, dt)
for n, h in sorted(health.items()):
    print(n, h["status"])
`)
	exExpectOK(t, r, "gpu1@127.0.0.1 error", "worker1@127.0.0.1 healthy", "worker2@127.0.0.1 timeout")
}

func TestExampleRPCCastLogging(t *testing.T) {
	c := exStartCluster(t, "logger")
	r := c.exRunScript(`
from concurrent.futures import ThreadPoolExecutor
patterns.wait_for_nodes(LOGGER)


def logged(user_id):
    return [e for e in rpc_call(LOGGER, "audit_log", "entries", []) if e["data"]["user_id"] == user_id]


expect(rpc_call(LOGGER, "audit_log", "entries", []) == [])
expect(patterns.audit_login(7, "10.1.2.3", logger=LOGGER) is None)
wait_until(lambda: logged(7), "the record of user 7", timeout=5)
e = logged(7)[0]
expect(e["event"] == "user_action" and e["data"] == {"user_id": 7, "action": "login", "ip": "10.1.2.3"}, e)
expect(e["logged_by"] == LOGGER and e["seq"] == 1, e)
print("recorded on the logger:", e["event"], e["data"])

# Fire and forget: a slow logger does not hold the caller up.
fault(LOGGER, "audit_log.record", {"sleep": 3.0})
_, err, dt = timed(patterns.audit_login, 8, "10.1.2.4", logger=LOGGER)
expect(err is None and dt < 0.5, err, dt)
expect(logged(8) == [])
wait_until(lambda: logged(8), "the record of user 8", timeout=10)
print(f"cast returned in {dt * 1000:.0f} ms; the slow record arrived later")

# A failing logger: the caller never hears of it.
fault(LOGGER, "audit_log.record", {"raise": "log disk full"})
_, err, _ = timed(patterns.audit_login, 9, "10.1.2.5", logger=LOGGER)
expect(err is None, err)
wait_until(lambda: calls(LOGGER, "audit_log.record") == 3, "the third record call")
expect(logged(9) == [])

# Many concurrent casts: every one recorded once, with distinct sequence numbers.
fault(LOGGER, "audit_log.record", None)
with ThreadPoolExecutor(8) as ex:
    list(ex.map(lambda u: patterns.audit_login(u, "10.0.0.1", logger=LOGGER), range(100, 150)))
wait_until(lambda: len(rpc_call(LOGGER, "audit_log", "entries", [])) == 52, "52 records", timeout=5)
entries = rpc_call(LOGGER, "audit_log", "entries", [])
expect(sorted(e["data"]["user_id"] for e in entries) == [7, 8] + list(range(100, 150)), entries)
expect(len({e["seq"] for e in entries}) == 52, entries)
print("50 concurrent casts all recorded")
`)
	exExpectOK(t, r, "recorded on the logger: user_action", "the slow record arrived later", "50 concurrent casts all recorded")
	if lg := c.nodes["logger"].logs(); !strings.Contains(lg, "[audit] user_action {'user_id': 7, 'action': 'login', 'ip': '10.1.2.3'}") {
		t.Errorf("the logger node did not print the record:\n%s", lg)
	}
}

func TestExampleRPCDemo(t *testing.T) {
	c := exStartCluster(t, "gpu1", "worker1", "worker2", "logger")
	demo := filepath.Join(exExamplesDir(t), "demo.py")
	r := c.exRun(demo)
	exExpectOK(t, r, "served by gpu1@127.0.0.1", "Circuit open for worker2@127.0.0.1",
		"logger@127.0.0.1 recorded: user_action", "demo: all patterns ran as expected")
}

// TestExampleRPCStateDynamicKeys checks what faults.py, audit_log.py and the
// guide's CircuitBreaker rely on: state keys built at run time (f-strings,
// concatenation) still find their values after the key str has been freed.
func TestExampleRPCStateDynamicKeys(t *testing.T) {
	script := filepath.Join(t.TempDir(), "keys.py")
	src := `
from hornbeam_erlang import state_get, state_incr, state_keys, state_set
node = "worker1@127.0.0.1"
for i in range(200):
    state_set(f"circuit:{node}:{i}", {"open": i % 2 == 0})
    state_incr(f"circuit:{node}:{i}:failures")
junk = [f"padding-{i:06d}-padding" for i in range(20000)]   # reuse the freed memory
bad = [i for i in range(200) if state_get(f"circuit:{node}:{i}") != {"open": i % 2 == 0}
       or state_get(f"circuit:{node}:{i}:failures") != 1]
keys = state_keys()
want = sorted([f"circuit:{node}:{i}" for i in range(200)] + [f"circuit:{node}:{i}:failures" for i in range(200)])
print(f"lost {len(bad)} of 200 values; keys intact: {keys == want}")
if bad or keys != want:
    print("first keys:", keys[:4])
    raise SystemExit(1)
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), exRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hornbeam, "run", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("state keys built at run time do not keep their values (%v):\n%s", err, out)
	}
}

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hornbeam_dist between real nodes: async_call, Router, HashRouter and the
// pytest plugin.

func TestDistAsyncCall(t *testing.T) {
	const cookie = "proc10-dist"
	a := startNode(t, "ta@127.0.0.1", cookie)
	b := startNode(t, "tb@127.0.0.1", cookie, "--join", a.addr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tb's log:\n%s", b.logs())
		}
	})
	var got map[string]any
	script(t, "tt@127.0.0.1", cookie, a.addr, waitPeers+`
import asyncio, concurrent.futures as cf, json, os, signal, time
import hornbeam_dist as hd, hornbeam_erlang as he
A, B = "ta@127.0.0.1", "tb@127.0.0.1"
wait_peers([A, B])
out = {}
# as_completed: the fastest first, from both nodes and this one
ts = [hd.async_call(A, "proctest", "slow", [0.3, "a"]), hd.async_call(B, "proctest", "aslow", [0.1, "b"]),
      hd.async_call(he.node(), "operator", "add", [1, 2])]
out["as_completed"] = [t.result() for t in cf.as_completed(ts, timeout=10)]
done, _ = cf.wait(ts, timeout=10)
out["wait"] = len(done)
async def main():
    return await asyncio.gather(hd.async_call(A, "proctest", "whoami"), hd.async_call(B, "proctest", "whoami"))
out["asyncio"] = asyncio.run(main())
try:
    hd.async_call(A, "proctest", "slow", [5, 1], timeout_ms=100).result(10)
except he.RPCTimeout:
    out["timeout"] = True
try:
    hd.async_call(A, "proctest", "nope").result(10)
except he.BadRPC:
    out["badrpc"] = True
try:
    hd.async_call(A, "proctest", "crash", ["x"]).result(10)
except he.RemoteError as e:
    out["remote_error"] = [e.type, e.message, e.node]
# cancel stops the remote work (the first call taught tb it is a coroutine function)
hd.async_call(B, "proctest", "cancellable", ["k0", 0]).result(10)
t = hd.async_call(B, "proctest", "cancellable", ["k1"])
deadline = time.time() + 10
while he.rpc_call(B, "proctest", "state", ["k1"]) != "running" and time.time() < deadline:
    time.sleep(0.01)
out["cancel"] = t.cancel()
while he.rpc_call(B, "proctest", "state", ["k1"]) == "running" and time.time() < deadline:
    time.sleep(0.01)
out["remote_state"] = he.rpc_call(B, "proctest", "state", ["k1"])
# node death fails the task as soon as it is known
pid = he.rpc_call(B, "os", "getpid", [])
t = hd.async_call(B, "proctest", "slow", [30, 1])
time.sleep(0.1)
t0 = time.monotonic()
os.kill(pid, signal.SIGKILL)
try:
    t.result(10)
except he.NodeDown:
    out["nodedown_s"] = time.monotonic() - t0
print(json.dumps(out))
`, 90*time.Second, &got)
	check := map[string]string{
		"as_completed": "[3 b a]", "wait": "3", "asyncio": "[ta@127.0.0.1 tb@127.0.0.1]", "timeout": "true",
		"badrpc": "true", "remote_error": "[ValueError x ta@127.0.0.1]", "cancel": "true", "remote_state": "cancelled",
	}
	for k, want := range check {
		if s := fmtJSON(got[k]); s != want {
			t.Errorf("%s: %s, want %s", k, s, want)
		}
	}
	s, ok := got["nodedown_s"].(float64)
	if !ok || s > 1.0 {
		t.Errorf("a task on a killed node failed after %v s, want NodeDown under 1 s", got["nodedown_s"])
	}
	t.Logf("NodeDown %.3fs after kill -9", s)
}

// fmtJSON prints a decoded JSON value compactly: lists in brackets, numbers
// without a trailing .0.
func fmtJSON(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmtJSON(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func TestDistRouterThroughTwoNodes(t *testing.T) {
	const cookie = "proc10-router"
	a := startNode(t, "ra@127.0.0.1", cookie)
	startNode(t, "rb@127.0.0.1", cookie, "--join", a.addr)
	var got map[string]any
	script(t, "rt@127.0.0.1", cookie, a.addr, waitPeers+`
import json
import hornbeam_erlang as he
A, B = "ra@127.0.0.1", "rb@127.0.0.1"
wait_peers([A, B])
# Each node holds its own table: ra keeps n-z and sends a-m to rb; rb keeps
# everything; this script sends everything to ra, so "hello" goes here -> ra -> rb.
he.rpc_call(A, "proctest", "setup_router", [[["a-m", B], ["n-z", A]]])
he.rpc_call(B, "proctest", "setup_router", [[["a-z", B]]])
import proctest
proctest.setup_router([["a-z", A]])
out = {"hello": proctest.route("hello"), "world": proctest.route("world"),
       "b_world": he.rpc_call(B, "proctest", "route", ["world"])}
try:
    proctest.route("\x00")
except Exception as e:
    out["unknown"] = [type(e).__name__, str(e)]
print(json.dumps(out))
`, 60*time.Second, &got)
	if got["hello"] != "rb@127.0.0.1" || got["world"] != "ra@127.0.0.1" || got["b_world"] != "rb@127.0.0.1" {
		t.Errorf("routes: %v", got)
	}
	u := fmtJSON(got["unknown"])
	if !strings.HasPrefix(u, "[NoRoute could not find entry for '\\x00' in table") {
		t.Errorf("unknown key: %s", u)
	}
}

// TestDistPytestPlugin runs the KV router example's tests with the pytest
// plugin: pytest in a named node starts the nodes it needs.
func TestDistPytestPlugin(t *testing.T) {
	ex, _ := filepath.Abs("../examples/processes")
	dir := t.TempDir()
	cookie := filepath.Join(dir, "cookie")
	os.WriteFile(cookie, []byte("proc10-plugin"), 0o400)
	env := []string{"HORNBEAM_COOKIE=proc10-plugin", "HORNBEAM_BIN=" + hornbeam}
	r := run(t, ex, env, 180*time.Second, "run", "--name", "pytest-proc10@127.0.0.1", "--cluster-host", "127.0.0.1",
		"-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "hornbeam_dist.testing", "test_kv_router.py")
	if r.code != 0 || !strings.Contains(r.stdout, "3 passed") {
		t.Fatalf("pytest in a named node: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Without a name, the distributed tests are skipped, the others run.
	r = run(t, ex, env, 120*time.Second, "run", "-m", "pytest", "-q", "-p", "no:cacheprovider",
		"-p", "hornbeam_dist.testing", "test_kv_router.py")
	if r.code != 0 || !strings.Contains(r.stdout, "1 passed, 2 skipped") {
		t.Fatalf("pytest in an unnamed node: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

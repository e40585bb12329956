package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Processes between real nodes: every function in both directions, node
// death (kill -9 and a clean stop), mailbox bounds, and many processes.

func TestProcessesInEveryDirection(t *testing.T) {
	const cookie = "proc10-dirs"
	a := startNode(t, "pa@127.0.0.1", cookie)
	startNode(t, "pb@127.0.0.1", cookie, "--join", a.addr)
	var got map[string]map[string]any
	script(t, "pt@127.0.0.1", cookie, a.addr, waitPeers+`
import json
from hornbeam_erlang import rpc_call, node
import proctest
names = ["pa@127.0.0.1", "pb@127.0.0.1"]
wait_peers(names)
out = {}
for src, dst in [("pa@127.0.0.1", "pb@127.0.0.1"), ("pb@127.0.0.1", "pa@127.0.0.1"), ("pa@127.0.0.1", "pa@127.0.0.1")]:
    out[src + ">" + dst] = rpc_call(src, "proctest", "suite", [dst], timeout_ms=60000)
out[node() + ">pb@127.0.0.1"] = proctest.suite("pb@127.0.0.1")
print(json.dumps(out))
`, 120*time.Second, &got)
	if len(got) != 4 {
		t.Fatalf("suites: %v", got)
	}
	for dir, checks := range got {
		if len(checks) < 25 {
			t.Errorf("%s: only %d checks ran: %v", dir, len(checks), checks)
		}
		for k, ok := range checks {
			if ok != true {
				t.Errorf("%s: %s failed: %v", dir, k, ok)
			}
		}
	}
}

func TestProcessesSeeNodeDeath(t *testing.T) {
	const cookie = "proc10-death"
	a := startNode(t, "da@127.0.0.1", cookie)
	startNode(t, "db@127.0.0.1", cookie, "--join", a.addr)
	startNode(t, "dc@127.0.0.1", cookie, "--join", a.addr)
	var got map[string]map[string]any
	script(t, "dt@127.0.0.1", cookie, a.addr, waitPeers+`
import json, signal
import proctest
wait_peers(["da@127.0.0.1", "db@127.0.0.1", "dc@127.0.0.1"])
out = {"kill": proctest.watch_and_kill("db@127.0.0.1", signal.SIGKILL),
       "term": proctest.watch_and_kill("dc@127.0.0.1", signal.SIGTERM)}
print(json.dumps(out))
`, 90*time.Second, &got)
	for kind, reason := range map[string]string{"kill": "noconnection", "term": "shutdown"} {
		r := got[kind]
		if fmt.Sprint(r["down"]) != fmt.Sprintf("[%v %s]", r["pid"], reason) {
			t.Errorf("%s: DOWN %v, want reason %s", kind, r["down"], reason)
		}
		if fmt.Sprint(r["exit"]) != fmt.Sprintf("[%v %s]", r["linked"], reason) {
			t.Errorf("%s: EXIT %v, want reason %s", kind, r["exit"], reason)
		}
		if r["in_group_before"] != true || r["in_group_after"] != false {
			t.Errorf("%s: group member before %v, after %v", kind, r["in_group_before"], r["in_group_after"])
		}
		t.Logf("%s: DOWN after %.3fs, EXIT after %.3fs", kind, r["down_s"], r["exit_s"])
	}
	if s := got["kill"]["down_s"].(float64); s > 1.0 {
		t.Errorf("kill -9: DOWN took %.3fs, want under 1s", s)
	}
}

func TestProcessMailboxBounds(t *testing.T) {
	const cookie = "proc10-bounds"
	a := startNode(t, "ma@127.0.0.1", cookie, "--mailbox-max-messages", "5")
	var got map[string]any
	script(t, "mt@127.0.0.1", cookie, a.addr, waitPeers+`
import json, time
import hornbeam_erlang as he
wait_peers(["ma@127.0.0.1"])
out = {"local_busy": he.rpc_call("ma@127.0.0.1", "proctest", "local_busy", [])}
p = he.spawn("ma@127.0.0.1", "proctest", "sink")
for i in range(50):
    he.send(p, i)
deadline = time.time() + 10
while time.time() < deadline:
    d = he.node_info("ma@127.0.0.1")["processes"]["mailbox_dropped"]
    if d >= 45:
        break
    time.sleep(0.02)
out["dropped"] = d
out["queued"] = he.node_info("ma@127.0.0.1")["processes"]["messages_queued"]
print(json.dumps(out))
`, 60*time.Second, &got)
	if got["local_busy"] != 5.0 {
		t.Errorf("a local sender filled %v messages before Busy, want 5", got["local_busy"])
	}
	if got["dropped"] != 45.0 {
		t.Errorf("remote messages dropped and counted: %v, want 45", got["dropped"])
	}
	a.waitLog(t, "message from another node dropped", 1, 5*time.Second)
}

func TestProcess100kAsyncProcesses(t *testing.T) {
	dir := t.TempDir()
	pydir := writeFile(t, dir, "many.py", `
import asyncio, json, time
import hornbeam_erlang as he
from hornbeam_erlang import aio

N = 100_000

async def parked():
    he.state_incr("started")
    await aio.receive()
    he.state_incr("done")

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

def wait(key, n, limit=120):
    deadline = time.time() + limit
    while (he.state_get(key) or 0) < n:
        if time.time() > deadline:
            raise SystemExit(f"{key}: {he.state_get(key)} of {n}")
        time.sleep(0.05)

import sys
sys.modules["many"] = sys.modules["__main__"]
base_procs = he.node_info(he.node())["processes"]["processes"]
before = rss()
t0 = time.time()
pids = [he.spawn(he.node(), "many", "parked") for _ in range(N)]
wait("started", N)
spawned_s = time.time() - t0
after = rss()
alive = he.node_info(he.node())["processes"]["processes"] - base_procs
t0 = time.time()
for p in pids:
    he.send(p, "go")
wait("done", N)
sent_s = time.time() - t0
deadline = time.time() + 30
while he.node_info(he.node())["processes"]["processes"] > base_procs and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({"alive": alive, "bytes_per_process": (after - before) / N, "spawn_s": spawned_s,
                  "wake_s": sent_s, "left": he.node_info(he.node())["processes"]["processes"] - base_procs}))
`)
	_ = pydir
	r := run(t, dir, nil, 300*time.Second, "run", "many.py")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	t.Logf("100,000 task processes: %s", lines[len(lines)-1])
	if !strings.Contains(lines[len(lines)-1], `"alive": 100000`) || !strings.Contains(lines[len(lines)-1], `"left": 0`) {
		t.Errorf("want 100000 alive, then none left: %s", lines[len(lines)-1])
	}
}

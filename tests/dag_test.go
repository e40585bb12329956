package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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

// dagCluster starts nodes a, b (cpu=2, cpu=4, no gpu) and g (gpu=1, cpu=2) for
// DAG tests, each serving tests/testdata/dag, under a cookie of the test's own.
func dagCluster(t *testing.T) (cookie string, seed *node, nodes []*node) {
	t.Helper()
	cookie = fmt.Sprintf("dag-%s-%d", t.Name(), time.Now().UnixNano())
	pydir, _ := filepath.Abs("testdata/dag")
	a := startNode(t, "a@127.0.0.1", cookie, "--pythonpath", pydir, "--capability", "cpu=2", "--capability", "gpu=0")
	b := startNode(t, "b@127.0.0.1", cookie, "--pythonpath", pydir, "--join", a.addr, "--capability", "cpu=4", "--capability", "gpu=0")
	g := startNode(t, "g@127.0.0.1", cookie, "--pythonpath", pydir, "--join", a.addr, "--capability", "cpu=2", "--capability", "gpu=1")
	return cookie, a, []*node{a, b, g}
}

const dagPrelude = waitPeers + `
import json, time
import hornbeam_dag as hd
from hornbeam_dag import DAG, Function
from hornbeam_erlang import rpc_call
NODES = ["a@127.0.0.1", "b@127.0.0.1", "g@127.0.0.1"]
wait_peers(NODES)
# Capabilities ride on heartbeats: wait until every node's are seen.
deadline = time.time() + 10
while not all("cpu" in hd.discover_nodes().get(n, {}) for n in NODES):
    if time.time() > deadline:
        raise SystemExit(f"capabilities not seen: {hd.discover_nodes()}")
    time.sleep(0.02)

def stores_empty(nodes=NODES, timeout=10):
    """Every node's DAG results and runs, once the end-of-run releases land."""
    deadline = time.time() + timeout
    while True:
        st = {n: rpc_call(n, "hornbeam_dag._executor", "stats", []) for n in nodes}
        if all(s["results"] == 0 and s["runs"] == 0 and s["tracked"] == 0 for s in st.values()) or time.time() > deadline:
            return st
        time.sleep(0.05)
`

// dagScript runs src as a hidden node (it drives DAGs but takes no work) and
// decodes the JSON of its last line into out.
func dagScript(t *testing.T, cookie, join, src string, timeout time.Duration, out any) {
	t.Helper()
	dir := t.TempDir()
	path := writeFile(t, dir, "check.py", src)
	pydir, _ := filepath.Abs("testdata/dag")
	r := run(t, dir, nil, timeout, "run", "--name", "drv@127.0.0.1", "--hidden", "--cookie", cookie, "--join", join,
		"--pythonpath", pydir, path)
	if r.code != 0 {
		t.Fatalf("driver exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
		t.Fatalf("driver output %q: %v\nstderr:\n%s", r.stdout, err, r.stderr)
	}
}

// The source -> cpu-heavy -> gpu -> aggregation pipeline: each function runs on a node with room for its cost, the
// gpu step on the only gpu node; capabilities come from --capability and
// register_local_node; impossible costs and pins are Unschedulable before
// anything runs; pinned functions run where pinned; inline functions run
// inside their dependents and are not results.
func TestDAGPlacementByCost(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
out = {"caps": hd.discover_nodes()}
d = DAG()
d.add_function(Function("source", [], "dagtest:where"))
d.add_function(Function("cpu_heavy", ["source"], "dagtest:where", cost={"cpu": 4}))
d.add_function(Function("gpu_task", ["cpu_heavy"], "dagtest:where", cost={"gpu": 1, "memory": 100}))
d.add_function(Function("pinned", ["source"], "dagtest:where", node="a@127.0.0.1"))
d.add_function(Function("inl", ["pinned"], "dagtest:where", type="inline"))
d.add_function(Function("aggregation", ["gpu_task", "inl"], "dagtest:where", node="b@127.0.0.1"))
d.validate()
r = hd.execute_distributed(d, max_retries=3)
out["ran"] = {k: v[0] for k, v in r.items()}
out["inline_ran_on"] = r["aggregation"][1][1][0]
out["ids"] = sorted(r)
errs = {}
for name, cost, pin in [("tpu", {"tpu": 1}, None), ("gpu2", {"gpu": 2}, None),
                        ("pin", {}, "nobody@127.0.0.1"), ("pingpu", {"gpu": 1}, "a@127.0.0.1")]:
    try:
        hd.execute_distributed(DAG().add_function(Function("x", [], "dagtest:where", cost=cost, node=pin)))
        errs[name] = "ran"
    except hd.Unschedulable as e:
        errs[name] = [type(e).__name__, isinstance(e, hd.DAGError), e.function_id, str(e)]
out["errs"] = errs
# A node declares a gpu at run time; the driver sees it on the next heartbeat.
rpc_call("a@127.0.0.1", "hornbeam_dag", "register_local_node", [{"gpu": 2}])
deadline = time.time() + 10
while hd.discover_nodes()["a@127.0.0.1"].get("gpu") != 2 and time.time() < deadline:
    time.sleep(0.02)
r = hd.execute_distributed(DAG().add_function(Function("x", [], "dagtest:where", cost={"gpu": 2})))
out["gpu2_after_register"] = r["x"][0]
print(json.dumps(out))
`, 90*time.Second, &got)
	caps := got["caps"].(map[string]any)
	if g := caps["g@127.0.0.1"].(map[string]any); g["gpu"] != 1.0 || g["cpu"] != 2.0 || g["memory"].(float64) < 100 {
		t.Errorf("g's capabilities: %v", g)
	}
	if _, ok := caps["drv@127.0.0.1"]; !ok {
		t.Errorf("discover_nodes lacks this node: %v", caps)
	}
	ran := got["ran"].(map[string]any)
	want := map[string]string{"cpu_heavy": "b@127.0.0.1", "gpu_task": "g@127.0.0.1", "pinned": "a@127.0.0.1", "aggregation": "b@127.0.0.1"}
	for k, v := range want {
		if ran[k] != v {
			t.Errorf("%s ran on %v, want %s (all: %v)", k, ran[k], v, ran)
		}
	}
	if ran["source"] == "drv@127.0.0.1" {
		t.Errorf("the hidden driver took work: %v", ran)
	}
	if got["inline_ran_on"] != "b@127.0.0.1" {
		t.Errorf("inline function ran on %v, want inside its dependent on b", got["inline_ran_on"])
	}
	if fmt.Sprint(got["ids"]) != "[aggregation cpu_heavy gpu_task pinned source]" {
		t.Errorf("result ids %v (inline functions are not results)", got["ids"])
	}
	errs := got["errs"].(map[string]any)
	for name, sub := range map[string]string{"tpu": "no node declares the resource 'tpu'", "gpu2": "needs gpu=2",
		"pin": "not a visible node", "pingpu": "pinned to a@127.0.0.1"} {
		e, ok := errs[name].([]any)
		if !ok || e[0] != "Unschedulable" || e[1] != true || e[2] != "x" || !strings.Contains(e[3].(string), sub) {
			t.Errorf("%s: %v, want Unschedulable mentioning %q", name, errs[name], sub)
		}
	}
	if got["gpu2_after_register"] != "a@127.0.0.1" {
		t.Errorf("gpu=2 function ran on %v after a registered gpu=2", got["gpu2_after_register"])
	}
}

// Functions that cost a node's whole cpu never overlap there, by their own
// clocks: a (cpu=2) and g (cpu=2) run one at a time, b (cpu=4) two at a time.
func TestDAGNoOversubscription(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string][][]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
d = DAG()
for i in range(16):
    d.add_function(Function(i, [], "dagtest:span", cost={"cpu": 2}, extra_args=[0.15]))
for alloc in ["load_balanced", "first_available"]:
    r = hd.execute_distributed(d, allocation=alloc)
print(json.dumps({"load_balanced": list(hd.execute_distributed(d).values()),
                  "first_available": list(r.values())}))
`, 90*time.Second, &got)
	limit := map[string]int{"a@127.0.0.1": 1, "b@127.0.0.1": 2, "g@127.0.0.1": 1}
	for alloc, spans := range got {
		if len(spans) != 16 {
			t.Fatalf("%s: %d results", alloc, len(spans))
		}
		peak := map[string]int{}
		for _, s := range spans {
			n, t0 := s[0].(string), s[1].(float64)
			at := 0
			for _, o := range spans {
				if o[0] == n && o[1].(float64) <= t0 && t0 < o[2].(float64) {
					at++
				}
			}
			peak[n] = max(peak[n], at)
		}
		t.Logf("%s: most cpu=2 functions at once per node: %v", alloc, peak)
		for n, p := range peak {
			if p > limit[n] {
				t.Errorf("%s: %s ran %d cpu=2 functions at once, its capabilities allow %d", alloc, n, p, limit[n])
			}
		}
		if alloc == "load_balanced" && (len(peak) != 3 || peak["b@127.0.0.1"] != 2) {
			t.Errorf("load_balanced did not use every node to its capacity: %v", peak)
		}
	}
}

// Validation errors raised by the distributed form before anything runs,
// and a function that keeps failing: DAGFailed after its retries, carrying
// the remote error and the results that completed; a function failing on one
// node only succeeds on a retry elsewhere.
func TestDAGErrorsAndRetries(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
out = {}
def err(f):
    try:
        f()
        return "no error"
    except Exception as e:
        return [type(e).__name__, isinstance(e, hd.DAGError), str(e)]
out["missing"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", ["nope"], "dagtest:noop"))))
out["cycle"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", ["y"], "dagtest:noop"))
                                                     .add_function(Function("y", ["x"], "dagtest:noop"))))
out["badcode"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", [], "dagtest:nope"))))
out["badfmt"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", [], "dagtest.noop"))))
out["lambda"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", [], lambda: 1))))
def local_fn(): return 1
out["main"] = err(lambda: hd.execute_distributed(DAG().add_function(Function("x", [], local_fn))))
# Only importable on the nodes: a RemoteError once retries are spent.
d = DAG().add_function(Function("ok", [], "dagtest:inc")).add_function(Function("bad", ["ok"], "nodes_only_module:f"))
try:
    hd.execute_distributed(d, max_retries=1, outputs=["ok", "bad"])
except hd.DAGFailed as e:
    out["nomodule"] = [e.function_id, type(e.error).__name__, e.error.type, e.results]
d = DAG().add_function(Function("ok", [], "dagtest:inc")).add_function(Function("bad", ["ok"], "dagtest:always_fails", max_retries=2))
try:
    hd.execute_distributed(d, max_retries=0)
except hd.DAGFailed as e:
    out["failed"] = [e.function_id, e.node in NODES, type(e.error).__name__, e.error.type, e.error.message, e.results]
# Fails on b only: the retry goes elsewhere.
d = DAG().add_function(Function("x", [], "dagtest:fail_on", extra_args=["b@127.0.0.1"], node=None, cost={"cpu": 4}))
try:
    hd.execute_distributed(d, max_retries=1)
    out["elsewhere"] = "ran"
except hd.DAGFailed as e:
    out["elsewhere"] = [e.function_id, e.node, str(e.error)]
# first_available tries a first, where it fails: the retry goes to b.
d = DAG().add_function(Function("x", [], "dagtest:fail_on", extra_args=["a@127.0.0.1"]))
out["retried"] = hd.execute_distributed(d, max_retries=3, allocation="first_available")
out["stores"] = stores_empty()
print(json.dumps(out))
`, 90*time.Second, &got)
	for name, want := range map[string][]any{
		"missing": {"MissingFunction", true, "'nope' is not in the DAG"},
		"cycle":   {"CyclicDependency", true, "cyclic dependency"},
		"badcode": {"DAGError", true, "has no function 'nope'"},
		"badfmt":  {"DAGError", true, "must be 'module:function'"},
		"lambda":  {"DAGError", true, "not a module-level function"},
		"main":    {"DAGError", true, "defined in __main__"},
	} {
		e, ok := got[name].([]any)
		if !ok || e[0] != want[0] || e[1] != want[1] || !strings.Contains(e[2].(string), want[2].(string)) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	if fmt.Sprint(got["nomodule"]) != "[bad RemoteError ModuleNotFoundError map[ok:1]]" {
		t.Errorf("a module missing on the nodes: %v", got["nomodule"])
	}
	if fmt.Sprint(got["failed"]) != "[bad true RemoteError ValueError always map[ok:1]]" {
		t.Errorf("failing function: %v", got["failed"])
	}
	// cost cpu=4 fits only b, where it fails: the retry has nowhere else to go.
	if e, ok := got["elsewhere"].([]any); !ok || e[1] != "b@127.0.0.1" {
		t.Errorf("cpu=4 function failing on b: %v", got["elsewhere"])
	}
	if fmt.Sprint(got["retried"]) != "map[x:[b@127.0.0.1 1]]" {
		t.Errorf("function failing on b only: %v", got["retried"])
	}
	checkStoresEmpty(t, got["stores"])
}

func checkStoresEmpty(t *testing.T, stores any) {
	t.Helper()
	for n, s := range stores.(map[string]any) {
		st := s.(map[string]any)
		if st["results"] != 0.0 || st["runs"] != 0.0 || st["tracked"] != 0.0 {
			t.Errorf("%s still holds DAG results after the runs ended: %v", n, st)
		}
	}
}

// A result made on a and used on b goes from a to b directly: the driver's
// rpc replies carry a few bytes per function, not the 2 MB value, unless it
// asks for that output.
func TestDAGResultsMoveNodeToNode(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
import _hornbeam
d = DAG()
d.add_function(Function("blob", [], "dagtest:big", extra_args=[2_000_000], node="a@127.0.0.1"))
d.add_function(Function("used", ["blob"], "dagtest:size", node="b@127.0.0.1"))
before = _hornbeam.call("rpc_reply_bytes")
r1 = hd.execute_distributed(d, outputs=["used"])
mid = _hornbeam.call("rpc_reply_bytes")
r2 = hd.execute_distributed(d)
after = _hornbeam.call("rpc_reply_bytes")
print(json.dumps({"used": r1["used"], "only_outputs": mid - before, "all": after - mid,
                  "blob_len": len(r2["blob"]), "stores": stores_empty()}))
`, 90*time.Second, &got)
	t.Logf("driver received %v bytes with outputs=[used], %v with every result", got["only_outputs"], got["all"])
	if fmt.Sprint(got["used"]) != "[b@127.0.0.1 2e+06]" {
		t.Errorf("consumer on b saw %v", got["used"])
	}
	if got["only_outputs"].(float64) > 1000 {
		t.Errorf("the driver received %v bytes for a run whose 2 MB result moved from a to b", got["only_outputs"])
	}
	if got["all"].(float64) < 2e6 || got["blob_len"] != 2e6 {
		t.Errorf("asking for every result brought %v bytes, blob of %v", got["all"], got["blob_len"])
	}
	checkStoresEmpty(t, got["stores"])
}

// 10,000-function DAGs, wide (one source, 10,000 functions, one sink with
// 10,000 arguments) and deep (a chain of 10,000): both complete, the nodes
// hold only results still needed (a chain: a few at a time), and everything
// is freed when the runs end.
func TestDAG10kWideAndDeep(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
import resource
N = 10_000
out = {}
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wide = DAG().add_function(Function("s", [], "dagtest:noop"))
for i in range(N):
    wide.add_function(Function(i, ["s"], "dagtest:noop"))
wide.add_function(Function("sink", list(range(N)), "dagtest:count"))
t = time.time()
out["wide"] = hd.execute_distributed(wide, outputs=["sink"])["sink"]
out["wide_s"] = time.time() - t
out["wide_stores"] = stores_empty()
for n in NODES:
    rpc_call(n, "hornbeam_dag._executor", "reset_peak", [])
deep = DAG().add_function(Function(0, [], "dagtest:inc"))
for i in range(1, N):
    deep.add_function(Function(i, [i - 1], "dagtest:inc"))
t = time.time()
out["deep"] = hd.execute_distributed(deep, outputs=[N - 1])[N - 1]
out["deep_s"] = time.time() - t
out["deep_peaks"] = {n: rpc_call(n, "hornbeam_dag._executor", "stats", [])["peak"] for n in NODES}
out["deep_stores"] = stores_empty()
out["driver_growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
print(json.dumps(out))
`, 240*time.Second, &got)
	t.Logf("10,000 wide in %.1fs, 10,000 deep in %.1fs; deep peaks %v; driver max RSS grew %.0f MiB",
		got["wide_s"], got["deep_s"], got["deep_peaks"], got["driver_growth_mib"])
	if got["wide"] != 10000.0 || got["deep"] != 10000.0 {
		t.Fatalf("wide %v deep %v", got["wide"], got["deep"])
	}
	for n, p := range got["deep_peaks"].(map[string]any) {
		// Dropped in batches of 64 per node: never the whole chain.
		if p.(float64) > 130 {
			t.Errorf("%s held %v chain results at once", n, p)
		}
	}
	if got["driver_growth_mib"].(float64) > 100 {
		t.Errorf("the driver grew %.0f MiB for 10,000-function DAGs", got["driver_growth_mib"])
	}
	checkStoresEmpty(t, got["wide_stores"])
	checkStoresEmpty(t, got["deep_stores"])
}

// A node killed with kill -9 in the middle of a run, once results it made
// are known to the driver and still needed, and while it runs more: the
// running chains are retried on the others, the finished ones recomputed, and
// the DAG completes with the right answer.
//
// first_available fills a (cpu=2) and b (cpu=4) before g (cpu=2): chains 0-5
// (slow) take a and b, chains 6 and 7 (fast) go to g and finish there, then g
// takes two of the slow chains 8-11 while a and b are still busy. A probe
// pinned to a, run once a chain's end is made, shows the driver has it.
func TestDAGNodeKilledMidRun(t *testing.T) { dagLoseNodeMidRun(t, false) }

// The same with g stopped (SIGSTOP: hung, or cut off) instead of killed: the
// driver sees it down within seconds and the run completes without it; once
// g resumes, it frees what it held for the run.
func TestDAGNodeStoppedMidRun(t *testing.T) { dagLoseNodeMidRun(t, true) }

func dagLoseNodeMidRun(t *testing.T, stop bool) {
	cookie, seed, nodes := dagCluster(t)
	victim := nodes[2] // g
	marks := t.TempDir()
	pydir, _ := filepath.Abs("testdata/dag")
	src := dagPrelude + `
import sys
marks = sys.argv[1]
d = DAG()
for c in range(12):
    for s in range(4):
        d.add_function(Function((c, s), [(c, s - 1)] if s else [], "dagtest:step", cost={"cpu": 1},
                                extra_args=[0.05 if c in (6, 7) else 0.4, marks, f"c{c}s{s}"]))
    d.add_function(Function(("probe", c), [(c, 3)], "dagtest:step", node="a@127.0.0.1",
                            extra_args=[0, marks, f"probe{c}"]))
d.add_function(Function("sum", [(c, 3) for c in range(12)], "dagtest:count"))
d.add_function(Function("total", [(c, 3) for c in range(12)], "dagtest:step", extra_args=[0, marks, "total"]))
t = time.time()
r = hd.execute_distributed(d, max_retries=3, allocation="first_available", outputs=["sum", "total"],
                           timeout_ms=60000)
print(json.dumps({"r": r, "s": time.time() - t, "stores": stores_empty(["a@127.0.0.1", "b@127.0.0.1"])}))
`
	path := writeFile(t, t.TempDir(), "kill.py", src)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hornbeam, "run", "--name", "drv@127.0.0.1", "--hidden", "--cookie", cookie,
		"--join", seed.addr, "--pythonpath", pydir, path, marks)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	glob := func(pattern string) []string {
		m, _ := filepath.Glob(filepath.Join(marks, pattern))
		return m
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(glob("a@127.0.0.1-probe[67]-start-*")) < 2 || len(glob("g@127.0.0.1-c*-start-*")) <= 8 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("g never finished chains 6 and 7 and started another: %v\n%s", glob("*"), stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	gRan := glob("g@127.0.0.1-c*-start-*")
	if stop {
		stopProcess(t, victim.pid())
		defer syscall.Kill(victim.pid(), syscall.SIGCONT)
	} else {
		victim.kill()
	}
	sc := bufio.NewScanner(stdout)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driver: %v\n%s", err, stderr.String())
	}
	var got struct {
		R      map[string]float64
		S      float64
		Stores map[string]any
	}
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v\n%s", last, err, stderr.String())
	}
	t.Logf("completed in %.1fs; %d function starts on g before the kill; driver said: %s", got.S, len(gRan),
		strings.TrimSpace(stderr.String()))
	if got.R["sum"] != 12 || got.R["total"] != 12*4+1 {
		t.Fatalf("results %v, want sum 12, total 49", got.R)
	}
	// The chains g finished, and those it was running, ran again elsewhere.
	for _, f := range gRan {
		tag := strings.SplitN(filepath.Base(f), "-", 3)[1] // cNsM
		chain := tag[:strings.IndexByte(tag, 's')]
		if len(glob("[ab]@127.0.0.1-"+chain+"s0-start-*")) == 0 {
			t.Errorf("chain %s ran on g before the kill and never ran again elsewhere", chain)
		}
	}
	m := regexp.MustCompile(`g@127.0.0.1 went down mid-run: .* the (\d+) results it held`).FindStringSubmatch(stderr.String())
	if len(m) < 2 || atoi(m[1]) < 2 {
		t.Errorf("the driver did not recompute the chain ends g held (6 and 7 at least):\n%s", stderr.String())
	}
	checkStoresEmpty(t, got.Stores)
	if !stop {
		return
	}
	syscall.Kill(victim.pid(), syscall.SIGCONT)
	var after map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
print(json.dumps(stores_empty(timeout=30)))
`, 90*time.Second, &after)
	checkStoresEmpty(t, after)
}

// Results of a run whose driver no longer drives it (it never did, or its
// node is gone) are freed by the node holding them, without any release: the
// node asks the driver once the run sits idle.
func TestDAGStrayResultsFreed(t *testing.T) {
	cookie, seed, _ := dagCluster(t)
	var got map[string]any
	dagScript(t, cookie, seed.addr, dagPrelude+`
B = "b@127.0.0.1"
rpc_call(B, "dagtest", "set_sweep", [0.5])
task = [[0, "dagtest", "inc", [], [], False, True]]
out = {}
for name, driver in [("not_driving", "a@127.0.0.1"), ("gone", "ghost@127.0.0.1")]:
    rec = rpc_call(B, "hornbeam_dag._executor", "run", ["stray-" + name, driver, task, False])
    held = rpc_call(B, "hornbeam_dag._executor", "stats", [])["results"]
    t = time.time()
    while rpc_call(B, "hornbeam_dag._executor", "stats", [])["tracked"] and time.time() - t < 20:
        time.sleep(0.05)
    out[name] = [rec[0][0], held, time.time() - t]
out["stores"] = stores_empty()
print(json.dumps(out))
`, 90*time.Second, &got)
	for _, name := range []string{"not_driving", "gone"} {
		r := got[name].([]any)
		t.Logf("%s: freed %.1fs after", name, r[2])
		if r[0] != "ok" || r[1] != 1.0 || r[2].(float64) >= 20 {
			t.Errorf("%s: %v (want the result held, then freed)", name, r)
		}
	}
	checkStoresEmpty(t, got["stores"])
}

// examples/dag/run_demo.sh end to end: the gpu steps run on the gpu node, and
// the second run, with cpu2 killed mid-run, completes with the same scores.
func TestDAGExampleDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "examples/dag/run_demo.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "HORNBEAM_BIN="+hornbeam)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run_demo.sh: %v\n%s", err, out)
	}
	s := string(out)
	if strings.Count(s, `"gpu_steps_ran_on": [
    "gpu1@127.0.0.1"
  ]`) != 2 || strings.Count(s, "50.455") != 12 {
		t.Errorf("unexpected demo output:\n%s", s)
	}
	if !strings.Contains(s, "cpu2@127.0.0.1 went down mid-run") {
		t.Errorf("the kill run did not lose cpu2:\n%s", s)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

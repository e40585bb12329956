package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mlCluster is the distributed ML example on loopback: two workers and a web node.
type mlCluster struct {
	cookie string
	w1, w2 *node
	web    *proc
}

func startMLCluster(t *testing.T) *mlCluster {
	t.Helper()
	dir, _ := filepath.Abs("../examples/distributed_ml")
	c := &mlCluster{cookie: "ml-test"}
	c.w1 = startNode(t, "worker1@127.0.0.1", c.cookie, "--pythonpath", dir, "--cluster-port", "0", "--ml-fallback", "hash", "--threads", "16")
	c.w2 = startNode(t, "worker2@127.0.0.1", c.cookie, "--pythonpath", dir, "--join", c.w1.addr, "--ml-fallback", "hash", "--threads", "16")
	c.web = serveApp(t, dir, "app:app", "-b", "127.0.0.1:0", "--name", "web@127.0.0.1", "--cookie", c.cookie,
		"--join", c.w1.addr, "--ml-fallback", "hash")
	// The web node serves once it sees both workers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			GPUNodes []struct{ Status string } `json:"gpu_nodes"`
		}
		if code := c.post(t, "GET", "/cluster", nil, &st); code == 200 && len(st.GPUNodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the web node did not see both workers in 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

type inferResult struct {
	Embeddings [][]float64 `json:"embeddings"`
	Node       string      `json:"node"`
	Cached     int         `json:"cached"`
	ServedBy   []string    `json:"served_by"`
	NodesUsed  int         `json:"nodes_used"`
}

// post sends a JSON request (body nil: no body) and decodes the JSON answer into out.
func (c *mlCluster) post(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.web.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func texts(n, size int, tag string) []string {
	out := make([]string, n)
	for i := range out {
		s := fmt.Sprintf("%s text %d about topic %d. ", tag, i, i%7)
		out[i] = strings.Repeat(s, max(1, size/len(s)))
	}
	return out
}

func sameVectors(t *testing.T, what string, a, b [][]float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d embeddings", what, len(a), len(b))
	}
	for i := range a {
		if len(a[i]) != 384 || len(b[i]) != 384 {
			t.Fatalf("%s: embedding %d has %d/%d dimensions", what, i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			if d := a[i][j] - b[i][j]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("%s: embedding %d differs at %d: %v vs %v", what, i, j, a[i][j], b[i][j])
			}
		}
	}
}

func TestMLDistributedExample(t *testing.T) {
	c := startMLCluster(t)
	workers := []string{"worker1@127.0.0.1", "worker2@127.0.0.1"}
	in := texts(3, 40, "strategies")

	// Round robin alternates; the first answer also fills the worker's cache.
	var a, b inferResult
	if code := c.post(t, "POST", "/infer", map[string]any{"texts": in}, &a); code != 200 {
		t.Fatalf("/infer: %d", code)
	}
	c.post(t, "POST", "/infer?strategy=round_robin", map[string]any{"texts": in}, &b)
	if a.Node == b.Node || !slices.Contains(workers, a.Node) || !slices.Contains(workers, b.Node) {
		t.Fatalf("round robin served by %s then %s", a.Node, b.Node)
	}
	sameVectors(t, "two workers, same texts", a.Embeddings, b.Embeddings)
	if a.Cached != 0 || b.Cached != 0 {
		t.Fatalf("first sight of the texts on each worker was cached: %d, %d", a.Cached, b.Cached)
	}
	// Consistent hashing: the same texts go to the same worker, cached there.
	var c1, c2 inferResult
	c.post(t, "POST", "/infer?strategy=consistent", map[string]any{"texts": in}, &c1)
	c.post(t, "POST", "/infer?strategy=consistent", map[string]any{"texts": in}, &c2)
	if c1.Node != c2.Node || c2.Cached != 3 {
		t.Fatalf("consistent: %s then %s, %d cached", c1.Node, c2.Node, c2.Cached)
	}
	var ll inferResult
	if code := c.post(t, "POST", "/infer?strategy=least_loaded", map[string]any{"texts": in}, &ll); code != 200 || !slices.Contains(workers, ll.Node) {
		t.Fatalf("least loaded: %d %s", code, ll.Node)
	}

	// Parallel keeps the texts' order across the workers.
	many := texts(10, 60, "parallel")
	var par, one inferResult
	if code := c.post(t, "POST", "/infer/parallel", map[string]any{"texts": many}, &par); code != 200 || par.NodesUsed != 2 {
		t.Fatalf("/infer/parallel: %d %+v", code, par.ServedBy)
	}
	c.post(t, "POST", "/infer", map[string]any{"texts": many}, &one)
	sameVectors(t, "parallel vs one worker", par.Embeddings, one.Embeddings)

	// Cluster status and metrics, with the caches' counts.
	var st struct {
		ThisNode string `json:"this_node"`
		GPUNodes []struct {
			Node   string
			Status string
			Cache  struct{ Hits, Misses int }
		} `json:"gpu_nodes"`
	}
	c.post(t, "GET", "/cluster", nil, &st)
	hits, misses := 0, 0
	for _, g := range st.GPUNodes {
		if g.Status != "online" {
			t.Fatalf("/cluster: %+v", st)
		}
		hits += g.Cache.Hits
		misses += g.Cache.Misses
	}
	// Misses: the 3 texts on each worker, the 10 parallel ones (5 on each),
	// then the 5 of them new to the worker that took all 10. Hits: the 3
	// texts three more times (consistent twice, least loaded), and those 5.
	if st.ThisNode != "web@127.0.0.1" || misses != 21 || hits != 14 {
		t.Fatalf("/cluster: %+v (hits %d, misses %d)", st, hits, misses)
	}
	var m struct {
		Requests struct {
			Total         int
			LocalFallback int `json:"local_fallback"`
		}
	}
	c.post(t, "GET", "/metrics", nil, &m)
	if m.Requests.Total != 7 || m.Requests.LocalFallback != 0 {
		t.Fatalf("/metrics: %+v", m)
	}

	// Bad input: clear 4xx, and the node keeps serving.
	bad := []struct {
		name string
		path string
		body any
		code int
	}{
		{"empty list", "/infer", map[string]any{"texts": []string{}}, 422},
		{"not strings", "/infer", map[string]any{"texts": []any{"ok", 5}}, 422},
		{"no texts", "/infer", map[string]any{"model": "default"}, 422},
		{"10 MB text", "/infer", map[string]any{"texts": []string{strings.Repeat("x", 10<<20)}}, 413},
		{"long text", "/infer", map[string]any{"texts": []string{strings.Repeat("x", 200_000)}}, 422},
		{"bad strategy", "/infer?strategy=random", map[string]any{"texts": in}, 400},
		{"parallel, empty", "/infer/parallel", map[string]any{"texts": []string{}}, 422},
	}
	for _, tc := range bad {
		var body map[string]any
		if code := c.post(t, "POST", tc.path, tc.body, &body); code != tc.code {
			t.Errorf("%s: %d %v, want %d", tc.name, code, body, tc.code)
		}
	}
	if code := c.post(t, "POST", "/infer", map[string]any{"texts": in}, nil); code != 200 {
		t.Fatalf("after bad input: %d", code)
	}
}

func TestMLWorkerDiesDuringParallel(t *testing.T) {
	c := startMLCluster(t)
	// Chunks big enough that the hash encoder works on each for a second or
	// more (the body stays under the app's 4 MiB limit).
	many := texts(600, 6000, "failover")
	done := make(chan inferResult, 1)
	codes := make(chan int, 1)
	go func() {
		var r inferResult
		codes <- c.post(t, "POST", "/infer/parallel", map[string]any{"texts": many}, &r)
		done <- r
	}()
	time.Sleep(400 * time.Millisecond)
	syscall.Kill(c.w2.pid(), syscall.SIGKILL)
	code, r := <-codes, <-done
	if code != 200 || len(r.Embeddings) != len(many) {
		t.Fatalf("/infer/parallel with a worker killed: %d, %d embeddings", code, len(r.Embeddings))
	}
	if slices.Contains(r.ServedBy, "worker2@127.0.0.1") {
		// A machine fast enough to finish the chunk in 400 ms: the answer is
		// still whole, but the failover was not exercised.
		t.Logf("worker2 finished its chunk before it was killed: %v", r.ServedBy)
	}
	// The survivor's embeddings are the ones a whole request gets.
	var again inferResult
	c.post(t, "POST", "/infer", map[string]any{"texts": many[:5]}, &again)
	sameVectors(t, "after failover", r.Embeddings[:5], again.Embeddings)

	// No workers left: the web node encodes locally.
	syscall.Kill(c.w1.pid(), syscall.SIGKILL)
	var local inferResult
	if code := c.post(t, "POST", "/infer", map[string]any{"texts": many[:2]}, &local); code != 200 || local.Node != "web@127.0.0.1" {
		t.Fatalf("no workers: %d, served by %q", code, local.Node)
	}
	sameVectors(t, "local fallback", local.Embeddings, again.Embeddings[:2])
	var m struct {
		Requests struct {
			LocalFallback int `json:"local_fallback"`
		}
	}
	c.post(t, "GET", "/metrics", nil, &m)
	if m.Requests.LocalFallback != 1 {
		t.Fatalf("metrics after local fallback: %+v", m)
	}
}

// 64 concurrent single-text calls of a batched function reach Python as a few
// batches, and each caller gets its own text's embedding.
func TestMLDynamicBatching(t *testing.T) {
	dir, _ := filepath.Abs("../examples/distributed_ml")
	w := startNode(t, "worker1@127.0.0.1", "batch", "--pythonpath", dir, "--cluster-port", "0", "--ml-fallback", "hash")
	var out struct {
		OK      bool
		Batches int
		Items   int
		Wrong   []int
	}
	script(t, "client@127.0.0.1", "batch", w.addr, `
import json, os, threading
os.environ["HORNBEAM_ML_FALLBACK"] = "hash"  # as --ml-fallback hash does
import hornbeam_ml
from hornbeam_erlang import rpc_call
W = "worker1@127.0.0.1"
rpc_call(W, "ml_worker", "info", [])  # imports ml_worker: embed is registered
texts = [f"sentence number {i} is about {i * 7 % 13}" for i in range(64)]
want = hornbeam_ml.get_model().encode(texts)
got = [None] * 64
go = threading.Barrier(64)
def call(i):
    go.wait()
    got[i] = rpc_call(W, "ml_worker", "embed", [[texts[i]]], timeout_ms=30000)[0]
ts = [threading.Thread(target=call, args=(i,)) for i in range(64)]
[t.start() for t in ts]
[t.join() for t in ts]
wrong = [i for i in range(64) if max(abs(a - b) for a, b in zip(got[i], want[i])) > 1e-6]
st = rpc_call(W, "ml_worker", "info", [])["batches"]
# Capabilities ride on heartbeats: CPUs, and GPUs as node_info counts them.
from hornbeam_erlang import node_info
caps = hornbeam_ml.nodes_with(cpu=1) == [W] and hornbeam_ml.nodes_with(cpu=100000) == []
gpus = hornbeam_ml.gpu_nodes() == ([W] if node_info(W)["gpu_count"] else []) and hornbeam_ml.nodes_with(role="nope") == []
print(json.dumps({"ok": caps and gpus, "batches": st["batches"], "items": st["items"], "wrong": wrong}))
`, 60*time.Second, &out)
	if !out.OK || len(out.Wrong) != 0 || out.Items != 64 {
		t.Fatalf("batching: %+v", out)
	}
	if out.Batches > 8 {
		t.Fatalf("64 concurrent calls ran as %d batches", out.Batches)
	}
	t.Logf("64 concurrent single-text calls -> %d batches", out.Batches)
}

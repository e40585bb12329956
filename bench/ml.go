package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/bus"
)

// mlSection measures embeddings end to end (HTTP -> web node -> RPC -> worker
// -> back) against the same encoder called directly in one process, and 64
// concurrent single-text calls with and without the host's dynamic batching.
func mlSection(bin string) (string, error) {
	var b strings.Builder
	b.WriteString("## Distributed ML: embeddings per second\n\n")
	b.WriteString("No GPU and no model weights on this machine, so the workers use a fallback encoder " +
		"(`--ml-fallback`): `torch` is a small random-weight transformer (2 layers, 384 wide, 12 heads) on " +
		"Debian's python3-torch, real tensor work; `hash` is hashed character n-grams. " +
		"End to end: one client sends `/infer` requests one after another to the web node of examples/distributed_ml " +
		"(FastAPI), which calls a worker node with rpc_call; every text is new, so the cache never answers. " +
		"Direct: the same encoder called in one `hornbeam run` process. Medians of 3 rounds of 2–3 s.\n\n")
	b.WriteString("| encoder | texts per request | direct (emb/s) | end to end (emb/s) | end to end / direct |\n|---|---|---|---|---|\n")
	var conc strings.Builder
	conc.WriteString("\n64 client threads on another node each call the worker with one text at a time " +
		"(`rpc_call(worker, 'mlbench', 'embed', [[text]])`), for 3 s: with `@batched(max_batch_size=64, max_wait_ms=5)` " +
		"the host coalesces the calls; without, each call is its own model call (worker `--threads 16`).\n\n")
	conc.WriteString("The same from 64 goroutines of a hidden Go node (`bus.Call`), so that client threads do not take the cores " +
		"the worker needs: the worker's own batched and unbatched rates.\n\n")
	conc.WriteString("| encoder | client | batched (texts/s) | unbatched (texts/s) | batched / unbatched |\n|---|---|---|---|---|\n")
	fallbacks := []string{"hash"}
	if exec.Command(bin, "run", "-c", "import torch").Run() == nil {
		fallbacks = append([]string{"torch"}, fallbacks...)
	} else {
		b.WriteString("(python3-torch is not installed: `make bench-deps` installs it; only the hash encoder is measured.)\n\n")
	}
	for _, fb := range fallbacks {
		direct, e2e, cc, err := mlRun(bin, fb)
		if err != nil {
			return "", fmt.Errorf("%s encoder: %w", fb, err)
		}
		for _, size := range []string{"1", "32", "256"} {
			d, e := direct[size], e2e[size]
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.2fx |\n", fb, size, d, e, e/d)
		}
		bt, _ := cc["batches"].(map[string]any)
		mean := 0.0
		if bt != nil && num(bt, "batches") > 0 {
			mean = num(bt, "items") / num(bt, "batches")
		}
		fmt.Fprintf(&conc, "| %s | 64 Python threads (mean batch %.1f) | %.0f | %.0f | %.2fx |\n", fb, mean, num(cc, "embed"), num(cc, "embed_unbatched"),
			num(cc, "embed")/num(cc, "embed_unbatched"))
		fmt.Fprintf(&conc, "| %s | 64 Go goroutines | %.0f | %.0f | %.2fx |\n", fb, num(cc, "go_embed"), num(cc, "go_embed_unbatched"),
			num(cc, "go_embed")/num(cc, "go_embed_unbatched"))
	}
	b.WriteString(conc.String())
	b.WriteString("\nGoals: end to end ≥ 0.9x direct at 256 texts per request; batching ≥ 5x unbatched for single texts.\n\n")
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		b.WriteString("GPU path: not measured in this run, which had no GPU (no nvidia-smi). With one, the same section " +
			"measures whatever encoder the workers load: `--ml-fallback torch` puts the random-weight encoder on `cuda`.\n\n")
	}
	return b.String(), nil
}

var httpStartedRe = regexp.MustCompile(`msg="node started".* cluster=(\S+) http=(\S*)`)

// startNodeProc starts `hornbeam start ARGS` and returns its cluster and HTTP
// addresses; stop kills its process group.
func startNodeProc(bin string, env []string, args ...string) (cluster, httpAddr string, stop func(), err error) {
	cmd := exec.Command(bin, append([]string{"start"}, args...)...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	stop = func() { stopGroup(cmd, 10*time.Second) }
	got := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := httpStartedRe.FindStringSubmatch(sc.Text()); m != nil {
				got <- [2]string{m[1], m[2]}
			}
		}
	}()
	select {
	case a := <-got:
		return a[0], a[1], stop, nil
	case <-time.After(60 * time.Second):
		stop()
		return "", "", nil, fmt.Errorf("node %v did not start", args)
	}
}

func mlRun(bin, fallback string) (direct, e2e map[string]float64, conc map[string]any, err error) {
	exdir, _ := filepath.Abs("examples/distributed_ml")
	pydir, _ := filepath.Abs("bench/py")
	env := append(os.Environ(), "HORNBEAM_COOKIE=bench-ml")
	out := filepath.Join(os.TempDir(), fmt.Sprintf("hornbeam-ml-%d.json", os.Getpid()))
	defer os.Remove(out)
	runPy := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, bin, append([]string{"run", "--ml-fallback", fallback, "--pythonpath", pydir}, args...)...)
		c.Env = env
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		return c.Run()
	}
	if err := runPy(filepath.Join(pydir, "ml_bench.py"), "direct", out); err != nil {
		return nil, nil, nil, fmt.Errorf("direct: %w", err)
	}
	raw, _ := os.ReadFile(out)
	if err := json.Unmarshal(raw, &direct); err != nil {
		return nil, nil, nil, err
	}
	seed, _, stopW, err := startNodeProc(bin, env, "--name", "worker1@127.0.0.1", "--cluster-port", "0", "--ml-fallback", fallback,
		"--pythonpath", exdir, "--pythonpath", pydir, "--threads", "16")
	if err != nil {
		return nil, nil, nil, err
	}
	defer stopW()
	_, web, stopWeb, err := startNodeProc(bin, env, "app:app", "-b", "127.0.0.1:0", "--name", "web@127.0.0.1", "--join", seed,
		"--ml-fallback", fallback, "--pythonpath", exdir)
	if err != nil {
		return nil, nil, nil, err
	}
	defer stopWeb()
	e2e = map[string]float64{}
	client := &http.Client{Timeout: 5 * time.Minute}
	post := func(tag string, n int) error {
		texts := make([]string, n)
		for i := range texts {
			texts[i] = fmt.Sprintf("%s sentence %d: the quick brown fox jumps over the lazy dog near river %d", tag, i, i*7%101)
		}
		body, _ := json.Marshal(map[string]any{"texts": texts})
		resp, err := client.Post("http://"+web+"/infer", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			Embeddings [][]float64
			Cached     int
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 || len(r.Embeddings) != n || r.Cached != 0 {
			return fmt.Errorf("/infer: status %d, %d embeddings, %d cached, %v", resp.StatusCode, len(r.Embeddings), r.Cached, err)
		}
		return nil
	}
	if err := post("warm", 32); err != nil {
		return nil, nil, nil, err
	}
	for _, size := range []int{1, 32, 256} {
		var rates []float64
		for r := range 3 {
			n, t0 := 0, time.Now()
			for k := 0; time.Since(t0) < 2*time.Second; k++ {
				if err := post(fmt.Sprintf("e%d-%d-%d", size, r, k), size); err != nil {
					return nil, nil, nil, err
				}
				n += size
			}
			rates = append(rates, float64(n)/time.Since(t0).Seconds())
		}
		e2e[fmt.Sprint(size)] = median(rates)
	}
	if err := runPy("--name", "cli@127.0.0.1", "--join", seed, filepath.Join(pydir, "ml_bench.py"), "concurrent", "worker1@127.0.0.1", out); err != nil {
		return nil, nil, nil, fmt.Errorf("concurrent: %w", err)
	}
	raw, _ = os.ReadFile(out)
	if err := json.Unmarshal(raw, &conc); err != nil {
		return nil, nil, nil, err
	}
	for _, fn := range []string{"embed", "embed_unbatched"} {
		r, err := goClients(seed, "worker1@127.0.0.1", fn)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("Go clients: %w", err)
		}
		conc["go_"+fn] = r
	}
	return direct, e2e, conc, nil
}

// goClients calls node's mlbench.fn with one text from 64 goroutines of a
// hidden Go node for 3 s, 3 rounds, and returns the median texts/s: the
// worker's side of batching, without Python client threads competing for
// the same two cores.
func goClients(seed, node, fn string) (float64, error) {
	b, err := bus.Start(bus.Config{Name: "gomlcli@127.0.0.1", Cookie: "bench-ml", ClusterHost: "127.0.0.1",
		Join: []string{seed}, Hidden: true, Logger: quietLog()})
	if err != nil {
		return 0, err
	}
	defer b.Close()
	var rates []float64
	for r := range 3 {
		var total atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; time.Now().Before(stop); k++ {
					args, _ := cbor.Marshal([]any{[]string{fmt.Sprintf("%s %d %d %d the quick brown fox", fn, r, i, k)}})
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					_, err := b.Call(ctx, node, "mlbench", fn, args)
					cancel()
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					total.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, err
		}
		rates = append(rates, float64(total.Load())/time.Since(t0).Seconds())
	}
	return median(rates), nil
}

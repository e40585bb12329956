package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/bus"
)

// The DAG benchmark's graphs: one source, dagWide functions taking it and a
// sink taking them all; a chain of dagChain functions.
const (
	dagWide   = 3000
	dagChain  = 1000
	dagRounds = 3
)

// dagSection measures execute_distributed's overhead per function on no-op
// DAGs over 3 worker processes, beside dask.distributed on the same graphs
// and worker count, and a Go floor making the same calls with Go no-ops.
func dagSection(bin string) (string, error) {
	pydir, _ := filepath.Abs("bench/py")
	var b strings.Builder
	b.WriteString("## DAGs: `hornbeam_dag.execute_distributed` overhead per function\n\n")
	fmt.Fprintf(&b, "No-op Python functions over 3 worker processes on loopback, the graph handed over whole: "+
		"*wide* is one source, %d functions taking it and one sink taking them all; *chain* is %d functions "+
		"each taking the previous result. Wall time from submitting the graph to holding the sink's result, "+
		"over the number of functions: what scheduling, dispatch and moving results cost, since the functions "+
		"do nothing. Median of %d rounds after a warm-up.\n\n", dagWide, dagChain, dagRounds)

	hb, err := hornbeamDAG(bin, pydir)
	if err != nil {
		return "", fmt.Errorf("hornbeam dag: %w", err)
	}
	os.Setenv("DAG_BENCH_WIDE", fmt.Sprint(dagWide))
	os.Setenv("DAG_BENCH_CHAIN", fmt.Sprint(dagChain))
	os.Setenv("DAG_BENCH_ROUNDS", fmt.Sprint(dagRounds))
	dask, daskErr := peerJSON("/usr/bin/python3", "bench/peers/dask_dag.py")
	goWide, goChain, err := goDAGFloor()
	if err != nil {
		return "", fmt.Errorf("go floor: %w", err)
	}

	b.WriteString("| system | wide, per function | chain, per function |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| hornbeam `execute_distributed` (3 nodes, a hidden driver node) | %.1f µs | %.1f µs |\n",
		hb["wide_us_per_function"], hb["chain_us_per_function"])
	if daskErr == nil {
		fmt.Fprintf(&b, "| dask.distributed %v `client.get(graph)` (scheduler + 3 single-threaded workers) | %.1f µs | %.1f µs |\n",
			dask["dask_version"], num(dask, "wide_us_per_function"), num(dask, "chain_us_per_function"))
	} else {
		fmt.Fprintf(&b, "| dask.distributed | not measured: %v | |\n", daskErr)
	}
	fmt.Fprintf(&b, "| floor: the same calls between Go processes over the same bus, Go no-ops | %.1f µs | %.1f µs |\n\n",
		goWide, goChain)
	if daskErr == nil {
		fmt.Fprintf(&b, "Against dask: %.1fx lower overhead per function wide, %.1fx on the chain (goal: at least 10x).\n",
			num(dask, "wide_us_per_function")/hb["wide_us_per_function"], num(dask, "chain_us_per_function")/hb["chain_us_per_function"])
	}
	fmt.Fprintf(&b, "Against the Go floor: %.1fx wide, %.1fx on the chain.\n\n",
		hb["wide_us_per_function"]/goWide, hb["chain_us_per_function"]/goChain)
	b.WriteString("How: the driver sends each node only small records, never results it did not ask for; a chain " +
		"of functions whose only input is the previous one runs as one call on one node (one round trip per 64 " +
		"links, results handed over in the node's memory); a node with 8 calls waiting gets further ready " +
		"functions of the same cost (if they ran under 1 ms so far) in batches of up to 32 under one reservation, and fetches each input it lacks " +
		"once per call from the node that holds it. Dask's scheduler makes a round trip per task to a worker, " +
		"and its client batches messages every 10 ms.\n\n")
	return b.String(), nil
}

func hornbeamDAG(bin, pydir string) (map[string]float64, error) {
	env := append(os.Environ(), "HORNBEAM_COOKIE=bench-dag")
	join, _, stop, err := startNodeProc(bin, env, "--name", "w1@127.0.0.1", "--pythonpath", pydir)
	if err != nil {
		return nil, err
	}
	defer stop()
	for _, n := range []string{"w2", "w3"} {
		_, _, stopN, err := startNodeProc(bin, env, "--name", n+"@127.0.0.1", "--pythonpath", pydir, "--join", join)
		if err != nil {
			return nil, err
		}
		defer stopN()
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("hornbeam-dag-%d.json", os.Getpid()))
	defer os.Remove(out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, bin, "run", "--name", "drv@127.0.0.1", "--hidden", "--join", join,
		"--pythonpath", pydir, filepath.Join(pydir, "dag_bench.py"), out,
		fmt.Sprint(dagWide), fmt.Sprint(dagChain), fmt.Sprint(dagRounds))
	cli.Env = env
	cli.Stdout, cli.Stderr = os.Stderr, os.Stderr
	if err := cli.Run(); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var res map[string]float64
	return res, json.Unmarshal(raw, &res)
}

// dagNoop answers a batch of tasks the way hornbeam_dag's executor does,
// with one ["ok", nil, 0] record per task, running nothing.
type dagNoop struct{}

func (dagNoop) Call(_ context.Context, _, _ string, args []byte) ([]byte, error) {
	var a []cbor.RawMessage // [run id, driver, tasks, chain]
	if err := cbor.Unmarshal(args, &a); err != nil || len(a) < 3 {
		return nil, fmt.Errorf("bad tasks: %v", err)
	}
	var tasks []cbor.RawMessage
	if err := cbor.Unmarshal(a[2], &tasks); err != nil {
		return nil, err
	}
	recs := make([][3]any, len(tasks))
	for i := range recs {
		recs[i] = [3]any{"ok", nil, 0.0}
	}
	return cbor.Marshal(recs)
}

// dagChild is a worker process of the Go floor.
func dagChild(name, join string) {
	cfg := bus.Config{Name: name, Cookie: "bench-dag-floor", ClusterHost: "127.0.0.1", Handler: dagNoop{}, Logger: quietLog()}
	if join != "" {
		cfg.Join = []string{join}
	}
	b, err := bus.Start(cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println(b.ClusterAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
	b.Close()
}

func startDAGChild(name, join string) (addr string, stop func(), err error) {
	self, _ := os.Executable()
	child := exec.Command(self, "-dag-child", name, "-dag-join", join)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return "", nil, err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	return strings.TrimSpace(line), func() { stdin.Close(); child.Wait() }, nil
}

// goDAGFloor makes the calls execute_distributed makes for the two graphs
// (chains in calls of 64 links; wide: at most 64 calls in flight per node,
// single tasks until a node has 8 waiting, then batches of 32), between Go
// processes with no-op handlers: the bus's share of the overhead.
func goDAGFloor() (wide, chain float64, err error) {
	names := []string{"w1@127.0.0.1", "w2@127.0.0.1", "w3@127.0.0.1"}
	seed, stop, err := startDAGChild(names[0], "")
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	for _, n := range names[1:] {
		_, stopN, err := startDAGChild(n, seed)
		if err != nil {
			return 0, 0, err
		}
		defer stopN()
	}
	b, err := bus.Start(bus.Config{Name: "gdrv@127.0.0.1", Cookie: "bench-dag-floor", ClusterHost: "127.0.0.1",
		Join: []string{seed}, Hidden: true, Logger: quietLog()})
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	deadline := time.Now().Add(15 * time.Second)
	for len(b.Nodes(bus.Visible)) < 3 {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("workers not seen: %v", b.Nodes(bus.Visible))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	task := func(i int, ref int, holder string) []any {
		return []any{i, "dagbench", "noop", []any{[]any{"r", ref, holder}}, []any{}, false, true}
	}
	call := func(node string, tasks []any) error {
		args, _ := cbor.Marshal([]any{"run", "gdrv@127.0.0.1", tasks, false})
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := b.Call(c, node, "hornbeam_dag._executor", "run", args)
		return err
	}
	runWide := func() error {
		if err := call(names[0], []any{[]any{0, "dagbench", "noop", []any{}, []any{}, false, true}}); err != nil {
			return err
		}
		type answer struct {
			node string
			err  error
		}
		inflight := map[string]int{}
		done := make(chan answer, len(names)*64)
		ready, next, total := dagWide, 1, 0
		for ready > 0 || total > 0 {
			for ready > 0 {
				nd := names[0]
				for _, n := range names {
					if inflight[n] < inflight[nd] {
						nd = n
					}
				}
				if inflight[nd] >= 64 {
					break
				}
				size := 1
				if inflight[nd] >= 8 {
					size = min(32, ready)
				}
				tasks := make([]any, size)
				for k := range tasks {
					tasks[k] = task(next, 0, names[0])
					next++
				}
				ready -= size
				inflight[nd]++
				total++
				go func() { done <- answer{nd, call(nd, tasks)} }()
			}
			a := <-done
			if a.err != nil {
				return a.err
			}
			inflight[a.node]--
			total--
		}
		refs := make([]any, dagWide)
		for i := range refs {
			refs[i] = []any{"r", i + 1, names[i%3]}
		}
		return call(names[1], []any{[]any{dagWide + 1, "dagbench", "count", refs, []any{}, true, false}})
	}
	runChain := func() error {
		holder := ""
		for i := 0; i < dagChain; i += 64 {
			tasks := make([]any, 0, 64)
			for k := i; k < min(i+64, dagChain); k++ {
				tasks = append(tasks, task(k, k-1, holder))
				holder = names[0]
			}
			if err := call(names[0], tasks); err != nil {
				return err
			}
		}
		return nil
	}
	measure := func(f func() error, n int) (float64, error) {
		if err := f(); err != nil { // warm-up
			return 0, err
		}
		var per []float64
		for range dagRounds {
			t0 := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			per = append(per, float64(time.Since(t0).Nanoseconds())/1000/float64(n))
		}
		return median(per), nil
	}
	if wide, err = measure(runWide, dagWide+2); err != nil {
		return 0, 0, err
	}
	if chain, err = measure(runChain, dagChain); err != nil {
		return 0, 0, err
	}
	return wide, chain, nil
}

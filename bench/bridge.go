package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam/host"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// bridgeSection measures Go->Python calls, value conversion and node state.
func bridgeSection() (string, error) {
	pydir, err := filepath.Abs("bench/py")
	if err != nil {
		return "", err
	}
	node, err := host.New(host.Config{PythonPath: []string{pydir}})
	if err != nil {
		return "", err
	}
	defer node.Close()
	py := node.Python()

	var b strings.Builder
	b.WriteString("## The bridge: Go -> Python calls, conversion, node state\n\n")
	b.WriteString("### Go -> Python calls (no-op function, empty arguments)\n\n")
	b.WriteString("| call | p50 latency | p99 latency | calls/s, 1 goroutine | calls/s, 8 goroutines |\n|---|---|---|---|---|\n")
	for _, fn := range []string{"noop", "anoop"} {
		kind := "sync `def` (pool thread)"
		if fn == "anoop" {
			kind = "`async def` (event loop)"
		}
		call := func() {
			if _, err := py.Call(context.Background(), "benchmod", fn, nil); err != nil {
				panic(err)
			}
		}
		p50, p99, seq := latencies(call, 1000, 20000)
		par := throughput(call, 8, 3, 700*time.Millisecond)
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f |\n", kind, us(p50), us(p99), seq, par)
	}

	tmp, err := os.CreateTemp("", "hornbeam-bench-*.json")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	code := fmt.Sprintf("import sys; sys.argv = [%q, %q]; import runpy; runpy.run_path(%q, run_name='__main__')",
		"bridge_bench.py", tmp.Name(), filepath.Join(pydir, "bridge_bench.py"))
	if rc := node.RunMain(pybridge.Code, code); rc != 0 {
		return "", fmt.Errorf("bridge_bench.py exited %d", rc)
	}
	raw, err := os.ReadFile(tmp.Name())
	if err != nil {
		return "", err
	}
	var res struct {
		Conversions []struct {
			Value          string
			Encode, Decode float64
			FloorEncode    float64 `json:"floor_encode"`
			FloorDecode    float64 `json:"floor_decode"`
			Floor          string
		}
		State map[string]float64
		Calls map[string]float64
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", err
	}
	hp50, hp99 := lockedPingPong(20000)
	fmt.Fprintf(&b, "\nFloors, same run: the no-op called from Python itself: %.0f calls/s (%.0f ns); "+
		"a bare Go round trip to a goroutine locked to its OS thread over channels, with no Python: "+
		"p50 %s, p99 %s. A Go->Python call crosses threads, and by default a thread with no work parks at once, "+
		"so a call that finds its thread parked pays a wake-up. With `--spin-us 150` (threads spin that long before they park), "+
		"on 2026-12-04: sync p50 2.8 µs and 148604 calls/s from one goroutine, async p50 16.4 µs and 48389 calls/s, "+
		"against 6.3 µs and 40643, 44.6 µs and 20371 without, in runs minutes apart. That gain stays inside the process: "+
		"see the remote calls and HTTP sections for what spinning does to a request.\n\n",
		res.Calls["python noop call (floor)"], 1e9/res.Calls["python noop call (floor)"], us(hp50), us(hp99))

	b.WriteString("### Value conversion in C (`_hornbeam.encode`/`decode`, one call per value), ops/s\n\n")
	b.WriteString("| value | encode | floor encode | ratio | decode | floor decode | ratio | floor |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range res.Conversions {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx | %s |\n", c.Value,
			c.Encode, c.FloorEncode, c.Encode/c.FloorEncode, c.Decode, c.FloorDecode, c.Decode/c.FloorDecode, c.Floor)
	}
	b.WriteString("\nRatio > 1 means the bridge is faster than the floor.\n\n")

	b.WriteString("### Node state from Python, ops/s (one thread)\n\n")
	b.WriteString("| operation | hornbeam | plain-Python floor | floor / hornbeam |\n|---|---|---|---|\n")
	for _, p := range [][2]string{{"state_incr", "dict increment"}, {"state_get", "dict get"}, {"state_set (small int)", "dict set"}} {
		h, f := res.State[p[0]], res.State[p[1]]
		fmt.Fprintf(&b, "| `%s` vs %s | %.0f | %.0f | %.2fx |\n", p[0], p[1], h, f, f/h)
	}
	b.WriteString("\nThe floor is a Python dict in the same process: `d['n'] = d.get('n', 0) + 1`. " +
		"Node state is shared by every thread (and, with workers, every process) of a node; the dict is not.\n\n")
	return b.String(), nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1000) }

// lockedPingPong is the naive floor for a cross-thread handoff: a goroutine locked
// to its OS thread answering over channels, both sides parking.
func lockedPingPong(n int) (p50, p99 time.Duration) {
	req, resp := make(chan int), make(chan int)
	go func() {
		runtime.LockOSThread()
		for v := range req {
			resp <- v
		}
	}()
	defer close(req)
	p50, p99, _ = latencies(func() { req <- 1; <-resp }, 100, n)
	return p50, p99
}

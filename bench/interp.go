package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// interpFigures is what bench/py/interp_bench.py prints.
type interpFigures struct {
	PlainNS   float64 `json:"plain_ns"`
	FastAPIUS float64 `json:"fastapi_us"`
}

// interpSubsection times the same Python work in a node's interpreter
// (`hornbeam run`, bin) and in Debian's python3, both at once on serverCPU, so
// that the two see the same machine: how much slower the libpython a node
// links runs the same Python than Debian's python3 binary. bin and pydir are
// absolute paths.
func interpSubsection(bin, pydir string) string {
	run := func(ctx context.Context, argv ...string) (interpFigures, error) {
		c := exec.CommandContext(ctx, "taskset", append([]string{"-c", serverCPU}, argv...)...)
		c.Dir = pydir
		out, err := c.Output()
		if err != nil {
			return interpFigures{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		var f interpFigures
		if err := json.Unmarshal(out, &f); err != nil {
			return interpFigures{}, fmt.Errorf("%s printed %q: %w", strings.Join(argv, " "), out, err)
		}
		return f, nil
	}
	var node, py3 []interpFigures
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var a, b interpFigures
		var errA, errB error
		done := make(chan struct{})
		go func() { a, errA = run(ctx, bin, "run", "interp_bench.py"); close(done) }()
		b, errB = run(ctx, "/usr/bin/python3", "interp_bench.py")
		<-done
		cancel()
		if errA != nil || errB != nil {
			err = errors.Join(errA, errB)
			break
		}
		node, py3 = append(node, a), append(py3, b)
	}
	var s strings.Builder
	s.WriteString("### Python itself: a node's interpreter beside python3\n\n")
	fmt.Fprintf(&s, "The same Python work (bench/py/interp_bench.py) in `hornbeam run` and in Debian's `/usr/bin/python3`, "+
		"both at once on CPU %s; thread CPU time per iteration, median of 3 runs of 7 rounds. A node links Debian's "+
		"static libpython, which Debian builds with profile-guided optimisation but without the link-time "+
		"optimisation of its python3 binary. These are tight loops, whose code and data stay in the CPU's caches; "+
		"served over HTTP, where Go, the kernel and Python share the caches, a node linked with link-time optimisation "+
		"against a libpython built from Debian's source with it (not shipped) spent 3%% less CPU on a FastAPI request "+
		"(side by side on one CPU, medians of 5 rounds, 0.969 and 0.970), so the per-core rows above owe a little to this.\n\n", serverCPU)
	if err != nil {
		fmt.Fprintf(&s, "not measured: %v\n\n", err)
		return s.String()
	}
	// row writes one work's medians over the runs and the median of the runs'
	// own ratios, as the two processes of a run saw the same moments.
	row := func(label, format string, get func(interpFigures) float64) {
		var a, b, r []float64
		for i := range node {
			a, b, r = append(a, get(node[i])), append(b, get(py3[i])), append(r, get(node[i])/get(py3[i]))
		}
		fmt.Fprintf(&s, "| %s | "+format+" | "+format+" | %.2fx |\n", label, median(a), median(b), median(r))
	}
	s.WriteString("| work | hornbeam run | python3 | node / python3 (median of the runs' ratios) |\n|---|---|---|---|\n")
	row("plain Python loop", "%.0f ns", func(f interpFigures) float64 { return f.PlainNS })
	row("FastAPI route in-process, no server", "%.1f µs", func(f interpFigures) float64 { return f.FastAPIUS })
	s.WriteString("\n")
	return s.String()
}

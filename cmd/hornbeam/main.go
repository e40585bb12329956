// Command hornbeam runs Python inside a node: scripts and modules (run), web
// apps and cluster members (start), and cluster tools.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// gcPercent replaces Go's default GOGC of 100. A node's Go heap is small (the
// Python objects live in Python's), while each request and call allocates
// buffers of its size, so at 100 the collector runs every few hundred
// requests; at 400 it runs a quarter as often, for up to 5x a small live heap
// (measured: +20–50% HTTP requests/s, +14 MB RSS). GOGC in the environment wins.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	stop := func() {}
	if path := os.Getenv("HORNBEAM_CPUPROFILE"); path != "" {
		var err error
		if stop, err = startCPUProfile(path); err != nil {
			fmt.Fprintln(os.Stderr, "hornbeam:", err)
			os.Exit(2)
		}
	}
	code := run()
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process's exit status; it
// returns instead of exiting so that deferred work (a CPU profile) finishes.
func run() int {
	root := newRootCmd()
	root.SetArgs(endRunFlags(root, os.Args[1:]))
	if err := root.Execute(); err != nil {
		var ee exitError
		if asExit(err, &ee) {
			return int(ee)
		}
		fmt.Fprintln(os.Stderr, "hornbeam:", err)
		return 2
	}
	return 0
}

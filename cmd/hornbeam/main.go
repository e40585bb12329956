// Command hornbeam runs Python inside a node: scripts and modules (run), and in
// later layers web apps and cluster members (start), and cluster tools.
package main

import (
	"fmt"
	"os"
)

func main() {
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

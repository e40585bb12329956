// Command hornbeam runs Python inside a node: scripts and modules (run), and in
// later layers web apps and cluster members (start), and cluster tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	root := newRootCmd()
	root.SetArgs(endRunFlags(root, os.Args[1:]))
	if err := root.Execute(); err != nil {
		var ee exitError
		if asExit(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintln(os.Stderr, "hornbeam:", err)
		os.Exit(2)
	}
}

// Command bench measures hornbeam beside real peers and the bare floor, and
// writes docs/BENCHMARKS.md. Run it with `make bench`; figures are medians of
// repeated rounds taken in one run on one machine.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "docs/BENCHMARKS.md", "markdown file to write")
	bin := flag.String("bin", "bin/hornbeam", "the hornbeam binary to measure")
	only := flag.String("only", "", "comma-separated sections to run (bridge, rpc, percore, http, ml, procs, dag); default all")
	pgo := flag.String("pgo", "", "write the node's profile-guided optimisation profile to this file (cmd/hornbeam/default.pgo) instead of measuring")
	child := flag.Bool("nats-child", false, "internal: the second process of the NATS floor")
	busChildFlag := flag.Bool("bus-child", false, "internal: the serving process of the Go bus measurement")
	dagChildName := flag.String("dag-child", "", "internal: a worker process of the DAG floor, by node name")
	dagChildJoin := flag.String("dag-join", "", "internal: the cluster address a DAG floor worker joins")
	bareAddr := flag.String("bare-child", "", "internal: serve the bare Go floor on this address")
	bareSize := flag.Int("bare-size", 13, "internal: the bare floor's body size")
	bareServer := flag.String("bare-server", "net/http", "internal: the bare floor's server: net/http, or hornbeam (its HTTP/1.1 server with a Go handler)")
	flag.Parse()
	if *bareAddr != "" {
		bareChild(*bareAddr, *bareSize, *bareServer)
		return
	}
	if *dagChildName != "" {
		dagChild(*dagChildName, *dagChildJoin)
		return
	}
	if *child {
		natsChild()
		return
	}
	if *busChildFlag {
		busChild()
		return
	}
	if *pgo != "" {
		if err := pgoProfile(*bin, *pgo); err != nil {
			log.Fatalf("pgo profile: %v", err)
		}
		return
	}
	want := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }

	var doc bytes.Buffer
	fmt.Fprintf(&doc, "# Benchmarks\n\n")
	fmt.Fprintf(&doc, "Written by `make bench` (bench/) on %s: %s, %d CPUs, %s. ",
		time.Now().UTC().Format("2006-01-02"), cpuModel(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&doc, "Every figure is a median of repeated rounds, taken in the same run as its floor or peer; "+
		"these machines are shared and noisy, so read ratios rather than absolutes.\n\n")

	sections := []struct {
		name string
		run  func() (string, error)
	}{
		{"bridge", bridgeSection},
		{"rpc", func() (string, error) { return rpcSection(*bin) }},
		{"percore", func() (string, error) { return perCoreSection(*bin) }},
		{"http", func() (string, error) { return httpSection(*bin) }},
		{"ml", func() (string, error) { return mlSection(*bin) }},
		{"procs", func() (string, error) { return procSection(*bin) }},
		{"dag", func() (string, error) { return dagSection(*bin) }},
	}
	for _, s := range sections {
		if !want(s.name) {
			continue
		}
		log.Printf("bench: %s", s.name)
		sec, err := s.run()
		if err != nil {
			log.Fatalf("%s benchmarks: %v", s.name, err)
		}
		doc.WriteString(sec)
	}

	if err := os.WriteFile(*out, doc.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Print(doc.String())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return runtime.GOARCH
}

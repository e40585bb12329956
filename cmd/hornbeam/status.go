package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/dashboard"
)

func newStatusCmd() *cobra.Command {
	var nf nodeFlags
	var logLevel string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --join HOST:PORT",
		Short: "Show every node of a cluster: roles, capabilities, load, memory, uptime, up/down",
		Long: `Show every node of a cluster, as ray status does: its roles, capabilities
(CPUs, GPUs), CPU load, memory, uptime, and whether it is up. Nodes that went
down are listed as down for as long as the cluster remembers them. --json
prints the same as a JSON object, for scripts (the dashboard's /api/cluster).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withToolNode(&nf, logLevel, func(b *bus.Bus) error {
				return printStatus(cmd.OutOrStdout(), b, asJSON)
			})
		},
	}
	nf.add(cmd.Flags(), true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "log level for the tool's own node (default: silent)")
	return cmd
}

// printStatus waits for the cluster's heartbeats, then prints its view of
// every (not hidden) node.
func printStatus(w io.Writer, b *bus.Bus, asJSON bool) error {
	time.Sleep(300 * time.Millisecond) // every peer answers a newcomer's first heartbeat
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	via := ""
	if ns := b.Nodes(bus.Visible); len(ns) > 0 {
		via = ns[0]
	}
	view := dashboard.Collect(ctx, b, via)
	// The tool itself is hidden: not part of what it shows.
	nodes := view.Nodes[:0]
	for _, n := range view.Nodes {
		if n.Name != b.Name() {
			nodes = append(nodes, n)
		}
	}
	view.Nodes = nodes
	if via != "" {
		view.Node = via
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(view)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tROLES\tCAPABILITIES\tLOAD\tMEMORY\tUPTIME")
	up := 0
	for _, n := range view.Nodes {
		status := "down"
		if n.Up {
			status = "up"
			up++
		}
		if n.Up && n.Info == nil {
			status = "up (no answer)"
		}
		roles := strings.Join(n.Roles, ",")
		if roles == "" {
			roles = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, status, roles, capsText(n), loadText(n.Info), memText(n.Info), uptimeText(n.Info))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d nodes: %d up, %d down\n", len(view.Nodes), up, len(view.Nodes)-up)
	return nil
}

func num(info map[string]any, key string) (float64, bool) {
	switch v := info[key].(type) {
	case float64:
		return v, true
	case uint64:
		return float64(v), true
	case int64:
		return float64(v), true
	case float32:
		return float64(v), true
	}
	return 0, false
}

func capsText(n dashboard.Node) string {
	var parts []string
	if c, ok := num(n.Info, "cpu_count"); ok {
		parts = append(parts, fmt.Sprintf("cpu=%g", c))
	} else if c, ok := n.Capabilities["cpu"]; ok {
		parts = append(parts, fmt.Sprintf("cpu=%g", c))
	}
	g, ok := num(n.Info, "gpu_count")
	if !ok {
		g = n.Capabilities["gpu"]
	}
	parts = append(parts, fmt.Sprintf("gpu=%g", g))
	var other []string
	for k, v := range n.Capabilities {
		if k != "cpu" && k != "gpu" && k != "memory_gb" {
			other = append(other, fmt.Sprintf("%s=%g", k, v))
		}
	}
	sort.Strings(other)
	return strings.Join(append(parts, other...), ",")
}

func loadText(info map[string]any) string {
	l, ok := num(info, "load1")
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", l)
}

func memText(info map[string]any) string {
	total, ok1 := num(info, "memory_total")
	avail, ok2 := num(info, "memory_available")
	if !ok1 || !ok2 {
		return "-"
	}
	return fmt.Sprintf("%.1f/%.1fGiB", (total-avail)/(1<<30), total/(1<<30))
}

func uptimeText(info map[string]any) string {
	s, ok := num(info, "uptime_s")
	if !ok {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}

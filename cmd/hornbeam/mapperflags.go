package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/mapper"
)

// addMapperFlags adds --mapper-port (every node and tool) and, for nodes,
// --cluster-port-range.
func addMapperFlags(fs *pflag.FlagSet, f *nodeFlags, tool bool) {
	fs.IntVar(&f.mapperPort, "mapper-port", envInt("HORNBEAM_MAPPER_PORT", mapper.DefaultPort),
		"the port mapper's port (as EPMD's), through which NAME@HOST is found; 0: no mapper (env HORNBEAM_MAPPER_PORT)")
	if !tool {
		fs.StringVar(&f.portRange, "cluster-port-range", envStr("HORNBEAM_CLUSTER_PORT_RANGE", ""),
			"FIRST-LAST: take the first free cluster port in this range (for firewalls), e.g. 9100-9105")
	}
}

// resolver returns the bus's NAME@HOST resolver, or nil without a mapper.
func (f *nodeFlags) resolver() func(context.Context, string) (string, error) {
	if f.mapperPort <= 0 {
		return nil
	}
	port := f.mapperPort
	return func(ctx context.Context, node string) (string, error) { return mapper.Resolve(ctx, node, port) }
}

// pickClusterPort applies --cluster-port-range: the first port of the range
// nothing listens on.
func (f *nodeFlags) pickClusterPort(host string) (int, error) {
	if f.portRange == "" || os.Getenv(envNodeState) != "" {
		return f.clusterPort, nil // a worker listens on no cluster port
	}
	if f.clusterPort != 0 {
		return 0, fmt.Errorf("--cluster-port and --cluster-port-range cannot be used together")
	}
	lo, hi, ok := strings.Cut(f.portRange, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(lo))
	last, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return 0, fmt.Errorf("--cluster-port-range %q: want FIRST-LAST, e.g. 9100-9105", f.portRange)
	}
	for p := first; p <= last; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("--cluster-port-range %s: every port is taken", f.portRange)
}

// registerName keeps a started node's name on its host's port mapper (and
// holds the mapper when no other node does); the returned function
// unregisters it.
func registerName(nf *nodeFlags, b *bus.Bus, log *slog.Logger) func() {
	if b == nil || nf.mapperPort <= 0 {
		return func() {}
	}
	_, port, err := net.SplitHostPort(b.ClusterAddr())
	p, _ := strconv.Atoi(port)
	if err != nil || p == 0 {
		return func() {} // an external NATS: no cluster port of ours
	}
	reg := mapper.Register(b.Name(), p, nf.mapperPort, log)
	return reg.Close
}

func newNamesCmd() *cobra.Command {
	var port int
	cmd := &cobra.Command{
		Use:   "names [HOST]",
		Short: "List the nodes registered on HOST's port mapper (default this host), as epmd -names",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := "127.0.0.1"
			if len(args) == 1 {
				host = args[0]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			names, err := mapper.Names(ctx, host, port)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "hornbeam: cannot connect to the port mapper on %s:%d: %v\n", host, port, err)
				return exitError(1)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hornbeam: port mapper up and running on port %d with data:\n", port)
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "name %s at port %d\n", n.Name, n.Port)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&port, "mapper-port", envInt("HORNBEAM_MAPPER_PORT", mapper.DefaultPort), "the port mapper's port (env HORNBEAM_MAPPER_PORT)")
	return cmd
}

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/bus"
)

// withToolNode joins the cluster as a hidden node for the length of fn.
func withToolNode(nf *nodeFlags, logLevel string, fn func(b *bus.Bus) error) error {
	cfg, err := nf.toolConfig()
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if logLevel != "" {
		if cfg.Logger, err = newLogger(logLevel); err != nil {
			return err
		}
	}
	b, err := bus.Start(*cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func newNodesCmd() *cobra.Command {
	var nf nodeFlags
	var all, long bool
	var logLevel string
	cmd := &cobra.Command{
		Use:   "nodes --join HOST:PORT",
		Short: "List the nodes of a cluster, one per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withToolNode(&nf, logLevel, func(b *bus.Bus) error {
				if long {
					return printStatus(cmd.OutOrStdout(), b, false)
				}
				time.Sleep(300 * time.Millisecond) // every peer answers a newcomer's first heartbeat
				kind := bus.Visible
				if all {
					kind = bus.Connected
				}
				for _, n := range b.Nodes(kind) {
					if all || n != b.Name() {
						fmt.Fprintln(cmd.OutOrStdout(), n)
					}
				}
				return nil
			})
		},
	}
	nf.add(cmd.Flags(), true)
	cmd.Flags().BoolVar(&all, "all", false, "include hidden nodes (other CLI tools, --hidden nodes)")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "one line per node with roles, capabilities, load, memory, uptime, up/down (as status)")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "log level for the tool's own node (default: silent)")
	return cmd
}

func newPingCmd() *cobra.Command {
	var nf nodeFlags
	var logLevel string
	cmd := &cobra.Command{
		Use:   "ping NODE --join HOST:PORT",
		Short: "Print pong if NODE answers (exit 0), else pang (exit 1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withToolNode(&nf, logLevel, func(b *bus.Bus) error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if b.Ping(ctx, args[0]) {
					fmt.Fprintln(cmd.OutOrStdout(), "pong")
					return nil
				}
				fmt.Fprintln(cmd.OutOrStdout(), "pang")
				return exitError(1)
			})
		},
	}
	nf.add(cmd.Flags(), true)
	cmd.Flags().StringVar(&logLevel, "log-level", "", "log level for the tool's own node (default: silent)")
	return cmd
}

func newCallCmd() *cobra.Command {
	var nf nodeFlags
	var timeoutMS int
	var logLevel string
	cmd := &cobra.Command{
		Use:   "call NODE MODULE FUNCTION [JSON_ARGS] --join HOST:PORT",
		Short: "Call MODULE.FUNCTION(*JSON_ARGS) on NODE and print the result as JSON",
		Long: `Call MODULE.FUNCTION(*JSON_ARGS) on NODE and print the result as JSON.
JSON_ARGS is a JSON array (default []). On failure the error is printed to
stderr and the exit status is 1.

Example: hornbeam call worker1@127.0.0.1 math pow '[2, 10]' --join 127.0.0.1:4370`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			callArgs := []any{}
			if len(args) == 4 {
				if err := json.Unmarshal([]byte(args[3]), &callArgs); err != nil {
					return fmt.Errorf("JSON_ARGS must be a JSON array: %w", err)
				}
			}
			enc, err := cbor.Marshal(jsonToCBOR(callArgs))
			if err != nil {
				return err
			}
			return withToolNode(&nf, logLevel, func(b *bus.Bus) error {
				ctx, cancel := context.WithTimeout(context.Background(), msDuration(timeoutMS))
				defer cancel()
				res, err := b.Call(ctx, args[0], args[1], args[2], enc)
				if err != nil {
					var re *bus.RemoteError
					if errors.As(err, &re) && re.Traceback != "" {
						fmt.Fprint(cmd.ErrOrStderr(), re.Traceback)
					}
					fmt.Fprintln(cmd.ErrOrStderr(), "hornbeam:", err)
					return exitError(1)
				}
				var v any
				if err := cbor.Unmarshal(res, &v); err != nil {
					return fmt.Errorf("decoding the result: %w", err)
				}
				out, err := json.Marshal(cborToJSON(v))
				if err != nil {
					return fmt.Errorf("the result has no JSON form: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(out))
				return nil
			})
		},
	}
	nf.add(cmd.Flags(), true)
	cmd.Flags().IntVar(&timeoutMS, "timeout", 5000, "timeout in milliseconds")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "log level for the tool's own node (default: silent)")
	return cmd
}

// jsonToCBOR turns JSON numbers that are integers into integers, so that
// Python receives int, not float.
func jsonToCBOR(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) && x >= -1<<53 && x <= 1<<53 {
			return int64(x)
		}
		return x
	case []any:
		for i := range x {
			x[i] = jsonToCBOR(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = jsonToCBOR(x[k])
		}
		return x
	default:
		return v
	}
}

// tagTuple is the private tag pybridge uses for Python tuples.
const tagTuple = 0x48420001

// cborToJSON makes a decoded CBOR value JSON-encodable: tuples become arrays,
// bytes base64 strings, big ints decimal numbers, map keys strings, and typed
// (numpy) arrays a note of their size.
func cborToJSON(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(cborToJSON(k))
			}
			m[ks] = cborToJSON(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = cborToJSON(x[i])
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case big.Int:
		return json.Number(x.String())
	case cbor.Tag:
		if x.Number == tagTuple {
			return cborToJSON(x.Content)
		}
		if b, ok := x.Content.([]byte); ok {
			return map[string]any{"cbor_tag": x.Number, "bytes": base64.StdEncoding.EncodeToString(b)}
		}
		return map[string]any{"cbor_tag": x.Number, "value": cborToJSON(x.Content)}
	default:
		return v
	}
}
